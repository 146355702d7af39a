"""The search policy shared by the symbolic SoS+ and APR solvers (reference sections 2.1-2.4).

What is here: search nodes, state expansion with top-K and shuffle (the heuristic is
`agents.heuristic`), and the best-first outer loop that pops up to ``beam_size`` nodes per iteration, all writing
the official trace lines. What is not: what happens at a "promising" node. The loop hands
that to a *branch handler* (the seam for protocols): SoS+ dives into the nodes in the same
thread (`agents.sosp`), APR spawns child threads (`agents.apr_solver`); a later protocol
(children that inherit the full context, self-consistency, ...) supplies its own handler and
reuses the search unchanged.

The policy, exactly as the official code behaves (the golden traces are replayed byte for
byte in ``tests/test_apr_solver.py`` and ``tests/test_sosp.py``):

- heuristic (2.2): ``h(nums) = sum(min(|n - f| for f in factors(T)))`` with ``factors(T)`` the
  integers f in [2, T] dividing T (the code's form, not the paper's);
- expansion (2.3): children of every pair ``(i < j)`` in `itertools.combinations` order and
  every `apr_env.arithmetic.combine` result (remaining numbers in order, then the result);
  stable sort by h; keep ``beam_size``; ``rng.shuffle`` the kept ones; print them in that
  order; ids ``"{parent},{k}"`` go to non-terminal children only; a terminal child prints
  the goal line (and the search stops) or the no-solution line; the non-terminal ones,
  stably sorted by h, are the node's ``nodes_to_explore``. When the beam cuts nothing the
  sort is skipped: it only decides which children are cut, and the shuffle makes every
  order of the kept ones equally likely (a scripted replay matches children by content);
- outer loop (2.4): a heap of ``(h, node)`` whose nodes never compare smaller than each
  other, so ties break exactly as `heapq` does with objects that compare only by h (no
  counter tie-breaker); each iteration pops ``min(beam_size, len(heap))`` nodes first, then
  expands them in pop order; ``Moving to Node #{next popped}`` between them, ``Moving to Node
  #{heap top}`` after the iteration when the heap is not empty, ``No solution found.`` when
  it is. After each expansion the branch rule may draw ``rng.random() < probability``; on
  True the branch handler takes the node's ``nodes_to_explore``, otherwise they are pushed.

Random decisions come only from ``ctx.rng.shuffle`` (one call per expansion) and
``ctx.rng.random`` (one call per expansion the branch rule allows), in text order, which is
what makes a scripted replay of the official traces possible.

Line formats come from `apr_env.grammar`, through the literal pieces `agents.lines` cuts from
the grammar functions' own output (the hot loop puts them into f-strings).

The module is a little over 400 lines because one piece is written twice on purpose: the
expansion of a two-number node (most expansions) is inlined in `best_first` as well as in
`expand`; the call overhead mattered for the speed target (benchmarks/bench_solvers.py).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import combinations, pairwise
from operator import attrgetter, itemgetter

from agents import lines
from agents.heuristic import distance_table, mult_heuristic
from apr_env import grammar
from apr_env.arithmetic import combine

# ---------------------------------------------------------------------------------------
# Nodes and the per-thread search context
# ---------------------------------------------------------------------------------------


class Node:
    """A search state: id, numbers, heuristic, parent, and the operation that made it.

    ``nums_text`` is the printed number list; ``ops_text`` the printed operation list, filled
    when first needed (`ops_text_of`). Nodes never compare smaller than each other: inside
    ``(h, node)`` heap entries that makes equal-h entries tie exactly like the official
    objects whose ``__lt__`` compares h alone.
    """

    __slots__ = ("h", "id", "nums", "nums_text", "op", "ops_text", "parent")

    def __init__(self, node_id, nums, nums_text, h, parent, op, ops_text=None):
        self.id = node_id
        self.nums = nums
        self.nums_text = nums_text
        self.h = h
        self.parent = parent
        self.op = op
        self.ops_text = ops_text

    def __lt__(self, other) -> bool:
        return False

    def __repr__(self) -> str:
        return f"Node(#{self.id} {self.nums_text} h={self.h})"


def ops_text_of(node: Node) -> str:
    """The node's printed operation list, computed from its parent's on first use."""
    if node.ops_text is None:
        node.ops_text = lines.extend_ops_text(ops_text_of(node.parent), node.op)
    return node.ops_text


def start_node(node_id: str, target: int, nums: Sequence[int], ops: Sequence[str] = ()) -> Node:
    """A thread's start node (no parent: its answer path starts here), e.g. the root ``#0``."""
    nums = tuple(nums)
    return Node(
        node_id, nums, lines.nums_text(nums), mult_heuristic(nums, target), None, None, lines.ops_text(ops)
    )


