"""The Countdown problem record and its file formats.

A `Problem` is a target plus a multiset of input numbers. It reads and writes the official
APR problem layout (a JSON list of objects with `nums`, `target`, `solution`, `start_size`,
reference section 1.3) and JSON Lines with the same fields. Solving and verifying live in
`solver.py` and `verifier.py`; generation in `generator.py`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

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


def load_problems(path: str | os.PathLike) -> list[Problem]:
    """Read problems from a JSON list (official layout) or JSON Lines (``.jsonl``) file."""
    path = Path(path)
    text = path.read_text()
    stripped = text.lstrip()
    if path.suffix == ".jsonl" or (stripped and not stripped.startswith("[")):
        records = []
        for lineno, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as err:
                    raise ProblemFormatError(f"{path}:{lineno}: not a JSON object: {err}") from err
    else:
        records = json.loads(text)
        if not isinstance(records, list):
            raise ProblemFormatError(f"{path}: expected a JSON list of problem objects")
    return [Problem.from_dict(r) for r in records]


def save_problems(
    problems: Iterable[Problem], path: str | os.PathLike, *, with_solution: bool = True
) -> Path:
    """Write problems in the official JSON list layout, or JSON Lines when `path` ends in ``.jsonl``.

    With `with_solution`, each record carries one solution as the official list of operation
    strings (e.g. ``["84-23=61", ...]``), found by `apr_env.solver.first_solution_ops`.
    """
    from apr_env.solver import first_solution_ops  # solver imports problem; keep the cycle lazy

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    records = [p.to_dict(solution=first_solution_ops(p) if with_solution else None) for p in problems]
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
    else:
        path.write_text(json.dumps(records, indent=4))
    return path
