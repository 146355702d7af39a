"""Strict, safe answer checking for Countdown.

`verify(problem, answer)` accepts two answer forms and returns a `Verdict`:

- an infix expression over integers with ``+ - * /``, parentheses and whitespace, optionally
  followed by ``= <int>`` (``26+(53-31)/22``). It is parsed by our own iterative
  shunting-yard parser (no ``eval``, no sympy, no recursion, so nesting depth cannot blow the
  stack) and evaluated with exact arithmetic;
- an APR/SoS answer path (``Moving to Node`` / ``Current State`` / ``Exploring Operation`` /
  ``Generated Node`` / ``... equal: Goal Reached`` lines, reference section 2.7), replayed
  operation by operation against the multiset of numbers. Stated results and states must
  agree with the replay (the official SoS+ checker skipped this, flaw 18).

Every input number must be used exactly once. Rules: ``"apr"`` (default: intermediate values
are non-negative integers, division exact), ``"rational"`` (free rational arithmetic;
expressions only, paths are integer by grammar) or ``"reasoning_gym"`` (the verdicts of
reasoning-gym's Countdown ``score_answer``: Python's expression syntax with unary signs, no
``= T``, no leading zeros, rational arithmetic; expressions only; see
`apr_env.reasoning_gym_rules` for the grammar and the documented differences).

Never raises on any `answer` value and never hangs: text longer than `max_length` is
rejected by length before any parsing, and every step is linear in the text.
"""

from __future__ import annotations

import re
from fractions import Fraction

from apr_env.arithmetic import RULES, apply_op
from apr_env.errors import ConfigError
from apr_env.grammar import RE_EXPLORING, RE_GENERATED, RE_GOAL, RE_MOVING, RE_STATE, parse_nums
from apr_env.problem import Problem
from apr_env.reasoning_gym_rules import verify_expression_rg
from apr_env.verdict import (  # the codes are part of this module's interface too (`verifier.OK`, ...)
    DIVISION_BY_ZERO,
    DIVISION_NOT_EXACT,
    EMPTY,
    INCONSISTENT_STATE,
    NEGATIVE_RESULT,
    NO_GOAL,
    NOT_TARGET,
    NOT_TEXT,
    NUMBER_REUSED,
    NUMBER_UNUSED,
    OK,
    TOO_LONG,
    UNKNOWN_NUMBER,
    UNPARSEABLE,
    WRONG_ARITHMETIC,
    Verdict,
)

RULE_SETS = (*RULES, "reasoning_gym")
"""The `rules` `verify` accepts: the arithmetic rule sets plus reasoning-gym's verdicts."""

MAX_LENGTH = 10_000
"""Default size limit in characters (an answer path for 6 numbers is about 1,500)."""

_CORRECT = {form: Verdict(True, OK, "correct", form) for form in ("expression", "path")}


def _fail(code: str, reason: str, form: str) -> Verdict:
    return Verdict(False, code, reason, form)


def verify(problem: Problem, answer, *, rules: str = "apr", max_length: int = MAX_LENGTH) -> Verdict:
    """Check `answer` against `problem`; see the module docstring for the accepted forms.

    Args:
        problem: the numbers and target. For a child thread's claim, the child's start
            state (e.g. ``Problem(83, (84, 2816))``).
        answer: any value; only a `str` can be correct.
        rules: ``"apr"``, ``"rational"`` or ``"reasoning_gym"``.
        max_length: texts longer than this are rejected unread (code ``too_long``).

    Returns:
        A `Verdict`. Examples: ``verify(Problem(24, (4, 6, 1, 1)), "4*6*1*1").correct`` is
        True; ``verify(Problem(24, (4, 6, 1, 1)), "4*6").code == "number_unused"``.

    Raises:
        ConfigError: `rules` is not one of `RULE_SETS` (a `ValueError`).
    """
    if rules not in RULE_SETS:
        raise ConfigError(f"rules={rules!r} is not a rule set; accepted: {', '.join(map(repr, RULE_SETS))}")
    if not isinstance(answer, str):
        return _fail(NOT_TEXT, f"answer must be a str, got {type(answer).__name__}", "none")
    if len(answer) > max_length:
        return _fail(TOO_LONG, f"answer is {len(answer)} characters; the limit is {max_length}", "none")
    if rules == "reasoning_gym":
        if not answer.strip():
            return _fail(EMPTY, "answer is empty", "none")
        return verify_expression_rg(problem, answer)
    if "Goal Reached" in answer or "Exploring Operation" in answer or "Current State" in answer:
        return verify_path(problem, answer)
    if not answer.strip():
        return _fail(EMPTY, "answer is empty", "none")
    return verify_expression(problem, answer, rules=rules)


# --------------------------------------------------------------------------------------
# Expressions
# --------------------------------------------------------------------------------------

_TOKENS = re.compile(r"\d+|\S", re.ASCII)
_PREC = {"+": 1, "-": 1, "*": 2, "/": 2}
_DIGITS = frozenset("0123456789")  # ASCII only: int() would also accept other scripts' digits


