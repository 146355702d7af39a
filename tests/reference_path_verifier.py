"""The plain line-by-line answer-path replay that `apr_env.verifier.verify_path` must agree with.

`verify_path` is on the environments' hot path (every child claim and every root answer), so
it is tuned: lines are dispatched by their first character and stated number lists are
compared with the text of the current numbers. This is the straightforward version it
replaced (every line parsed and compared as numbers), kept as the oracle of a differential
test (`tests/test_verifier.py`): same verdict code and same reason on any text.
"""

from __future__ import annotations

from apr_env.arithmetic import apply_op
from apr_env.grammar import RE_EXPLORING, RE_GENERATED, RE_GOAL, RE_MOVING, RE_STATE, parse_nums
from apr_env.problem import Problem
from apr_env.verifier import (
    _CORRECT,
    _LONG_NUMBER,
    _MAX_PATH_DIGITS,
    DIVISION_BY_ZERO,
    DIVISION_NOT_EXACT,
    INCONSISTENT_STATE,
    NEGATIVE_RESULT,
    NO_GOAL,
    NOT_TARGET,
    NUMBER_REUSED,
    NUMBER_UNUSED,
    UNKNOWN_NUMBER,
    UNPARSEABLE,
    WRONG_ARITHMETIC,
    Verdict,
    _fail,
)


def _same_multiset(a: list[int], b: tuple[int, ...]) -> bool:
    return len(a) == len(b) and sorted(a) == sorted(b)


def reference_verify_path(problem: Problem, text: str) -> Verdict:
    """Replay an answer path line by line (see `apr_env.verifier.verify`)."""
    current = list(problem.numbers)
    seen = set(current)  # every value that existed at some point: tells "reused" from "unknown"
    target = problem.target
    last_op = None
    long_number = _LONG_NUMBER.search(text) is not None  # one scan; per line only when it is there
    for lineno, raw in enumerate(text.split("\n"), 1):
        line = raw.strip()
        if not line:
            continue
        if long_number and _LONG_NUMBER.search(line):
            return _fail(
                UNPARSEABLE,
                f"unparseable at line {lineno}: a number longer than {_MAX_PATH_DIGITS} digits",
                "path",
            )
        if line.startswith("Exploring Operation: "):
            m = RE_EXPLORING.fullmatch(line)
            if m is None:
                return _fail(UNPARSEABLE, f"unparseable at line {lineno}: {line[:80]!r}", "path")
            sa, op, sb, sc, stated_text = m.groups()
            a, b, c = int(sa), int(sb), int(sc)
            for x in (a, b) if a != b else (a,):
                need = 2 if a == b else 1
                have = current.count(x)
                if have < need:
                    if x in seen:
                        return _fail(NUMBER_REUSED, f"line {lineno}: {x} is not available any more", "path")
                    return _fail(
                        UNKNOWN_NUMBER, f"line {lineno}: {x} is not one of the available numbers", "path"
                    )
            result = apply_op(a, op, b)
            if result is None:
                if op == "-":
                    return _fail(NEGATIVE_RESULT, f"line {lineno}: {a}-{b} is negative", "path")
                if b == 0:
                    return _fail(DIVISION_BY_ZERO, f"line {lineno}: {a}/{b} divides by zero", "path")
                return _fail(DIVISION_NOT_EXACT, f"line {lineno}: {a}/{b} is not an exact division", "path")
            if result != c:
                return _fail(WRONG_ARITHMETIC, f"line {lineno}: {a}{op}{b} is {result}, not {c}", "path")
            current.remove(a)
            current.remove(b)
            current.append(c)
            seen.add(c)
            if stated_text == ", ".join(map(str, current)):  # same text: same multiset (the usual case)
                last_op = f"{sa}{op}{sb}={sc}"
                continue
            try:
                stated = parse_nums(stated_text)
            except ValueError:
                return _fail(UNPARSEABLE, f"unparseable at line {lineno}: bad number list", "path")
            if not _same_multiset(current, stated):
                return _fail(
                    INCONSISTENT_STATE,
                    f"line {lineno}: resulting numbers {list(stated)} should be {current}",
                    "path",
                )
            last_op = f"{sa}{op}{sb}={sc}"
        elif line.startswith("Current State: "):
            m = RE_STATE.fullmatch(line)
            if m is None:
                return _fail(UNPARSEABLE, f"unparseable at line {lineno}: {line[:80]!r}", "path")
            if m.group(1) == str(target) and m.group(2) == ", ".join(map(str, current)):
                continue
            try:
                nums = parse_nums(m.group(2))
            except ValueError:
                return _fail(UNPARSEABLE, f"unparseable at line {lineno}: bad number list", "path")
            if int(m.group(1)) != target or not _same_multiset(current, nums):
                return _fail(
                    INCONSISTENT_STATE,
                    f"line {lineno}: state {m.group(1)}:{list(nums)} should be {target}:{current}",
                    "path",
                )
        elif line.startswith("Generated Node #"):
            m = RE_GENERATED.fullmatch(line)
            if m is None:
                return _fail(UNPARSEABLE, f"unparseable at line {lineno}: {line[:80]!r}", "path")
            try:
                nums = parse_nums(m.group(3))
            except ValueError:
                return _fail(UNPARSEABLE, f"unparseable at line {lineno}: bad number list", "path")
            op = f"{m.group(4)}{m.group(5)}{m.group(6)}={m.group(7)}"
            if int(m.group(2)) != target or op != last_op or not _same_multiset(current, nums):
                return _fail(
                    INCONSISTENT_STATE, f"line {lineno}: node does not match the last operation", "path"
                )
        elif line.startswith("Moving to Node #"):
            if RE_MOVING.fullmatch(line) is None:
                return _fail(UNPARSEABLE, f"unparseable at line {lineno}: {line[:80]!r}", "path")
        else:
            m = RE_GOAL.fullmatch(line)
            if m is None:
                return _fail(UNPARSEABLE, f"unparseable at line {lineno}: {line[:80]!r}", "path")
            x, t = int(m.group(1)), int(m.group(2))
            if len(current) > 1:
                return _fail(
                    NUMBER_UNUSED, f"line {lineno}: goal claimed with numbers {current} left", "path"
                )
            if t != target or x != target or current != [target]:
                return _fail(
                    NOT_TARGET, f"line {lineno}: reached {current[0]}, the target is {target}", "path"
                )
            return _CORRECT["path"]
    return _fail(NO_GOAL, "the path has no 'Goal Reached' line", "path")
