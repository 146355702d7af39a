"""Issue-4 speed targets, both ratios measured side by side in one run.

    .venv/bin/python benchmarks/agents_side_by_side.py            # ~1.5 min
    .venv/bin/python benchmarks/agents_side_by_side.py --quick    # smoke run

1. Trace generation: our SoS+ and APR solvers vs a faithful re-implementation of the
   official ones (`benchmarks/baselines/official_solvers.py`), alternating chunks on the same
   fresh problems (`benchmarks.bench_solvers.compare`), repeated (`--repeats`, default 5): the
   headline ratio takes each solver's best repeat (least disturbed by other processes on a
   shared machine); every repeat's own ratio and their spread are recorded too. Target >= 3x
   (the reference figures on this machine are 956 APR and 2,459 SoS+ traces/s; both are also
   printed).
2. Environment overhead: whole APR episodes through ``gymnasium.make("APRCountdown-v0")``
   played by `agents.symbolic.SymbolicAgent` (same texts as the raw solver), with the
   episode's exact token metrics and reward, vs the raw `agents.apr_solver.apr_trace` on the
   same problems and seeds. The raw side is timed twice: the bare trace, and the trace with
   the token statistics the official generator stores with it (`trainers.data.official_token_stats`),
   which is the like-for-like record. Target <= 1.5x. The episode time is also compared with
   the official generator's rate on this machine (956 APR traces/s, issue 4).

Writes benchmarks/results/agents_side_by_side.json (numbers, command, versions, commit).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import gymnasium as gym  # noqa: E402

import apr_env  # noqa: E402, F401 - registers APRCountdown-v0
from agents.apr_solver import apr_trace  # noqa: E402
from agents.symbolic import SymbolicAgent  # noqa: E402
from apr_env import generate_problems  # noqa: E402
from apr_env.agent import observe  # noqa: E402
from apr_env.provenance import provenance  # noqa: E402
from apr_env.tokenizer import default_tokenizer  # noqa: E402
from benchmarks.bench_solvers import compare  # noqa: E402
from trainers.data import official_token_stats  # noqa: E402

OFFICIAL = {"apr": 956.0, "sosp": 2459.0}
"""Traces/s of the official solvers on this machine (issue 4)."""


def play_env(env, problems, seeds) -> float:
    """Seconds to play every problem as one gymnasium episode with the symbolic agent."""
    agent = SymbolicAgent()
    t0 = time.perf_counter()
    for problem, seed in zip(problems, seeds):
        obs, _ = env.reset(options={"problem": problem})
        episode = env.unwrapped.episode
        done = False
        while not done:
            action = agent.act([observe(episode, obs["thread"], key=0, seed=seed)])[0]
            obs, _, terminated, truncated, _ = env.step(action)
            done = terminated or truncated
        agent.end_episode(0)
    return time.perf_counter() - t0


def raw_traces(problems, seeds, *, stats: bool) -> float:
    tok = default_tokenizer()
    t0 = time.perf_counter()
    for problem, seed in zip(problems, seeds):
        record = apr_trace(problem, seed=seed)
        if stats:
            record.update(official_token_stats(record, tok))
    return time.perf_counter() - t0


def env_overhead(n: int, repeats: int = 3, seed: int = 11) -> dict:
    problems = generate_problems(n, seed=seed)
    seeds = list(range(n))
    env = gym.make("APRCountdown-v0")
    best = {"env": float("inf"), "raw": float("inf"), "raw_with_stats": float("inf")}
    play_env(env, problems[:50], seeds[:50])  # warm caches
    for _ in range(repeats):  # interleaved so that all three see the same load; best of `repeats`
        best["raw"] = min(best["raw"], raw_traces(problems, seeds, stats=False))
        best["raw_with_stats"] = min(best["raw_with_stats"], raw_traces(problems, seeds, stats=True))
        best["env"] = min(best["env"], play_env(env, problems, seeds))
    return {
        "episodes": n,
        "ms_per_episode": {k: 1e3 * v / n for k, v in best.items()},
        "env_over_raw_record": best["env"] / best["raw_with_stats"],
        "env_over_bare_trace": best["env"] / best["raw"],
        "env_over_official_generation": best["env"] / n * OFFICIAL["apr"],
        "target": "<= 1.5",
    }


def trace_generation(n: int, *, repeats: int, warmup: int) -> dict:
    """`compare` `repeats` times (the warm-up only before the first); best-of ratios plus each run's."""
    runs = [compare(n, seed=1, warmup=warmup if k == 0 else 0) for k in range(repeats)]
    kinds = ("apr", "sosp")
    out = {"n": n, "repeats": repeats}
    for rates in ("traces_per_s", "cpu_traces_per_s"):
        out[rates] = {name: max(run[rates][name] for run in runs) for name in runs[0][rates]}
    out["ratio"] = {s: out["traces_per_s"][f"{s}_ours"] / out["traces_per_s"][f"{s}_official"] for s in kinds}
    out["cpu_ratio"] = {
        s: out["cpu_traces_per_s"][f"{s}_ours"] / out["cpu_traces_per_s"][f"{s}_official"] for s in kinds
    }
    out["ratio_runs"] = {s: [run["ratio"][s] for run in runs] for s in kinds}
    out["cpu_ratio_runs"] = {s: [run["cpu_ratio"][s] for run in runs] for s in kinds}
    out["ratio_spread"] = {
        s: {"min": min(r), "median": statistics.median(r), "max": max(r)}
        for s, r in out["ratio_runs"].items()
    }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=5, help="trace-generation comparisons (best-of)")
    parser.add_argument("--out", default="benchmarks/results/agents_side_by_side.json")
    args = parser.parse_args(argv)
    n_traces, n_env = (200, 60) if args.quick else (2000, 1000)
    traces = trace_generation(
        n_traces, repeats=1 if args.quick else args.repeats, warmup=100 if args.quick else 1000
    )
    overhead = env_overhead(n_env, repeats=1 if args.quick else 5)
    report = {
        "command": "python benchmarks/agents_side_by_side.py"
        + (" --quick" if args.quick else f" --repeats {args.repeats}"),
        "provenance": provenance(),
        "trace_generation": {
            **traces,
            "ratio_to_reference_figures": {
                s: traces["traces_per_s"][f"{s}_ours"] / OFFICIAL[s] for s in OFFICIAL
            },
            "target": ">= 3",
        },
        "env_overhead": overhead,
    }
    tg = report["trace_generation"]
    for s in ("apr", "sosp"):
        spread = tg["ratio_spread"][s]
        print(
            f"{s:5s} traces/s: ours {tg['traces_per_s'][f'{s}_ours']:.0f}, official re-implementation "
            f"{tg['traces_per_s'][f'{s}_official']:.0f} -> {tg['ratio'][s]:.2f}x side by side, best of "
            f"{tg['repeats']} (runs {spread['min']:.2f}-{spread['max']:.2f}x, median {spread['median']:.2f}x; "
            f"{tg['ratio_to_reference_figures'][s]:.2f}x the quoted figure {OFFICIAL[s]:.0f}/s); target >= 3x "
            + ("ok" if tg["ratio"][s] >= 3 else "MISSED")
        )
    ms = overhead["ms_per_episode"]
    print(
        f"APR episode through gymnasium.make: {ms['env']:.3f} ms vs raw record {ms['raw_with_stats']:.3f} ms "
        f"-> {overhead['env_over_raw_record']:.2f}x (bare trace {ms['raw']:.3f} ms -> "
        f"{overhead['env_over_bare_trace']:.2f}x; the official generator's {1e3 / OFFICIAL['apr']:.3f} ms -> "
        f"{overhead['env_over_official_generation']:.2f}x); target <= 1.5x "
        + ("ok" if overhead["env_over_raw_record"] <= 1.5 else "MISSED")
    )
    if args.out and not args.quick:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
