"""Sizing of the paper experiment's problem distribution with the symbolic solvers (seconds, no model).

    python -m benchmarks.paper_sizing --n 300 --out benchmarks/results/paper_sizing.json

For each (numbers, value range, target range, beams) candidate it builds APR and SoS+ solver
traces through the public data builder (`trainers.data.build_traces`) and counts, with the
Countdown tokenizer: tokens per problem over all threads, the longest thread, the solve rates,
the share of APR traces that spawn and children per spawn, and the SoS+ solve rate within
each context window (a trace longer than the window would be cut). These are what
`benchmarks.paper_config` chose the CPU scale from: the demonstration budget (tokens), not the
problem count, is what bounds a CPU run.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from apr_env import split_problems
from apr_env.generator import GeneratorConfig
from apr_env.provenance import provenance
from apr_env.tokenizer import default_tokenizer
from trainers.data import build_traces, official_token_stats

CANDIDATES = (
    # (numbers, min_value, max_value, min_target, max_target, beam, sub_beam)
    (4, 1, 20, 10, 50, 3, 4),
    (4, 1, 20, 10, 50, 4, 6),
    (4, 1, 20, 10, 50, None, None),
)
WINDOWS = (512, 768, 1024, 1536, 2048, 4096)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(candidate: tuple, n: int, seed: int = 0) -> dict:
    """Solver statistics of one candidate distribution on `n` problems."""
    numbers, lo, hi, tlo, thi, beam, sub_beam = candidate
    gen = GeneratorConfig(
        min_numbers=numbers, max_numbers=numbers, min_value=lo, max_value=hi, min_target=tlo, max_target=thi
    )
    problems = split_problems({"probe": n}, seed=seed, config=gen)["probe"]
    tok = default_tokenizer()
    apr = build_traces(problems, "apr", seed=seed, beam_size=beam, sub_beam_size=sub_beam)
    sos = build_traces(problems, "serial", seed=seed, beam_size=beam)
    stats = [official_token_stats(r, tok) for r in apr]
    spawning = [r for r in apr if r["trace_dict"]["sub_calls"]]
    sos_tokens = [tok.count(r["search_path"]) + 2 for r in sos]
    return {
        "numbers": numbers,
        "values": [lo, hi],
        "targets": [tlo, thi],
        "beam": beam,
        "sub_beam": sub_beam,
        "problems": n,
        "apr": {
            "solved": statistics.fmean(bool(r["solved"]) for r in apr),
            "spawn_rate": len(spawning) / n,
            "children_per_spawn": statistics.fmean(s["sub_call_count"] for s in stats if s["sub_call_count"]),
            "total_tokens_mean": statistics.fmean(s["token_count"] for s in stats),
            "longest_thread_mean": statistics.fmean(s["longest_seq_token_count"] for s in stats),
            "longest_thread_p90": _pct([s["longest_seq_token_count"] for s in stats], 0.9),
            "solved_within_window": {
                str(w): statistics.fmean(
                    bool(r["solved"]) and s["longest_seq_token_count"] <= w for r, s in zip(apr, stats)
                )
                for w in WINDOWS
            },
        },
        "sos+": {
            "solved": statistics.fmean(bool(r["solved"]) for r in sos),
            "tokens_mean": statistics.fmean(sos_tokens),
            "tokens_p90": _pct(sos_tokens, 0.9),
            "solved_within_window": {
                str(w): statistics.fmean(bool(r["solved"]) and t <= w for r, t in zip(sos, sos_tokens))
                for w in WINDOWS
            },
        },
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=300)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="benchmarks/results/paper_sizing.json")
    args = p.parse_args(argv)
    rows = []
    for cand in CANDIDATES:
        row = measure(cand, args.n, args.seed)
        rows.append(row)
        a, s = row["apr"], row["sos+"]
        print(
            f"beam {cand[5]}/{cand[6]}: APR solved {a['solved']:.2f}, spawns {a['spawn_rate']:.2f}, "
            f"{a['children_per_spawn']:.1f} children/spawn, total {a['total_tokens_mean']:.0f} tok, "
            f"longest thread {a['longest_thread_mean']:.0f} (p90 {a['longest_thread_p90']}); "
            f"SoS+ solved {s['solved']:.2f}, {s['tokens_mean']:.0f} tok (p90 {s['tokens_p90']}); "
            f"SoS+ within window {s['solved_within_window']}; APR within window {a['solved_within_window']}",
            flush=True,
        )
    out = {
        "command": "python -m benchmarks.paper_sizing " + " ".join(argv or []),
        "provenance": provenance(),
        "rows": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
