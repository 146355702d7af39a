"""`apr-env eval` and `apr-env show`: the agents' commands (registered through the
`apr_env.commands` entry point).

    apr-env eval --agent apr --protocol apr --n 200
    apr-env eval --agent llm --backend transformers --model DIR --protocol apr --n 16
    apr-env eval --agent llm --model runs/sft-small --problems runs/sft-small/test_problems.json
    apr-env eval --agent llm --backend sglang --url http://127.0.0.1:30000 --model DIR
    apr-env eval --agent ppo --model runs/ppo/model.zip --n 200        # a MaskablePPO macro policy
    apr-env show --protocol broadcast --index 3 --out episode.png

Both build an agent (symbolic, random or an LLM behind a runtime backend) and run episodes
through the runtime; everything heavy is imported inside the handlers, so `apr-env --help`
stays instant.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

AGENTS = ("apr", "sos+", "symbolic", "random", "llm", "ppo")


def _make_agent(args: argparse.Namespace):
    """The agent and its backend (None for symbolic agents); HTTP backends clamp the window to the server's."""
    if args.agent in ("apr", "sos+", "symbolic"):
        from agents.symbolic import SymbolicAgent, SymbolicConfig

        return SymbolicAgent(SymbolicConfig(beam_size=args.beam_size, sub_beam_size=args.sub_beam_size)), None
    if args.agent == "random":
        from agents.random_agent import RandomAgent

        return RandomAgent(), None
    if args.agent == "ppo":
        if not args.model:
            raise SystemExit("--agent ppo needs --model PATH (the model.zip written by `apr-env train ppo`)")
        if (args.protocol or "apr") != "apr":
            raise SystemExit(f"--agent ppo plays the apr protocol only, got --protocol {args.protocol}")
        from agents.sb3_agent import MacroPolicyAgent

        return MacroPolicyAgent.load(args.model, context_window=args.context_window), None
    from agents.llm_agent import LLMAgent, LLMAgentConfig
    from apr_env.tokenizer import load_tokenizer

    if args.backend == "transformers":
        if not args.model:
            raise SystemExit(
                "--agent llm --backend transformers needs --model DIR (a Hugging Face model folder)"
            )
        from runtime.backends.transformers_backend import TransformersBackend
        from runtime.model_files import ModelFolderError, check_model_folder

        try:
            check_model_folder(args.model)
        except ModelFolderError as err:
            raise SystemExit(f"apr-env eval: {err}") from err
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
        args.context_window, warning = backend.fit_context_window(args.context_window)
        if warning:
            print(f"apr-env eval: warning: {warning}", file=sys.stderr, flush=True)
    config = LLMAgentConfig(context_window=args.context_window, temperature=args.temperature)
    return LLMAgent(backend, tokenizer, config), backend


def _latency(records: list[dict]) -> dict:
    latencies = sorted(r["latency_s"] for r in records)
    return {
        "mean": statistics.fmean(latencies),
        "p50": latencies[len(latencies) // 2],
        "p95": latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))],
    }


def cmd_eval(args: argparse.Namespace) -> int:
    """Play the episodes; records are appended as each finishes, so a dead backend loses nothing finished.

    Exit status 1 when the run stopped early (the backend failed): ``--records`` then holds every
    finished episode, ``--out`` summarises them (``"complete": false`` and the error), and
    ``--resume`` plays only what is missing.
    """
    from apr_env import Limits, generate_problems, load_problems
    from apr_env.provenance import provenance
    from apr_env.seeding import episode_seed
    from runtime.backends.base import BackendError
    from runtime.records import RecordWriter, check_resumable, load_records
    from runtime.report import print_table, summarize
    from runtime.runner import RunConfig, run_episodes

    if args.resume and not args.records:
        raise SystemExit("--resume needs --records FILE: the records of the run to continue")
    protocol = args.protocol or {"sos+": "serial"}.get(args.agent, "apr")
    protocol_kwargs = _protocol_kwargs(args)
    if args.problems:
        problems = load_problems(args.problems)[: args.n]
    else:
        problems = generate_problems(args.n, seed=args.problem_seed)
    earlier: list[dict] = []
    if args.resume:
        earlier = load_records(args.records)
        check_resumable(earlier, problems, lambda i: episode_seed(args.seed, i), args.records)
        print(f"resuming: {len(earlier)} of {len(problems)} episodes already in {args.records}", flush=True)
    agent, backend = _make_agent(args)
    config = RunConfig(
        protocol=protocol,
        protocol_kwargs=protocol_kwargs,
        limits=Limits(context_window=args.context_window),
        seed=args.seed,
        max_concurrent=args.concurrency,
        progress=True,
        record_calls=bool(args.records),
    )
    writer = RecordWriter(args.records, resume=args.resume) if args.records else None
    new: list[dict] = []

    def keep(record: dict) -> None:
        new.append(record)
        if writer is not None:
            writer.write(record)

    error: BaseException | None = None
    started = time.perf_counter()
    try:
        run_episodes(agent, problems, config, on_record=keep, skip={r["index"] for r in earlier})
    except (BackendError, KeyboardInterrupt) as err:  # stop cleanly: what finished is on disk
        error = err
    finally:
        wall = time.perf_counter() - started
        if backend is not None:
            backend.close()
        if writer is not None:
            writer.close()
    records = sorted(earlier + new, key=lambda r: r["index"])
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
        "complete": error is None,
        "episodes_recorded": len(records),
        "error": None if error is None else f"{type(error).__name__}: {error}",
        "points": [],
    }
    if records:
        point = summarize(
            records,
            protocol=protocol,
            knob="agent",
            value=args.agent,
            windows=[1024, 2048, 3072, 4096],
            seconds=wall,
        )
        point["latency_s"] = _latency(records)
        results["points"].append(point)
        print_table(results)
        lo, hi = point["accuracy_ci95"]
        print(
            f"accuracy {point['accuracy']:.3f} on {point['episodes']} problems "
            f"(95% Wilson interval {lo:.3f}-{hi:.3f})"
        )
        lat = point["latency_s"]
        print(
            f"latency per episode: mean {lat['mean']:.3f} s, p50 {lat['p50']:.3f} s, p95 {lat['p95']:.3f} s; "
            f"wall {wall:.1f} s for {len(new)} episodes"
        )
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {args.out}")
    if args.records:
        print(f"episode records: {args.records} ({len(records)} of {args.n})")
    if error is not None:
        kept = f"; they are in {args.records}, rerun with --resume to play the rest" if args.records else ""
        print(
            f"apr-env eval: stopped after {len(records)} of {args.n} episodes: {results['error']}{kept}",
            file=sys.stderr,
        )
        return 1
    return 0


