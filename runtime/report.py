"""Episode records summarised as table rows, and the rows printed: shared by `apr-env eval` and
`apr-env bench`.

It sits in the runtime layer (records are what the runner returns) so the evaluation command,
the benchmarks and the trainers' evaluations all report the same numbers the same way.
"""

from __future__ import annotations

import math
import statistics
import sys


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion (95% for z = 1.96); (0, 1) when n = 0.

    Unlike the normal approximation it stays inside [0, 1] and is sensible at 0 or n successes,
    which small evaluations of weak models hit often.
    """
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def summarize(
    records: list[dict], *, protocol: str, knob: str, value, windows: list[int], seconds: float
) -> dict:
    """Aggregate episode records (`runtime.runner.run_episodes` output) into one table row.

    Args:
        records: one dict per episode, with ``correct``, ``truncated``, ``metrics`` and ``tree``.
        protocol: the protocol the episodes ran under (labels the row; self-consistency rows
            also get pass@N from the root's children).
        knob, value: what distinguishes this row (a benchmark's sweep knob, or the agent name).
        windows: context windows for the cumulative-accuracy columns (solved with every
            thread's context within the window, as the paper's Fig. 4b).
        seconds: wall time the episodes took.
    """
    n = len(records)

    def mean(key: str) -> float:
        return statistics.fmean(r["metrics"][key] for r in records)

    correct = [r["correct"] for r in records]
    contexts = sorted(r["metrics"]["max_context_tokens"] for r in records)
    point = {
        "protocol": protocol,
        "knob": knob,
        "value": value,
        "episodes": n,
        "accuracy": sum(correct) / n,
        "accuracy_ci95": list(wilson_interval(sum(correct), n)),
        "total_tokens": mean("total_tokens"),
        "critical_path_tokens": mean("critical_path_tokens"),
        "prefill_tokens": mean("prefill_tokens"),
        "longest_thread_tokens": mean("longest_thread_tokens"),
        "max_context_tokens": mean("max_context_tokens"),
        "max_context_p95": contexts[min(n - 1, int(0.95 * n))],
        "threads": mean("num_threads"),
        "spawns": mean("num_spawns"),
        "truncated": sum(r["truncated"] for r in records) / n,
        "cumulative_accuracy": {
            str(w): sum(1 for r in records if r["correct"] and r["metrics"]["max_context_tokens"] <= w) / n
            for w in windows
        },
        "seconds": seconds,
    }
    if protocol == "self_consistency":
        point["pass_at_n"] = (
            sum(any(t["answer_verified"] for t in r["tree"] if t["parent"] == 0) for r in records) / n
        )
    return point


def print_table(results: dict) -> None:
    """The results as a rich table."""
    from rich.console import Console
    from rich.table import Table

    cfg = results["config"]
    table = Table(
        title=f"Protocols on {cfg['n_problems']} problems (seed {cfg['problem_seed']}), "
        f"{cfg['context_window']}-token window"
    )
    for col in (
        "protocol",
        "knob",
        "acc",
        "total tok",
        "crit. path",
        "prefill",
        "longest thr",
        "peak ctx",
        "threads",
        "acc@2k",
        "acc@4k",
        "pass@N",
    ):
        table.add_column(col, justify="right" if col not in ("protocol", "knob") else "left")
    for p in results["points"]:
        cum = p["cumulative_accuracy"]
        table.add_row(
            p["protocol"],
            f"{p['knob']}={p['value']}",
            f"{p['accuracy']:.3f}",
            f"{p['total_tokens']:.0f}",
            f"{p['critical_path_tokens']:.0f}",
            f"{p['prefill_tokens']:.0f}",
            f"{p['longest_thread_tokens']:.0f}",
            f"{p['max_context_tokens']:.0f}",
            f"{p['threads']:.1f}",
            f"{cum.get('2048', float('nan')):.3f}",
            f"{cum.get('4096', float('nan')):.3f}",
            f"{p['pass_at_n']:.3f}" if "pass_at_n" in p else "",
        )
    Console(width=None if sys.stdout.isatty() else 160).print(table)
