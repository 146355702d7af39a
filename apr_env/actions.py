"""Structured actions, for policies that prefer not to write protocol text themselves.

A plain `str` is always a valid action: the text the acting thread generates next. These
dataclasses (or the equivalent dicts) are rendered into the protocol's own text by the
episode, so token accounting is identical to a policy that wrote the text:

- `Text(text, token_ids=None, partial=False)`: generated text; `token_ids` are the exact ids
  an LLM sampled (then counts are exact and the text is not normalised); `partial=True`
  keeps the thread running after the text (streaming policies); otherwise the action is a
  whole segment: it ends at a spawn request or ends the thread.
- `Spawn(labels, text="")`: `text`, then a spawn request for children `labels` (APR: node ids).
- `Answer(answer, text="")`: `text`, then end the thread with `answer` (APR/SoS: an answer
  path from the thread's start node; None: no solution).
- `Join(text="")`: `text`, then end the thread and hand control back to its parent (its
  answer, if any, is whatever its text claims).

Dict forms: ``{"text": ..., "token_ids": [...], "partial": bool}``, ``{"spawn": [...], "text": ...}``,
``{"answer": ..., "text": ...}``, ``{"join": True, "text": ...}``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Text:
    text: str
    token_ids: tuple[int, ...] | None = None
    partial: bool = False
    meta: dict | None = None
    """Free-form data kept on the thread's call record (e.g. logprobs and timings from an LLM)."""


@dataclass(frozen=True)
class Spawn:
    labels: tuple[str, ...]
    text: str = ""


@dataclass(frozen=True)
class Answer:
    answer: str | None
    text: str = ""


@dataclass(frozen=True)
class Join:
    text: str = ""


Action = Text | Spawn | Answer | Join

_DICT_KEYS = {"text", "token_ids", "partial", "spawn", "answer", "join"}


def coerce_action(action) -> Action | str:
    """Turn a str, dict or action dataclass into an action; return an error code string if impossible.

    Never raises: the episode records the returned code as the thread's outcome.
    """
    if isinstance(action, str):
        return Text(action)
    if isinstance(action, (Text, Spawn, Answer, Join)):
        return action
    if isinstance(action, dict):
        if not set(action) <= _DICT_KEYS:
            return "invalid_action_keys"
        text = action.get("text", "")
        if not isinstance(text, str):
            return "invalid_action_text"
        if "spawn" in action:
            labels = action["spawn"]
            if isinstance(labels, str) or not all(isinstance(x, str) for x in labels or ()):
                return "invalid_spawn_labels"
            return Spawn(tuple(labels), text)
        if "answer" in action:
            answer = action["answer"]
            if answer is not None and not isinstance(answer, str):
                return "invalid_answer"
            return Answer(answer, text)
        if action.get("join"):
            return Join(text)
        ids = action.get("token_ids")
        if ids is not None:
            try:
                ids = tuple(int(i) for i in ids)
            except (TypeError, ValueError):
                return "invalid_token_ids"
        return Text(text, ids, bool(action.get("partial", False)))
    return "invalid_action_type"
