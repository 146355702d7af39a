"""`apr-env data ...`: the trainers' commands (registered through the `apr_env.commands`
entry point).

    apr-env data problems --n 1000 --seed 0 --out data/problems.json
    apr-env data traces --protocol apr --n 10000 --workers 2 --out data/apr     # SFT data
    apr-env data traces --n 1000 --token-stats path/to/llama-2-tokenizer
"""

from __future__ import annotations

import argparse


def cmd_data_problems(args: argparse.Namespace) -> int:
    from apr_env import generate_problems, save_problems

    problems = generate_problems(args.n, seed=args.seed, workers=args.workers)
    path = save_problems(problems, args.out)
    print(f"wrote {len(problems)} problems to {path}")
    return 0


def cmd_data_traces(args: argparse.Namespace) -> int:
    from apr_env import generate_problems, load_problems
    from trainers.data import build_traces, write_traces

    problems = (
        load_problems(args.problems) if args.problems else generate_problems(args.n, seed=args.problem_seed)
    )
    token_stats = (
        False if args.token_stats is None else (None if args.token_stats == "countdown" else args.token_stats)
    )
    records = build_traces(
        problems, args.protocol, seed=args.seed, workers=args.workers, progress=True, token_stats=token_stats
    )
    traces, segs = write_traces(records, args.out)
    solved = sum(bool(r["solved"]) for r in records)
    print(f"wrote {len(records)} {args.protocol} traces ({solved} solved) to {traces} and segments to {segs}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the trainers' subcommands to the `apr-env` parser."""
    p = sub.add_parser("data", help="write problems or solver traces to files")
    data = p.add_subparsers(dest="what", required=True)
    d = data.add_parser("problems", help="problems in the official JSON layout (or .jsonl)")
    d.add_argument("--n", type=int, default=1000)
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--workers", type=int, default=1)
    d.add_argument("--out", default="data/problems.json")
    d.set_defaults(func=cmd_data_problems)
    d = data.add_parser("traces", help="solver traces (official layout) + per-thread segments JSONL")
    d.add_argument("--protocol", choices=("apr", "serial"), default="apr")
    d.add_argument("--n", type=int, default=1000)
    d.add_argument("--problems", default=None, help="problem file instead of generating --n problems")
    d.add_argument("--problem-seed", type=int, default=0)
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--workers", type=int, default=1)
    d.add_argument(
        "--token-stats",
        nargs="?",
        const="countdown",
        default=None,
        metavar="TOKENIZER",
        help="add the official token statistics to APR records, counted with the Countdown tokenizer "
        "or with a Hugging Face tokenizer folder (the official files used Llama-2's)",
    )
    d.add_argument("--out", default="data/traces")
    d.set_defaults(func=cmd_data_traces)
