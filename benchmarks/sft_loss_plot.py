"""Loss curve (and tokens/s) of an SFT run's ``metrics.csv`` as a PNG.

.venv/bin/python benchmarks/sft_loss_plot.py runs/sft-small/metrics.csv benchmarks/results/sft_small/loss.png
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path


def plot(metrics: str | Path, out: str | Path, title: str = "SFT") -> Path:
    """Write loss vs non-padding input tokens (and tokens/s vs step) from `metrics` to `out`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(metrics) as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"{metrics} has no logged steps")
    tokens = [int(r["tokens"]) / 1e3 for r in rows]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    a.plot(tokens, [float(r["loss"]) for r in rows], marker=".")
    a.set_xlabel("input tokens trained (thousands)")
    a.set_ylabel("loss (nats per generated token)")
    a.set_yscale("log")
    a.set_title(title)
    b.plot([int(r["step"]) for r in rows], [float(r["tokens_per_s"]) for r in rows], marker=".")
    b.set_xlabel("step")
    b.set_ylabel("input tokens/s")
    b.set_title("throughput")
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


if __name__ == "__main__":
    print(plot(sys.argv[1], sys.argv[2], *(sys.argv[3:4])))