def _position(text: str, k: int) -> int:
    """Character offset of token `k` (only computed on the error path)."""
    for i, m in enumerate(_TOKENS.finditer(text)):
        if i == k:
            return m.start()
    return len(text)


def _counts(numbers: tuple[int, ...]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for n in numbers:
        counts[n] = counts.get(n, 0) + 1
    return counts


def _apply(op: str, a, b, rules: str):
    """Return the value, or an (code, reason) tuple when the rules forbid the operation."""
    if op == "+":
        return a + b
    if op == "*":
        return a * b
    if op == "-":
        if rules == "apr" and a < b:
            return (NEGATIVE_RESULT, f"{a}-{b} is negative; APR rules allow only non-negative results")
        return a - b
    if b == 0:
        return (DIVISION_BY_ZERO, f"{a}/{b} divides by zero")
    if rules == "apr":
        if a % b:
            return (DIVISION_NOT_EXACT, f"{a}/{b} is not an exact division")
        return a // b
    result = Fraction(a) / b
    return result.numerator if result.denominator == 1 else result


def verify_expression(problem: Problem, text: str, *, rules: str = "apr") -> Verdict:
    """Verify an infix expression (see `verify`); `text` must already be length-checked."""
    tokens = _TOKENS.findall(text)
    counts = _counts(problem.numbers)
    values: list = []
    ops: list[str] = []
    expect_operand = True
    stated = None

    def reduce_top() -> Verdict | None:
        op = ops.pop()
        b = values.pop()
        a = values.pop()
        result = _apply(op, a, b, rules)
        if type(result) is tuple:
            return _fail(result[0], result[1], "expression")
        values.append(result)
        return None

    for k, tok in enumerate(tokens):
        if expect_operand:
            if tok[0] in _DIGITS:
                if len(tok) > 30:
                    return _fail(UNKNOWN_NUMBER, f"{tok[:12]}... is not one of the numbers", "expression")
                n = int(tok)
                left = counts.get(n)
                if left is None:
                    return _fail(
                        UNKNOWN_NUMBER, f"{n} is not one of the numbers {list(problem.numbers)}", "expression"
                    )
                if left == 0:
                    return _fail(NUMBER_REUSED, f"{n} is used more times than it is given", "expression")
                counts[n] = left - 1
                values.append(n)
                expect_operand = False
            elif tok == "(":
                ops.append(tok)
            else:
                return _fail(
                    UNPARSEABLE,
                    f"unparseable at position {_position(text, k)}: expected a number or '(', got {tok!r}",
                    "expression",
                )
        elif tok in _PREC:
            prec = _PREC[tok]
            while ops and ops[-1] != "(" and _PREC[ops[-1]] >= prec:
                bad = reduce_top()
                if bad:
                    return bad
            ops.append(tok)
            expect_operand = True
        elif tok == ")":
            while ops and ops[-1] != "(":
                bad = reduce_top()
                if bad:
                    return bad
            if not ops:
                return _fail(
                    UNPARSEABLE, f"unparseable at position {_position(text, k)}: unmatched ')'", "expression"
                )
            ops.pop()
        elif tok == "=" and k == len(tokens) - 2 and tokens[-1][0] in _DIGITS and len(tokens[-1]) <= 30:
            stated = int(tokens[-1])
            break
        else:
            return _fail(
                UNPARSEABLE,
                f"unparseable at position {_position(text, k)}: expected an operator or ')', got {tok!r}",
                "expression",
            )
    if expect_operand:
        return _fail(
            UNPARSEABLE, f"unparseable at position {len(text)}: the expression ends early", "expression"
        )
    while ops:
        if ops[-1] == "(":
            return _fail(UNPARSEABLE, f"unparseable at position {len(text)}: unclosed '('", "expression")
        bad = reduce_top()
        if bad:
            return bad
    unused = [n for n, c in counts.items() for _ in range(c)]
    if unused:
        return _fail(NUMBER_UNUSED, f"numbers not used: {unused}", "expression")
    value = values[0]
    if value != problem.target:
        return _fail(
            NOT_TARGET, f"the expression equals {value}, not the target {problem.target}", "expression"
        )
    if stated is not None and stated != problem.target:
        return _fail(
            NOT_TARGET, f"the stated result {stated} is not the target {problem.target}", "expression"
        )
    return _CORRECT["expression"]


# --------------------------------------------------------------------------------------
# Answer paths
# --------------------------------------------------------------------------------------


# Longest digit run a path line may hold. int() refuses more than sys.get_int_max_str_digits()
# digits (default 4,300, never below 640) with a ValueError, so longer runs are rejected first.
_MAX_PATH_DIGITS = 600
_LONG_NUMBER = re.compile(rf"\d{{{_MAX_PATH_DIGITS + 1}}}", re.ASCII)


def _same_numbers(current: list[int], stated: str) -> bool:
    """Is the stated list text (``"26, 31"``) the multiset `current`? False when it does not parse."""
    try:
        nums = parse_nums(stated)
    except ValueError:
        return False
    return len(nums) == len(current) and sorted(nums) == sorted(current)


def _numbers_fail(lineno: int, current: list[int], stated: str, message: str) -> Verdict:
    """The verdict for a stated number list that is not `current`: unparseable, or inconsistent
    (`message` may hold ``{stated}``, filled with the parsed list)."""
    try:
        nums = list(parse_nums(stated))
    except ValueError:
        return _fail(UNPARSEABLE, f"unparseable at line {lineno}: bad number list", "path")
    return _fail(INCONSISTENT_STATE, f"line {lineno}: " + message.format(stated=nums), "path")


def _unavailable(lineno: int, a: int, b: int, current: list[int], seen: set[int]) -> Verdict:
    """The verdict for an operation on a number that is not available (checked in the order a, b)."""
    missing = a if a not in current or (a == b and current.count(a) < 2) else b
    if missing in seen:
        return _fail(NUMBER_REUSED, f"line {lineno}: {missing} is not available any more", "path")
    return _fail(UNKNOWN_NUMBER, f"line {lineno}: {missing} is not one of the available numbers", "path")


def _bad_operation(lineno: int, a: int, op: str, b: int, c: int, result: int | None) -> Verdict:
    """The verdict for an operation the rules forbid (`result` None) or whose stated result is wrong."""
    if result is None:
        if op == "-":
            return _fail(NEGATIVE_RESULT, f"line {lineno}: {a}-{b} is negative", "path")
        if b == 0:
            return _fail(DIVISION_BY_ZERO, f"line {lineno}: {a}/{b} divides by zero", "path")
        return _fail(DIVISION_NOT_EXACT, f"line {lineno}: {a}/{b} is not an exact division", "path")
    return _fail(WRONG_ARITHMETIC, f"line {lineno}: {a}{op}{b} is {result}, not {c}", "path")


def _unparseable(lineno: int, line: str) -> Verdict:
    return _fail(UNPARSEABLE, f"unparseable at line {lineno}: {line[:80]!r}", "path")


def verify_path(problem: Problem, text: str) -> Verdict:
    """Replay an answer path (see `verify`); `text` must already be length-checked.

    Lines are told apart by their first character (every line kind starts with a different
    one; a line that matches none of the patterns is unparseable whatever it starts with).
    Stated number lists are compared with the text of the current numbers first (kept up to
    date per operation) and parsed only when that text differs.
    """
    current = list(problem.numbers)
    current_text = ", ".join(map(str, current))
    seen = set(current)  # every value that existed at some point: tells "reused" from "unknown"
    target = problem.target
    target_text = str(target)
    last_op = None  # (a, op, b, c) strings of the last replayed operation
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
        head = line[0]
        if head == "E":
            m = RE_EXPLORING.fullmatch(line)
            if m is None:
                return _unparseable(lineno, line)
            sa, op, sb, sc, stated = m.groups()
            a, b, c = int(sa), int(sb), int(sc)
            if a not in current or b not in current or (a == b and current.count(a) < 2):
                return _unavailable(lineno, a, b, current, seen)
            result = apply_op(a, op, b)
            if result != c:
                return _bad_operation(lineno, a, op, b, c, result)
            current.remove(a)
            current.remove(b)
            current.append(c)
            seen.add(c)
            current_text = ", ".join(map(str, current))
            if stated != current_text and not _same_numbers(current, stated):
                return _numbers_fail(
                    lineno, current, stated, f"resulting numbers {{stated}} should be {current}"
                )
            last_op = (sa, op, sb, sc)
        elif head == "C":
            m = RE_STATE.fullmatch(line)
            if m is None:
                return _unparseable(lineno, line)
            stated_target, stated = m.group(1, 2)
            if stated != current_text and not _same_numbers(current, stated):
                return _numbers_fail(
                    lineno, current, stated, f"state {stated_target}:{{stated}} should be {target}:{current}"
                )
            if stated_target != target_text and int(stated_target) != target:
                return _fail(
                    INCONSISTENT_STATE,
                    f"line {lineno}: state {stated_target}:{list(parse_nums(stated))} should be {target}:{current}",
                    "path",
                )
        elif head == "G":
            m = RE_GENERATED.fullmatch(line)
            if m is None:
                return _unparseable(lineno, line)
            stated = m.group(3)
            if stated != current_text and not _same_numbers(current, stated):
                return _numbers_fail(lineno, current, stated, "node does not match the last operation")
            if m.group(4, 5, 6, 7) != last_op or (m.group(2) != target_text and int(m.group(2)) != target):
                return _fail(
                    INCONSISTENT_STATE, f"line {lineno}: node does not match the last operation", "path"
                )
        elif head == "M":
            if RE_MOVING.fullmatch(line) is None:
                return _unparseable(lineno, line)
        else:
            m = RE_GOAL.fullmatch(line)
            if m is None:
                return _unparseable(lineno, line)
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
