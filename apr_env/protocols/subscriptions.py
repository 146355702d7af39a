"""Subscriptions: siblings publish to a board, and each reads only the topics it subscribed to.

The paper's "subscription-based methods" future work: broadcast's board (every entry to
every running sibling) with a filter per reader. Grammar: as `broadcast` (APR calling and
join blocks, ``<Publish Dead End {T}:{nums}>`` and ``<Publish Goal Reached at Node #{id}>``
board lines), plus subscription lines in a child's own text, read from then on:

- ``<Subscribe Goal Reached>``: solutions;
- ``<Subscribe Dead Ends>``: every dead end;
- ``<Subscribe Dead Ends With {x}, {y}, ...>``: dead ends whose numbers include one of x, y,
  ... (a searcher at state [a, b, c] can only ever reach two-number states that keep one of
  a, b, c, so subscribing to its own numbers loses nothing it could use).

After a child's action contains board lines, every running sibling whose subscriptions match
at least one of them gets ``<Board>\\n{matching lines}\\n<End Board>\\n`` inserted into its
context (prefill, as broadcast); a sibling without subscriptions gets nothing. An unknown
topic is a recorded ``unknown_topic`` (the line subscribes to nothing).

Example: child 0 at [3, 5, 7] writes ``<Subscribe Goal Reached>`` and ``<Subscribe Dead Ends
With 3, 5, 7>``; child 1 publishes ``<Publish Dead End 24:[2, 9]>`` and ``<Publish Dead End 24:[5,
6]>``; child 0 receives only ``<Board>\\n<Publish Dead End 24:[5, 6]>\\n<End Board>\\n``.
"""

from __future__ import annotations

import re

from apr_env.protocols.base import Delivery, register
from apr_env.protocols.broadcast import BOARD, END_BOARD, RE_PUBLISH, BroadcastProtocol
from apr_env.tree import Status, Thread

SUBSCRIBE = "<Subscribe "
GOAL_TOPIC = "Goal Reached"
DEAD_TOPIC = "Dead Ends"
RE_SUBSCRIBE = re.compile(r"<Subscribe ([^<>\n]*)>", re.ASCII)
RE_WITH = re.compile(r"Dead Ends With (\d{1,9}(?:, \d{1,9}){0,15})", re.ASCII)
_RE_DEAD_NUMS = re.compile(r"<Publish Dead End \d+:\[([\d, ]*)\]>", re.ASCII)


def subscribe_line(topic: str) -> str:
    return f"{SUBSCRIBE}{topic}>"


def _valid(topic: str) -> bool:
    return topic in (GOAL_TOPIC, DEAD_TOPIC) or RE_WITH.fullmatch(topic) is not None


def subscriptions(thread: Thread) -> tuple[bool, bool, frozenset[int]]:
    """(goal, every dead end, dead ends with these numbers) from the subscription lines the thread wrote."""
    goal, dead, numbers = False, False, set()
    for call in thread.calls:
        if SUBSCRIBE not in call.completion:
            continue
        for topic in RE_SUBSCRIBE.findall(call.completion):
            if topic == GOAL_TOPIC:
                goal = True
            elif topic == DEAD_TOPIC:
                dead = True
            elif (m := RE_WITH.fullmatch(topic)) is not None:
                numbers.update(int(x) for x in m.group(1).split(", "))
    return goal, dead, frozenset(numbers)


def _matches(line: str, goal: bool, dead: bool, numbers: frozenset[int]) -> bool:
    m = _RE_DEAD_NUMS.fullmatch(line)
    if m is None:  # a goal line
        return goal
    if dead:
        return True
    return bool(numbers) and any(int(x) in numbers for x in m.group(1).split(",") if x.strip())


@register
class SubscriptionsProtocol(BroadcastProtocol):
    """APR fork-join plus a sibling board filtered by each reader's subscriptions."""

    name = "subscriptions"

    def deliver(
        self, thread: Thread, text: str, siblings: list[Thread], parent: Thread
    ) -> tuple[list[Delivery], list[str]]:
        errors = []
        if SUBSCRIBE in text:
            errors = ["unknown_topic" for t in RE_SUBSCRIBE.findall(text) if not _valid(t)]
        lines = RE_PUBLISH.findall(text) if "<Publish " in text else []
        if not lines:
            return [], errors
        deliveries = []
        for s in siblings:
            if s is thread or s.status is not Status.RUNNING:
                continue
            wanted = [line for line in lines if _matches(line, *subscriptions(s))]
            if wanted:
                deliveries.append(Delivery(s, BOARD + "\n" + "\n".join(wanted) + "\n" + END_BOARD + "\n"))
        return deliveries, errors

    def __repr__(self) -> str:
        return "SubscriptionsProtocol()"
