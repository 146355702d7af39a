"""What answer checking returns: `Verdict` and its stable codes.

Shared by `apr_env.verifier` (which re-exports them: ``verifier.OK`` and so on) and
`apr_env.reasoning_gym_rules`, so that neither imports the other's internals. Checking itself
lives in those modules.
"""

from __future__ import annotations

from dataclasses import dataclass

# Verdict codes: stable strings for programs; `Verdict.reason` is the sentence for people.
OK = "ok"
EMPTY = "empty"
NOT_TEXT = "not_text"
TOO_LONG = "too_long"
UNPARSEABLE = "unparseable"
UNKNOWN_NUMBER = "unknown_number"
NUMBER_REUSED = "number_reused"
NUMBER_UNUSED = "number_unused"
WRONG_ARITHMETIC = "wrong_arithmetic"
NEGATIVE_RESULT = "negative_result"
DIVISION_BY_ZERO = "division_by_zero"
DIVISION_NOT_EXACT = "division_not_exact"
NOT_TARGET = "not_target"
INCONSISTENT_STATE = "inconsistent_state"
NO_GOAL = "no_goal"


@dataclass(frozen=True)
class Verdict:
    """Outcome of `verify`: `correct`, a stable `code` and a human `reason`."""

    correct: bool
    code: str
    reason: str
    form: str = "expression"
    """'expression', 'path' or 'none' (nothing parseable was given)."""