def _protocol_kwargs(args: argparse.Namespace) -> dict:
    """The condition prefixes of the command line as protocol keyword arguments."""
    kwargs = {}
    if args.sub_call_budget is not None:
        kwargs["sub_call_budget"] = args.sub_call_budget
    if args.token_budget is not None:
        kwargs["token_budget"] = args.token_budget
    return kwargs


def cmd_show(args: argparse.Namespace) -> int:
    """One episode of any agent (a learned LLM policy too) as a rich tree and a timeline PNG."""
    from rich.console import Console
    from rich.markup import escape
    from rich.tree import Tree

    from apr_env import Episode, Limits, generate_problems, load_problems
    from apr_env.agent import observe
    from apr_env.protocols import get_protocol
    from apr_env.seeding import episode_seed
    from apr_env.timeline import plot_timeline

    if args.problems:
        problems = load_problems(args.problems)
        if not 0 <= args.index < len(problems):
            raise SystemExit(f"--index {args.index} is outside {args.problems} (0..{len(problems) - 1})")
        problem = problems[args.index]
    else:
        problem = generate_problems(1, seed=args.problem_seed, start=args.index)[0]
    args.protocol = args.protocol or {"sos+": "serial"}.get(args.agent, "apr")
    agent, backend = _make_agent(args)
    protocol = get_protocol(args.protocol, **_protocol_kwargs(args))
    ep = Episode(problem, protocol, limits=Limits(context_window=args.context_window))
    seed = episode_seed(args.seed, args.index)
    try:
        while not ep.done and ep.runnable:
            batch = [observe(ep, tid, key=0, seed=seed) for tid in ep.runnable]
            for obs, action in zip(batch, agent.act(batch)):
                ep.act(obs.thread, action)
    finally:
        if backend is not None:
            backend.close()
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


def _add_agent_flags(p: argparse.ArgumentParser) -> None:
    """The flags that choose and configure an agent (`_make_agent`), shared by eval and show."""
    p.add_argument("--agent", choices=AGENTS, default="apr")
    p.add_argument("--backend", choices=("transformers", "sglang", "openai"), default="transformers")
    p.add_argument(
        "--model",
        default=None,
        help="model folder (transformers), tokenizer folder (HTTP backends) or model.zip (ppo)",
    )
    p.add_argument("--url", default=None, help="server URL for --backend sglang/openai")
    p.add_argument("--beam-size", type=int, default=None, help="symbolic agents: fix the root beam")
    p.add_argument("--sub-beam-size", type=int, default=None, help="symbolic apr: fix the children's beam")
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--sub-call-budget", type=int, default=None, help="apr: 'Sub Call Budget: N ' root prefix")
    p.add_argument("--token-budget", type=int, default=None, help="serial: 'Token Budget: N ' prefix")


def register(sub: argparse._SubParsersAction) -> None:
    """Add the agents' subcommands to the `apr-env` parser."""
    p = sub.add_parser("eval", help="one agent on one protocol: the bench table plus wall-clock latency")
    _add_agent_flags(p)
    p.add_argument("--protocol", default=None, help="default: serial for sos+, else apr")
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--problem-seed", type=int, default=1)
    p.add_argument(
        "--problems",
        default=None,
        help="problem file (e.g. a run's test_problems.json): its first --n problems",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--context-window", type=int, default=4096)
    p.add_argument("--concurrency", type=int, default=64, help="episodes in flight")
    p.add_argument("--out", default=None, help="results JSON path")
    p.add_argument(
        "--records", default=None, help="episode records JSONL path, appended as each episode finishes"
    )
    p.add_argument(
        "--resume", action="store_true", help="skip the episodes already in --records (same run settings)"
    )
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser(
        "show", help="one episode of any agent (a learned LLM too) as a rich tree and a timeline PNG"
    )
    _add_agent_flags(p)
    p.add_argument("--protocol", default=None, help="default: serial for sos+, else apr")
    p.add_argument(
        "--index", type=int, default=0, help="problem index in the seeded stream or --problems file"
    )
    p.add_argument("--problems", default=None, help="problem file (e.g. a run's test_problems.json)")
    p.add_argument("--problem-seed", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--context-window", type=int, default=4096)
    p.add_argument("--out", default="episode.png", help="timeline PNG path ('' to skip)")
    p.set_defaults(func=cmd_show)
