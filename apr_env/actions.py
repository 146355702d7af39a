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

_DICT_KEYS = {"text", "token_ids", "partial", "meta", "spawn", "answer", "join"}


_MAX_ID = 2**32


def _labels(labels) -> tuple[str, ...] | None:
    if isinstance(labels, (str, bytes)) or not isinstance(labels, (list, tuple)):
        return None
    return tuple(labels) if all(isinstance(x, str) for x in labels) else None


def _ids(ids) -> tuple[int, ...] | str | None:
    if ids is None:
        return None
    if isinstance(ids, (str, bytes)) or not isinstance(ids, (list, tuple)):
        return "invalid_token_ids"
    if not all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < _MAX_ID for i in ids):
        return "invalid_token_ids"
    return tuple(ids)


def coerce_action(action) -> Action | str:
    """Turn a str, dict or action dataclass into a checked action; an error code string if impossible.

    Never raises: the episode records the returned code as the thread's outcome. Checks
    field types (text is a str, labels a list of str, token ids ints in [0, 2**32)), and that
    token ids come with text (empty ids with text would add context no token accounts for).
    """
    if isinstance(action, str):
        return Text(action)
    if isinstance(action, dict):
        if not set(action) <= _DICT_KEYS:
            return "invalid_action_keys"
        text = action.get("text", "")
        if "spawn" in action:
            action = Spawn(action["spawn"], text)
        elif "answer" in action:
            action = Answer(action["answer"], text)
        elif action.get("join"):
            action = Join(text)
        else:
            action = Text(text, action.get("token_ids"), action.get("partial", False), action.get("meta"))
    if not isinstance(action, (Text, Spawn, Answer, Join)):
        return "invalid_action_type"
    if not isinstance(action.text, str):
        return "invalid_action_text"
    if isinstance(action, Spawn):
        labels = _labels(action.labels)
        return "invalid_spawn_labels" if labels is None else Spawn(labels, action.text)
    if isinstance(action, Answer):
        if action.answer is not None and not isinstance(action.answer, str):
            return "invalid_answer"
        return action
    if isinstance(action, Join):
        return action
    ids = _ids(action.token_ids)
    if isinstance(ids, str) or (ids is not None and not ids and action.text):
        return "invalid_token_ids"
    if action.meta is not None and not isinstance(action.meta, dict):
        return "invalid_action_meta"
    return Text(action.text, ids, bool(action.partial), action.meta)
