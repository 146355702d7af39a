"""Straggler control: a parent joins when the first k children end, or when one child solves.

The slowest child holds an APR join (Hogwild!, AsyncThink); this protocol lets the parent
say, in its calling block, when it stops waiting. Grammar: as `apr` (calling and join
blocks, node-state child prompts, verified answers at join), plus two optional lines inside
the calling block, anywhere between ``<Calling Sub Searches>`` and ``<End Calling Sub Searches>``:

- ``<Join First {k}>`` (k >= 1): join as soon as k children have ended (answered, failed or
  refused at creation); k at least the number of children means "all", as in `apr`;
- ``<Join On Goal>``: join as soon as one child's claimed answer verifies.

With both, whichever comes first. At the early join the children still running (and their
own children) are *cancelled*: what they generated so far counts in total tokens, the rest is
never generated, the critical path ends at the join (`apr_env.metrics.critical_path` leaves
cancelled children out), and they join as ``<No Solution ...>`` lines. A malformed option
line (k not a positive integer, an unknown option) is a recorded ``malformed_spawn_line``,
as any other unknown line in an APR block; the last valid option of each kind counts.

Example: the parent writes ``<Calling Sub Searches>\\n<Start Sub Search 0 at level 1> Moving
to Node #0,0\\n<Start Sub Search 1 at level 1> Moving to Node #0,1\\n<Join On Goal>\\n<End
Calling Sub Searches>``; child 1 reaches the goal after 300 tokens while child 0 has written
200 of its 900: the parent resumes at once with child 1's path, child 0 is cancelled (its
200 tokens count, its other 700 are saved), and the critical path is the parent's + 300.
"""

from __future__ import annotations

import re

from apr_env.protocols.apr import AprProtocol
from apr_env.protocols.base import register

JOIN_ON_GOAL = "<Join On Goal>"
RE_JOIN_FIRST = re.compile(r"<Join First (\d{1,6})>", re.ASCII)


def join_first_line(k: int) -> str:
    return f"<Join First {k}>"


@register
class FirstKProtocol(AprProtocol):
    """APR fork-join whose parent may join early (first k ended, or first verified goal)."""

    name = "first_k"

    def spawn_option(self, line: str, options: dict) -> bool:
        if line == JOIN_ON_GOAL:
            options["race"] = True
            return True
        m = RE_JOIN_FIRST.fullmatch(line)
        if m is None or int(m.group(1)) < 1:
            return False
        options["quorum"] = int(m.group(1))
        return True

    def __repr__(self) -> str:
        return "FirstKProtocol()"
