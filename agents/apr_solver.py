"""The symbolic APR solver, thread by thread (reference sections 2.6, 2.8, 3.3-3.7).

Two thread kinds, each a resumable writer of exactly the text the official solver writes:

- `AprRootSearch` (level 0): best-first search with beam ``beam_size``; after each expansion
  that left more than one node to explore it draws ``rng.random() < 0.9`` and on True
  *spawns* one child per node to explore (h order) with the calling block, then waits. Its
  `resume` takes each child's answer path (or None); if any child succeeded it writes the
  goal line and the full root path through the FIRST successful child and ends, otherwise
  it goes on with its outer loop (spawned nodes are not pushed back).
- `ChildSearch` (level 1): a pure best-first search with beam ``sub_beam_size`` from its
  start node; it never spawns. Its answer path starts at its own start node.

The environment owns spawn and join: it gets the spawn requests from a root segment, runs
the children (any order, any process: a child's random stream depends only on the root's
key and its node id, `agents.seeding`), inserts the join block (`join_block`) and hands the
answers back through `AprRootSearch.resume`. `run_apr_tree` does that in-process and
`apr_trace` builds the official record (section 2.10) on top; there is one implementation.

Text layout (how prompts, segments and join blocks concatenate):

- Prompts have no trailing newline: root ``Moving to Node #0\\nCurrent State: {T}:{nums},
  Operations: []``; child ``Moving to Node #{id}\\nCurrent State: {T}:{nums}, Operations:
  {ops}`` (`SpawnRequest.prompt`).
- Every line the solver writes ends with ``"\\n"``. A thread's first segment therefore starts
  with ``"\\n"`` (ending the prompt's last line); a segment after a join starts directly with
  its first line, because the join block ends with ``"\\n"``. Every segment ends with ``"\\n"``;
  a spawning segment ends with ``<End Calling Sub Searches>\\n``.
- Parent segment k+1 = (segment-k text up to, not including, its last ``<Calling Sub
  Searches>\\n``) + join block + the next segment. With these rules ``prompt + segments``
  reproduces the golden ``main_calls`` / ``sub_calls`` strings byte for byte. (The official
  runtime strips one trailing newline from a model's output; that is the environment's
  concern, not the solver's.)

The module is a little over 400 lines: the two thread kinds, the join block and the
in-process driver all implement the one text-layout contract above, so they stay together.

Official flaw 4 (after a failed spawn the spawn loop's index shadows the beam loop's, so the
next ``Moving to Node`` line names the wrong node or is missing) is fixed: we always write the
node popped next. ``replicate_flaw4=True`` reproduces the official lines, for replay tests.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from agents import lines, seeding
from agents.search import (
    BranchRule,
    Node,
    SearchContext,
    best_first,
    ops_text_of,
    path_lines,
    rating,
    run_to_end,
    start_node,
)
from apr_env import grammar
from apr_env.problem import Problem

PROMISING = 0.9
"""Official chance that an eligible parent node spawns (code value; the paper says 10%)."""
MAX_BEAM = 10
"""Official parent beam sizes are uniform in 1..10."""
MAX_SUB_BEAM = 15
"""Official child beam sizes are uniform in beam_size..15."""
LEVEL = 1
"""Children are level 1; the official join text hard-codes it."""


class SpawnRequest(NamedTuple):
    """One child thread the root asks for: where it starts and how it searches."""

    index: int
    """Position in the spawn (h order), the ``i`` of ``<Start Sub Search {i} at level 1>``."""
    node_id: str
    """The start node's id, e.g. ``"0,3"``."""
    target: int
    """The problem's target."""
    nums: tuple[int, ...]
    """The start node's numbers, in printed order."""
    ops: tuple[str, ...]
    """Operations from the root to the start node."""
    beam_size: int
    """The child's beam (the problem's ``sub_call_beam_size``)."""
    seed_key: str | None
    """The child's random-stream key (`agents.seeding.child_key`); None when the root got a bare rng."""

    @property
    def prompt(self) -> str:
        """The child's prompt (section 3.4): its node line and state line, no trailing newline."""
        return grammar.moving_line(self.node_id) + "\n" + grammar.state_line(self.target, self.nums, self.ops)


@dataclass(frozen=True)
class Segment:
    """What a thread wrote in one turn."""

    text: str
    """The text (see the module docstring for how segments concatenate)."""
    spawns: tuple[SpawnRequest, ...]
    """The children requested by the calling block the text ends with; empty otherwise."""
    finished: bool
    """The thread ended (goal reached or ``No solution found.``)."""
    solved: bool
    """The thread ended on the goal."""


