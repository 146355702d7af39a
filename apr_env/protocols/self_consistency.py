"""Self-consistency: the root forks N independent SoS+ searches and votes over their answers.

Grammar: the root's prompt is the SoS+ prompt ``Current State: {T}:{nums}, Operations: []``.
Its first action is an APR-style calling block whose N lines all name the root node,
``<Start Sub Search {i} at level 1> Moving to Node #0``. Each child gets the same SoS+
prompt and searches on its own (children differ only by their random stream). At join the
root receives every child's *claimed* answer, unverified, in the APR join layout; it writes
the majority answer (`vote`) as ``T,T equal: Goal Reached`` + path. The episode verifies
that final answer (cons@N) and records, per child, whether its claim verified (pass@N =
any child verified; `apr_env.metrics` counts them).

Example with N = 2::

    Current State: 24:[4, 6, 1, 1], Operations: []        <- root prompt
    <Calling Sub Searches>                                 <- root action 1
    <Start Sub Search 0 at level 1> Moving to Node #0
    <Start Sub Search 1 at level 1> Moving to Node #0
    <End Calling Sub Searches>
    ... each child: a SoS+ search from the same prompt ...
    <Sub Searches>                                         <- join (claims, unverified)
    <Goal Reached in Sub Search 0 at level 1 at Node #0>
    Moving to Node #0 ... 24,24 equal: Goal Reached
    <No Solution in Sub Search 1 at level 1 at Node #0>
    <End Sub Searches>
    24,24 equal: Goal Reached                               <- root action 2: the voted answer
    Moving to Node #0 ...

Siblings share nothing; critical path = root + slowest child.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

from apr_env import grammar as g
from apr_env.problem import Problem
from apr_env.protocols.apr import AprProtocol
from apr_env.protocols.base import ChildSpec, register
from apr_env.tree import ChildResult, SpawnGroup, Thread


def answer_key(path: str) -> tuple[str, ...]:
    """What makes two answer paths the same answer: their operations, in order."""
    found = (g.RE_EXPLORING.match(line.strip()) for line in path.split("\n"))
    return tuple(f"{m.group(1)}{m.group(2)}{m.group(3)}={m.group(4)}" for m in found if m)


def vote(claims: list[str | None]) -> str | None:
    """The majority claimed answer (ties: the earliest child), or None when nobody claims one."""
    keyed = [(answer_key(c), i, c) for i, c in enumerate(claims) if c]
    if not keyed:
        return None
    counts = Counter(k for k, _, _ in keyed)
    best = max(keyed, key=lambda item: (counts[item[0]], -item[1]))
    return best[2]


@register
class SelfConsistencyProtocol(AprProtocol):
    """cons@N / pass@N: N independent SoS+ children, majority vote at join.

    Args:
        n: the number of children the root is expected to request (informational for agents;
            the root may request any number within the limits).
    """

    name = "self_consistency"

    def __init__(self, n: int = 4):
        super().__init__()
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be an int >= 1, got {n!r}")
        self.n = n

    def root_prompt(self, problem: Problem) -> str:
        return g.state_line(problem.target, problem.numbers, [])

    def child_spec(self, thread: Thread, index: int, node_id: str, context: str, memo: dict) -> ChildSpec:
        if node_id != "0":
            return ChildSpec(label=node_id, error="self_consistency_children_start_at_root")
        prompt = g.state_line(thread.start.target, thread.start.numbers, [])
        return ChildSpec(label=node_id, prompt=prompt, start=thread.start)

    def join(
        self, parent: Thread, group: SpawnGroup, request_start: int, results: list[ChildResult]
    ) -> tuple[str, str]:
        claims = [replace(r, answer=r.claim) for r in results]  # claims, verified or not
        return super().join(parent, group, request_start, claims)

    def __repr__(self) -> str:
        return f"SelfConsistencyProtocol(n={self.n})"
