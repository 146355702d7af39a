"""The `Protocol` interface: how threads talk to each other, as text.

A protocol fixes four things, and nothing else:

1. the root prompt (and optional condition prefix);
2. the spawn grammar: whether the text a thread just generated asks for children, and what
   each child's prompt and start state are;
3. the join: what text the parent's context becomes once all children of a spawn are done;
4. answer extraction: which part of a finished thread's text is its answer.

Everything generic (limits, verification of child claims, scheduling, token accounting,
metrics, rewards) lives in `apr_env.episode`, so a new protocol is one small class.
Register it with `@register` and it is available by name in every environment.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import ClassVar

from apr_env.problem import Problem
from apr_env.tree import ChildResult, SpawnGroup, Status, Thread


@dataclass
class ChildSpec:
    """One requested child: its prompt and start state, or why it cannot be created."""

    label: str
    prompt: str = ""
    start: Problem | None = None
    error: str | None = None
    """Set when the request is invalid (e.g. 'unknown_node'); the child then joins as 'no solution'."""


@dataclass
class SpawnRequest:
    """A parsed spawn: the children in spawn order and where the request starts in the context."""

    children: list[ChildSpec]
    request_start: int
    """Character offset in the thread's context where the spawn request (APR: calling block) begins."""
    format_errors: list[str] = field(default_factory=list)
    quorum: int | None = None
    """Straggler control: join as soon as this many children have ended (the rest are cancelled);
    None waits for all of them."""
    race: bool = False
    """Straggler control: join as soon as one child's claimed answer verifies (the rest are cancelled)."""


@dataclass
class Delivery:
    """Text for one recipient thread (inserted into its context, counted as prefill)."""

    recipient: Thread
    text: str


class Protocol(abc.ABC):
    """Base class of communication protocols. Subclasses set `name` and implement the abstract methods."""

    name: ClassVar[str] = ""

    @abc.abstractmethod
    def root_prompt(self, problem: Problem) -> str:
        """The root thread's prompt (condition prefix included, no trailing newline)."""

    @abc.abstractmethod
    def parse_spawn(self, thread: Thread) -> SpawnRequest | None:
        """Whether the thread's latest completion ends with a spawn request; None if not."""

    @abc.abstractmethod
    def join(
        self, parent: Thread, group: SpawnGroup, request_start: int, results: list[ChildResult]
    ) -> tuple[str, str]:
        """The parent's new context after a join, as (kept text, inserted join text)."""

    @abc.abstractmethod
    def extract_answer(self, thread: Thread) -> str | None:
        """The answer a finished thread claims (for the root: the episode's answer), or None."""

    def render_spawn(self, thread: Thread, labels: list[str]) -> str | None:
        """Text of a spawn request for a structured `Spawn` action; None (the default) when the
        protocol cannot spawn: the episode then fails the thread with 'spawn_not_supported'."""
        return None

    def render_answer(self, thread: Thread, answer: str | None) -> str | None:
        """Text that ends a thread with `answer` (None: no solution), for a structured `Answer` action;
        None (the default) when the protocol has no answer grammar ('answer_not_supported')."""
        return None

    def board_update(self, thread: Thread, text: str) -> str | None:
        """Text to insert into the running siblings' contexts after `thread` generated `text`.

        Default None: siblings share nothing (APR). The broadcast protocol returns its board
        messages; the episode counts them as inserted (prefilled) context.
        """
        return None

    def deliver(
        self, thread: Thread, text: str, siblings: list[Thread], parent: Thread
    ) -> tuple[list[Delivery], list[str]]:
        """What `thread` (a child) sends to other threads after generating `text`: deliveries and
        error codes (recorded, never raised).

        `siblings` are the threads of the sender's spawn group in spawn order (the sender
        included); `parent` is the thread that spawned them. The episode inserts each delivery into
        a running recipient's context at once, holds it for a waiting one until that thread resumes,
        and records a delivery to an ended thread as a no-op in `Episode.undelivered`. The
        default sends `board_update`'s text to every running sibling (the broadcast board).
        """
        block = self.board_update(thread, text)
        if not block:
            return [], []
        return [Delivery(s, block) for s in siblings if s is not thread and s.status is Status.RUNNING], []

    def child_problem(self, thread: Thread) -> Problem:
        """The problem a thread's answer is verified against (default: its start state)."""
        return thread.start

    def separate(self, tail: str, text: str) -> str:
        """Line discipline: text that does not start a new line after a context that does not end one
        gets a ``\\n`` in front, so actions can be given as whole lines. Token-id actions are never changed.

        `tail` is the last character of the thread's context ('' when the context is empty): the
        episode passes only that, so it never builds a long context just to look at its end.
        """
        if text and tail and text[0] != "\n" and tail[-1] != "\n":
            return "\n" + text
        return text

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


PROTOCOLS: dict[str, type[Protocol]] = {}


def register(cls: type[Protocol]) -> type[Protocol]:
    """Class decorator: make a protocol available by its `name`."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} must set a non-empty `name` to be registered")
    PROTOCOLS[cls.name] = cls
    return cls


def get_protocol(spec: str | Protocol, **kwargs) -> Protocol:
    """A protocol instance from a registered name (with constructor kwargs) or an instance (returned as is)."""
    if isinstance(spec, Protocol):
        if kwargs:
            raise TypeError("protocol kwargs are only accepted with a protocol name, not an instance")
        return spec
    if not isinstance(spec, str) or spec not in PROTOCOLS:
        from apr_env.errors import UnknownNameError

        raise UnknownNameError("protocol", str(spec), list(PROTOCOLS))
    return PROTOCOLS[spec](**kwargs)
