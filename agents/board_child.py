"""A child search for the broadcast protocol: the APR child's policy, plus a sibling board.

Same search as `agents.apr_solver.ChildSearch` (best-first, beam, multiply heuristic, top-K
then shuffle, from the same seeded stream), but it writes one outer-loop iteration per
action (a partial action) so that siblings' board messages can arrive in between, and it
uses them (`apr_env.protocols.broadcast`):

- it publishes every two-number state it expanded without reaching the target
  (``<Publish Dead End {T}:[a, b]>``: every continuation of that state was just tried) and
  its success (``<Publish Goal Reached at Node #{id}>``);
- it skips states on the board, whether they come off its heap or would be pushed to it;
- it stops (``No solution found.``) as soon as the board says a sibling solved the problem:
  the parent takes the first successful child's answer anyway.

Without board messages the lines it writes equal `ChildSearch`'s apart from the publish lines.

The same step-wise search serves the other protocols whose children act in several steps
(`agents.symbolic`): with ``publish=False`` and no signals it is `ChildSearch` cut into steps
(``first_k``: a cancelled child simply stops being asked); ``header`` lines open its text
(``subscriptions``: what it subscribes to); ``on_goal`` adds lines after its answer
(``messaging``: a message to each sibling); ``read`` says what to take from the context
(board lines by default, received messages for ``messaging``).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence

from agents import lines, seeding
from agents.search import SearchContext, expand, ops_text_of, start_node
from apr_env import grammar
from apr_env.protocols.broadcast import dead_end_line, goal_published_line, read_board


class BoardChildSearch:
    """Resumable best-first child search with board reading and publishing (see module docstring)."""

    def __init__(
        self,
        node_id: str,
        target: int,
        nums,
        ops,
        beam_size: int,
        *,
        seed_key: str,
        publish: bool = True,
        header: Sequence[str] = (),
        on_goal: Callable[[str], list[str]] | None = None,
        read: Callable[[str], tuple[set, bool]] = read_board,
    ):
        self._ctx = SearchContext(target, beam_size, seeding.make_rng(seed_key))
        self._start = start_node(node_id, target, nums, ops)
        self._heap = [(self._start.h, self._start)]
        self._ctx.lines.append(grammar.moving_line(node_id))
        self._written = 2  # the node and state lines are the prompt
        self._first = True
        self._current: list = []
        self._dead: set[tuple[int, ...]] = set()
        self._solved_elsewhere = False
        self._read = 0  # how much of the context the board was read from
        self._published: set[tuple[int, ...]] = set()
        self._publish = publish
        self._header = "".join(f"{line}\n" for line in header)
        self._on_goal = on_goal
        self._read_signals = read
        self.finished = False
        self.solved = False

    def observe(self, context: str) -> None:
        """Read board messages that arrived since the last call (only the new part of the context)."""
        dead, solved = self._read_signals(context[self._read :])
        self._dead |= dead
        self._solved_elsewhere |= solved
        self._read = len(context)

    def step(self) -> str:
        """Expand the next node (or end); return the new text (starts a line, ends with ``\\n``).

        One node per action, so that a sibling's board message can take effect before the
        next node: the outer loop still pops a whole beam per iteration, as `ChildSearch` does.
        """
        ctx, out = self._ctx, self._ctx.lines
        dead = self._dead
        if not self._current:
            while self._heap and len(self._current) < ctx.beam_size:
                node = heapq.heappop(self._heap)[1]
                if node is self._start or tuple(sorted(node.nums)) not in dead:
                    self._current.append(node)
        if self._solved_elsewhere or not self._current:
            out.append(grammar.NO_SOLUTION)
            self.finished = True
            return self._flush()
        node = self._current.pop(0)
        out.append(lines.state(ctx.target_text, node.nums_text, ops_text_of(node)))
        explore, goal = expand(ctx, node)
        if goal:
            if self._publish:
                out.append(goal_published_line(node.id))
            if self._on_goal is not None:
                out.extend(self._on_goal(node.id))
            self.finished = self.solved = True
            return self._flush()
        if len(node.nums) == 2:
            key = tuple(sorted(node.nums))
            if self._publish and key not in self._published:
                self._published.add(key)
                out.append(dead_end_line(ctx.target, node.nums))
        for child in explore:
            if tuple(sorted(child.nums)) not in dead:
                heapq.heappush(self._heap, (child.h, child))
        while self._current and tuple(sorted(self._current[0].nums)) in dead:
            self._current.pop(0)  # published by a sibling since this iteration began
        if self._current:
            out.append(grammar.moving_line(self._current[0].id))
        elif self._heap:
            out.append(grammar.moving_line(self._heap[0][1].id))
        else:
            out.append(grammar.NO_SOLUTION)
            self.finished = True
        return self._flush()

    def _flush(self) -> str:
        lines = self._ctx.lines
        text = "\n".join(lines[self._written :]) + "\n"
        if self._first:
            text = "\n" + self._header + text
            self._first = False
        self._written = len(lines)
        return text
