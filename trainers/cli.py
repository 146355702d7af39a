"""`apr-env data ...`, `apr-env train ...`: the trainers' commands (registered through the
`apr_env.commands` entry point).

    apr-env data problems --n 1000 --seed 0 --out data/problems.json
    apr-env data traces --protocol apr --n 10000 --workers 2 --out data/apr     # SFT data
    apr-env data traces --n 1000 --token-stats path/to/llama-2-tokenizer
    apr-env train grpo --model ckpt/sft --problems data/train.json --group-size 5 --steps 150 --out runs/grpo
    apr-env train grpo --model ckpt/sft --problems data/train.json --steps 150 --out runs/grpo --resume
    apr-env train ppo --total-timesteps 30000 --out runs/ppo   # MaskablePPO on APRCountdownMacro-v0
    apr-env model init --preset small --out runs/small-init --seed 0
    apr-env model info runs/small-init
    apr-env train sft --preset small --protocol apr --minutes 10 --out runs/sft-small
"""

from __future__ import annotations

import argparse
import ast
import inspect
import json
import textwrap
from dataclasses import MISSING, fields
from itertools import pairwise
from pathlib import Path


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


def cmd_train_ppo(args: argparse.Namespace) -> int:
    from trainers.ppo import train_ppo
    from trainers.ppo_config import PPOConfig

    names = {f.name for f in fields(PPOConfig)}
    train_ppo(PPOConfig(**{k: v for k, v in vars(args).items() if k in names}))
    return 0


def _register_ppo(train: argparse._SubParsersAction) -> None:
    """`apr-env train ppo`: one flag per `PPOConfig` field, its doc line as help."""
    from trainers.ppo_config import PPOConfig

    p = train.add_parser("ppo", help="MaskablePPO on APRCountdownMacro-v0 (learn when to spawn)")
    _add_config_flags(p, PPOConfig)
    p.set_defaults(func=cmd_train_ppo)


def cmd_model_init(args: argparse.Namespace) -> int:
    from trainers.models import count_parameters, init_model, model_config

    folder = init_model(args.preset, args.out, seed=args.seed)
    n = count_parameters(model_config(args.preset))
    print(f"wrote the {args.preset} preset ({n / 1e6:.2f}M parameters, seed {args.seed}) to {folder}")
    return 0


def cmd_model_info(args: argparse.Namespace) -> int:
    from trainers.models import load_model

    model = load_model(args.path)
    c = model.config
    n = sum(p.numel() for p in model.parameters())
    print(
        f"{args.path}: {c.model_type}, {c.num_hidden_layers} layers, hidden {c.hidden_size}, "
        f"{c.num_attention_heads} heads (head_dim {c.hidden_size // c.num_attention_heads}), "
        f"context {c.max_position_embeddings}, vocab {c.vocab_size}, {n / 1e6:.2f}M parameters"
    )
    return 0


def cmd_train_sft(args: argparse.Namespace) -> int:
    from trainers.sft import train_sft
    from trainers.sft_config import SFTRunConfig

    config = SFTRunConfig(**{f.name: getattr(args, f.name) for f in fields(SFTRunConfig)})
    summary = train_sft(config)
    print(
        f"trained {summary['global_step']}/{summary['max_steps']} steps ({summary['stopped_by']}), "
        f"{summary['tokens_seen']} tokens, final loss {summary['final_loss']}; model in {summary['model']}"
    )
    data = summary["data"]
    print(
        f"data: {data['rows']} rows from {data['traces_used']}/{data['traces']} traces "
        f"(solved_only={data['solved_only']}, condition={data['condition']}); padding waste "
        f"{data['padding_waste']['length_grouped']:.1%} length-grouped vs {data['padding_waste']['random']:.1%} random"
    )
    if "eval" in summary:
        e = summary["eval"]
        lo, hi = e["accuracy_ci95"]
        print(
            f"held-out eval: accuracy {e['accuracy']:.3f} (95% CI {lo:.3f}-{hi:.3f}) on {e['episodes']} problems; "
            f"wrote {Path(summary['model']) / 'eval.json'}"
        )
    return 0


