"""Episode overhead of the future-work protocols (first_k, messaging, subscriptions) vs `apr`, side by side.

    python benchmarks/protocol_overhead.py            # 300 problems, best of 5 (about a minute)
    python benchmarks/protocol_overhead.py --quick    # a smoke run, nothing written

What is timed is the environment alone (`apr_env.Episode`: acts, spawns, joins, deliveries,
cancellations, then the exact metrics), never the agent: the symbolic agent's actions are
recorded once per protocol, then replayed into fresh episodes. Two comparisons, each a ratio
to `apr` measured in the same run (interleaved repeats, best of `repeats`):

- ``same_decisions``: apr's own recorded actions replayed under each protocol. The texts
  hold no new grammar lines, so this is the price of the machinery alone (messaging's name
  line in child prompts, the delivery hook's scan of every child action, the early-join check).
- ``own_decisions``: each protocol's own actions (join options, messages, subscriptions,
  board lines, one-node steps): the price of using the feature, per episode and per generated
  token (a step-wise protocol makes many more, smaller actions than apr's one-shot children).

Writes ``benchmarks/results/protocol_overhead.json`` with the command and provenance.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make `agents`, `apr_env` importable
    sys.path.insert(0, str(ROOT))

from agents.symbolic import SymbolicAgent, SymbolicConfig  # noqa: E402
from apr_env import Episode, generate_problems  # noqa: E402
from apr_env.agent import observe  # noqa: E402
from apr_env.provenance import provenance  # noqa: E402
from apr_env.seeding import episode_seed  # noqa: E402
from apr_env.tokenizer import load_tokenizer  # noqa: E402

PROTOCOLS = ("apr", "first_k", "messaging", "subscriptions")


def record(problems, protocol: str, beam: int) -> list[list[tuple[int, object]]]:
    """The symbolic agent's actions per episode, in the order the waves runner applies them."""
    agent = SymbolicAgent(SymbolicConfig(beam_size=beam))
    plays = []
    for i, problem in enumerate(problems):
        ep, played = Episode(problem, protocol), []
        while not ep.done and ep.runnable:
            batch = [observe(ep, tid, key=i, seed=episode_seed(0, i)) for tid in ep.runnable]
            for obs, action in zip(batch, agent.act(batch)):
                played.append((obs.thread, action))
                ep.act(obs.thread, action)
        agent.end_episode(i)
        plays.append(played)
    return plays


def replay(problems, protocol: str, plays, tokenizer) -> tuple[float, int]:
    """Seconds to replay `plays` into fresh episodes (metrics included), and the generated tokens."""
    tokens = 0
    t0 = time.perf_counter()
    for problem, played in zip(problems, plays):
        ep = Episode(problem, protocol, tokenizer=tokenizer)
        for tid, action in played:
            ep.act(tid, action)
        tokens += ep.metrics.total_tokens
    return time.perf_counter() - t0, tokens


def measure(n: int, repeats: int, beam: int) -> dict:
    problems = generate_problems(n, seed=7)
    tokenizer = load_tokenizer(None)
    plays = {p: record(problems, p, beam) for p in PROTOCOLS}
    jobs = [("same_decisions", p, plays["apr"]) for p in PROTOCOLS] + [
        ("own_decisions", p, plays[p]) for p in PROTOCOLS if p != "apr"
    ]
    best = {(kind, p): float("inf") for kind, p, _ in jobs}
    tokens = {}
    for _, p, played in jobs:  # warm-up
        replay(problems[:30], p, played[:30], tokenizer)
    for _ in range(repeats):  # interleaved, so every job sees the same load; best of `repeats`
        for kind, p, played in jobs:
            seconds, tokens[(kind, p)] = replay(problems, p, played, tokenizer)
            best[(kind, p)] = min(best[(kind, p)], seconds)
    apr = best[("same_decisions", "apr")]
    out = {"episodes": n, "beam_size": beam, "repeats": repeats, "same_decisions": {}, "own_decisions": {}}
    for (kind, p), seconds in best.items():
        out[kind][p] = {
            "ms_per_episode": 1e3 * seconds / n,
            "us_per_generated_token": 1e6 * seconds / max(tokens[(kind, p)], 1),
            "actions_per_episode": sum(
                len(x) for x in (plays["apr"] if kind == "same_decisions" else plays[p])
            )
            / n,
            "ratio_to_apr": seconds / apr,
            "ratio_to_apr_per_token": (seconds / tokens[(kind, p)])
            / (apr / tokens[("same_decisions", "apr")]),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--beam", type=int, default=6, help="parent beam = children per spawn")
    parser.add_argument("--out", default="benchmarks/results/protocol_overhead.json")
    args = parser.parse_args(argv)
    n, repeats = (40, 1) if args.quick else (args.n, 5)
    result = measure(n, repeats, args.beam)
    for kind in ("same_decisions", "own_decisions"):
        for p, row in result[kind].items():
            print(
                f"{kind:15s} {p:14s} {row['ms_per_episode']:7.3f} ms/episode "
                f"({row['actions_per_episode']:5.1f} actions) -> {row['ratio_to_apr']:.2f}x apr, "
                f"{row['ratio_to_apr_per_token']:.2f}x per generated token"
            )
    if args.out and not args.quick:
        command = "python benchmarks/protocol_overhead.py" + "".join(f" {a}" for a in (argv or sys.argv[1:]))
        report = {"command": command, "provenance": provenance(), **result}
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
