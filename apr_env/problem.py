"""The Countdown problem record and its file formats.

A `Problem` is a target plus a multiset of input numbers, convertible to and from one record of
the official APR problem layout (`nums`, `target`, `solution`, `start_size`, reference section
1.3). Files of problems live in `problem_files.py`, solving and verifying in `solver.py` and
`verifier.py`, generation in `generator.py`; this module imports none of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from apr_env.errors import ProblemFormatError


@dataclass(frozen=True)
class Problem:
    """One Countdown instance: reach `target` by combining every number in `numbers` once.

    Args:
        target: the value to reach (a non-negative integer).
        numbers: the input numbers (non-negative integers, order kept as given: the trace
            grammar prints them in this order). Intermediate states of a search are also
            problems (a child thread's start state, e.g. ``83:[84, 2816]``), so values are
            not limited to the generator's range.
    """

    target: int
    numbers: tuple[int, ...]

    def __post_init__(self) -> None:
        numbers = self.numbers
        if isinstance(numbers, (str, bytes)) or not isinstance(numbers, Iterable):
            raise ProblemFormatError(f"Problem.numbers must be a sequence of ints, got {numbers!r}")
        numbers = tuple(numbers)
        for name, value in [("target", self.target), *(("numbers", n) for n in numbers)]:
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ProblemFormatError(
                    f"Problem.{name} must hold non-negative ints, got {value!r}; "
                    f"e.g. Problem(target=24, numbers=(4, 6, 1, 1))"
                )
        if not numbers:
            raise ProblemFormatError("Problem.numbers is empty; a problem needs at least one number")
        object.__setattr__(self, "numbers", numbers)

    @classmethod
    def trusted(cls, target: int, numbers: tuple[int, ...]) -> Problem:
        """Build without validation, for values the caller parsed as non-negative ints (hot paths only)."""
        problem = object.__new__(cls)
        object.__setattr__(problem, "target", target)
        object.__setattr__(problem, "numbers", numbers)
        return problem

    @property
    def key(self) -> tuple[tuple[int, ...], int]:
        """Identity used for de-duplication across splits: (sorted numbers, target)."""
        return (tuple(sorted(self.numbers)), self.target)

    def to_dict(self, *, solution: Sequence[str] | None = None) -> dict:
        """The official layout: ``{"nums": [...], "target": T, "start_size": n[, "solution": [...]]}``."""
        record: dict = {"nums": list(self.numbers), "target": self.target, "start_size": len(self.numbers)}
        if solution is not None:
            record["solution"] = list(solution)
        return record

    @classmethod
    def from_dict(cls, record: dict) -> Problem:
        """Read an official record (``nums``/``target``; ``numbers`` accepted too; extra keys ignored)."""
        if not isinstance(record, dict):
            raise ProblemFormatError(f"a problem record must be a dict, got {type(record).__name__}")
        nums = record.get("nums", record.get("numbers"))
        if nums is None or "target" not in record:
            raise ProblemFormatError(
                f"a problem record needs 'nums' (or 'numbers') and 'target'; got keys {sorted(record)}"
            )
        return cls(target=record["target"], numbers=tuple(nums))

    @classmethod
    def coerce(cls, value) -> Problem:
        """`value` itself when it is a Problem, else `from_dict(value)`."""
        return value if isinstance(value, cls) else cls.from_dict(value)

    def info(self) -> dict:
        """``{"target", "numbers"}``: the problem as the environments report it in ``info``."""
        return {"target": self.target, "numbers": list(self.numbers)}

    def __str__(self) -> str:
        return f"{self.target}:{list(self.numbers)}"
