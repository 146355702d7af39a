"""Episode records on disk as JSON Lines, written as each episode finishes, so a failed run keeps them.

`RecordWriter` appends one line per record and flushes it at once: when the backend dies (or
the process is killed) every finished episode is already in the file. `load_records` reads a
file back, dropping a last line cut short by a kill mid-write (and `RecordWriter` in resume
mode cuts that partial line off before appending), so ``apr-env eval --resume`` can skip the
episodes already played. `check_resumable` makes sure the file belongs to the same run
(same problems, same seeds) before anything is skipped.

Not here: what a record holds (`runtime.runner`), summaries (`runtime.report`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

from apr_env.problem import Problem


def _complete_lines(path: Path) -> tuple[list[dict], int]:
    """Records of `path` and the byte length of its complete lines (a cut last line is left out)."""
    data = path.read_bytes()
    records, good = [], 0
    for raw in data.splitlines(keepends=True):
        if not raw.endswith(b"\n"):
            break  # the last line was cut short (killed while writing): not a record
        try:
            rec = json.loads(raw)
        except ValueError as err:
            raise ValueError(
                f"{path}: line {len(records) + 1} is not JSON ({err}); expected one episode record per line"
            ) from err
        if not isinstance(rec, dict) or not isinstance(rec.get("index"), int):
            raise ValueError(f"{path}: line {len(records) + 1} is not an episode record (no integer 'index')")
        records.append(rec)
        good += len(raw)
    return records, good


def load_records(path: str | Path) -> list[dict]:
    """The records of a JSON Lines file (empty when it does not exist); a cut last line is dropped."""
    path = Path(path)
    return _complete_lines(path)[0] if path.exists() else []


def check_resumable(
    records: Sequence[dict], problems: Sequence[Problem], seed_of: Callable[[int], int], path: str | Path
) -> None:
    """Raise ValueError unless every record is episode ``index`` of this run (same problem, same seed)."""
    for rec in records:
        i = rec["index"]
        if not 0 <= i < len(problems):
            raise ValueError(
                f"{path}: record index {i} is outside this run's {len(problems)} problems; "
                "resume with the same --n, --problem-seed and --seed, or write to a new --records file"
            )
        if rec.get("problem") != problems[i].info() or rec.get("seed") != seed_of(i):
            raise ValueError(
                f"{path}: record {i} ({rec.get('problem')}, seed {rec.get('seed')}) is not this run's episode "
                f"{i} ({problems[i].info()}, seed {seed_of(i)}); resume with the same --problem-seed and "
                "--seed, or write to a new --records file"
            )


class RecordWriter:
    """Append records to a JSON Lines file, one flushed line per record.

    Args:
        path: The file; its folder is created.
        resume: Keep the file's complete lines (and cut off a partial last one); otherwise start empty.
    """

    def __init__(self, path: str | Path, *, resume: bool = False):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume and self.path.exists():
            _, good = _complete_lines(self.path)
            with self.path.open("r+b") as f:
                f.truncate(good)
            self._file: IO[str] = self.path.open("a")
        else:
            self._file = self.path.open("w")
        self.written = 0

    def write(self, record: dict) -> None:
        """Append `record` and flush it to the operating system (it survives this process dying)."""
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        self.written += 1

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> RecordWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
