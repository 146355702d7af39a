"""Text of generated token ids for the in-process backend: decoding, and stop strings on a tail.

`make_decode` adapts any tokenizer-like object (``decode(ids)``) to decode with special
tokens kept and no clean-up, so the text round-trips with the tokenizer; `matched_stop_string`
checks whether a growing output ends with a stop string by decoding only its last tokens,
so the check per generated token costs the same at token 10 and at token 4,000.

What this module leaves to others: when to check (the backend, after each token) and tokenizing
prompts (callers send ids).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any


def make_decode(tokenizer: Any) -> Callable[[list[int]], str]:
    """``ids -> text`` with special tokens kept and no clean-up, for any object with ``decode(ids)``."""
    if tokenizer is None:
        return lambda ids: ""
    params = inspect.signature(tokenizer.decode).parameters
    any_kw = any(p.kind is p.VAR_KEYWORD for p in params.values())
    kwargs = {
        k: False for k in ("skip_special_tokens", "clean_up_tokenization_spaces") if k in params or any_kw
    }
    return lambda ids: tokenizer.decode(list(ids), **kwargs)


def matched_stop_string(
    output: list[int], stops: tuple[str, ...], decode: Callable[[list[int]], str]
) -> str | None:
    """The stop string the decoded `output` ends with, or None; decodes only a tail of the tokens.

    The tail is widened until its text is a few characters longer than the longest stop
    string, so artefacts at the cut (a split multi-byte character, a stripped leading space)
    cannot reach the characters compared.
    """
    need = max(len(s) for s in stops) + 4
    width = need
    while True:
        text = decode(output[-width:])
        if len(text) >= need or width >= len(output):
            break
        width *= 2
    for stop in stops:
        if text.endswith(stop):
            return stop
    return None
