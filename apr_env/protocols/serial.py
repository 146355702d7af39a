"""The serial SoS+ protocol: one thread searches alone; no spawn, no join.

Grammar (reference sections 2.5, 2.7, 4.2): prompt
``[Token Budget: {b} ]Current State: {T}:{nums}, Operations: []``; the thread writes a
stream-of-search trace (its own ``Start Sub Search at level l`` dives are plain text, not
threads) and ends with ``T,T equal: Goal Reached`` + the answer path from ``Moving to Node #0``,
or ``No solution found.``. The answer is the path between the last two full goal lines.
"""

from __future__ import annotations

from apr_env import grammar as g
from apr_env.problem import Problem
from apr_env.protocols.base import Protocol, SpawnRequest, register
from apr_env.tree import ChildResult, SpawnGroup, Thread


@register
class SerialProtocol(Protocol):
    """SoS+: a single thread; every action ends the thread (there is nothing to wait for).

    Args:
        token_budget: if set, the prompt starts with ``Token Budget: {b} `` (the official
            values are multiples of 512 up to 4096; see `apr_env.grammar.token_budget_bin`).
    """

    name = "serial"

    def __init__(self, token_budget: int | None = None):
        if token_budget is not None and (not isinstance(token_budget, int) or token_budget < 0):
            raise ValueError(f"token_budget must be None or an int >= 0, got {token_budget!r}")
        self.token_budget = token_budget

    def root_prompt(self, problem: Problem) -> str:
        prefix = "" if self.token_budget is None else g.token_budget_prefix(self.token_budget)
        return f"{prefix}{g.state_line(problem.target, problem.numbers, [])}"

    def parse_spawn(self, thread: Thread) -> SpawnRequest | None:
        return None

    def join(
        self, parent: Thread, group: SpawnGroup, request_start: int, results: list[ChildResult]
    ) -> tuple[str, str]:
        raise RuntimeError("the serial protocol never spawns, so it never joins")

    def extract_answer(self, thread: Thread) -> str | None:
        return g.extract_answer_path(thread.context)

    def render_answer(self, thread: Thread, answer: str | None) -> str:
        return g.answer_text(thread.start.target, answer)

    def __repr__(self) -> str:
        return f"SerialProtocol(token_budget={self.token_budget})"
