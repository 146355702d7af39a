"""`apr-env serve`: the runtime's command (registered through the `apr_env.commands` entry point).

apr-env serve --model DIR --port 30000      # SGLang-API-compatible server on CPU
"""

from __future__ import annotations

import argparse


def cmd_serve(args: argparse.Namespace) -> int:
    from runtime.model_files import ModelFolderError
    from runtime.server import config_from_args, run

    try:
        return run(config_from_args(args))
    except ModelFolderError as err:
        raise SystemExit(f"apr-env serve: {err}") from err


def register(sub: argparse._SubParsersAction) -> None:
    """Add the runtime's subcommands to the `apr-env` parser."""
    from runtime.serve_config import add_arguments  # standard library only: cheap to import

    p = sub.add_parser(
        "serve", help="an SGLang-API-compatible server over the in-process transformers backend"
    )
    add_arguments(p)
    p.set_defaults(func=cmd_serve)
