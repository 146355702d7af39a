"""Files of Countdown problems: the official APR JSON layout and JSON Lines.

The official layout is a JSON list of objects with `nums`, `target`, `solution` and
`start_size` (reference section 1.3); JSON Lines carries the same fields one object per line.
Saving with solutions needs the solver, so this module sits above both `problem.py` and
`solver.py` (which imports `problem.py`): no import cycle.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from apr_env.errors import ProblemFormatError
from apr_env.problem import Problem
from apr_env.solver import first_solution_ops


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
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    records = [p.to_dict(solution=first_solution_ops(p) if with_solution else None) for p in problems]
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
    else:
        path.write_text(json.dumps(records, indent=4))
    return path
