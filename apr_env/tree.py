"""The thread tree: who spawned whom, what each thread saw and generated, how it ended.

This is the single source of truth of an episode. Metrics (`apr_env.metrics`), rewards,
rendering and training data are all computed from it; the rules that grow it live in
`apr_env.episode`.

A thread is a sequence of *calls* (the official `main_calls`): each call has a prompt (the
thread's context when the call started) and the text generated in it. A thread's first call
starts from its prompt; after a join the protocol rewrites the context (APR drops the
calling block and appends the join block), and a new call starts from that text. Token
counts are filled lazily (`apr_env.metrics.count_tokens`), because counting on every step
would dominate the cost of an episode.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from apr_env.problem import Problem


class Status(str, enum.Enum):
    """Lifecycle of a thread. RUNNING threads act; WAITING ones wait for their children."""

    RUNNING = "running"
    WAITING = "waiting"
    FINISHED = "finished"
    FAILED = "failed"


@dataclass(slots=True)
class Call:
    """One model call of a thread."""

    prompt: str
    """Context at the start of the call (for a resumed parent: pre-spawn text + join block)."""
    inserted: str = ""
    """Runtime-inserted text at the end of `prompt` (the join block): prefilled, never generated."""
    kept: int | None = None
    """For a call after the first: how many characters of the previous call's context `prompt` starts
    with (the rest is `inserted`). Lets token counts build on the previous call's, as a runtime that
    keeps the thread's token ids does."""
    completion: str = ""
    """Text the policy generated in this call (with any line separators the environment put in front of
    its actions, see `separators`)."""
    separators: tuple[int, ...] = ()
    """Offsets in `completion` of the ``\n`` line separators the environment inserted before plain-text
    actions that did not start a line: runtime-inserted text, so counted as prefill, not generated."""
    completion_ids: list[int] | None = None
    """Token ids of `completion` when the policy supplied them (LLM runtimes); else counted by tokenizer."""
    meta: dict | None = None
    """Whatever the policy attached to its actions in this call (LLM: prompt ids, logprobs, timings)."""
    prompt_tokens: int | None = None
    inserted_tokens: int | None = None
    completion_tokens: int | None = None
    """Tokens of `completion`, separators included (what the call adds to the context)."""
    separator_tokens: int | None = None
    """Tokens of the `separators` (prefill)."""

    @property
    def context(self) -> str:
        return self.prompt + self.completion

    @property
    def generated_tokens(self) -> int:
        """Tokens the policy generated in this call: the completion less the separators (0 until counted)."""
        return (self.completion_tokens or 0) - (self.separator_tokens or 0)


@dataclass(slots=True)
class ChildResult:
    """What a finished thread hands back to its parent at join."""

    answer: str | None
    """The (verified) answer message, or None for 'no solution'."""
    claimed: bool
    """The thread claimed a solution (it may have failed verification)."""
    verified: bool
    reason: str
    """Verifier code or thread failure reason, e.g. 'ok', 'no_answer', 'context_window', 'wrong_arithmetic'."""
    claim: str | None = None
    """The answer the thread claimed, verified or not (protocols that vote over claims use it)."""


@dataclass(slots=True)
class SpawnGroup:
    """Children created by one spawn request, joined together."""

    parent: int
    call_index: int
    """Index of the parent call that ended with the spawn request."""
    children: list[int] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    """Per requested child (created or not), the protocol's label (APR: node id), in spawn order."""
    rejected: dict[int, str] = field(default_factory=dict)
    """Spawn-order position -> reason, for requested children that were not created."""
    joined: bool = False
    request_start: int = 0
    """Character offset in the parent's context where its spawn request begins (the join cuts there)."""
    open: int = 0
    """Children still running or waiting; the group joins when it reaches 0 (kept by the episode)."""
    quorum: int | None = None
    """Straggler control: join once this many children have ended (None: all of them)."""
    race: bool = False
    """Straggler control: join once a child's claimed answer verifies."""
    cancelled: list[int] = field(default_factory=list)
    """Children cancelled at an early join (their tokens so far count; the critical path ends at the join)."""


@dataclass(slots=True)
class Thread:
    """One reasoning thread."""

    id: int
    parent: int | None
    depth: int
    start: Problem
    """What the thread must solve: the root problem, or the child's start state (used to verify claims)."""
    label: str = ""
    """Protocol label, e.g. the APR node id '0,3' (root: '0')."""
    calls: list[Call] = field(default_factory=list)
    status: Status = Status.RUNNING
    reason: str | None = None
    """Why it ended: 'answer', 'no_answer', 'context_window', 'token_budget', ..."""
    groups: list[int] = field(default_factory=list)
    """Indices into the episode's spawn groups, in order."""
    result: ChildResult | None = None
    position: int = 0
    """Spawn-order position within its group (the APR sub search index i)."""

    @property
    def name(self) -> str:
        return f"t{self.id}"

    @property
    def context(self) -> str:
        return self.calls[-1].context

    @property
    def generated_tokens(self) -> int:
        """Tokens the thread generated over all its calls (counts not filled in yet count as 0)."""
        return sum([c.generated_tokens for c in self.calls])

    @property
    def active(self) -> bool:
        return self.status in (Status.RUNNING, Status.WAITING)


def compact_tree(threads: list[Thread], groups: list[SpawnGroup]) -> list[dict]:
    """A JSON-friendly summary: one dict per thread (ids, label, status, reason, tokens, children)."""
    out = []
    for t in threads:
        children = [c for g in t.groups for c in groups[g].children] if t.groups else []
        out.append(
            {
                "id": t.id,
                "parent": t.parent,
                "depth": t.depth,
                "label": t.label,
                "status": t.status.value,
                "reason": t.reason,
                "calls": len(t.calls),
                "generated_tokens": t.generated_tokens,
                "children": children,
                "answer_verified": None if t.result is None else t.result.verified,
            }
        )
    return out
