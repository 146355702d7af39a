"""Any-to-any messaging: a child addresses a short message to a named sibling or to its parent.

The paper's "any-to-any messaging" future work, point to point (broadcast is the one-to-all
board). Grammar: as `apr` (calling and join blocks, verified answers at join), plus:

- names: a child's prompt starts with ``<Sub Search {i} of {n}>`` (its position in the
  spawn and the number of children requested), then the APR node lines. Its siblings are
  ``Sub Search {j}``, its parent is ``Parent``;
- sending: a line of the child's own text, ``<Message To Sub Search {j}: {body}>`` or
  ``<Message To Parent: {body}>``, where the body is 1 to `max_chars` characters without
  ``<``, ``>`` or a newline;
- receiving: the recipient's context gains ``<Message From Sub Search {i}: {body}>\\n`` (i:
  the sender's position) before its next step, counted as prefill (like the board). A
  running sibling gets it at once; the parent, which waits while its children run, gets
  every message sent to it after its join block when it resumes.

Bounds, each a recorded no-op (a format error naming it), never an exception: a thread sends
at most `max_messages` messages (``message_budget_exhausted`` for the rest); a longer body is
dropped (``message_too_long``); a message to a position that is not a created sibling, or to
oneself, is ``message_to_unknown_thread``; one to a sibling that has ended (answered, failed
or cancelled) is counted in `Episode.undelivered` (the summary's ``undelivered``), not as a
format error: the sender cannot see that race. The root has neither siblings nor a parent:
its message lines are plain text.

Example: child 1 of 3 reaches the goal and writes ``<Message To Sub Search 0: Goal Reached>``
and ``<Message To Sub Search 2: Goal Reached>``; children 0 and 2, still searching, see
``<Message From Sub Search 1: Goal Reached>`` and can stop early.
"""

from __future__ import annotations

import re

from apr_env.protocols.apr import AprProtocol
from apr_env.protocols.base import Delivery, SpawnRequest, register
from apr_env.tree import Thread

SEND = "<Message To "
RE_MESSAGE = re.compile(r"<Message To (?:Parent|Sub Search (\d{1,6})): ([^<>\n]*)>", re.ASCII)
RE_RECEIVED = re.compile(r"<Message From Sub Search (\d+): ([^<>\n]*)>", re.ASCII)


def name_line(index: int, n: int) -> str:
    return f"<Sub Search {index} of {n}>"


def message_line(body: str, to: int | None = None) -> str:
    """A message to sibling `to` (None: to the parent)."""
    return f"{SEND}{'Parent' if to is None else f'Sub Search {to}'}: {body}>"


def received(context: str) -> list[tuple[int, str]]:
    """(sender position, body) of every message received in `context`, in order."""
    return [(int(i), body) for i, body in RE_RECEIVED.findall(context)]


@register
class MessagingProtocol(AprProtocol):
    """APR fork-join plus bounded point-to-point messages between siblings and to the parent.

    Args:
        max_messages: messages one thread may send over its life.
        max_chars: longest message body, in characters.
    """

    name = "messaging"

    def __init__(self, max_messages: int = 16, max_chars: int = 100):
        super().__init__()
        for key, value in (("max_messages", max_messages), ("max_chars", max_chars)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{key} must be an int >= 1, got {value!r}")
        self.max_messages = max_messages
        self.max_chars = max_chars

    def parse_spawn(self, thread: Thread) -> SpawnRequest | None:
        request = super().parse_spawn(thread)
        if request is not None:
            n = len(request.children)
            for i, child in enumerate(request.children):
                if child.error is None:
                    child.prompt = f"{name_line(i, n)}\n{child.prompt}"
        return request

    def deliver(
        self, thread: Thread, text: str, siblings: list[Thread], parent: Thread
    ) -> tuple[list[Delivery], list[str]]:
        if SEND not in text:
            return [], []
        found = RE_MESSAGE.findall(text)
        if not found:
            return [], []
        sent_before = sum(len(RE_MESSAGE.findall(c.completion)) for c in thread.calls) - len(found)
        by_position = {s.position: s for s in siblings}
        deliveries, errors = [], []
        for to, body in found:
            if sent_before >= self.max_messages:
                errors.append("message_budget_exhausted")
                continue
            sent_before += 1
            if not body or len(body) > self.max_chars:
                errors.append("message_too_long" if body else "empty_message")
                continue
            recipient = parent if to == "" else by_position.get(int(to))
            if recipient is None or recipient is thread:
                errors.append("message_to_unknown_thread")
                continue
            deliveries.append(Delivery(recipient, f"<Message From Sub Search {thread.position}: {body}>\n"))
        return deliveries, errors

    def __repr__(self) -> str:
        return f"MessagingProtocol(max_messages={self.max_messages}, max_chars={self.max_chars})"
