"""Fast trace-line formatting for the symbolic solvers, cut from `apr_env.grammar` at import.

The grammar module is the one source of truth for every line format. The solvers write one
``Exploring Operation`` line per printed child and one ``Current State`` line per popped node,
so calling the grammar functions there (each re-formats the number list) would cost more than
the search. Instead this module calls each grammar function once, at import, with marker
arguments and cuts its output into literal pieces (`pieces`); the solvers put the pieces
around pre-formatted fields in f-strings. ``tests/test_search.py`` checks every helper here
against the grammar function it stands for.
"""

from __future__ import annotations

from collections.abc import Sequence

from apr_env import grammar


def pieces(text: str, *markers: str) -> tuple[str, ...]:
    """Split `text` at each marker in turn: the literal parts around the substituted fields."""
    parts = []
    for marker in markers:
        head, sep, text = text.partition(marker)
        if not sep:
            raise AssertionError(f"the grammar format changed: marker {marker!r} not found")
        parts.append(head)
    parts.append(text)
    return tuple(parts)


EXP0, EXP1, EXP2 = pieces(grammar.exploring_line("\0", ["\1"]), "\0", "[\1]")
"""``EXP0 + op + EXP1 + nums_text + EXP2`` is `grammar.exploring_line`."""
GEN0, GEN1, GEN2, GEN3, GEN4 = pieces(
    grammar.generated_line("\0", "\2", ["\1"], "\3"), "\0", "\2", "[\1]", "\3"
)
"""``GEN0 + id + GEN1 + target + GEN2 + nums_text + GEN3 + op + GEN4`` is `grammar.generated_line`."""
STATE0, STATE1, STATE2, STATE3 = pieces(grammar.state_line("\2", ["\1"], ["\3"]), "\2", "[\1]", "['\3']")
"""``STATE0 + target + STATE1 + nums_text + STATE2 + ops_text + STATE3`` is `grammar.state_line`."""
MOVING0, MOVING1 = pieces(grammar.moving_line("\0"), "\0")
UNEQ0, UNEQ1, UNEQ2 = pieces(grammar.unequal_line("\0", "\2"), "\0", "\2")
GOAL0, GOAL1, GOAL2 = pieces(grammar.goal_line("\0", "\2"), "\0", "\2")
NUMS0, NUMS_SEP, NUMS1 = pieces(grammar.format_nums(["\0", "\1"]), "\0", "\1")
EMPTY_OPS = grammar.format_ops([])
OPS0, OPS_SEP, OPS1 = pieces(grammar.format_ops(["\0", "\1"]), "\0", "\1")


def nums_text(nums: Sequence[int]) -> str:
    """`grammar.format_nums` for ints, without the generic join for the short lists searches make."""
    n = len(nums)
    if n == 1:
        return f"{NUMS0}{nums[0]}{NUMS1}"
    if n == 2:
        return f"{NUMS0}{nums[0]}{NUMS_SEP}{nums[1]}{NUMS1}"
    if n == 3:
        return f"{NUMS0}{nums[0]}{NUMS_SEP}{nums[1]}{NUMS_SEP}{nums[2]}{NUMS1}"
    return NUMS0 + NUMS_SEP.join(map(str, nums)) + NUMS1


def ops_text(ops: Sequence[str]) -> str:
    """`grammar.format_ops`, joined in one call."""
    return f"{OPS0}{OPS_SEP.join(ops)}{OPS1}" if ops else EMPTY_OPS


def extend_ops_text(ops_text: str, op: str) -> str:
    """``format_ops(ops + [op])`` from ``format_ops(ops)``, without re-joining the list."""
    if ops_text == EMPTY_OPS:
        return f"{OPS0}{op}{OPS1}"
    return f"{ops_text[: -len(OPS1)]}{OPS_SEP}{op}{OPS1}"


def state(target_text: str, nums_txt: str, ops_text: str) -> str:
    """`grammar.state_line` from pre-formatted fields."""
    return f"{STATE0}{target_text}{STATE1}{nums_txt}{STATE2}{ops_text}{STATE3}"


def exploring(op: str, nums_txt: str) -> str:
    """`grammar.exploring_line` from a pre-formatted number list."""
    return f"{EXP0}{op}{EXP1}{nums_txt}{EXP2}"


def generated(node_id: str, target_text: str, nums_txt: str, op: str) -> str:
    """`grammar.generated_line` from pre-formatted fields."""
    return f"{GEN0}{node_id}{GEN1}{target_text}{GEN2}{nums_txt}{GEN3}{op}{GEN4}"


def moving(node_id: str) -> str:
    """`grammar.moving_line`."""
    return f"{MOVING0}{node_id}{MOVING1}"


def node_prompt(node_id: str, target_text: str, nums_txt: str, ops_text: str) -> str:
    """A thread's two prompt lines: ``Moving to Node #id`` and its ``Current State``."""
    return f"{moving(node_id)}\n{state(target_text, nums_txt, ops_text)}"


def result(value: int, target: int) -> str:
    """The line after a terminal child: `grammar.goal_line` or `grammar.unequal_line`."""
    if value == target:
        return f"{GOAL0}{value}{GOAL1}{target}{GOAL2}"
    return f"{UNEQ0}{value}{UNEQ1}{target}{UNEQ2}"
