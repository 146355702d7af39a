"""A trained MaskablePPO macro policy against the symbolic agents, on the same held-out problems.

    python -m benchmarks.ppo_bench --model runs/ppo/model.zip --out benchmarks/results/ppo
    python -m benchmarks.ppo_bench --n 40 --out /tmp/ppo_bench            # baselines only (no --model)

Every agent plays the ``test`` split of `trainers.ppo.splits` (rebuilt from the run's saved
config, so it is disjoint from the training and eval problems) through the runner, under the
same limits: the PPO policy (`agents.sb3_agent.MacroPolicyAgent`; ``ppo`` takes the most likely
legal action, ``ppo_sampled`` samples from it with torch seeded), the APR and SoS+ symbolic agents
(`agents.symbolic`), and two fixed policies in the PPO's own action space, so that "did it learn
anything beyond the fixed heuristic" has an answer: ``macro_expand`` (never spawn: serial
best-first) and ``macro_spawn_max`` (the root expands once, then spawns the most children the
masks allow; children expand). Per agent: accuracy, mean total / critical-path tokens and the
rest of `runtime.report.summarize`; for the macro policies also their action counts and their
spawn width by problem difficulty (terciles of the serial search's cost, unsolved = hardest).
Writes ``results.json`` (with the training summary, command and provenance) to ``--out``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

from agents.macro_game import EXPAND
from apr_env import Limits
from apr_env.provenance import provenance
from runtime.report import summarize
from runtime.runner import RunConfig, run_episodes


def expand_only(obs, masks) -> int:
    """Never spawn: the serial best-first search (gives up when an expansion no longer fits)."""
    return EXPAND if masks[EXPAND] else int(np.flatnonzero(masks)[-1])


def spawn_max(obs, masks) -> int:
    """APR-like: the root expands its first node, then spawns the widest legal spawn; children expand."""
    spawns = np.flatnonzero(masks[1:-1]) + 1
    root, expanded = obs["depth"][0] == 0, obs["budgets"][3] > 0
    if root and expanded and len(spawns):
        return int(spawns[-1])
    return expand_only(obs, masks)


def behaviour(agent, records: list[dict], difficulty: dict[int, int]) -> dict:
    """Action counts, and per difficulty tercile the share of episodes that spawn and the mean root width."""
    counts = Counter()
    by_level: dict[int, list[int]] = {0: [], 1: [], 2: []}
    for rec in records:
        decisions = agent.history.get(rec["index"], [])
        counts.update(
            "expand" if a == EXPAND else ("give_up" if a == agent.macro.give_up else "spawn")
            for _, _, a in decisions
        )
        widths = [a for _, depth, a in decisions if depth == 0 and 0 < a < agent.macro.give_up]
        by_level[difficulty[rec["index"]]].append(widths[0] if widths else 0)
    return {
        "actions": dict(counts),
        "root_spawn_width_by_difficulty": {
            name: {
                "episodes": len(w),
                "spawned": sum(x > 0 for x in w) / max(len(w), 1),
                "mean_first_width": statistics.fmean(w) if w else 0.0,
                "width_histogram": dict(sorted(Counter(w).items())),
            }
            for name, w in zip(("easy", "medium", "hard"), by_level.values())
        },
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="MaskablePPO zip from `apr-env train ppo`")
    parser.add_argument("--n", type=int, default=200, help="test problems (at most the run's test_problems)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results/ppo")
    args = parser.parse_args(argv)

    import torch

    from agents.sb3_agent import MacroPolicyAgent, env_kwargs_path
    from agents.symbolic import SymbolicAgent
    from trainers.ppo import splits
    from trainers.ppo_config import PPOConfig

    # the run's own config rebuilds its splits, so the test problems are disjoint from its train/eval ones
    summary_path = Path(args.model).with_name("summary.json") if args.model else None
    training = json.loads(summary_path.read_text()) if summary_path and summary_path.exists() else None
    fields = {f.name for f in dataclasses.fields(PPOConfig)}
    cfg = PPOConfig(**{k: v for k, v in (training or {}).get("config", {}).items() if k in fields})
    env_kwargs = json.loads(env_kwargs_path(args.model).read_text()) if args.model else cfg.env_kwargs()
    limits = Limits(context_window=env_kwargs["context_window"], max_threads=env_kwargs["max_threads"])
    problems = splits(cfg)["test"][: args.n]
    agents = {
        "macro_expand": MacroPolicyAgent(expand_only, env_kwargs),
        "macro_spawn_max": MacroPolicyAgent(spawn_max, env_kwargs),
        "apr": SymbolicAgent(),
        "sos+": SymbolicAgent(),
    }
    if args.model:
        agents = {
            "ppo": MacroPolicyAgent.load(args.model),
            "ppo_sampled": MacroPolicyAgent.load(args.model, deterministic=False),
            **agents,
        }
    points, records = [], {}
    for name, agent in agents.items():
        protocol = "serial" if name == "sos+" else "apr"
        config = RunConfig(protocol=protocol, limits=limits, seed=args.seed, max_concurrent=16)
        torch.manual_seed(args.seed)  # the sampled policy draws from torch's generator
        started = time.perf_counter()
        records[name] = run_episodes(agent, problems, config)
        seconds = time.perf_counter() - started
        points.append(
            summarize(
                records[name], protocol=protocol, knob="agent", value=name, windows=[4096], seconds=seconds
            )
        )
        print(
            f"{name:16s} accuracy {points[-1]['accuracy']:.3f}  total {points[-1]['total_tokens']:.0f}  "
            f"critical path {points[-1]['critical_path_tokens']:.0f}  threads {points[-1]['threads']:.2f}"
        )
    # difficulty: terciles of the serial search's cost (tokens), unsolved problems hardest
    cost = {
        r["index"]: (r["metrics"]["total_tokens"] if r["correct"] else float("inf"))
        for r in records["macro_expand"]
    }
    ranked = sorted(cost, key=lambda i: (cost[i], i))
    difficulty = {i: min(3 * rank // len(ranked), 2) for rank, i in enumerate(ranked)}
    behaviours = {
        name: behaviour(agents[name], records[name], difficulty)
        for name in agents
        if name.startswith(("ppo", "macro"))
    }
    for name, b in behaviours.items():
        print(name, json.dumps(b["root_spawn_width_by_difficulty"]))
    results = {
        "command": "python -m benchmarks.ppo_bench " + " ".join(sys.argv[1:] if argv is None else argv),
        "provenance": provenance(),
        "problems": {"split": "test", "problem_seed": cfg.problem_seed, "n": len(problems)},
        "env_kwargs": env_kwargs,
        "points": points,
        "behaviour": behaviours,
    }
    if training is not None:
        results["training"] = training
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out / 'results.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
