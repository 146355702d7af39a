"""Broadcast: siblings publish dead ends and solutions to a shared board and read each other's.

The paper's "any-to-any messaging" future work, in its simplest form. Grammar: as `apr`
(calling and join blocks, node-state child prompts, verified answers at join), plus:

- publishing: a child writes board lines into its own text,
  ``<Publish Dead End {T}:{nums}>`` (this state cannot reach the target: it was fully
  explored) or ``<Publish Goal Reached at Node #{id}>`` (the writer found a solution);
- reading: after a child's action contains such lines, the environment inserts them, as
  ``<Board>\\n{lines}\\n<End Board>\\n``, into the context of every sibling that is still
  running (not into the writer's, not into finished threads). Siblings act in several steps
  (partial actions) to benefit: a searcher skips states on the board and stops early when
  a sibling has solved the problem.

The cost is explicit: every inserted board block is prefilled context
(`prefill_tokens`) and lengthens the reader's context (`max_context_tokens`); the benefit
is fewer generated tokens when siblings would have repeated each other's work.

Example: child 0 writes ``... <Publish Dead End 10:[2, 6]>``; running child 1's context then
gains ``<Board>\\n<Publish Dead End 10:[2, 6]>\\n<End Board>\\n`` before it acts again.
"""

from __future__ import annotations

import re

from apr_env import grammar as g
from apr_env.protocols.apr import AprProtocol
from apr_env.protocols.base import register
from apr_env.tree import Thread

BOARD = "<Board>"
END_BOARD = "<End Board>"
RE_PUBLISH = re.compile(
    r"<Publish (?:Dead End \d+:\[[\d, ]*\]|Goal Reached at Node #\d+(?:,\d+)*)>", re.ASCII
)


_GOAL_PUBLISHED = "<Publish Goal Reached at Node #"
_RE_DEAD = re.compile(r"<Publish Dead End \d+:\[([\d, ]*)\]>", re.ASCII)


def dead_end_line(target: int, nums) -> str:
    return f"<Publish Dead End {target}:{g.format_nums(nums)}>"


def goal_published_line(node_id: str) -> str:
    return f"{_GOAL_PUBLISHED}{node_id}>"


def read_board(context: str) -> tuple[set[tuple[int, ...]], bool]:
    """(dead states as sorted tuples, whether some sibling published a solution) from a context."""
    dead = {tuple(sorted(g.parse_nums(m))) for m in _RE_DEAD.findall(context)}
    return dead, _GOAL_PUBLISHED in context


@register
class BroadcastProtocol(AprProtocol):
    """APR fork-join plus a sibling board of published dead ends and solutions."""

    name = "broadcast"

    def board_update(self, thread: Thread, text: str) -> str | None:
        if "<Publish " not in text:
            return None
        lines = RE_PUBLISH.findall(text)
        if not lines:
            return None
        return BOARD + "\n" + "\n".join(lines) + "\n" + END_BOARD + "\n"

    def __repr__(self) -> str:
        return "BroadcastProtocol()"
