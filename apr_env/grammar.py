"""The Stream-of-Search / APR trace grammar: exact line formats and their parsers.

Every string here is byte-compatible with the official solver and runtime
(reference/apr-reference.md sections 2.7, 2.8, 3.6, 4). Lines are joined with ``\\n``;
numbers print as a Python list repr (``[26, 31, 31]``) and operation lists as a Python list
of single-quoted strings (``['53-22=31', '31/31=1']``).

Producers (symbolic agents, protocols) format with the functions below; consumers (the
verifier, protocols, trace statistics) parse with the compiled patterns. Nothing here
evaluates model text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

# --------------------------------------------------------------------------------------
# Search lines (section 2.7)
# --------------------------------------------------------------------------------------

NO_SOLUTION = "No solution found."


def format_nums(nums: Iterable[int]) -> str:
    """``[26, 31, 31]``: the Python list repr of ints."""
    return "[" + ", ".join(map(str, nums)) + "]"


def format_ops(ops: Sequence[str]) -> str:
    """``['53-22=31', '31/31=1']`` or ``[]``: the Python list repr of op strings."""
    return "['" + "', '".join(ops) + "']" if ops else "[]"


def moving_line(node_id: str) -> str:
    return f"Moving to Node #{node_id}"


def state_line(target: int, nums: Sequence[int], ops: Sequence[str]) -> str:
    return f"Current State: {target}:{format_nums(nums)}, Operations: {format_ops(ops)}"


def exploring_line(op: str, nums: Sequence[int]) -> str:
    return f"Exploring Operation: {op}, Resulting Numbers: {format_nums(nums)}"


def generated_line(node_id: str, target: int, nums: Sequence[int], op: str) -> str:
    return f"Generated Node #{node_id}: {target}:{format_nums(nums)} Operation: {op}"


GOAL_REACHED = " equal: Goal Reached"
"""The end of a goal line; `extract_answer_path` finds answers by it."""


def goal_line(value: int, target: int) -> str:
    return f"{value},{target} equal: Goal Reached"


def answer_text(target: int, answer: str | None) -> str:
    """How a search thread ends: the goal line and the answer path, or ``No solution found.``."""
    if answer is None:
        return NO_SOLUTION + "\n"
    return f"{goal_line(target, target)}\n{answer.strip()}\n"


def answer_path(target: int, numbers: Sequence[int], ops: Sequence[str]) -> str:
    """The answer path (section 2.7) of a solution given as op strings (``"8/4=2"``), every node
    the first child of the one before: what a solver would write after its goal line."""
    lines = [moving_line("0")]
    nums, done, node = list(numbers), [], "0"
    for k, op in enumerate(ops):
        m = RE_OP.fullmatch(op)
        lines.append(state_line(target, nums, done))
        nums.remove(int(m[1]))
        nums.remove(int(m[3]))
        nums.append(int(m[4]))
        done = [*done, op]
        lines.append(exploring_line(op, nums))
        if k == len(ops) - 1:
            lines.append(goal_line(int(m[4]), target))
        else:
            node += ",0"
            lines += [generated_line(node, target, nums, op), moving_line(node)]
    return "\n".join(lines)


def unequal_line(value: int, target: int) -> str:
    return f"{value},{target} unequal: No Solution"


# --------------------------------------------------------------------------------------
# APR spawn / join markers (section 2.8) and SoS+ dive markers (section 2.5)
# --------------------------------------------------------------------------------------

CALLING = "<Calling Sub Searches>"
END_CALLING = "<End Calling Sub Searches>"
SUB_SEARCHES = "<Sub Searches>"
END_SUB_SEARCHES = "<End Sub Searches>"
SOS_NO_SOLUTION_IN_SUB = "No solution found in sub search"


def start_sub_line(index: int, level: int, node_id: str) -> str:
    return f"<Start Sub Search {index} at level {level}> Moving to Node #{node_id}"


def sub_goal_line(index: int, level: int, node_id: str) -> str:
    return f"<Goal Reached in Sub Search {index} at level {level} at Node #{node_id}>"


def sub_none_line(index: int, level: int, node_id: str) -> str:
    return f"<No Solution in Sub Search {index} at level {level} at Node #{node_id}>"


def calling_lines(labels: Sequence[str], level: int) -> list[str]:
    """A spawn request (section 2.8): ``<Calling Sub Searches>``, one start line per child, the end marker."""
    return [CALLING, *(start_sub_line(i, level, label) for i, label in enumerate(labels)), END_CALLING]


def join_lines(labels: Sequence[str], answers: Sequence[str | None], level: int) -> list[str]:
    """A join block (sections 2.8, 3.6): per child its goal line and answer path, or its no-solution line."""
    out = [SUB_SEARCHES]
    for i, (label, answer) in enumerate(zip(labels, answers)):
        if answer is None:
            out.append(sub_none_line(i, level, label))
        else:
            out += [sub_goal_line(i, level, label), answer]
    out.append(END_SUB_SEARCHES)
    return out


def sos_start_sub_line(level: int, node_id: str) -> str:
    return f"Start Sub Search at level {level}: Moving to Node #{node_id}"


def sos_exit_sub_line(level: int) -> str:
    return f"Exit Sub Search at level {level}"


# --------------------------------------------------------------------------------------
# Condition prefixes (section 4)
# --------------------------------------------------------------------------------------


def sub_call_budget_prefix(n: int) -> str:
    """``Sub Call Budget: 10 `` (note the trailing space, no newline) before the APR root prompt."""
    return f"Sub Call Budget: {n} "


def token_budget_prefix(budget: int) -> str:
    """``Token Budget: 1024 `` before the SoS+ prompt."""
    return f"Token Budget: {budget} "


def token_budget_bin(tokens: int, bin_size: int = 512, max_budget: int = 4096) -> int:
    """Smallest multiple of `bin_size` >= `tokens`, capped at `max_budget` (the official binning)."""
    return min(max_budget, max(bin_size, -(-tokens // bin_size) * bin_size))


# --------------------------------------------------------------------------------------
# Parsers (ASCII digits only: ``re.ASCII`` keeps e.g. Arabic-Indic digits out)
# --------------------------------------------------------------------------------------

NODE_ID = r"\d+(?:,\d+)*"
RE_MOVING = re.compile(rf"Moving to Node #({NODE_ID})", re.ASCII)
RE_STATE = re.compile(r"Current State: (\d+):\[([\d, ]*)\], Operations: \[(.*)\]", re.ASCII)
RE_EXPLORING = re.compile(
    r"Exploring Operation: (\d+)([-+*/])(\d+)=(\d+), Resulting Numbers: \[([\d, ]*)\]", re.ASCII
)
RE_GENERATED = re.compile(
    rf"Generated Node #({NODE_ID}): (\d+):\[([\d, ]*)\] Operation: (\d+)([-+*/])(\d+)=(\d+)", re.ASCII
)
RE_GOAL = re.compile(r"(\d+),(\d+) equal: Goal Reached", re.ASCII)
RE_UNEQUAL = re.compile(r"(\d+),(\d+) unequal: No Solution", re.ASCII)
RE_START_SUB = re.compile(rf"<Start Sub Search (\d+) at level (\d+)> Moving to Node #({NODE_ID})", re.ASCII)
RE_SUB_RESULT = re.compile(
    rf"<(Goal Reached|No Solution) in Sub Search (\d+) at level (\d+) at Node #({NODE_ID})>", re.ASCII
)
RE_OP = re.compile(r"(\d+)([-+*/])(\d+)=(\d+)", re.ASCII)
RE_OPS = re.compile(r"'\d+[-+*/]\d+=\d+'(?:, '\d+[-+*/]\d+=\d+')*", re.ASCII)
RE_PREFIX = re.compile(r"^(?:Sub Call Budget: (\d+) |Token Budget: (\d+) )", re.ASCII)


def parse_nums(text: str) -> tuple[int, ...]:
    """Inverse of `format_nums` without the brackets: ``"26, 31"`` -> ``(26, 31)``; raises ValueError."""
    text = text.strip()
    if not text:
        return ()
    return tuple(map(int, text.split(", ")))


def parse_ops(text: str) -> list[str]:
    """Inverse of `format_ops` without the brackets: ``"'a+b=c', ..."`` -> list; raises ValueError."""
    text = text.strip()
    if not text:
        return []
    if RE_OPS.fullmatch(text):  # the usual case: one scan instead of one match per operation
        return [part[1:-1] for part in text.split(", ")]
    ops = []
    for part in text.split(", "):  # find the bad part for the message
        if len(part) < 2 or part[0] != "'" or part[-1] != "'" or not RE_OP.fullmatch(part[1:-1]):
            raise ValueError(f"not an operation string: {part!r}")
        ops.append(part[1:-1])
    return ops


def parse_state(line: str) -> tuple[int, tuple[int, ...], list[str]] | None:
    """``Current State: T:[...], Operations: [...]`` -> (T, nums, ops), or None when malformed."""
    m = RE_STATE.fullmatch(line)
    if m is None:
        return None
    try:
        return int(m.group(1)), parse_nums(m.group(2)), parse_ops(m.group(3))
    except ValueError:
        return None


def extract_answer_path(text: str) -> str | None:
    """The final answer path of a search trace, or None when the trace claims no solution.

    A solved trace ends with ``T,T equal: Goal Reached`` followed by the answer path, which
    itself ends with a goal line (section 2.7). The answer is the text between the last two
    *full* goal lines (the official `get_search_result` uses the substring ``Goal Reached``
    and a 13-character slice, which also matches ``<Goal Reached in Sub Search ...>``
    markers; matching whole lines is the structured version of the same rule). Lines after
    the final goal line (the SoS+ ``Exit Sub Search`` lines, flaw 5) are ignored.
    """
    goals: list[tuple[int, int]] = []  # (line start, line end) of full goal lines, last first
    pos = len(text)
    while len(goals) < 2:
        i = text.rfind(GOAL_REACHED, 0, pos)
        if i < 0:
            return None
        start = text.rfind("\n", 0, i) + 1
        end = text.find("\n", i)
        end = len(text) if end < 0 else end
        if RE_GOAL.fullmatch(text[start:end].strip()):
            goals.append((start, end))
        pos = i
    return "\n".join([line.strip() for line in text[goals[1][1] + 1 : goals[0][1]].split("\n")])