def _ops_from_root(node) -> tuple[str, ...]:
    ops = []
    while node.parent is not None:
        ops.append(node.op)
        node = node.parent
    return tuple(reversed(ops))


class AprRootSearch:
    """The APR parent thread as a resumable writer: `next_segment`, then `resume` after a spawn.

    Args:
        problem: the numbers and target.
        beam_size: parent beam (>= 1).
        sub_beam_size: children's beam (>= 1), passed on in the spawn requests.
        seed: seeds the root stream from (seed, problem); children's keys derive from it.
        rng: an object with ``random()`` and ``shuffle(list)``; overrides `seed` for the
            root (children then get keys only if `seed` is also given).
        promising: the spawn coin's probability.
        replicate_flaw4: write the official (wrong) ``Moving to Node`` lines after a failed
            spawn; for byte-compatibility replays only.

    Attributes:
        prompt: ``Moving to Node #0\\nCurrent State: {T}:{nums}, Operations: []``.
        seed_key: the root stream's key (None without `seed`).
        finished, solved: the thread's state.
    """

    def __init__(
        self,
        problem: Problem,
        *,
        beam_size: int,
        sub_beam_size: int,
        seed: int | None = None,
        rng=None,
        promising: float = PROMISING,
        replicate_flaw4: bool = False,
    ):
        if isinstance(sub_beam_size, bool) or not isinstance(sub_beam_size, int) or sub_beam_size < 1:
            raise ValueError(f"sub_beam_size must be an int >= 1, got {sub_beam_size!r}")
        self.problem = problem
        self.sub_beam_size = sub_beam_size
        self.seed_key = None if seed is None else root_key(problem, seed)
        if rng is None:
            if self.seed_key is None:
                raise TypeError("AprRootSearch needs a seed (int) or an rng")
            rng = seeding.make_rng(self.seed_key)
        rule = BranchRule(promising, self._spawn, min_children=2, max_level=0)
        self._ctx = SearchContext(problem.target, beam_size, rng, rule, flaw4=replicate_flaw4)
        start = start_node("0", problem.target, problem.numbers)
        self._gen = best_first(self._ctx, start, 0, lead_moving=True)
        self.prompt = lines.node_prompt("0", self._ctx.target_text, start.nums_text, start.ops_text)
        self._written = 2  # lines already handed out; the first two are the prompt
        self._pending: tuple[SpawnRequest, ...] = ()
        self._spawned: list = []  # the nodes of the pending requests, in request order
        self._answers = None
        self.finished = False
        self.solved = False

    @property
    def waiting(self) -> bool:
        """True between a spawning segment and `resume`."""
        return bool(self._pending)

    def next_segment(self) -> Segment:
        """Write on until the next spawn (calling block included) or the end of the thread.

        Raises:
            RuntimeError: the thread is waiting for `resume`, or already finished.
        """
        if self._pending:
            raise RuntimeError("the root is waiting for its children: call resume(join_results) first")
        if self.finished:
            raise RuntimeError("the root thread has finished; there is no next segment")
        first = self._written == 2
        try:
            spawns = self._gen.send(self._answers)
        except StopIteration as stop:
            spawns = ()
            self.finished = True
            self.solved = bool(stop.value)
        self._answers = None
        self._pending = spawns
        lines = self._ctx.lines
        text = ("\n" if first else "") + "\n".join(lines[self._written :]) + "\n"
        self._written = len(lines)
        return Segment(text, spawns, self.finished, self.solved)

    def resume(self, join_results: Sequence[str | None]) -> None:
        """Give the children's answers, in spawn order: an answer path text, or None.

        An answer path starts ``Moving to Node #{child id}`` and ends with the goal line (a
        trailing newline is ignored). The next `next_segment` writes what follows the join
        block.
        """
        if not self._pending:
            raise RuntimeError("resume() called but the root has no spawn waiting")
        results = list(join_results)
        if len(results) != len(self._pending):
            raise ValueError(
                f"expected {len(self._pending)} join results (one per child), got {len(results)}"
            )
        for r in results:
            if r is not None and not isinstance(r, str):
                raise TypeError(f"a join result must be an answer path str or None, got {type(r).__name__}")
        self._answers = results
        self._pending = ()

    def child(self, request: SpawnRequest) -> ChildSearch:
        """The child thread a pending `request` asks for: `ChildSearch.from_request(request)`,
        built from the node this root already holds (its heuristic and printed fields are not
        computed again). `run_apr_tree` uses it by default.

        Raises:
            ValueError: `request` is not one of the pending spawn requests.
        """
        if request not in self._pending:
            raise ValueError(f"node #{request.node_id} is not among this root's pending spawn requests")
        node = self._spawned[request.index]
        start = Node(node.id, node.nums, node.nums_text, node.h, None, None, ops_text_of(node))
        return ChildSearch(
            request.node_id,
            request.target,
            request.nums,
            request.ops,
            request.beam_size,
            seed_key=request.seed_key,
            start=start,
        )

    def _spawn(self, ctx: SearchContext, node, explore: list, level: int):
        """APR branch handler: calling block, wait for answers, then goal + root path or go on."""
        lines = ctx.lines
        lines.extend(grammar.calling_lines([child.id for child in explore], level + LEVEL))
        requests = tuple(
            SpawnRequest(
                i,
                child.id,
                ctx.target,
                child.nums,
                _ops_from_root(child),
                self.sub_beam_size,
                None if self.seed_key is None else seeding.child_key(self.seed_key, child.id),
            )
            for i, child in enumerate(explore)
        )
        self._spawned = explore
        answers = yield requests
        self._spawned = []
        for child, answer in zip(explore, answers):
            if answer is not None:
                lines.append(grammar.goal_line(ctx.target, ctx.target))
                lines.extend(path_lines(ctx, child)[:-1])  # the answer starts with `Moving to Node #child`
                lines.append(answer.strip("\n"))
                return True
        return False


