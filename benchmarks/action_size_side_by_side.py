"""Side-by-side cost of one step with a huge text action and with a window-sized one.

    .venv/bin/python benchmarks/action_size_side_by_side.py            # 10 MiB actions (about 20 s)
    .venv/bin/python benchmarks/action_size_side_by_side.py --quick    # 1 MiB actions, a smoke run

A step's cost must be bounded by the context window, not by the action's size: before the
episode counted and cut a text within a prefix bounded by the window (`TextTokenizer.count_upto`,
`encode_head`), a 10 MB action took 31-73 s, because the whole text was tokenized before it was
cut. In one run, for two texts (a run of ``x``: one token per character; official trace text
repeated: ~3 characters per token), this times one step of ``gymnasium.make("APRCountdown-v0")``
and one `Episode.act` on a fresh root (default 4,096-token window, Countdown tokenizer) with

- a huge action (`huge_bytes` characters of the text), and
- a window-sized action: the text's first `context_window` tokens (also cut at the window,
  since the root's prompt takes some of it),

checks that both end alike (``context_window``, the same kept context, the same metrics), and
prints milliseconds per step (median of `repeats`) and the ratio huge / window-sized. What a step
cost before is measured once beside them: the full-text encode of `before_bytes` characters,
the dominant cost of the old rule (count the whole text, then encode it whole to cut it).
What is left in a huge step is C-speed work over the whole action (the printable-ASCII check
and one string copy), a few milliseconds per MiB.

Results, with the command, commit, date and machine, go to
``benchmarks/results/action_size_side_by_side.json`` (``..._quick.json`` with ``--quick``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make `benchmarks.` and `apr_env` importable
    sys.path.insert(0, str(ROOT))

import gymnasium as gym  # noqa: E402

import apr_env  # noqa: E402, F401  (registers APRCountdown-v0)
from apr_env import Episode, Limits, Problem  # noqa: E402
from apr_env.provenance import provenance  # noqa: E402
from apr_env.tokenizer import default_tokenizer  # noqa: E402
from tests.golden import APR  # noqa: E402

PROBLEM = Problem(10, (1, 4, 6, 8))
TARGET_HUGE_STEP_MS = 100.0
"""A 10 MiB step should cost milliseconds: under 100 ms, against 31-73 s before."""


@dataclass
class ActionSizeConfig:
    """Sizes of one run; `--quick` shrinks them."""

    huge_bytes: int = 10 * 2**20
    """Characters of the huge action (10 MiB, the issue's case)."""
    context_window: int = 4096
    """Tokens of the window (the official 4,096)."""
    repeats: int = 5
    """Timed steps per workload; the median is reported."""
    before_bytes: int = 2**20
    """Characters of the full-text encode timed as the old rule's cost (1 MiB: about 4 s)."""

    @classmethod
    def quick(cls) -> ActionSizeConfig:
        return cls(huge_bytes=2**20, repeats=2, before_bytes=2**16)


def texts(size: int) -> dict[str, str]:
    """The huge actions: a run of ``x`` and the golden APR traces repeated, `size` characters each."""
    trace = "".join(text for entry in APR for text in entry["trace_dict"]["main_calls"])
    return {"x_run": "x" * size, "trace_text": (trace * (size // len(trace) + 1))[:size]}


def _time_episode(action: str, limits: Limits, repeats: int) -> tuple[list[float], Episode]:
    times = []
    for _ in range(repeats):
        ep = Episode(PROBLEM, "apr", limits=limits)
        start = time.perf_counter()
        ep.act(0, action)
        times.append(time.perf_counter() - start)
    return times, ep


def _time_gym(env, action: str, repeats: int) -> tuple[list[float], dict]:
    times = []
    for _ in range(repeats):
        env.reset(options={"problem": PROBLEM})
        start = time.perf_counter()
        info = env.step(action)[4]
        times.append(time.perf_counter() - start)
    return times, info


def _stats(times: list[float]) -> dict:
    return {"median_ms": statistics.median(times) * 1e3, "best_ms": min(times) * 1e3}


def run(cfg: ActionSizeConfig, argv: list[str] | None = None) -> dict:
    """Time every workload and return the results as data (no printing, no file)."""
    tok = default_tokenizer()
    limits = Limits(context_window=cfg.context_window)
    env = gym.make("APRCountdown-v0", context_window=cfg.context_window)
    env.reset(options={"problem": PROBLEM})
    env.step("warm-up")  # Gymnasium's checker wraps the first step only
    rows = {}
    for name, huge in texts(cfg.huge_bytes).items():
        window_sized = tok.decode(tok.encode_head(huge, cfg.context_window))
        huge_ep_t, huge_ep = _time_episode(huge, limits, cfg.repeats)
        win_ep_t, win_ep = _time_episode(window_sized, limits, cfg.repeats)
        huge_gym_t, huge_info = _time_gym(env, huge, cfg.repeats)
        win_gym_t, win_info = _time_gym(env, window_sized, cfg.repeats)
        same = (
            huge_ep.outcome == win_ep.outcome == "context_window"
            and huge_ep.observation(0) == win_ep.observation(0)
            and huge_ep.metrics == win_ep.metrics
            and huge_info["metrics"] == win_info["metrics"]
            and huge_info["outcome"] == win_info["outcome"] == "context_window"
        )
        rows[name] = {
            "huge_chars": len(huge),
            "window_sized_chars": len(window_sized),
            "same_outcome_and_metrics": same,
            "episode_act": {
                "huge": _stats(huge_ep_t),
                "window_sized": _stats(win_ep_t),
                "ratio": statistics.median(huge_ep_t) / statistics.median(win_ep_t),
            },
            "gym_step": {
                "huge": _stats(huge_gym_t),
                "window_sized": _stats(win_gym_t),
                "ratio": statistics.median(huge_gym_t) / statistics.median(win_gym_t),
            },
        }
    before_text = texts(cfg.before_bytes)["x_run"]
    start = time.perf_counter()
    tok.encode(before_text)
    before_s = time.perf_counter() - start
    huge_ms = max(r[k]["huge"]["median_ms"] for r in rows.values() for k in ("episode_act", "gym_step"))
    return {
        "config": asdict(cfg),
        "rows": rows,
        "before": {
            "full_text_encode_chars": len(before_text),
            "full_text_encode_s": before_s,
            "full_text_encode_s_per_mib": before_s * 2**20 / len(before_text),
        },
        "target_huge_step_ms": TARGET_HUGE_STEP_MS,
        "meets_target": huge_ms < TARGET_HUGE_STEP_MS
        and all(r["same_outcome_and_metrics"] for r in rows.values()),
        "environment": {
            "command": " ".join(
                [".venv/bin/python", "benchmarks/action_size_side_by_side.py", *(argv or [])]
            ),
            **provenance(("apr-env", "gymnasium", "tokenizers")),
            "load_average_1m_5m_15m": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
            "note": "one process; other engineers share this machine's CPUs, so timings are noisy",
        },
    }


def format_table(results: dict) -> str:
    mib = results["config"]["huge_bytes"] / 2**20
    lines = [
        f"{'text':12s} {'entry point':14s} {f'{mib:g} MiB ms':>12s} {'window ms':>10s} {'ratio':>7s}  same end",
        "-" * 70,
    ]
    for name, row in results["rows"].items():
        for entry in ("episode_act", "gym_step"):
            r = row[entry]
            lines.append(
                f"{name:12s} {entry:14s} {r['huge']['median_ms']:12.1f} {r['window_sized']['median_ms']:10.1f}"
                f" {r['ratio']:6.1f}x  {row['same_outcome_and_metrics']}"
            )
    before = results["before"]
    lines += [
        "",
        f"before (full-text encode, the old rule's cost): {before['full_text_encode_s_per_mib']:.2f} s per MiB "
        f"(measured on {before['full_text_encode_chars']:,} characters)",
        f"target: a huge step under {results['target_huge_step_ms']:.0f} ms with the same end: "
        + ("ok" if results["meets_target"] else "MISSED"),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 MiB actions (a smoke run)")
    parser.add_argument("--out", type=Path, default=None, help="JSON output path")
    args = parser.parse_args(argv)
    cfg = ActionSizeConfig.quick() if args.quick else ActionSizeConfig()
    out = args.out or ROOT / "benchmarks" / "results" / (
        "action_size_side_by_side_quick.json" if args.quick else "action_size_side_by_side.json"
    )
    results = run(cfg, argv)
    print(format_table(results))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {out}")
    return results


if __name__ == "__main__":
    main()
