"""Tiny random models and tokenizers for tests and benchmarks, built locally (nothing downloaded).

`make_tiny_llama` builds a `LlamaForCausalLM` from a config with seeded random weights;
`make_tiny_tokenizer` gives the project's Countdown tokenizer (`apr_env.tokenizer`);
`save_tiny_model` writes both into a folder that `from_pretrained` (and a server) can load.

The weights are random, so generated text is gibberish; what tests check is that every
decoding path computes the same thing as a reference (`reference_greedy`) on the same model.
Fixtures that share these objects across tests are left to ``tests/conftest.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from apr_env.tokenizer import FastTokenizer, build_tokenizer


def make_tiny_llama(
    vocab_size: int,
    seed: int = 0,
    hidden: int = 64,
    layers: int = 2,
    heads: int = 4,
    kv_heads: int = 2,
    max_pos: int = 512,
    intermediate: int | None = None,
    init_std: float = 0.2,
) -> LlamaForCausalLM:
    """A randomly initialised Llama in eval mode, fp32, on CPU.

    Args:
        vocab_size: rows of the embedding table (e.g. ``make_tiny_tokenizer().vocab_size``).
        seed: `torch.manual_seed` used for the weights: same arguments, same model.
        hidden, layers, heads, kv_heads: model width, depth, query heads and key/value heads
            (``kv_heads < heads`` exercises grouped-query attention).
        max_pos: ``max_position_embeddings``, which a backend takes as its context length.
        intermediate: MLP width; default ``3 * hidden``.
        init_std: ``initializer_range``. Larger than Llama's 0.02 so that next-token
            distributions are peaked: greedy choices are then far from ties and a test
            comparing two correct implementations does not flip on float rounding.
    """
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        intermediate_size=intermediate or 3 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=max_pos,
        initializer_range=init_std,
        tie_word_embeddings=False,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    return model.float().eval()


def make_tiny_tokenizer() -> FastTokenizer:
    """The Countdown tokenizer (character-level plus grammar units; `decode` keeps special tokens)."""
    return build_tokenizer()


def count_parameters(model: torch.nn.Module) -> int:
    """Number of parameters of `model`."""
    return sum(p.numel() for p in model.parameters())


def save_tiny_model(folder: str | os.PathLike, model: LlamaForCausalLM, tokenizer: FastTokenizer) -> Path:
    """Write `model` and `tokenizer` into `folder` for ``from_pretrained``; returns the folder."""
    folder = Path(folder)
    model.save_pretrained(folder)
    tokenizer.save(folder)
    return folder


@torch.no_grad()
def reference_greedy(
    model: LlamaForCausalLM, input_ids: list[int], max_new_tokens: int, stop_token_ids: tuple[int, ...] = ()
) -> list[int]:
    """Greedy continuation by full recomputation (no KV cache): the slowest, simplest reference.

    Each step runs the whole sequence through the model and takes the argmax of the last
    position's logits; it stops after emitting one of `stop_token_ids` (kept) or after
    `max_new_tokens` tokens.
    """
    ids = list(input_ids)
    out: list[int] = []
    for _ in range(max_new_tokens):
        logits = model(torch.tensor([ids])).logits[0, -1]
        token = int(torch.argmax(logits))
        out.append(token)
        ids.append(token)
        if token in stop_token_ids:
            break
    return out


@torch.no_grad()
def reference_logprobs(model: LlamaForCausalLM, input_ids: list[int], output_ids: list[int]) -> list[float]:
    """Log-probability of each of `output_ids` after `input_ids` under the raw model (temperature 1).

    One forward pass over prompt + output; position ``len(input_ids) - 1 + i`` predicts
    ``output_ids[i]``.
    """
    ids = torch.tensor([list(input_ids) + list(output_ids)])
    logits = model(ids).logits[0].float()
    logp = torch.log_softmax(logits, dim=-1)
    start = len(input_ids) - 1
    return [float(logp[start + i, t]) for i, t in enumerate(output_ids)]
