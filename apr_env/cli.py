"""The `apr-env` command line: thin wrappers over library functions.

Subcommands import what they need lazily, so `apr-env --help` is instant and the
environment package itself never pulls in torch (this module is the one place in
`apr_env` allowed to reach `agents`, `runtime`, `trainers` and `benchmarks`, lazily).

    apr-env bench                                   # the protocol benchmark (the main job)
    apr-env eval --agent apr --protocol apr --n 200
    apr-env eval --agent llm --backend transformers --model DIR --protocol apr --n 16
    apr-env show --protocol apr --index 3 --out episode.png
    apr-env data problems --n 1000 --seed 0 --out data/problems.json
    apr-env data traces --protocol apr --n 1000 --workers 2 --out data/apr
    apr-env serve --model DIR --port 30000
    apr-env demo                                    # generate, solve and verify a few problems
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

AGENTS = ("apr", "sos+", "symbolic", "random", "llm")


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


def cmd_bench(args: argparse.Namespace) -> int:
    from benchmarks.protocol_bench import BenchConfig, print_table, run_bench

    kwargs = {
        "n_problems": args.n,
        "problem_seed": args.problem_seed,
        "seed": args.seed,
        "workers": args.workers,
        "out": args.out,
        "context_window": args.context_window,
    }
    if args.protocols:
        kwargs["protocols"] = args.protocols
    results = run_bench(BenchConfig(**kwargs), progress=True)
    print_table(results)
    if args.out:
        print(f"results and plots in {args.out}/ ({results['wall_seconds']:.0f} s)")
    return 0


def _make_agent(args: argparse.Namespace):
    if args.agent in ("apr", "sos+", "symbolic"):
        from agents.symbolic import SymbolicAgent, SymbolicConfig

        return SymbolicAgent(SymbolicConfig(beam_size=args.beam_size)), None
    if args.agent == "random":
        from agents.random_agent import RandomAgent

        return RandomAgent(), None
    from agents.llm_agent import LLMAgent, LLMAgentConfig
    from apr_env.tokenizer import load_tokenizer

    if args.backend == "transformers":
        if not args.model:
            raise SystemExit(
                "--agent llm --backend transformers needs --model DIR (a Hugging Face model folder)"
            )
        from runtime.backends.transformers_backend import TransformersBackend

        tokenizer = load_tokenizer(args.model)
        backend = TransformersBackend(args.model, tokenizer)
    else:
        if not args.url:
            raise SystemExit(f"--backend {args.backend} needs --url of a running server")
        tokenizer = load_tokenizer(args.model)
        if args.backend == "sglang":
            from runtime.backends.sglang_backend import SGLangBackend

            backend = SGLangBackend(args.url, tokenizer=tokenizer)
        else:
            from runtime.backends.openai_backend import OpenAIBackend

            backend = OpenAIBackend(args.url, tokenizer=tokenizer)
    config = LLMAgentConfig(context_window=args.context_window, temperature=args.temperature)
    return LLMAgent(backend, tokenizer, config), backend


def cmd_eval(args: argparse.Namespace) -> int:
    import statistics

    from apr_env import Limits, generate_problems
    from benchmarks.protocol_bench import print_table, provenance, summarize
    from runtime.runner import RunConfig, run_episodes, save_records

    protocol = args.protocol or {"sos+": "serial"}.get(args.agent, "apr")
    protocol_kwargs = {}
    if args.sub_call_budget is not None:
        protocol_kwargs["sub_call_budget"] = args.sub_call_budget
    if args.token_budget is not None:
        protocol_kwargs["token_budget"] = args.token_budget
    agent, backend = _make_agent(args)
    problems = generate_problems(args.n, seed=args.problem_seed)
    config = RunConfig(
        protocol=protocol,
        protocol_kwargs=protocol_kwargs,
        limits=Limits(context_window=args.context_window),
        seed=args.seed,
        max_concurrent=args.concurrency,
        progress=True,
        record_calls=bool(args.records),
    )
    try:
        import time

        started = time.perf_counter()
        records = run_episodes(agent, problems, config)
        wall = time.perf_counter() - started
    finally:
        if backend is not None:
            backend.close()
    point = summarize(protocol, args.beam_size or 0, records, [1024, 2048, 3072, 4096], wall)
    point["knob"], point["value"] = "agent", args.agent
    latencies = sorted(r["latency_s"] for r in records)
    point["latency_s"] = {
        "mean": statistics.fmean(latencies),
        "p50": latencies[len(latencies) // 2],
        "p95": latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))],
    }
    results = {
        "config": {
            **vars(args),
            "func": None,
            "n_problems": args.n,
            "problem_seed": args.problem_seed,
            "context_window": args.context_window,
        },
        "command": "apr-env " + " ".join(sys.argv[1:]),
        "provenance": provenance(),
        "points": [point],
    }
    print_table(results)
    print(
        f"latency per episode: mean {point['latency_s']['mean']:.3f} s, p50 {point['latency_s']['p50']:.3f} s, "
        f"p95 {point['latency_s']['p95']:.3f} s; wall {wall:.1f} s for {len(records)} episodes"
    )
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {args.out}")
    if args.records:
        print(f"wrote episode records to {save_records(records, args.records)}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.markup import escape
    from rich.tree import Tree

    from agents.random_agent import RandomAgent
    from agents.symbolic import SymbolicAgent, SymbolicConfig
    from apr_env import Episode, Limits, generate_problems
    from apr_env.agent import observe
    from apr_env.timeline import plot_timeline
    from runtime.runner import episode_seed

    problem = generate_problems(1, seed=args.problem_seed, start=args.index)[0]
    agent = (
        RandomAgent() if args.agent == "random" else SymbolicAgent(SymbolicConfig(beam_size=args.beam_size))
    )
    ep = Episode(problem, args.protocol, limits=Limits(context_window=args.context_window))
    seed = episode_seed(args.seed, args.index)
    while not ep.done and ep.runnable:
        batch = [observe(ep, tid, key=0, seed=seed) for tid in ep.runnable]
        for obs, action in zip(batch, agent.act(batch)):
            ep.act(obs.thread, action)
    m = ep.metrics
    tree = Tree(
        f"[bold]{args.protocol}[/] target {problem.target} numbers {list(problem.numbers)}: "
        f"[bold]{ep.outcome}[/] | total {m.total_tokens} tok, critical path {m.critical_path_tokens} tok"
    )
    nodes = {}
    for t in ep.threads:
        gen = t.generated_tokens
        ok = (
            ""
            if t.result is None or not t.result.claimed
            else (" ✓" if t.result.verified else " ✗ false claim")
        )
        label = f"{t.name} #{t.label} [{t.status.value}:{t.reason}] {gen} tok, {len(t.calls)} call(s){ok}"
        nodes[t.id] = (tree if t.parent is None else nodes[t.parent]).add(escape(label))
    Console().print(tree)
    if args.out:
        plot_timeline(ep, args.out)
        print(f"wrote the timeline to {args.out}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from runtime.server import config_from_args, run

    run(config_from_args(args))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="apr-env", description="Adaptive Parallel Reasoning on Countdown.")
    sub = parser.add_subparsers(dest="command", required=True)

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
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("eval", help="one agent on one protocol: the bench table plus wall-clock latency")
    p.add_argument("--agent", choices=AGENTS, default="apr")
    p.add_argument("--protocol", default=None, help="default: serial for sos+, else apr")
    p.add_argument("--backend", choices=("transformers", "sglang", "openai"), default="transformers")
    p.add_argument(
        "--model", default=None, help="model folder (transformers) or tokenizer folder (HTTP backends)"
    )
    p.add_argument("--url", default=None, help="server URL for --backend sglang/openai")
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--problem-seed", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--beam-size", type=int, default=None, help="symbolic agents: fix the root beam")
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--sub-call-budget", type=int, default=None, help="apr: 'Sub Call Budget: N ' root prefix")
    p.add_argument("--token-budget", type=int, default=None, help="serial: 'Token Budget: N ' prefix")
    p.add_argument("--context-window", type=int, default=4096)
    p.add_argument("--concurrency", type=int, default=64, help="episodes in flight")
    p.add_argument("--out", default=None, help="results JSON path")
    p.add_argument("--records", default=None, help="episode records JSONL path")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("show", help="one episode as a rich tree and a timeline PNG")
    p.add_argument("--protocol", default="apr")
    p.add_argument("--agent", choices=("symbolic", "random"), default="symbolic")
    p.add_argument("--index", type=int, default=0, help="problem index in the seeded stream")
    p.add_argument("--problem-seed", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--beam-size", type=int, default=None)
    p.add_argument("--context-window", type=int, default=4096)
    p.add_argument("--out", default="episode.png", help="timeline PNG path ('' to skip)")
    p.set_defaults(func=cmd_show)

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

    p = sub.add_parser(
        "serve", help="an SGLang-API-compatible server over the in-process transformers backend"
    )
    from_server = _serve_arguments(p)
    p.set_defaults(func=cmd_serve if from_server else _serve_missing)

    p = sub.add_parser("demo", help="generate, solve and verify a few problems")
    p.add_argument("--n", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_demo)
    return parser


def _serve_arguments(parser: argparse.ArgumentParser) -> bool:
    """The server's own flags (runtime.server.add_arguments), imported lazily; False if unavailable."""
    try:
        from runtime.server import add_arguments
    except ImportError:
        return False
    add_arguments(parser)
    return True


def _serve_missing(args: argparse.Namespace) -> int:
    raise SystemExit("apr-env serve needs the runtime package (pip install -e .)")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
