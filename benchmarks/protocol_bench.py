"""The protocol benchmark (`apr-env bench`): how the way threads communicate changes accuracy and cost.

    apr-env bench                              # the default sweep (a few minutes on 2 cores)
    apr-env bench --n 100 --protocols apr serial --out /tmp/bench

One search policy (`agents.symbolic.SymbolicAgent`: multiply heuristic, beam pops,
promising coins) is rendered under every protocol, so differences come from communication
alone. For each protocol and each value of its budget knob (SoS+ beam, self-consistency N,
APR/fork/broadcast/first_k/messaging/subscriptions parent beam = children per spawn), over one fixed seeded problem set, it
reports accuracy, mean total / critical-path / prefill tokens, mean longest thread, peak
context, threads per episode, pass@N for self-consistency, and cumulative accuracy vs
context window (1k..4k: solved with every thread's context within the window, as the
paper's Fig. 4b).

Outputs: a rich table, ``results.json`` (config, exact command, versions, commit, date and
every number) and PNG plots like the paper's Fig. 4a (accuracy vs total tokens), 4b
(cumulative accuracy vs context window) and 6 (accuracy vs critical-path tokens), drawn by
`benchmarks.protocol_plots` (which also re-plots a recorded run).
Sweep points run in worker processes; results do not depend on the worker count.
"""

from __future__ import annotations

import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from apr_env.provenance import provenance
from benchmarks.protocol_plots import plot
from runtime.progress import progress_bar
from runtime.report import summarize

KNOB = {
    "serial": "beam_size",
    "self_consistency": "n",
    "apr": "beam_size",
    "fork_full_context": "beam_size",
    "broadcast": "beam_size",
    "first_k": "beam_size",
    "messaging": "beam_size",
    "subscriptions": "beam_size",
}
"""The budget knob of each protocol (a `agents.symbolic.SymbolicConfig` field)."""

DEFAULT_SWEEPS = {
    "serial": [1, 2, 3, 5, 8],
    "self_consistency": [2, 4, 8],
    "apr": [2, 4, 6, 10],
    "fork_full_context": [2, 4, 6, 10],
    "broadcast": [2, 4, 6, 10],
    "first_k": [2, 4, 6, 10],
    "messaging": [2, 4, 6, 10],
    "subscriptions": [2, 4, 6, 10],
}


@dataclass
class BenchConfig:
    """What `run_bench` measures."""

    n_problems: int = 1000
    """Problems per sweep point (the same problems for every point)."""
    problem_seed: int = 0
    """Seed of the problem set (APR distribution)."""
    seed: int = 0
    """Agent seed: every random decision of every episode derives from it."""
    protocols: list[str] = field(default_factory=lambda: list(DEFAULT_SWEEPS))
    sweeps: dict[str, list[int]] = field(
        default_factory=lambda: {k: list(v) for k, v in DEFAULT_SWEEPS.items()}
    )
    context_window: int = 4096
    """Environment limit per thread (the official model context)."""
    windows: list[int] = field(default_factory=lambda: [1024, 1536, 2048, 2560, 3072, 3584, 4096])
    """Context windows of the cumulative-accuracy curve."""
    workers: int = 2
    """Processes running sweep points."""
    out: str = "benchmarks/results/protocols"
    """Folder for results.json and the PNG plots (None-like '' disables writing)."""
    ppo_model: str = ""
    """A MaskablePPO macro policy (`apr-env train ppo`'s model.zip) played on the same problems
    under the apr protocol, as one more row (``apr (MaskablePPO)``) beside the symbolic sweeps."""

    def __post_init__(self) -> None:
        unknown = [p for p in self.protocols if p not in KNOB]
        if unknown:
            raise ValueError(f"unknown protocol(s) {unknown}; the benchmark knows {sorted(KNOB)}")
        if self.n_problems < 1:
            raise ValueError(f"n_problems must be >= 1, got {self.n_problems}")


def _point(args: tuple) -> dict:
    """Run one (protocol, knob value) point; in a worker process."""
    protocol, value, cfg_dict = args
    from agents.symbolic import SymbolicAgent, SymbolicConfig
    from apr_env import Limits, generate_problems
    from runtime.runner import RunConfig, run_episodes

    cfg = BenchConfig(**cfg_dict)
    problems = generate_problems(cfg.n_problems, seed=cfg.problem_seed)
    agent = SymbolicAgent(SymbolicConfig(**{KNOB[protocol]: value}))
    run_cfg = RunConfig(protocol=protocol, limits=Limits(context_window=cfg.context_window), seed=cfg.seed)
    started = time.perf_counter()
    records = run_episodes(agent, problems, run_cfg)
    return summarize(
        records,
        protocol=protocol,
        knob=KNOB[protocol],
        value=value,
        windows=cfg.windows,
        seconds=time.perf_counter() - started,
    )


def _ppo_point(cfg: BenchConfig) -> dict:
    """The learned macro policy's row: same problems, window and seeds as the symbolic sweeps."""
    from agents.sb3_agent import MacroPolicyAgent
    from apr_env import generate_problems
    from runtime.runner import RunConfig, run_episodes

    agent = MacroPolicyAgent.load(cfg.ppo_model, context_window=cfg.context_window)
    problems = generate_problems(cfg.n_problems, seed=cfg.problem_seed)
    run_cfg = RunConfig(protocol="apr", limits=agent.config.limits, seed=cfg.seed)
    started = time.perf_counter()
    records = run_episodes(agent, problems, run_cfg)
    return summarize(
        records,
        protocol="apr (MaskablePPO)",
        knob="model",
        value=Path(cfg.ppo_model).name,
        windows=cfg.windows,
        seconds=time.perf_counter() - started,
    )


def run_bench(config: BenchConfig, *, progress: bool = True) -> dict:
    """Run every sweep point; return the results (also written to `config.out` when set)."""
    jobs = [(p, v, asdict(config)) for p in config.protocols for v in config.sweeps[p]]
    started = time.perf_counter()
    points: list[dict] = []
    bar = progress_bar(len(jobs), enabled=progress, desc="sweep points", unit="pt")
    if config.workers > 1:
        with ProcessPoolExecutor(max_workers=config.workers) as pool:
            for point in pool.map(_point, jobs):
                points.append(point)
                bar.update(1)
    else:
        for job in jobs:
            points.append(_point(job))
            bar.update(1)
    bar.close()
    if config.ppo_model:
        points.append(_ppo_point(config))
    results = {
        "config": asdict(config),
        "command": " ".join(["apr-env", *sys.argv[1:]])
        if sys.argv and "apr-env" in sys.argv[0]
        else " ".join(sys.argv),
        "provenance": provenance(),
        "wall_seconds": time.perf_counter() - started,
        "points": points,
    }
    if config.out:
        out = Path(config.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
        plot(results, out)
    return results
