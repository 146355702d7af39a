"""Per-step logging (CSV always, TensorBoard when installed, a rich progress bar) and checkpoints of GRPO.

Checkpoint = `checkpoint/state.pt`: the model's state dict, the optimizer's, the number of
finished steps and the config. Rollouts are seeded by (seed, step) and nothing else in a
step is random, so restoring these is enough to continue a run exactly. On resume the CSV
keeps only the rows of finished steps (a crash after logging but before checkpointing would
otherwise duplicate them).

What this module leaves to others: the training itself (`trainers.grpo`).
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
from pathlib import Path

import torch

CSV_NAME = "metrics.csv"


def save_checkpoint(folder: Path, model, optimizer, step: int, config) -> Path:
    """Write `folder`/state.pt atomically (a temporary file renamed), so a crash never leaves half a checkpoint."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "state.pt"
    tmp = folder / "state.pt.tmp"
    state = {
        "step": step,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "config": dataclasses.asdict(config),
    }
    torch.save(state, tmp)
    tmp.replace(path)
    return path


def load_checkpoint(folder: Path, model, optimizer) -> int:
    """Restore model and optimizer from `folder`/state.pt; returns the number of finished steps."""
    path = folder / "state.pt"
    if not path.exists():
        raise FileNotFoundError(
            f"--resume: no checkpoint at {path}; run without --resume first, with the same --out"
        )
    state = torch.load(path, map_location="cpu", weights_only=False)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    return int(state["step"])


class RunLog:
    """Appends one row of metrics per step to `out`/metrics.csv (and TensorBoard events).

    Args:
        out: the run folder.
        config: the run's config (its `tensorboard` flag, `progress` flag).
        resume_from: finished steps when resuming: CSV rows of later steps are dropped.
        enabled: False on non-main processes (they log nothing).
    """

    def __init__(self, out: Path, config, *, resume_from: int = 0, enabled: bool = True):
        self.enabled = enabled
        self.show_progress = config.progress and enabled
        self.path = Path(out) / CSV_NAME
        self._writer = None
        self._fields: list[str] | None = None
        if not enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume_from and self.path.exists():
            with self.path.open() as f:
                rows = [r for r in csv.DictReader(f) if int(r["step"]) <= resume_from]
            self._fields = list(rows[0]) if rows else None
            with self.path.open("w", newline="") as f:
                if rows:
                    w = csv.DictWriter(f, fieldnames=self._fields)
                    w.writeheader()
                    w.writerows(rows)
        elif self.path.exists():
            self.path.unlink()
        if config.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard not installed: CSV only
                SummaryWriter = None
            if SummaryWriter is not None:
                self._writer = SummaryWriter(str(Path(out) / "tensorboard"))

    def write(self, metrics: dict) -> None:
        if not self.enabled:
            return
        if self._fields is None:
            self._fields = list(metrics)
        new = not self.path.exists() or self.path.stat().st_size == 0
        with self.path.open("a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=self._fields)
            if new:
                w.writeheader()
            w.writerow({k: metrics.get(k) for k in self._fields})
        if self._writer is not None:
            for k, v in metrics.items():
                if k != "step":
                    self._writer.add_scalar(f"grpo/{k}", v, metrics["step"])

    @contextlib.contextmanager
    def progress(self, total: int, start: int):
        """A rich progress bar over steps; yields ``advance(metrics)``."""
        if not self.show_progress:
            yield lambda metrics: None
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        columns = (TextColumn("GRPO"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   TextColumn("{task.description}"))  # fmt: skip
        with Progress(*columns) as bar:
            task = bar.add_task("", total=total, completed=start)

            def advance(m: dict) -> None:
                desc = f"reward {m['reward']:.3f} acc {m['accuracy']:.2f} threads {m['threads']:.1f} loss {m['loss']:.4f}"
                bar.update(task, advance=1, description=desc)

            yield advance

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
