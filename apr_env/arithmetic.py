"""The arithmetic rules of Countdown: which two-number combinations are allowed.

Two rule sets:

- ``"apr"`` (default; reference section 1.2): for an unordered pair ``(a, b)`` the results
  are, in this order, ``a+b``, ``a*b``, larger minus smaller (may be 0, never negative) and,
  only when exact with a non-zero divisor, larger divided by smaller. Every intermediate
  value is a non-negative integer. The operation strings (``"84-23=61"``) are the official
  ones: operands in list order for ``+`` and ``*``, larger first for ``-`` and ``/``.
- ``"rational"``: free arithmetic over the rationals: ``a+b``, ``a*b``, ``a-b``, ``b-a``,
  ``a/b``, ``b/a`` (non-zero divisors), intermediate values may be negative or fractional.

Everything that enumerates moves (the exact solver, the symbolic agents, the verifier's
replay) goes through `combine` so the rules live in one place.
"""

from __future__ import annotations

from fractions import Fraction
from functools import lru_cache

RULES = ("apr", "rational")


def check_rules(rules: str) -> str:
    """Return `rules` if it names a known rule set, else raise `ValueError` listing them."""
    if rules not in RULES:
        from apr_env.errors import ConfigError

        raise ConfigError(f"rules={rules!r} is not a rule set; accepted: {', '.join(map(repr, RULES))}")
    return rules


@lru_cache(maxsize=1 << 16)
def combine(a: int, b: int) -> tuple[tuple[int, str], ...]:
    """All APR-rule results of combining ``a`` and ``b``, as ``(value, "a+b=v")`` pairs in official order.

    Memoised: the symbolic solvers call this for every expansion and the same small pairs
    recur constantly.
    """
    big, small = (b, a) if a <= b else (a, b)
    out = [
        (a + b, f"{a}+{b}={a + b}"),
        (a * b, f"{a}*{b}={a * b}"),
        (big - small, f"{big}-{small}={big - small}"),
    ]
    if small != 0 and big % small == 0:
        out.append((big // small, f"{big}/{small}={big // small}"))
    return tuple(out)


@lru_cache(maxsize=1 << 16)
def _apr_values(a: int, b: int) -> tuple[int, ...]:
    return tuple(v for v, _ in combine(a, b))


def combine_values(a, b, rules: str = "apr") -> tuple:
    """The values reachable in one step from ``a`` and ``b`` under `rules` (duplicates kept)."""
    if rules == "apr":
        return _apr_values(a, b)
    a, b = Fraction(a), Fraction(b)
    out = [a + b, a * b, a - b, b - a]
    if b != 0:
        out.append(a / b)
    if a != 0:
        out.append(b / a)
    return tuple(out)


def apply_op(a: int, op: str, b: int) -> int | None:
    """Result of ``a op b`` under APR rules, or None when the rules forbid it.

    Used by the verifier to replay a stated operation ``a op b = c``: subtraction must not go
    negative, division must be exact with a non-zero divisor.
    """
    if op == "+":
        return a + b
    if op == "*":
        return a * b
    if op == "-":
        return a - b if a >= b else None
    if op == "/":
        return a // b if b != 0 and a % b == 0 else None
    return None
