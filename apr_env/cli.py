"""The `apr-env` command line: thin wrappers over library functions.

Subcommands import what they need lazily, so `apr-env --help` is instant and the
environment package itself never pulls in torch. Each subcommand is a function
``cmd_<name>(args)`` that calls one library function and prints its result.

    apr-env demo                       # generate, solve and verify a few problems
    apr-env data problems --n 1000 --seed 0 --out data/problems.json
"""

from __future__ import annotations

import argparse
import sys


def cmd_demo(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from apr_env import generate_problems, solve, verify

    problems = generate_problems(args.n, seed=args.seed)
    table = Table(title=f"{args.n} Countdown problems (seed {args.seed}, APR distribution)")
    for col in ("target", "numbers", "#solutions", "a solution", "verified", "a wrong answer", "verdict"):
        table.add_column(col)
    for p in problems:
        solutions = solve(p)
        good = verify(p, solutions[0])
        wrong = "+".join(map(str, p.numbers))
        bad = verify(p, wrong)
        table.add_row(
            str(p.target),
            str(list(p.numbers)),
            str(len(solutions)),
            solutions[0],
            "yes" if good.correct else good.reason,
            wrong,
            bad.code,
        )
    Console().print(table)
    return 0


def cmd_data_problems(args: argparse.Namespace) -> int:
    from apr_env import generate_problems, save_problems

    problems = generate_problems(args.n, seed=args.seed, workers=args.workers)
    path = save_problems(problems, args.out)
    print(f"wrote {len(problems)} problems to {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="apr-env", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="generate, solve and verify a few problems")
    demo.add_argument("--n", type=int, default=5, help="how many problems")
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(func=cmd_demo)

    data = sub.add_parser("data", help="write problems or solver traces to files")
    data_sub = data.add_subparsers(dest="what", required=True)
    problems = data_sub.add_parser("problems", help="problems in the official JSON layout (or .jsonl)")
    problems.add_argument("--n", type=int, default=1000)
    problems.add_argument("--seed", type=int, default=0)
    problems.add_argument("--workers", type=int, default=1)
    problems.add_argument("--out", default="data/problems.json")
    problems.set_defaults(func=cmd_data_problems)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
