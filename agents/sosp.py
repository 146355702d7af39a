"""The symbolic SoS+ solver: one serial thread, hybrid best-first search with dives (section 2.5).

`SospSearch` writes the trace text that follows the SoS+ prompt; `sosp_trace` is the
one-problem convenience with the official record layout (section 2.10). The search itself
(expansion, beam pops, heuristic, coin draws) is `agents.search`; this module only adds the
*dive* branch handler: on a promising node (coin ``rng.random() < 0.5`` after each expansion
that left something to explore, at any level) each of its ``nodes_to_explore`` in h order
gets a nested search in the same thread, wrapped as::

    Start Sub Search at level {l}: Moving to Node #{id}
    Current State: ...          (the nested search; its own dives are level l + 1)
    ...
    No solution found.
    Exit Sub Search at level {l}
    No solution found in sub search

Dive-explored nodes never go back on the outer heap. A goal found anywhere stops the whole
search with the goal line and the answer path from the root ``#0``.

Official flaw 5 (a goal found inside a dive is followed by one ``Exit Sub Search at level l``
line per open dive, so the trace does not end on its answer) is fixed by default:
``end_on_answer=True`` ends the trace on the answer's goal line. ``end_on_answer=False``
writes the official lines (used to replay the golden traces byte for byte).

Text layout: the prompt is ``Current State: {T}:{nums}, Operations: []`` (no trailing
newline, no leading ``Moving to Node #0``). `SospSearch.run` returns the rest: it starts
with ``"\\n"`` (the end of the prompt line) and every line ends with ``"\\n"``, so
``prompt + run()`` is the official ``search_path`` string exactly.
"""

from __future__ import annotations

from agents import lines, seeding
from agents.search import BranchRule, SearchContext, best_first, rating, run_to_end, start_node
from apr_env import grammar
from apr_env.problem import Problem

PROMISING = 0.5
"""Official chance that an expanded SoS+ node dives (`sosp` default; the paper says otherwise)."""
MAX_BEAM = 5
"""Official beam sizes are uniform in 1..5 (``--max_beam_size 5``)."""


def dive(ctx: SearchContext, node, explore: list, level: int):
    """SoS+ branch handler: a nested search from each node to explore, in h order."""
    lines = ctx.lines
    sub = level + 1
    for child in explore:
        lines.append(grammar.sos_start_sub_line(sub, child.id))
        if (yield from best_first(ctx, child, sub)):
            if not ctx.end_on_answer:
                lines.append(grammar.sos_exit_sub_line(sub))
            return True
        lines.append(grammar.sos_exit_sub_line(sub))
        lines.append(grammar.SOS_NO_SOLUTION_IN_SUB)
    return False


def root_key(problem: Problem, seed: int) -> str:
    """The stream key of a SoS+ problem's thread."""
    return seeding.problem_key("sosp", seed, problem.target, problem.numbers)


class SospSearch:
    """One SoS+ search: the text a symbolic policy writes after the SoS+ prompt.

    Args:
        problem: the numbers and target.
        beam_size: nodes popped per iteration and children kept per expansion (>= 1).
        seed: seeds the thread's stream from (seed, problem) (`agents.seeding`); or give `rng`.
        rng: an object with ``random()`` and ``shuffle(list)``; overrides `seed`.
        promising: the dive coin's probability.
        end_on_answer: end the trace on the answer (flaw 5 fixed; default) or write the
            official ``Exit Sub Search`` lines after it.

    Attributes:
        prompt: ``Current State: {T}:{nums}, Operations: []``.
        solved: after `run`, whether the search reached the target.
    """

    def __init__(
        self,
        problem: Problem,
        beam_size: int,
        seed: int | None = None,
        *,
        rng=None,
        promising: float = PROMISING,
        end_on_answer: bool = True,
    ):
        if rng is None:
            if seed is None:
                raise TypeError("SospSearch needs a seed (int) or an rng")
            rng = seeding.make_rng(root_key(problem, seed))
        rule = BranchRule(promising, dive)
        self.problem = problem
        self._ctx = SearchContext(problem.target, beam_size, rng, rule, end_on_answer=end_on_answer)
        start = self._start = start_node("0", problem.target, problem.numbers)
        self.prompt = lines.state(self._ctx.target_text, start.nums_text, start.ops_text)
        self.solved: bool | None = None

    def run(self) -> str:
        """Search to the end and return the text after the prompt (starts and ends with ``"\\n"``)."""
        if self.solved is not None:
            raise RuntimeError("SospSearch.run() was already called; make a new SospSearch")
        lines = self._ctx.lines
        self.solved = run_to_end(best_first(self._ctx, self._start, 0))
        return "\n" + "\n".join(lines[1:]) + "\n"  # lines[0] is the prompt's state line


def sosp_beam_size(problem: Problem, seed: int, beam_size: int | None = None) -> int:
    """The problem's beam as `sosp_trace` uses it: None is drawn uniformly from 1..5 (official).

    Drawn from the problem's settings bits (`agents.seeding.settings_bits`), apart from the
    search stream, so fixing it by hand leaves every other decision as is.
    """
    if beam_size is None:
        beam_size = 1 + seeding.settings_bits(root_key(problem, seed)) % MAX_BEAM
    return beam_size


def sosp_trace(
    problem: Problem,
    *,
    seed: int,
    beam_size: int | None = None,
    promising: float = PROMISING,
    end_on_answer: bool = True,
) -> dict:
    """One problem's SoS+ record in the official layout (section 2.10), plus ``solved`` and ``seed``.

    Args:
        problem: the numbers and target.
        seed: fixes every random decision for this problem (beam size and search).
        beam_size: None draws it uniformly from 1..5 (the official setting) from the
            problem's settings stream; an int fixes it (same search stream either way).
        promising: the dive coin's probability.
        end_on_answer: see `SospSearch`.

    Returns:
        ``{"nums", "target", "search_path", "rating", "search_type", "heuristic",
        "beam_size", "promising_threshold", "solved", "seed"}``; ``search_path`` is the whole
        text (prompt included) as the official file stores it.
    """
    beam_size = sosp_beam_size(problem, seed, beam_size)
    search = SospSearch(problem, beam_size, seed, promising=promising, end_on_answer=end_on_answer)
    text = search.prompt + search.run()
    return {
        "nums": list(problem.numbers),
        "target": problem.target,
        "search_path": text,
        "rating": rating(text, clamp=True),
        "search_type": f"sosp_{beam_size}",
        "heuristic": "mult_heuristic",
        "beam_size": beam_size,
        "promising_threshold": promising,
        "solved": search.solved,
        "seed": seed,
    }
