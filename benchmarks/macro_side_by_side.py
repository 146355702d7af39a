"""Side-by-side speed of the macro-action env: APRCountdownMacro-v0 vs the text env replaying it.

    python -m benchmarks.macro_side_by_side            # 200 episodes, best of 3 (about a minute)
    python -m benchmarks.macro_side_by_side --quick    # 40 episodes, a smoke run

In one run, one process: episodes of the macro env played by a fixed mix of actions (expand,
spawn widths, seeded) are recorded as action indices; then, timed, (a) the macro env replays
those indices (reset + one `step` per decision: search, masks, observation, rendering and the
episode's rules) and (b) the text env (`APRCountdown-v0`) replays the texts the macro env played
(reset + one `step` per text). Reported: macro decisions/s, text steps/s, seconds per episode
for each, and their ratio (the macro env's overhead over the text episode it drives). For "is
SB3 starved by the env": the MaskablePPO policy's own time per single-observation `predict`
(masks applied, a fresh untrained MultiInputPolicy) on the same machine.

Writes ``benchmarks/results/macro_side_by_side.json`` (``..._quick.json`` with ``--quick``) with
command, config and provenance. Times are the best of `repeats` (least disturbed by other load).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np

import agents  # noqa: F401 - registers APRCountdownMacro-v0
import apr_env  # noqa: F401 - registers APRCountdown-v0
from agents.macro_env import APRCountdownMacroEnv
from agents.macro_game import EXPAND
from apr_env import generate_problems
from apr_env.provenance import provenance

RESULTS = Path(__file__).resolve().parent / "results"


def record(problems, seed: int) -> list[dict]:
    """Play each problem once with a seeded mix of legal actions; keep the indices and the texts."""
    rng = np.random.default_rng(seed)
    env = APRCountdownMacroEnv()
    out = []
    for i, problem in enumerate(problems):
        env.reset(options={"problem": problem, "seed": i})
        actions, done = [], False
        while not done:
            masks = env.action_masks()
            spawns = np.flatnonzero(masks[1:-1]) + 1
            if len(spawns) and rng.random() < 0.1:
                action = int(rng.choice(spawns))
            else:
                action = EXPAND if masks[EXPAND] else int(np.flatnonzero(masks)[-1])
            actions.append(action)
            _, _, term, trunc, _ = env.step(action)
            done = term or trunc
        out.append({"problem": problem, "seed": i, "actions": actions, "texts": list(env.game.played)})
    return out


def time_macro(episodes) -> float:
    env = APRCountdownMacroEnv()
    started = time.perf_counter()
    for ep in episodes:
        env.reset(options={"problem": ep["problem"], "seed": ep["seed"]})
        for action in ep["actions"]:
            env.step(action)
    return time.perf_counter() - started


def time_text(episodes) -> float:
    env = gym.make("APRCountdown-v0").unwrapped
    started = time.perf_counter()
    for ep in episodes:
        env.reset(options={"problem": ep["problem"]})
        for _, text in ep["texts"]:
            env.step(text)
    return time.perf_counter() - started


def time_policy(n: int) -> float:
    """Seconds per single-observation MaskablePPO `predict` with masks (an untrained policy)."""
    from sb3_contrib import MaskablePPO

    env = APRCountdownMacroEnv()
    obs, _ = env.reset(seed=0)
    masks = env.action_masks()
    model = MaskablePPO("MultiInputPolicy", env, device="cpu", seed=0)
    model.predict(obs, action_masks=masks, deterministic=True)
    started = time.perf_counter()
    for _ in range(n):
        model.predict(obs, action_masks=masks, deterministic=True)
    return (time.perf_counter() - started) / n


def run(n: int, repeats: int, seed: int = 0) -> dict:
    problems = generate_problems(n, seed=seed)
    episodes = record(problems, seed)
    decisions = sum(len(e["actions"]) for e in episodes)
    texts = sum(len(e["texts"]) for e in episodes)
    macro = min(time_macro(episodes) for _ in range(repeats))
    text = min(time_text(episodes) for _ in range(repeats))
    policy = time_policy(500)
    return {
        "episodes": n,
        "decisions": decisions,
        "text_steps": texts,
        "macro_seconds": macro,
        "text_seconds": text,
        "macro_decisions_per_s": decisions / macro,
        "text_steps_per_s": texts / text,
        "macro_ms_per_episode": 1000 * macro / n,
        "text_ms_per_episode": 1000 * text / n,
        "macro_over_text_time": macro / text,
        "policy_predict_ms": 1000 * policy,
        "env_step_over_policy_predict": (macro / decisions) / policy,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    n = 40 if args.quick else 200
    result = run(n, args.repeats)
    for key, value in result.items():
        print(f"{key:32s} {value:.4g}" if isinstance(value, float) else f"{key:32s} {value}")
    out = RESULTS / ("macro_side_by_side_quick.json" if args.quick else "macro_side_by_side.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "command": "python -m benchmarks.macro_side_by_side "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "config": {"episodes": n, "repeats": args.repeats, "seed": 0},
        "provenance": provenance(),
        "results": result,
    }
    out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
