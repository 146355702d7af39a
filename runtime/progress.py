"""One progress-bar helper for every long job (runner, benchmark sweeps, trace building)."""

from __future__ import annotations


class _Silent:
    """Stands in for a bar when progress is off, so callers need no `if bar:` checks."""

    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def progress_bar(total: int, *, enabled: bool = True, desc: str = "", unit: str = "it"):
    """A tqdm bar (imported lazily), or a silent stand-in with the same `update`/`close`."""
    if not enabled:
        return _Silent()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit)