class SearchContext:
    """One thread's search state: target, beam, random stream and the lines written so far.

    Args:
        target: the number to reach.
        beam_size: nodes popped per iteration and children kept per expansion (>= 1).
        rng: an object with ``random()`` and ``shuffle(list)`` (see `agents.seeding`).
        branch: when a node may branch (None: never).
        end_on_answer: True stops writing at the answer path (no ``Exit Sub Search`` lines
            after it; SoS+ flaw 5 fixed); False keeps the official lines.
        flaw4: reproduce official flaw 4 after a failed branch (the next ``Moving to Node``
            line is computed from the spawn loop's index); for byte-compatibility tests only.
    """

    __slots__ = (
        "answer_at",
        "beam_size",
        "branch",
        "dist",
        "end_on_answer",
        "flaw4",
        "lines",
        "rng",
        "target",
        "target_text",
        "unequal_tail",
    )

    def __init__(self, target, beam_size, rng, branch=None, *, end_on_answer=True, flaw4=False):
        if (  # the exact-int test first: one per thread
            type(beam_size) is not int and (isinstance(beam_size, bool) or not isinstance(beam_size, int))
        ) or beam_size < 1:
            raise ValueError(f"beam_size must be an int >= 1, got {beam_size!r}")
        self.target = target
        self.target_text = str(target)
        self.unequal_tail = lines.UNEQ1 + self.target_text + lines.UNEQ2
        self.beam_size = beam_size
        self.rng = rng
        self.branch = branch
        self.end_on_answer = end_on_answer
        self.flaw4 = flaw4
        self.dist = distance_table(target)
        self.lines: list[str] = []
        self.answer_at: int | None = None
        """Index in `lines` where the answer path starts, once the goal is reached."""


