"""pytest-benchmark suite for the environments' own overhead: replaying recorded official APR trees.

    .venv/bin/pytest benchmarks/bench_env.py --benchmark-enable --benchmark-only   # timed
    .venv/bin/pytest benchmarks/bench_env.py                                       # once, un-timed (make test)

Every round replays the 40 APR trees of tests/data/official-traces.json (the
official solver's traces: 40 episodes, 87 root segments and 322 children, so 409
Gymnasium steps or 134 PettingZoo steps) as fixed text actions, so the time is the environment's alone (parsing spawns,
building child prompts, joins, verification, exact token counts with the Countdown
tokenizer, rewards, summaries), with no policy. Three entry points:

- `Episode` directly (``act`` + ``summary()`` at the end): the rules without any wrapper;
- ``gymnasium.make("APRCountdown-v0")`` (one thread per step, through Gymnasium's default
  wrappers): the difference to `Episode` is the Gymnasium wrapper cost;
- ``apr_env.parallel_env()`` (all children of a spawn in one step).

Each benchmark stores ``episodes`` and ``steps`` per round in ``extra_info`` (and, when
timed, ``episodes_per_s`` and ``steps_per_s``); every run also checks that each replay
reaches the official verdict, so the un-timed run under ``make test`` is a test too.
The window is 8,192 tokens because the official solver has none (longest sequence: 4,793).
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import pytest

import apr_env
from apr_env import Episode, Limits, Problem
from tests.golden import APR, apr_replay

WINDOW = 8192


@dataclass(frozen=True)
class Plan:
    """One official APR tree as actions: root actions per segment, child actions per spawn."""

    problem: Problem
    root_actions: tuple[str, ...]
    child_actions: tuple[tuple[str, ...], ...]
    correct: bool
    answer: str | None

    @property
    def steps(self) -> int:
        """Gymnasium / Episode steps: one per root segment and one per child."""
        return len(self.root_actions) + sum(len(g) for g in self.child_actions)


def load_plans() -> list[Plan]:
    """The golden APR trees as plans (the actions are `tests/golden.apr_replay`'s)."""
    plans = []
    for e in APR:
        replay = apr_replay(e)
        children = tuple(tuple(action for _, action, _ in group) for group in replay.children)
        plans.append(
            Plan(
                replay.problem,
                tuple(replay.root_actions),
                children,
                e["official_correct"],
                e["official_answer_path"],
            )
        )
    return plans


def replay_episode(plan: Plan, limits: Limits) -> dict:
    ep = Episode(plan.problem, "apr", limits=limits)
    k, pending = 0, {}
    while not ep.done:
        tid = ep.runnable[0]
        if tid == 0:
            n = len(ep.threads)
            ep.act(0, plan.root_actions[k])
            if len(ep.threads) > n:
                pending.update(zip(range(n, len(ep.threads)), plan.child_actions[k]))
            k += 1
        else:
            ep.act(tid, pending.pop(tid))
    return ep.summary()


def replay_gym(env, plan: Plan) -> dict:
    obs, _ = env.reset(options={"problem": plan.problem})
    k, pending = 0, {}
    while True:
        tid = obs["thread"]
        if tid == 0:
            action = plan.root_actions[k]
            k += 1
        else:
            action = pending.pop(tid)
        obs, _, term, trunc, info = env.step(action)
        if term or trunc:
            return info
        if tid == 0 and info["event"] == "spawn":
            pending.update(zip(info["runnable"], plan.child_actions[k - 1]))


def replay_parallel(env, plan: Plan) -> dict:
    env.reset(options={"problem": plan.problem})
    k, actions = 0, {"t0": plan.root_actions[0]}
    while True:
        root_acted = "t0" in actions
        obs, _, _, _, infos = env.step(actions)
        if not env.agents:
            return infos["t0"]["episode"]
        if root_acted:
            k += 1
            new = sorted((a for a in obs if a != "t0"), key=lambda a: int(a[1:]))
            actions = dict(zip(new, plan.child_actions[k - 1]))
        else:
            actions = {"t0": plan.root_actions[k]}


@pytest.fixture(scope="module")
def plans() -> list[Plan]:
    return load_plans()


def _check(results: list[dict], plans: list[Plan]) -> None:
    assert [(r["correct"], r["answer"]) for r in results] == [(p.correct, p.answer) for p in plans]


def _record(benchmark, plans: list[Plan]) -> None:
    steps = sum(p.steps for p in plans)
    benchmark.extra_info.update(episodes=len(plans), steps=steps)
    stats = getattr(benchmark, "stats", None)
    if stats is not None:  # timed run
        mean = stats.stats.mean
        benchmark.extra_info.update(episodes_per_s=len(plans) / mean, steps_per_s=steps / mean)


def test_replay_golden_apr_with_episode(benchmark, plans):
    limits = Limits(context_window=WINDOW)
    results = benchmark(lambda: [replay_episode(p, limits) for p in plans])
    _check(results, plans)
    _record(benchmark, plans)


def test_replay_golden_apr_with_gym_make(benchmark, plans):
    env = gym.make("APRCountdown-v0", context_window=WINDOW)
    results = benchmark(lambda: [replay_gym(env, p) for p in plans])
    _check(results, plans)
    _record(benchmark, plans)


def test_replay_golden_apr_with_parallel_env(benchmark, plans):
    env = apr_env.parallel_env(context_window=WINDOW)
    results = benchmark(lambda: [replay_parallel(env, p) for p in plans])
    _check(results, plans)
    # parallel steps: one per root segment, one per spawn for all its children
    steps = sum(len(p.root_actions) + len(p.child_actions) for p in plans)
    benchmark.extra_info.update(
        episodes=len(plans), parallel_steps=steps, thread_actions=sum(p.steps for p in plans)
    )
    stats = getattr(benchmark, "stats", None)
    if stats is not None:
        benchmark.extra_info.update(
            episodes_per_s=len(plans) / stats.stats.mean, parallel_steps_per_s=steps / stats.stats.mean
        )


def test_action_size_script_runs_on_tiny_sizes():
    # A smoke run of benchmarks/action_size_side_by_side.py's library entry point (no timing claims):
    # a huge and a window-sized action end alike in both entry points.
    from benchmarks.action_size_side_by_side import ActionSizeConfig, format_table, run

    results = run(ActionSizeConfig(huge_bytes=2**18, context_window=512, repeats=1, before_bytes=2**10))
    assert set(results["rows"]) == {"x_run", "trace_text"}
    assert all(row["same_outcome_and_metrics"] for row in results["rows"].values())
    assert "gym_step" in format_table(results)
