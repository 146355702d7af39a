"""Speed and statistics of the symbolic SoS+ / APR solvers, next to a re-implementation of the official ones.

    .venv/bin/python -m benchmarks.bench_solvers                 # side by side + statistics, 1000 problems
    .venv/bin/python -m benchmarks.bench_solvers --n 3000 --out benchmarks/results/solvers.json
    .venv/bin/pytest benchmarks/bench_solvers.py --benchmark-enable --benchmark-only

`compare` times our solvers (`agents.apr_solver.apr_trace`, `agents.sosp.sosp_trace`) and
the plain baseline (`benchmarks/baselines/official_solvers.py`) in ONE process on the same
fresh problems (4 numbers in 1..99, target 10..100), alternating chunks so that load from
other processes hits both alike, after a warm-up on other problems (our memo tables reach
their steady state, as in a long data-generation run). It reports traces per second and
the ratio (target: ours >= 3x). Both wall-clock and CPU time are reported; on a shared
machine the CPU-time ratio is the steadier one.

`solver_stats` measures what the reference and the golden file say the official solvers
do: success rate (APR ~68-70%, SoS+ ~46-51%), child threads per problem (~6.5), fraction of
problems that never spawn (~10%), spawn-count distribution, trace lengths.

The pytest-benchmark functions time 100-problem batches; ``make test`` runs them once
untimed (``--benchmark-disable``).
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import statistics
import time
from pathlib import Path

from agents.apr_solver import apr_trace
from agents.sosp import sosp_trace
from apr_env import generate_problems
from benchmarks.baselines import official_solvers

GOLDEN = (
    Path(__file__).resolve().parents[1] / "tests" / "data" / "official-traces.json"
)  # a copy ships in the repo


def _solvers():
    return {
        "apr_ours": lambda p: apr_trace(p, seed=0),
        "apr_official": lambda p: official_solvers.official_apr(p.target, list(p.numbers)),
        "sosp_ours": lambda p: sosp_trace(p, seed=0),
        "sosp_official": lambda p: official_solvers.official_sosp(p.target, list(p.numbers)),
    }


def compare(n: int = 1000, *, seed: int = 1, chunk: int = 50, warmup: int = 1000) -> dict:
    """Time ours and the baseline side by side on `n` fresh problems; return rates and ratios.

    Args:
        n: problems timed per solver.
        seed: problem stream of the timed problems (the warm-up uses seed + 1000).
        chunk: problems per timed chunk; chunks of the four solvers alternate.
        warmup: problems run untimed by every solver first.

    Returns:
        ``{"n", "traces_per_s": {solver: wall}, "cpu_traces_per_s": {...}, "ratio": {"apr",
        "sosp"}, "cpu_ratio": {...}}``.
    """
    solvers = _solvers()
    random.seed(seed)  # the baseline's global stream
    for p in generate_problems(warmup, seed=seed + 1000):
        for run in solvers.values():
            run(p)
    problems = generate_problems(n, seed=seed)
    wall = dict.fromkeys(solvers, 0.0)
    cpu = dict.fromkeys(solvers, 0.0)
    names = list(solvers)
    for k in range(0, n, chunk):
        part = problems[k : k + chunk]
        for name in names if (k // chunk) % 2 == 0 else reversed(names):
            run = solvers[name]
            w0, c0 = time.perf_counter(), time.process_time()
            for p in part:
                run(p)
            wall[name] += time.perf_counter() - w0
            cpu[name] += time.process_time() - c0
    return {
        "n": n,
        "traces_per_s": {k: n / v for k, v in wall.items()},
        "cpu_traces_per_s": {k: n / v for k, v in cpu.items()},
        "ratio": {s: wall[f"{s}_official"] / wall[f"{s}_ours"] for s in ("apr", "sosp")},
        "cpu_ratio": {s: cpu[f"{s}_official"] / cpu[f"{s}_ours"] for s in ("apr", "sosp")},
    }


def _apr_stats(records: list[dict]) -> dict:
    n = len(records)
    spawns = collections.Counter(len(r["trace_dict"]["sub_calls"]) for r in records)
    children = [sum(map(len, r["trace_dict"]["sub_calls"])) for r in records]
    child_chars = [len(c["main_calls"][0]) for r in records for g in r["trace_dict"]["sub_calls"] for c in g]
    return {
        "problems": n,
        "success": sum(bool(r["solved"]) for r in records) / n,
        "children_per_problem": sum(children) / n,
        "never_spawn": spawns[0] / n,
        "spawns_distribution": {str(k): v / n for k, v in sorted(spawns.items())},
        "final_parent_chars_mean": statistics.mean(len(r["trace_dict"]["main_calls"][-1]) for r in records),
        "child_chars_mean": statistics.mean(child_chars) if child_chars else 0.0,
        "total_chars_mean": statistics.mean(
            sum(map(len, r["trace_dict"]["main_calls"]))
            + sum(len(c["main_calls"][0]) for g in r["trace_dict"]["sub_calls"] for c in g)
            for r in records
        ),
    }


def _sosp_stats(records: list[dict]) -> dict:
    return {
        "problems": len(records),
        "success": sum(bool(r["solved"]) for r in records) / len(records),
        "chars_mean": statistics.mean(len(r["search_path"]) for r in records),
        "lines_mean": statistics.mean(r["search_path"].count("\n") for r in records),
    }


def solver_stats(n: int = 1000, *, seed: int = 0) -> dict:
    """Statistics of our solvers on `n` generated problems, with the baseline's and the golden file's."""
    problems = generate_problems(n, seed=seed)
    random.seed(seed)
    baseline_apr = [official_solvers.official_apr(p.target, list(p.numbers)) for p in problems]
    baseline_sosp = [official_solvers.official_sosp(p.target, list(p.numbers)) for p in problems]
    out = {
        "apr": {
            "ours": _apr_stats([apr_trace(p, seed=seed) for p in problems]),
            "official_reimplementation": _apr_stats(baseline_apr),
        },
        "sosp": {
            "ours": _sosp_stats([sosp_trace(p, seed=seed) for p in problems]),
            "official_reimplementation": _sosp_stats(baseline_sosp),
        },
    }
    if GOLDEN.exists():
        golden = json.loads(GOLDEN.read_text())
        out["apr"]["golden"] = _apr_stats([{**r, "solved": r["official_correct"]} for r in golden["apr"]])
        out["sosp"]["golden"] = _sosp_stats(golden["sosp"])
    return out


# --------------------------------------------------------------------------------------
# pytest-benchmark suites (run once, untimed, by `make test`)
# --------------------------------------------------------------------------------------

_BENCH = generate_problems(100, seed=77)


def _batch(run):
    random.seed(0)
    for p in _BENCH:
        run(p)


def test_bench_apr_ours(benchmark):
    benchmark(_batch, _solvers()["apr_ours"])


def test_bench_apr_official_baseline(benchmark):
    benchmark(_batch, _solvers()["apr_official"])


def test_bench_sosp_ours(benchmark):
    benchmark(_batch, _solvers()["sosp_ours"])


def test_bench_sosp_official_baseline(benchmark):
    benchmark(_batch, _solvers()["sosp_official"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="problems per solver")
    parser.add_argument("--seed", type=int, default=1, help="problem stream seed")
    parser.add_argument("--out", type=Path, default=None, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    speed = compare(args.n, seed=args.seed)
    for name in speed["traces_per_s"]:
        print(
            f"{name:15s} {speed['traces_per_s'][name]:8.0f} traces/s wall "
            f"{speed['cpu_traces_per_s'][name]:8.0f} traces/s cpu"
        )
    for s in ("apr", "sosp"):
        print(f"{s}: ours / official = {speed['ratio'][s]:.2f}x wall, {speed['cpu_ratio'][s]:.2f}x cpu")
    stats = solver_stats(args.n, seed=args.seed)
    print(json.dumps(stats, indent=2))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        record = {"command": f"python -m benchmarks.bench_solvers --n {args.n} --seed {args.seed}"}
        args.out.write_text(json.dumps({**record, "speed": speed, "stats": stats}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
