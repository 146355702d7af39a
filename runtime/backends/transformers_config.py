"""Settings of the in-process transformers backend (`TransformersBackend`), kept apart from its loop.

What this module leaves to others: loading the model (`transformers_backend`), and choosing
values for a given machine (CLIs and benchmarks).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class TransformersBackendConfig:
    """Settings of `TransformersBackend`."""

    device: str | None = None
    """'cpu', 'cuda', 'cuda:1', ...; None: a given model's device, else 'cuda' when available, else 'cpu'."""
    dtype: str | None = None
    """'float32', 'bfloat16' or 'float16' to cast the model to; None keeps its dtype."""
    max_batch_size: int = 16
    """Sequences decoded together (KV slots preallocated for this many)."""
    context_length: int | None = None
    """Tokens per sequence, prompt + output; None: the model config's ``max_position_embeddings``."""
    initial_kv_len: int = 256
    """KV positions allocated per slot at first; doubled on demand up to `context_length`."""
    max_prefill_tokens: int = 2048
    """Padded tokens (rows x longest new prompt) per prefill forward; one longer prompt still runs alone."""
    max_retained_sequences: int = 256
    """Idle sequences whose KV is kept for `cache_key`/`fork_from` reuse (LRU beyond); 0 disables reuse."""
    max_retained_mib: float = 1024.0
    """Memory bound of the retained KV, in MiB (LRU eviction beyond)."""
    num_threads: int | None = None
    """If set, ``torch.set_num_threads(num_threads)`` at construction: process-wide (CPU intra-op threads)."""
    attn_implementation: str | None = None
    """Passed to ``from_pretrained`` when loading from a path ('sdpa' or 'eager'); None: transformers' default."""

    def __post_init__(self) -> None:
        if self.dtype is not None and self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {sorted(DTYPES)} or None, got {self.dtype!r}")
        if self.max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1, got {self.max_batch_size}")
        if self.context_length is not None and self.context_length < 2:
            raise ValueError(f"context_length must be >= 2 or None, got {self.context_length}")
        if self.initial_kv_len < 1:
            raise ValueError(f"initial_kv_len must be >= 1, got {self.initial_kv_len}")
        if self.max_prefill_tokens < 1:
            raise ValueError(f"max_prefill_tokens must be >= 1, got {self.max_prefill_tokens}")
        if self.max_retained_sequences < 0 or self.max_retained_mib < 0:
            raise ValueError(
                "max_retained_sequences and max_retained_mib must be >= 0, got "
                f"{self.max_retained_sequences} and {self.max_retained_mib}"
            )
        if self.num_threads is not None and self.num_threads < 1:
            raise ValueError(f"num_threads must be >= 1 or None, got {self.num_threads}")
        if self.attn_implementation not in (None, "sdpa", "eager"):
            raise ValueError(
                f"attn_implementation must be 'sdpa', 'eager' or None, got {self.attn_implementation!r}"
            )