def _register_sft(train: argparse._SubParsersAction) -> None:
    """`apr-env train sft`: one flag per `SFTRunConfig` field, its doc line as help."""
    from trainers.sft_config import SFTRunConfig

    p = train.add_parser("sft", help="supervised fine-tuning on solver traces (TRL SFTTrainer)")
    _add_config_flags(p, SFTRunConfig)
    p.set_defaults(func=cmd_train_sft)


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

    p = sub.add_parser("model", help="model presets as Hugging Face folders")
    model = p.add_subparsers(dest="what", required=True)
    d = model.add_parser("init", help="write a randomly initialised preset with the Countdown tokenizer")
    d.add_argument("--preset", choices=("tiny", "mini", "small", "paper"), default="small")
    d.add_argument("--out", required=True, help="folder to write")
    d.add_argument("--seed", type=int, default=0)
    d.set_defaults(func=cmd_model_init)
    d = model.add_parser("info", help="load a model folder and print its shape")
    d.add_argument("path")
    d.set_defaults(func=cmd_model_info)

    train = sub.add_parser(
        "train", help="train a model or a policy (SFT on solver traces, GRPO on spawn trees, MaskablePPO)"
    ).add_subparsers(dest="trainer", required=True, metavar="TRAINER")
    _register_sft(train)
    _register_grpo(train)
    _register_ppo(train)


def _field_docs(cls) -> dict[str, str]:
    """The doc line under each field of a config dataclass (its only doc source; CLI help reuses it)."""
    body = ast.parse(textwrap.dedent(inspect.getsource(cls))).body[0].body
    docs = {}
    for node, after in pairwise(body):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
        ):
            docs[node.target.id] = " ".join(str(after.value.value).split())
    return docs


_OPTIONAL_TYPES = {"int | None": int, "float | None": float, "str | None": str}
"""Types of the config fields whose default is None, by annotation (the configs use
`from __future__ import annotations`, so `f.type` is that string)."""


def _add_config_flags(parser: argparse.ArgumentParser, cls) -> None:
    """One flag per dataclass field: ``--name-with-dashes``, typed by the default (by the
    annotation when the default is None), help from the doc line under the field.

    Raises:
        TypeError: a field has no doc line, or a None default whose annotation is not in
            `_OPTIONAL_TYPES` (a programming error: every flag must be documented and typed).
    """
    docs = _field_docs(cls)
    undocumented = sorted({f.name for f in fields(cls)} - set(docs))
    if undocumented:
        raise TypeError(f"{cls.__name__} fields without a doc line: {', '.join(undocumented)}")
    for f in fields(cls):
        flag = "--" + f.name.replace("_", "-")
        default = f.default if f.default is not MISSING else f.default_factory()
        doc = docs[f.name].replace("%", "%%")
        if isinstance(default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default, help=doc)
        elif isinstance(default, tuple):  # e.g. net_arch: --net-arch 64 64
            parser.add_argument(flag, type=type(default[0]), nargs="+", default=default, help=doc)
        elif isinstance(default, list):  # urls: repeat the flag (--url A --url B)
            parser.add_argument("--" + f.name[:-1], dest=f.name, action="append", default=[], help=doc)
        elif isinstance(default, dict):
            parser.add_argument(flag, type=json.loads, default=default, help=doc + " (JSON)")
        elif default is None:  # `int | None` and the like: the annotation says which type
            parser.add_argument(flag, type=_OPTIONAL_TYPES[str(f.type)], default=None, help=doc)
        else:
            parser.add_argument(flag, type=type(default), default=default, help=doc)


def cmd_train_grpo(args: argparse.Namespace) -> int:
    from apr_env.errors import ConfigError
    from trainers.grpo import train_grpo
    from trainers.grpo_config import GRPOConfig

    try:
        config = GRPOConfig(**{f.name: getattr(args, f.name) for f in fields(GRPOConfig)})
    except ConfigError as err:
        raise SystemExit(f"apr-env train grpo: {err}") from err
    metrics = train_grpo(config)
    print(
        f"trained {config.steps} steps; last reward {metrics.get('reward', float('nan')):.4f}; wrote {config.out}"
    )
    return 0


def _register_grpo(train: argparse._SubParsersAction) -> None:
    """`apr-env train grpo`: tree-aware GRPO (`trainers.grpo`), one flag per `GRPOConfig` field."""
    from trainers.grpo_config import GRPOConfig

    p = train.add_parser(
        "grpo", help="tree-aware GRPO on spawn trees (parent and child threads trained together)"
    )
    _add_config_flags(p, GRPOConfig)
    p.set_defaults(func=cmd_train_grpo)
