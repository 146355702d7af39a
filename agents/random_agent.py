"""A random policy: a baseline that plays the grammar but not the game.

Each thread walks random legal moves from its start state (one `Exploring Operation` line
per move) down to a single number, then claims the goal if it hit the target (with a
correct answer path) or writes ``No solution found.``. Under a protocol that spawns, with
probability `spawn_prob` the root instead generates a few random child nodes and spawns
them (the APR calling block), so every code path of the environment gets exercised.
Reproducible: randomness comes from (episode seed, thread label).
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from agents import seeding
from apr_env import grammar as g
from apr_env.actions import Spawn
from apr_env.agent import Agent, ThreadObservation
from apr_env.arithmetic import combine


def _start_state(context: str) -> tuple[str, int, list[int], list[str]] | None:
    """(node id, target, nums, ops) of a thread's prompt, from its first node and state lines."""
    node = "0"
    for line in context.split("\n"):
        m = g.RE_MOVING.search(line)
        if m and line.endswith(m.group(0)):
            node = m.group(1)
        at = line.find("Current State: ")
        state = g.parse_state(line[at:]) if at >= 0 else None
        if state is not None:
            return node, state[0], list(state[1]), list(state[2])
    return None


class RandomAgent(Agent):
    """Random legal moves; spawns random children with probability `spawn_prob` (root only)."""

    name = "random"

    def __init__(self, spawn_prob: float = 0.3, max_children: int = 4):
        self.spawn_prob = spawn_prob
        self.max_children = max_children

    def act(self, observations: Sequence[ThreadObservation]) -> list:
        return [self._act(o) for o in observations]

    def _act(self, obs: ThreadObservation):
        rng = seeding.make_rng(f"random|{obs.seed}|{obs.episode}|{obs.label}|{len(obs.context)}")
        if g.END_SUB_SEARCHES in obs.context[-200:]:
            return g.NO_SOLUTION + "\n"  # a resumed random parent gives up
        start = _start_state(obs.context)
        if start is None:
            return g.NO_SOLUTION + "\n"
        node, target, nums, ops = start
        if obs.protocol == "apr" and obs.thread == 0 and len(nums) > 2 and rng.random() < self.spawn_prob:
            return self._spawn(rng, node, target, nums, ops)
        lines, path = [], []
        while len(nums) > 1:
            i, j = sorted(rng.sample(range(len(nums)), 2))
            value, op = rng.choice(combine(nums[i], nums[j]))
            before = list(nums)
            nums = [n for k, n in enumerate(nums) if k not in (i, j)] + [value]
            lines.append(g.exploring_line(op, nums))
            path.append((before, op, list(nums)))
        if nums[0] != target:
            return "\n".join([*lines, g.unequal_line(nums[0], target), g.NO_SOLUTION]) + "\n"
        answer = [g.moving_line(node)]
        ids, cur_ops = node, list(ops)
        for k, (before, op, after) in enumerate(path):
            answer.append(g.state_line(target, before, cur_ops))
            answer.append(g.exploring_line(op, after))
            cur_ops = [*cur_ops, op]
            if k < len(path) - 1:
                ids = f"{ids},0"
                answer += [g.generated_line(ids, target, after, op), g.moving_line(ids)]
        answer.append(g.goal_line(target, target))
        return "\n".join([*lines, g.goal_line(target, target), *answer]) + "\n"

    def _spawn(self, rng: random.Random, node: str, target: int, nums: list[int], ops: list[str]) -> Spawn:
        pairs = [(i, j) for i in range(len(nums)) for j in range(i + 1, len(nums))]
        lines, labels = [], []
        for k in range(rng.randint(1, self.max_children)):
            i, j = rng.choice(pairs)
            value, op = rng.choice(combine(nums[i], nums[j]))
            child = [n for m, n in enumerate(nums) if m not in (i, j)] + [value]
            label = f"{node},{k}"
            lines += [g.exploring_line(op, child), g.generated_line(label, target, child, op)]
            labels.append(label)
        return Spawn(tuple(labels), "\n".join(lines) + "\n")