class ChildSearch:
    """An APR child thread: best-first search from its start node; it never spawns.

    Args:
        node_id, target, nums, ops: the start node (its id, the target, its numbers and the
            operations from the root), as in the child's prompt.
        beam_size: the child's beam.
        rng: an object with ``random()`` and ``shuffle(list)``; or give `seed_key`.
        seed_key: the child's stream key (`SpawnRequest.seed_key`).
        start: the start node (an `agents.search.Node` without parent) when the caller
            already has it (`AprRootSearch.child`); by default it is made from the arguments.

    Attributes:
        prompt: the child's two prompt lines, no trailing newline.
        solved: None before `run`; after it, whether it reached the target.
        answer_path: after a successful `run`, the answer path from the start node (no
            trailing newline): what the join block carries back to the parent.
        text: after `run`, the whole thread text, ``prompt + run()``.
    """

    def __init__(
        self, node_id: str, target: int, nums, ops, beam_size: int, *, rng=None, seed_key=None, start=None
    ):
        if rng is None:
            if seed_key is None:
                raise TypeError("ChildSearch needs an rng or a seed_key")
            rng = seeding.make_rng(seed_key)
        self._ctx = SearchContext(target, beam_size, rng)
        if start is None:
            start = start_node(node_id, target, nums, ops)
        self._start = start
        self.solved: bool | None = None
        self.answer_path: str | None = None
        self.text: str | None = None

    @property
    def prompt(self) -> str:
        """The child's two prompt lines, no trailing newline (the first two lines it writes)."""
        start = self._start
        return lines.node_prompt(start.id, self._ctx.target_text, start.nums_text, start.ops_text)

    @classmethod
    def from_request(cls, request: SpawnRequest, rng=None) -> ChildSearch:
        """The child a spawn request asks for (seeded from its key unless `rng` is given)."""
        return cls(
            request.node_id,
            request.target,
            request.nums,
            request.ops,
            request.beam_size,
            rng=rng,
            seed_key=request.seed_key,
        )

    def run(self) -> str:
        """Search to the end; return the text after the prompt (starts and ends with ``"\\n"``)."""
        if self.solved is not None:
            raise RuntimeError("ChildSearch.run() was already called; make a new ChildSearch")
        ctx = self._ctx
        self.solved = run_to_end(best_first(ctx, self._start, LEVEL, lead_moving=True))
        written = ctx.lines
        self.text = "\n".join(written) + "\n"  # written[:2] are the prompt's two lines
        if self.solved:  # the lines from the goal's answer path on: `grammar.extract_answer_path` of the text
            self.answer_path = "\n".join(written[ctx.answer_at :])
        return self.text[len(written[0]) + 1 + len(written[1]) :]


