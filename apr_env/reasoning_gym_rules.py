r"""Expression checking that agrees with reasoning-gym: ``verify(..., rules="reasoning_gym")``.

reasoning-gym's Countdown ``score_answer`` (``reasoning_gym/games/countdown.py``, 0.1.25) gives
1.0 when ``float(sympy.parse_expr(answer))`` is ``np.isclose`` to the target (``atol=1e-6`` and
numpy's default ``rtol=1e-5``) and the integers in the text (regex ``\b\d+\b``) are the
problem's numbers as a multiset; anything else scores 0.05 or 0.01. ``parse_expr`` strips the
text, tokenizes it as Python, wraps each integer in ``Integer(...)`` and runs it with ``eval``,
so its grammar is Python's and its arithmetic sympy's. This module gives the same verdicts
(correct exactly when reasoning-gym scores 1.0) without eval or sympy, with a bounded,
iterative, exact parser like `apr_env.verifier`'s.

An answer is correct here when, after ``str.strip()`` (as ``parse_expr`` does):

- it is an infix expression over non-negative decimal integers with binary ``+ - * /``,
  unary ``+`` and ``-`` (any number of them; they bind tighter than ``*`` and ``/``, as in
  Python, so ``2*-3`` is ``2*(-3)``) and parentheses;
- no integer has a leading zero (``04`` is a Python syntax error; all-zero runs such as
  ``00`` are zero), and none has more digits than ``sys.get_int_max_str_digits()`` allows;
- tokens are separated only by spaces, tabs and form feeds, plus line breaks (``\n``,
  ``\r``) inside parentheses (outside them a line break ends Python's logical line);
- parentheses nest at most 199 deep (CPython refuses 200 levels once each number is wrapped
  in ``Integer(...)``);
- there is no ``= T`` (reasoning-gym scores ``4*6 = 24`` 0.01 because ``=`` is a syntax error);
- every number is used exactly once and the exact rational value equals the target.

Answer paths are not recognised under these rules (reasoning-gym scores them 0.01).

Differences from reasoning-gym, on purpose (each pinned by a row of ``DIFFERENCES`` in
``tests/test_reasoning_gym_rules.py``):

==============================  ==============  ==================  =========================================
answer (problem)                reasoning-gym   here                why
==============================  ==============  ==================  =========================================
``4*6*1**1`` (24; 4 6 1 1)      1.0             unparseable         unsafe: ``**`` and any other Python
                                                                    (``//``, ``%``, ``!``, names, calls,
                                                                    ``#`` comments, ``\`` continuations,
                                                                    float literals like ``1.``) is run by
                                                                    eval; ``**`` can also take unbounded
                                                                    time and memory
``5*100+(99-98)/(97*96)``       1.0             not_target          inexact: ``isclose`` accepts values
(500; 5 100 99 98 97 96)                                            within ``1e-6 + 1e-5 * target``
``5+2/(3/(3-3))`` (5; 5 2 3 3   1.0             division_by_zero    inexact: sympy makes ``3/0`` complex
3)                                                                  infinity and ``2/zoo`` zero
about 3,000 unary signs in a    0.01            judged as usual     CPython's parser stack overflows; the
row                                                                 exact count depends on the context
a value or target beyond        0.01            judged exactly      ``float`` overflows
float range (~1.8e308)
longer than ``max_length``      judged          too_long            bounded work on any input
a non-``str`` answer            raises          not_text            ``verify`` never raises on an answer
                                (None: 0.01)
==============================  ==============  ==================  =========================================
"""

from __future__ import annotations

import re
from collections import Counter
from fractions import Fraction

from apr_env.problem import Problem
from apr_env.verdict import (
    DIVISION_BY_ZERO,
    NOT_TARGET,
    NUMBER_REUSED,
    NUMBER_UNUSED,
    UNKNOWN_NUMBER,
    UNPARSEABLE,
    Verdict,
)

MAX_DEPTH = 199
"""Deepest parenthesis nesting Python accepts here (its tokenizer stops at 200 levels, and
``parse_expr`` adds one level around every integer)."""

# Integers, runs of signs (one token, so that 10,000 unary minus signs cost one str.count), then
# any single character except the in-line whitespace Python skips. Line breaks and every other
# character (\v, \xa0, letters) come through as one-character tokens.
_TOKENS = re.compile(r"\d+|[-+](?:[ \t\f]*[-+])*|[^ \t\f]", re.ASCII)
_PREC = {"+": 1, "-": 1, "*": 2, "/": 2, "neg": 3}
_BREAKS = frozenset("\n\r")
_DIGITS = frozenset("0123456789")
_CORRECT = Verdict(True, "ok", "correct", "expression")


