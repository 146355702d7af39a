"""`apr-env bench`: the protocol benchmark, the project's main job (registered through the
`apr_env.commands` entry point).

    apr-env bench                                   # make run
    apr-env bench --n 100 --protocols apr serial --out /tmp/bench
    apr-env bench --replot benchmarks/results/protocols   # redraw the plots of a recorded run
    apr-env bench --ppo-model benchmarks/results/ppo/model.zip   # + the learned macro policy's row
    apr-env experiment paper --scale cpu --out runs/paper_cpu --resume   # make paper
"""

from __future__ import annotations

import argparse


def cmd_bench(args: argparse.Namespace) -> int:
    if args.replot:
        from benchmarks.protocol_plots import replot

        for path in replot(args.replot):
            print(path)
        return 0
    from benchmarks.protocol_bench import BenchConfig, run_bench
    from runtime.report import print_table

    kwargs = {
        "n_problems": args.n,
        "problem_seed": args.problem_seed,
        "seed": args.seed,
        "workers": args.workers,
        "out": args.out,
        "context_window": args.context_window,
        "ppo_model": args.ppo_model or "",
    }
    if args.protocols:
        kwargs["protocols"] = args.protocols
    results = run_bench(BenchConfig(**kwargs), progress=True)
    print_table(results)
    if args.out:
        print(f"results and plots in {args.out}/ ({results['wall_seconds']:.0f} s)")
    return 0


def cmd_experiment_paper(args: argparse.Namespace) -> int:
    from apr_env.errors import ConfigError
    from benchmarks.paper import publish, run_paper
    from benchmarks.paper_config import SCALES

    if args.publish_only:
        if not args.publish:
            raise SystemExit("apr-env experiment paper: --publish-only needs --publish DIR")
        try:
            written = publish(args.out or f"runs/paper_{args.scale}", args.publish)
        except ConfigError as err:
            raise SystemExit(f"apr-env experiment paper: {err}") from err
        print(f"published {len(written)} files to {args.publish}")
        return 0
    try:
        status = run_paper(
            SCALES[args.scale], args.out or f"runs/paper_{args.scale}", resume=args.resume, jobs=args.jobs
        )
    except ConfigError as err:
        raise SystemExit(f"apr-env experiment paper: {err}") from err
    print(", ".join(f"{stage} {what}" for stage, what in status.items()))
    if args.publish:
        written = publish(args.out or f"runs/paper_{args.scale}", args.publish)
        print(f"published {len(written)} files to {args.publish}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the benchmarks' subcommands to the `apr-env` parser."""
    from benchmarks.paper_config import SCALES  # configs only: no torch

    p = sub.add_parser("bench", help="the protocol benchmark: accuracy vs tokens, critical path, context")
    p.add_argument("--n", type=int, default=1000, help="problems per sweep point")
    p.add_argument("--problem-seed", type=int, default=0)
    p.add_argument("--seed", type=int, default=0, help="agent seed")
    p.add_argument(
        "--protocols", nargs="*", help="subset of: serial self_consistency apr fork_full_context broadcast"
    )
    p.add_argument("--context-window", type=int, default=4096)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--out", default="benchmarks/results/protocols", help="folder for results.json and PNGs")
    p.add_argument(
        "--ppo-model",
        metavar="ZIP",
        help="add a row for a MaskablePPO macro policy (apr-env train ppo's model.zip) on the apr protocol",
    )
    p.add_argument(
        "--replot", metavar="DIR", help="only redraw the PNGs of a recorded run from DIR/results.json"
    )
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("experiment", help="end-to-end experiments (data, training, evaluation, report)")
    exp = p.add_subparsers(dest="experiment", required=True, metavar="EXPERIMENT")
    d = exp.add_parser(
        "paper",
        help="the paper's claims: data -> SFT (SoS+, APR) -> eval -> GRPO -> eval -> table + figures",
        description="Scales (benchmarks/paper_config.py): cpu (mini preset, 4 numbers in 1..20, an "
        "8M-token arithmetic warm-up, then 16M tokens per model, 15% of them operation rows), cpu-v1 (the first CPU run: no "
        "warm-up, 8M trace tokens), cpu-v3 (the third: 8M tokens per model, 35% operation rows), gpu (paper preset, a fifth of the official data), paper (the "
        "official recipe). Each stage writes OUT/STAGE/done.json and is skipped when present.",
    )
    d.add_argument("--scale", choices=tuple(SCALES), default="cpu")
    d.add_argument("--out", default=None, help="run folder (default: runs/paper_SCALE)")
    d.add_argument(
        "--resume", action="store_true", help="continue the run in --out (finished stages are skipped)"
    )
    d.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="stages at once (SoS+ and APR SFT side by side, the SFT evaluation beside GRPO); "
        "2 on a 2-core CPU, each stage with one torch thread",
    )
    d.add_argument(
        "--publish",
        metavar="DIR",
        default=None,
        help="then copy the table, figures, stage summaries, eval summaries, training curves and "
        "model files into DIR (e.g. benchmarks/results/paper_cpu)",
    )
    d.add_argument(
        "--publish-only",
        action="store_true",
        help="run nothing: only copy what the run in --out has finished into --publish DIR "
        "(with partial.json when the run has not finished)",
    )
    d.set_defaults(func=cmd_experiment_paper)
