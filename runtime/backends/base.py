"""The one interface every inference backend implements: requests in, results out.

A request is a list of token ids plus sampling settings; a result is the generated token
ids with text, per-token logprobs, why generation stopped, and token/timing accounting.
Token ids go end to end: nobody re-tokenizes sampled text (reference flaws 21, 22).

Backends are asynchronous: `submit` returns a `concurrent.futures.Future` at once and the
backend batches whatever is in flight (continuous batching). `generate` is the blocking
convenience built on it. The runner (`runtime/runner.py`) only uses `submit`.

KV reuse hints (`cache_key`, `fork_from`) are optional: an in-process backend uses them to
keep a thread's own KV across a join and to copy a parent's KV into a child; HTTP backends
ignore them (SGLang's radix cache finds shared prefixes by itself).
"""

from __future__ import annotations

import abc
import itertools
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

_ids = itertools.count()


@dataclass(frozen=True)
class SamplingParams:
    """How to sample one request. Field names follow SGLang's `sampling_params`."""

    max_new_tokens: int = 256
    """Upper bound on generated tokens (the caller computes it from the context window left)."""
    temperature: float = 0.0
    """0 means greedy."""
    top_p: float = 1.0
    """Nucleus sampling mass; 1.0 disables it."""
    top_k: int = -1
    """Keep the k most likely tokens; -1 disables it."""
    stop_token_ids: tuple[int, ...] = ()
    """Generation ends after emitting one of these (the id is kept in `output_ids`)."""
    stop: tuple[str, ...] = ()
    """Generation ends when the decoded output ends with one of these strings (kept in the output)."""
    seed: int | None = None
    """Per-request sampling seed: same seed, same request -> same tokens (in-process backend)."""

    def __post_init__(self) -> None:
        if self.max_new_tokens < 0:
            raise ValueError(f"max_new_tokens must be >= 0, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")


@dataclass
class GenerationRequest:
    """One generation call: a prompt as token ids and how to continue it."""

    input_ids: list[int]
    sampling: SamplingParams = field(default_factory=SamplingParams)
    return_logprob: bool = False
    """Return the log-probability of each generated token under the sampling distribution's model."""
    cache_key: str | None = None
    """Name of the sequence this request continues (e.g. ``"ep3/t0"``); lets a backend keep its KV."""
    fork_from: str | None = None
    """Name of a cached sequence whose KV may be copied for the shared prefix (a child forking its parent)."""
    forced_output_ids: list[int] | None = None
    """Teacher forcing: emit these tokens instead of sampling (every step still runs the model, and
    logprobs score them). For scoring given completions and for timing benchmarks with scripted text;
    only the in-process backend supports it (HTTP backends reject it)."""
    top_logprobs_num: int = 0
    """Also return, per generated token, the `top_logprobs_num` most likely ids with their logprobs
    (in-process backend; HTTP backends ignore it)."""
    on_token: Callable[[int], None] | None = field(default=None, repr=False, compare=False)
    """Streaming: called with each generated id as soon as it is chosen, from the backend's worker
    thread (must be quick and must not raise). Backends that cannot stream never call it."""
    request_id: str = field(default_factory=lambda: f"req-{next(_ids)}")


@dataclass
class GenerationResult:
    """What a backend returns for one request."""

    request_id: str
    output_ids: list[int]
    text: str
    """Decoded `output_ids` (special tokens kept, so it round-trips with the tokenizer)."""
    finish_reason: str
    """One of `FINISH_REASONS`: 'stop', 'length', 'abort' or 'repetition'."""
    matched_stop: int | str | None = None
    logprobs: list[float] | None = None
    prompt_tokens: int = 0
    cached_tokens: int = 0
    """Prompt tokens whose KV was reused rather than prefilled. HTTP backends read what the server
    reports, and servers report it only when asked: vLLM with ``--enable-prompt-tokens-details``,
    SGLang with ``--enable-cache-report``; otherwise it is 0 (not reported, not "no reuse")."""
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds: 'queue', 'prefill', 'decode', 'total' where the backend knows them."""
    top_logprobs: list[list[tuple[int, float]]] | None = None
    """Per generated token, (id, logprob) of the `top_logprobs_num` most likely ids, most likely first."""

    @property
    def completion_tokens(self) -> int:
        return len(self.output_ids)


FINISH_REASONS = frozenset({"stop", "length", "abort", "repetition"})
"""The values of `GenerationResult.finish_reason`, after vLLM's ``FinishReason`` (v1 engine):

- ``stop``: a stop token or string was emitted (`matched_stop` says which; None for EOS);
- ``length``: ``max_new_tokens`` was used up, or the server's context length was reached;
- ``abort``: the request was aborted (its client went away, or `Backend.abort`);
- ``repetition``: vLLM's repetition detection cut a looping generation short. The thread ends
  like a stop without a stop token: its text so far is its action (no forced spawn, no EOS).

vLLM's fifth value, ``error`` (a request-level internal failure), is never a result: a backend
raises `BackendError` for that request instead. A null finish reason only occurs in streamed
chunks before the last one; a finished response without one is malformed.
"""


def is_int_list(value: Any) -> bool:
    """A JSON list of ints (bools excluded): what a token-id field must be."""
    return isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)


class Backend(abc.ABC):
    """Base class of inference backends."""

    context_length: int = 4096
    """Tokens per sequence (prompt + output) the model accepts."""

    @abc.abstractmethod
    def submit(self, request: GenerationRequest) -> Future[GenerationResult]:
        """Queue `request`; the future resolves to its result or raises a `BackendError`."""

    def generate(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        """Blocking helper: submit all, wait for all, results in request order."""
        futures = [self.submit(r) for r in requests]
        return [f.result() for f in futures]

    def release(self, cache_key: str) -> None:  # noqa: B027 - optional hook, default no-op
        """Tell the backend a cached sequence will not be continued (frees its KV)."""

    def abort(self, request_id: str) -> None:  # noqa: B027 - optional hook, default no-op
        """Stop generating `request_id` (its client went away); its future ends with finish 'abort'."""

    def flush_cache(self) -> None:  # noqa: B027 - optional hook, default no-op
        """Drop every cached prefix (call after changing the model's weights)."""

    def close(self) -> None:  # noqa: B027 - optional hook, default no-op
        """Stop worker threads and free resources."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class BackendError(RuntimeError):
    """A backend could not produce a result; the message names the backend, URL/status where known."""


class ContextLengthError(BackendError):
    """The server refused a request because prompt + output would not fit its context length.

    Not a failure of the run: the runner ends that thread as cut off by its window (a
    recorded, truncated outcome) and carries on with the others.
    """