@dataclass
class BranchRule:
    """When an expanded node may branch (dive, spawn, ...), and how the coin is drawn.

    The coin ``rng.random() < probability`` is drawn only when the node has at least
    `min_children` nodes to explore and its search level is at most `max_level`; no draw
    otherwise (the official SoS+ also draws when nothing could follow; such draws change no
    text, so skipping them keeps every draw visible in the trace).
    """

    probability: float
    """Chance that an eligible node branches (official: SoS+ 0.5, APR 0.9)."""
    handler: Callable[[SearchContext, Node, list, int], Generator]
    """Generator ``handler(ctx, node, nodes_to_explore, level)``; returns a truthy goal to stop the thread."""
    min_children: int = 1
    """Fewest nodes to explore for a draw (APR: 2, i.e. the official ``> 1``)."""
    max_level: int | None = None
    """Deepest level that may branch (APR: 0, only the parent thread); None for any level."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError(f"probability must be in [0, 1], got {self.probability!r}")
        if self.min_children < 1:
            raise ValueError(f"min_children must be >= 1, got {self.min_children!r}")


# ---------------------------------------------------------------------------------------
# Expansion and the outer loop
# ---------------------------------------------------------------------------------------


@lru_cache(maxsize=16)
def _pairs(k: int) -> tuple:
    """``(i, j, rest)`` for every pair of a k-number state, in `itertools.combinations` order."""
    return tuple((i, j, tuple(r for r in range(k) if r not in (i, j))) for i, j in combinations(range(k), 2))


_H = itemgetter(0)

# The literal pieces of the lines `best_first` and `expand` print (`agents.lines`), unpacked in
# one go per call; neighbouring pieces are joined so that each f-string has few parts.
_LOOP_PIECES = (
    lines.STATE0,
    lines.STATE1,
    lines.STATE2,
    lines.STATE3,
    lines.MOVING0,
    lines.MOVING1,
    # a printed terminal child, two lines: f"{EXP0}{op}{EXP1 + NUMS0}{v}{NUMS1 + EXP2 + "\n" + UNEQ0}{v}{tail}"
    lines.EXP0,
    lines.EXP1 + lines.NUMS0,
    lines.NUMS1 + lines.EXP2 + "\n" + lines.UNEQ0,
    lines.OPS0,
    lines.OPS_SEP,
    lines.OPS1,
    len(lines.OPS1),
    lines.EMPTY_OPS,
)
_EXPAND_PIECES = (
    lines.EXP0,
    lines.EXP1,
    lines.EXP2 + "\n" + lines.GEN0,
    lines.GEN1,
    lines.GEN3,
    lines.GEN4,
    lines.NUMS0,
    lines.NUMS_SEP,
    lines.NUMS1,
)
_NODE_H = attrgetter("h")


def candidates(ctx: SearchContext, node: Node) -> list[tuple[int, tuple[int, ...], str]]:
    """Every child of `node` as ``(h, nums, op)``, in generation order (pairs, then `combine`)."""
    nums = node.nums
    dist = ctx.dist
    target = ctx.target
    out = []
    append = out.append
    if len(nums) == 3:  # the common case, unrolled: pairs (0, 1), (0, 2), (1, 2)
        a, b, c = nums
        da = dist[a] if a <= target else a - target  # each number's share of h
        db = dist[b] if b <= target else b - target
        dc = dist[c] if c <= target else c - target
        for x, y, z, hz in ((a, b, c, dc), (a, c, b, db), (b, c, a, da)):
            for v, op in combine(x, y):
                append((hz + (dist[v] if v <= target else v - target), (z, v), op))
        return out
    dn = [dist[x] if x <= target else x - target for x in nums]  # each number's share of h
    if len(nums) == 4:  # a problem's root, unrolled: pairs in `itertools.combinations` order
        a, b, c, d = nums
        da, db, dc, dd = dn
        for x, y, r0, r1, hr in (
            (a, b, c, d, dc + dd),
            (a, c, b, d, db + dd),
            (a, d, b, c, db + dc),
            (b, c, a, d, da + dd),
            (b, d, a, c, da + dc),
            (c, d, a, b, da + db),
        ):
            for v, op in combine(x, y):
                append((hr + (dist[v] if v <= target else v - target), (r0, r1, v), op))
        return out
    for i, j, rest in _pairs(len(nums)):
        kept = tuple([nums[r] for r in rest])
        hr = sum([dn[r] for r in rest])
        for v, op in combine(nums[i], nums[j]):
            append((hr + (dist[v] if v <= target else v - target), (*kept, v), op))
    return out


def _top_k(ctx: SearchContext, cands: list) -> list:
    """The kept candidates: the ``beam_size`` best by h (stable), all of them when none is cut.

    When nothing is cut the order before the shuffle does not matter (the shuffle makes
    every order equally likely), so the sort is skipped.
    """
    beam = ctx.beam_size
    if len(cands) > beam:
        cands.sort(key=_H)
        del cands[beam:]
    return cands


def terminal_top_k(ctx: SearchContext, cands: tuple) -> list:
    """`_top_k` for the children of a two-number state: `combine`'s ``(value, op)`` pairs.

    Their h is the distance of the value alone, needed only when the beam cuts some of them
    (they are never pushed), so it is computed only then.
    """
    if len(cands) <= ctx.beam_size:
        return list(cands)
    dist = ctx.dist
    target = ctx.target
    return sorted(cands, key=lambda c: dist[c[0]] if c[0] <= target else c[0] - target)[: ctx.beam_size]


def expand(ctx: SearchContext, node: Node) -> tuple[list[Node], bool]:
    """Section 2.3 on one popped node: write its child lines, return (nodes_to_explore, goal).

    ``goal`` is True when a kept child reached the target; the goal line and the answer path
    are then already written and the thread must stop. A two-number node has only terminal
    children; a longer one only non-terminal ones.
    """
    nums = node.nums
    out = ctx.lines
    append = out.append
    target = ctx.target
    if len(nums) == 2:
        kept = terminal_top_k(ctx, combine(nums[0], nums[1]))
        ctx.rng.shuffle(kept)
        e0, e1, n0, n1 = lines.EXP0, lines.EXP1, lines.NUMS0, lines.NUMS1 + lines.EXP2
        u0, u1 = lines.UNEQ0, ctx.unequal_tail
        for v, op in kept:
            if v == target:
                _write_goal(ctx, node, op, v)
                return [], True
            append(f"{e0}{op}{e1}{n0}{v}{n1}\n{u0}{v}{u1}")  # two lines in one item: fewer allocations
        return [], False
    kept = _top_k(ctx, candidates(ctx, node))
    ctx.rng.shuffle(kept)
    explore = []
    prefix = node.id + ","
    exp0, exp1, exp2, gen1, gen3, gen4, n0, sep, n1 = _EXPAND_PIECES
    gen1 += ctx.target_text + lines.GEN2
    nums_text = lines.nums_text
    two = len(nums) == 3  # the children of a three-number node have two numbers
    for k, (h, child_nums, op) in enumerate(kept):
        txt = f"{n0}{child_nums[0]}{sep}{child_nums[1]}{n1}" if two else nums_text(child_nums)
        child_id = f"{prefix}{k}"
        append(f"{exp0}{op}{exp1}{txt}{exp2}{child_id}{gen1}{txt}{gen3}{op}{gen4}")
        explore.append(Node(child_id, child_nums, txt, h, node, op))
    explore.sort(key=_NODE_H)
    return explore, False


def _write_goal(ctx: SearchContext, node: Node, op: str, value: int) -> None:
    """Write the terminal child of `node` that reached the target, the goal line and the answer path."""
    out = ctx.lines
    out.append(lines.exploring(op, lines.nums_text((value,))))
    out.append(lines.result(value, value))
    ctx.answer_at = len(out)
    out.extend(path_lines(ctx, node, (op, lines.nums_text((value,)))))


def path_lines(ctx: SearchContext, node: Node, last: tuple[str, str] | None = None) -> list[str]:
    """The answer path (section 2.7) from the thread's start node down to `node`.

    With ``last = (op, nums_text)`` the path continues with that terminal operation and ends
    on the goal line; without it, it ends on ``Moving to Node #{node.id}`` (the APR parent
    uses that prefix before a child's answer path).
    """
    chain = []
    while node is not None:
        chain.append(node)
        node = node.parent
    chain.reverse()
    t = ctx.target_text
    out = [lines.moving(chain[0].id)]
    for prev, cur in pairwise(chain):
        out.append(lines.state(t, prev.nums_text, ops_text_of(prev)))
        out.append(lines.exploring(cur.op, cur.nums_text))
        out.append(lines.generated(cur.id, t, cur.nums_text, cur.op))
        out.append(lines.moving(cur.id))
    if last is not None:
        end = chain[-1]
        out.append(lines.state(t, end.nums_text, ops_text_of(end)))
        out.append(lines.exploring(last[0], last[1]))
        out.append(lines.result(ctx.target, ctx.target))
    return out


def best_first(ctx: SearchContext, start: Node, level: int = 0, *, lead_moving: bool = False):
    """Section 2.4: the outer loop of one search, as a generator.

    Writes lines to ``ctx.lines`` (items without a final newline; one item may hold the two
    lines of a printed child, the prompt lines are items of their own). Yields only what the branch handler
    yields (an APR spawn waits for its children that way); returns True when the search
    reached the goal (the answer path is written), False after ``No solution found.``.

    Args:
        ctx: the thread's context.
        start: the node to start from (pushed alone on a fresh heap).
        level: nesting level (0 = the thread's own search; SoS+ dives are level + 1).
        lead_moving: write ``Moving to Node #{start}`` first (APR threads do; SoS+ does not).
    """
    out = ctx.lines
    append = out.append
    beam = ctx.beam_size
    rule = ctx.branch
    can_branch = rule is not None and (rule.max_level is None or level <= rule.max_level)
    if can_branch:
        min_children = rule.min_children
        probability = rule.probability
    heappush = heapq.heappush
    heappop = heapq.heappop
    shuffle = ctx.rng.shuffle
    target = ctx.target
    u1 = ctx.unequal_tail
    st0, st1, st2, st3, mv0, mv1, e0, e1, e2, o0, o_sep, o1, cut, no_ops = _LOOP_PIECES
    st0 += ctx.target_text + st1  # a state line is f"{st0}{nums_text}{st2}{ops_text}{st3}"
    if lead_moving:
        append(f"{mv0}{start.id}{mv1}")
    heap = []
    current = [start]  # the first iteration pops the start node, alone on the heap
    while True:
        last = len(current) - 1
        for i, node in enumerate(current):
            nums = node.nums
            ops_text = node.ops_text
            if ops_text is None:  # its parent was popped before it, so the parent's text is set
                ops_text = node.parent.ops_text  # lines.extend_ops_text, inlined
                ops_text = (
                    f"{ops_text[:-cut]}{o_sep}{node.op}{o1}" if ops_text != no_ops else f"{o0}{node.op}{o1}"
                )
                if len(nums) > 2:  # its children will extend it
                    node.ops_text = ops_text
            append(f"{st0}{node.nums_text}{st2}{ops_text}{st3}")
            index = i
            if len(nums) == 2:  # terminal children only (the bulk of all expansions): inlined `expand`
                cands = combine(nums[0], nums[1])
                kept = list(cands) if len(cands) <= beam else terminal_top_k(ctx, cands)
                shuffle(kept)
                for v, op in kept:
                    if v == target:
                        _write_goal(ctx, node, op, v)
                        return True
                    append(f"{e0}{op}{e1}{v}{e2}{v}{u1}")
            else:
                explore, goal = expand(ctx, node)
                if goal:
                    return True
                if can_branch and len(explore) >= min_children and ctx.rng.random() < probability:
                    if (yield from rule.handler(ctx, node, explore, level)):
                        return True
                    if ctx.flaw4:
                        index = len(explore) - 1
                else:
                    for child in explore:
                        heappush(heap, (child.h, child))
            if index < last:
                append(f"{mv0}{current[index + 1].id}{mv1}")
        if not heap:
            break
        append(f"{mv0}{heap[0][1].id}{mv1}")
        current = [heappop(heap)[1] for _ in range(min(beam, len(heap)))]
    append(grammar.NO_SOLUTION)
    return False


def run_to_end(gen: Generator) -> bool:
    """Drive a search generator that must not yield (no spawns); return its result."""
    try:
        event = next(gen)
    except StopIteration as stop:
        return bool(stop.value)
    gen.close()
    raise RuntimeError(f"this search yielded {event!r}; only a spawning thread may yield")


def rating(text: str, *, clamp: bool) -> float:
    """The official ``rating`` of a trace (section 2.10): ``1 - (explorations + 1) / 1152`` if solved.

    ``clamp`` floors it at 0 (the SoS+ generator does, the APR one does not).
    """
    if "Goal Reached" not in text:
        return 0.0
    value = 1.0 - (text.count("Exploring Operation") + 1) / 1152
    return max(0.0, value) if clamp else value
