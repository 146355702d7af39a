"""The `apr-env` command line: a thin dispatcher that assembles every package's commands.

    apr-env bench                                   # the protocol benchmark (the main job)
    apr-env eval --agent apr --protocol apr --n 200
    apr-env eval --agent llm --backend transformers --model DIR --protocol apr --n 16
    apr-env show --protocol apr --index 3 --out episode.png
    apr-env data problems --n 1000 --seed 0 --out data/problems.json
    apr-env data traces --protocol apr --n 1000 --workers 2 --out data/apr
    apr-env serve --model DIR --port 30000
    apr-env demo                                    # generate, solve and verify a few problems

Each package owns its commands in its own ``cli.py`` (`runtime`: serve; `agents`: eval, show;
`trainers`: data, train; `benchmarks`: bench) with a ``register(subparsers)`` function, listed
in the ``apr_env.commands`` entry-point group of ``pyproject.toml``. This module only reads that
group, so `apr_env`, the bottom layer, never imports a package above it (the layer contract in
``pyproject.toml``, checked by ``lint-imports`` in ``make test``). Registration must stay cheap:
command handlers import what they need when they run, so ``apr-env --help`` is instant.
"""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import entry_points

COMMAND_GROUP = "apr_env.commands"
"""Entry-point group of ``register(subparsers)`` functions, one per package that has commands."""
LAYER_ORDER = ("runtime", "agents", "trainers", "benchmarks")
"""Order in which known packages' commands are listed (others follow, by name)."""


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
        table.add_row(
            str(p.target),
            str(list(p.numbers)),
            str(len(solutions)),
            solutions[0],
            "yes" if good.correct else good.reason,
            wrong,
            verify(p, wrong).code,
        )
    Console(width=None if sys.stdout.isatty() else 140).print(table)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add `apr_env`'s own subcommands (the game alone, no model) to the `apr-env` parser."""
    p = sub.add_parser("demo", help="generate, solve and verify a few problems")
    p.add_argument("--n", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_demo)


def _command_plugins() -> list:
    """The ``apr_env.commands`` entry points, in layer order."""
    eps = list(entry_points(group=COMMAND_GROUP))
    rank = {name: i for i, name in enumerate(LAYER_ORDER)}
    return sorted(eps, key=lambda ep: (rank.get(ep.name, len(rank)), ep.name))


def build_parser() -> argparse.ArgumentParser:
    """The full `apr-env` parser: `apr_env`'s commands plus every registered package's.

    A package whose ``register`` cannot be imported (a missing optional dependency) is named in
    the help's epilog with the error, instead of breaking every other command.
    """
    parser = argparse.ArgumentParser(prog="apr-env", description="Adaptive Parallel Reasoning on Countdown.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    register(sub)
    unavailable = []
    for ep in _command_plugins():
        try:
            register_package = ep.load()
        except ImportError as err:
            unavailable.append(f"{ep.name} ({ep.value}): {err}")
            continue
        register_package(sub)
    if unavailable:
        parser.epilog = "commands unavailable: " + "; ".join(unavailable)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