def join_block(spawns: Sequence[SpawnRequest], answers: Sequence[str | None]) -> str:
    """The ``<Sub Searches>`` block (sections 2.8, 3.6) the environment inserts; ends with ``"\\n"``."""
    answers = [None if a is None else a.strip("\n") for a in answers]
    return "\n".join(grammar.join_lines([req.node_id for req in spawns], answers, LEVEL)) + "\n"


def run_apr_tree(
    root: AprRootSearch, make_child: Callable[[SpawnRequest], ChildSearch] | None = None
) -> dict:
    """Run a root thread and its children in-process; return the official ``trace_dict``.

    ``{"main_calls": [parent segment texts], "sub_calls": [[child trace_dict, ...] per
    spawn]}``, each child ``{"main_calls": [prompt + text], "sub_calls": []}``.
    `make_child` builds a child from its request (default: `AprRootSearch.child`, the same
    child as `ChildSearch.from_request`, seeded from the request's key).
    """
    make_child = make_child or root.child
    main_calls, sub_calls = [], []
    segment = root.next_segment()
    text = root.prompt + segment.text
    while segment.spawns:
        main_calls.append(text)
        children, answers = [], []
        for request in segment.spawns:
            child = make_child(request)
            child.run()
            children.append({"main_calls": [child.text], "sub_calls": []})
            answers.append(child.answer_path)
        sub_calls.append(children)
        text = text[: text.rindex(grammar.CALLING + "\n")] + join_block(segment.spawns, answers)
        root.resume(answers)
        segment = root.next_segment()
        text += segment.text
    main_calls.append(text)
    return {"main_calls": main_calls, "sub_calls": sub_calls}


def root_key(problem: Problem, seed: int) -> str:
    """The stream key of an APR problem's root thread (children's keys extend it, `seeding.child_key`)."""
    return seeding.problem_key("apr", seed, problem.target, problem.numbers)


def beam_sizes(
    problem: Problem, seed: int, beam_size: int | None = None, sub_beam_size: int | None = None
) -> tuple[int, int]:
    """The problem's ``(beam_size, sub_call_beam_size)`` as `apr_trace` uses them.

    A None is drawn as the official generator draws it (parent uniform in 1..10, child
    uniform in beam..15) from the problem's settings bits (`agents.seeding.settings_bits`),
    apart from the search streams: fixing a value by hand leaves every other decision as is.
    """
    bits = seeding.settings_bits(root_key(problem, seed))
    if beam_size is None:
        beam_size = 1 + bits % MAX_BEAM
    if sub_beam_size is None:
        sub_beam_size = beam_size + (bits >> 32) % (max(beam_size, MAX_SUB_BEAM) - beam_size + 1)
    return beam_size, sub_beam_size


def apr_trace(
    problem: Problem,
    *,
    seed: int,
    beam_size: int | None = None,
    sub_beam_size: int | None = None,
    promising: float = PROMISING,
) -> dict:
    """One problem's APR record in the official layout (section 2.10), plus our counters.

    Args:
        problem: the numbers and target.
        seed: fixes every random decision for this problem (beams, root and child streams).
        beam_size: None draws it from 1..10 (official); an int fixes it.
        sub_beam_size: None draws it from beam_size..15 (official); an int fixes it.
        promising: the spawn coin's probability.

    Returns:
        ``{"nums", "target", "search_path" (last parent segment), "rating", "search_type",
        "heuristic", "promising_threshold", "beam_size", "sub_call_beam_size", "trace_dict",
        "solved", "seed", "num_spawns", "num_children"}``. The official token statistics
        (Llama-2 tokenizer) are left to the metrics code.
    """
    beam_size, sub_beam_size = beam_sizes(problem, seed, beam_size, sub_beam_size)
    root = AprRootSearch(
        problem, beam_size=beam_size, sub_beam_size=sub_beam_size, seed=seed, promising=promising
    )
    trace_dict = run_apr_tree(root)
    search_path = trace_dict["main_calls"][-1]
    return {
        "nums": list(problem.numbers),
        "target": problem.target,
        "search_path": search_path,
        "rating": rating(search_path, clamp=False),
        "search_type": f"apr_{beam_size}",
        "heuristic": "mult_heuristic",
        "promising_threshold": promising,
        "beam_size": beam_size,
        "sub_call_beam_size": sub_beam_size,
        "trace_dict": trace_dict,
        "solved": root.solved,
        "seed": seed,
        "num_spawns": len(trace_dict["sub_calls"]),
        "num_children": sum(map(len, trace_dict["sub_calls"])),
    }