def _fail(code: str, reason: str) -> Verdict:
    return Verdict(False, code, reason, "expression")


def _unparseable(text: str, k: int, what: str, offset: int) -> Verdict:
    """Unparseable at token `k` of the stripped `text`, which starts at `offset` in the answer.

    The character position is only computed here, on the error path.
    """
    position = len(text)
    for i, m in enumerate(_TOKENS.finditer(text)):
        if i == k:
            position = m.start()
            break
    return _fail(UNPARSEABLE, f"unparseable at position {offset + position}: {what}")


def verify_expression_rg(problem: Problem, text: str) -> Verdict:
    """Verify an expression as reasoning-gym would (see the module docstring).

    Args:
        problem: the numbers and target.
        text: the answer, already checked by `apr_env.verifier.verify` to be a non-blank
            `str` within its length limit.

    Returns:
        A `Verdict` with ``form="expression"``; its codes are those of `apr_env.verdict`.
    """
    offset = len(text) - len(text.lstrip())
    end = len(text.rstrip())
    text = text.strip()
    tokens = _TOKENS.findall(text)
    counts = Counter(problem.numbers)
    values: list = []
    ops: list[str] = []
    depth = 0
    expect_operand = True

    def reduce_top() -> Verdict | None:
        op = ops.pop()
        if op == "neg":
            values[-1] = -values[-1]
            return None
        b = values.pop()
        a = values.pop()
        if op == "+":
            values.append(a + b)
        elif op == "-":
            values.append(a - b)
        elif op == "*":
            values.append(a * b)
        elif b == 0:
            return _fail(DIVISION_BY_ZERO, f"{a}/{b} divides by zero")
        else:  # exact: an int when whole, else a Fraction
            q = Fraction(a) / b
            values.append(q.numerator if q.denominator == 1 else q)
        return None

    for k, tok in enumerate(tokens):
        if tok in _BREAKS:
            if depth:
                continue
            return _unparseable(text, k, "a line break outside parentheses ends the expression", offset)
        if expect_operand:
            if tok[0] in _DIGITS:
                if tok[0] == "0" and len(tok) > 1 and tok.strip("0"):
                    return _unparseable(text, k, f"{tok[:12]} has a leading zero", offset)
                try:
                    n = int(tok)
                except ValueError:  # more digits than sys.get_int_max_str_digits()
                    return _fail(UNKNOWN_NUMBER, f"a {len(tok)}-digit number is not one of the numbers")
                left = counts.get(n)
                if left is None:
                    return _fail(UNKNOWN_NUMBER, f"{n} is not one of the numbers {list(problem.numbers)}")
                if left == 0:
                    return _fail(NUMBER_REUSED, f"{n} is used more times than it is given")
                counts[n] = left - 1
                values.append(n)
                expect_operand = False
            elif tok == "(":
                depth += 1
                if depth > MAX_DEPTH:
                    return _unparseable(text, k, f"parentheses nest deeper than {MAX_DEPTH}", offset)
                ops.append(tok)
            elif tok[0] in "+-":  # unary signs: only the parity of the minus signs matters
                if tok.count("-") % 2:
                    ops.append("neg")
            else:
                return _unparseable(text, k, f"expected a number, '(' or a sign, got {tok!r}", offset)
        elif tok[0] in _PREC:  # a binary operator, maybe followed by unary signs ("4--6")
            op = tok[0]
            prec = _PREC[op]
            while ops and ops[-1] != "(" and _PREC[ops[-1]] >= prec:
                bad = reduce_top()
                if bad:
                    return bad
            ops.append(op)
            if tok.count("-", 1) % 2:
                ops.append("neg")
            expect_operand = True
        elif tok == ")":
            while ops and ops[-1] != "(":
                bad = reduce_top()
                if bad:
                    return bad
            if not ops:
                return _unparseable(text, k, "unmatched ')'", offset)
            ops.pop()
            depth -= 1
        elif tok == "=":
            return _unparseable(
                text, k, "'= T' is not accepted (reasoning-gym scores it as a syntax error)", offset
            )
        else:
            return _unparseable(text, k, f"expected an operator or ')', got {tok!r}", offset)
    if expect_operand:
        return _fail(UNPARSEABLE, f"unparseable at position {end}: the expression ends early")
    while ops:
        if ops[-1] == "(":
            return _fail(UNPARSEABLE, f"unparseable at position {end}: unclosed '('")
        bad = reduce_top()
        if bad:
            return bad
    unused = list(counts.elements())
    if unused:
        return _fail(NUMBER_UNUSED, f"numbers not used: {unused}")
    if values[0] != problem.target:
        return _fail(NOT_TARGET, f"the expression equals {values[0]}, not the target {problem.target}")
    return _CORRECT
