"""`apr_env.parallel_env()`: the same game as a PettingZoo `ParallelEnv` where threads are agents."""

from __future__ import annotations

import functools

from gymnasium import spaces
from gymnasium.utils import seeding
from pettingzoo import ParallelEnv

from apr_env.envs.common import RENDER_MODES, EnvConfig
from apr_env.episode import Episode


class APRCountdownParallelEnv(ParallelEnv):
    """Threads as agents: every running thread acts in the same step.

    ## Agents
    ``possible_agents`` is ``t0 .. t{K-1}`` with K = ``max_threads`` (ids are never reused
    within an episode). ``agents`` starts as ``["t0"]``; children appear in ``agents`` in the
    step that spawns them (their first observation comes with that step's results); a thread
    that ends leaves ``agents`` after the step that reports its termination and never returns.

    ## Observations and actions
    Per agent: ``{"context": Text, "waiting": Discrete(2)}``. ``waiting == 1`` marks a parent
    waiting for its children: its action is ignored (and recorded in ``format_errors``; it may
    simply be omitted). Actions are texts or structured actions as in `APRCountdownEnv`.
    Threads act in ascending id order within a step; children spawned in a step first act in
    the next step.

    ## Team reward
    0 until the episode ends; then the episode reward (correctness + gated critical-path
    bonus, see `apr_env.rewards`) is given to every agent reported in that final step (the
    root always is). ``infos[agent]`` of the final step carries the episode summary.

    ## Episode end
    When the root thread ends, every remaining agent is terminated (or truncated, when a
    limit ended the episode) and ``agents`` becomes empty.

    ## Rendering
    ``render_mode="human"`` prints the thread tree after reset and every step (``render()``
    prints it too and returns None); ``"ansi"`` makes ``render()`` return it as text.
    """

    metadata = {"name": "apr_countdown_v0", "render_modes": RENDER_MODES, "is_parallelizable": True}

    def __init__(self, **kwargs):
        self.config = EnvConfig(**kwargs)
        limits = self.config.limits
        self.render_mode = self.config.render_mode
        self.possible_agents = [f"t{i}" for i in range(limits.max_threads)]
        self.agents: list[str] = []
        self._obs_space = spaces.Dict(
            {
                "context": self.config.context_space(),
                "waiting": spaces.Discrete(2),
            }
        )
        self._action_space = self.config.action_space()
        self.episode: Episode | None = None
        self.np_random, _ = seeding.np_random(None)

    @functools.cache  # noqa: B019 - same object per agent, as PettingZoo requires
    def observation_space(self, agent: str) -> spaces.Space:
        return self._obs_space

    @functools.cache  # noqa: B019
    def action_space(self, agent: str) -> spaces.Space:
        return self._action_space

    def _obs(self, tid: int) -> dict:
        t = self.episode.threads[tid]
        return {"context": t.context, "waiting": int(t.status.value == "waiting")}

    def reset(self, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self.np_random, _ = seeding.np_random(seed)
        problem = self.config.pick_problem(self.np_random, options)
        self.episode = self.config.new_episode(problem)
        self.agents = ["t0"]
        if self.render_mode == "human":
            self.render()
        return {"t0": self._obs(0)}, {"t0": {"problem": problem.info()}}

    def step(self, actions: dict):
        ep = self.episode
        before = list(self.agents)
        n_before = len(ep.threads)
        by_id = {}
        for agent, action in (actions or {}).items():
            if isinstance(agent, str) and agent[:1] == "t" and agent[1:].isdigit():
                by_id[int(agent[1:])] = action
        events = ep.act_parallel(by_id)
        live = before + [f"t{i}" for i in range(n_before, len(ep.threads))]
        obs, rewards, terms, truncs, infos = {}, {}, {}, {}, {}
        summary = ep.summary() if ep.done else None
        for agent in live:
            tid = int(agent[1:])
            t = ep.threads[tid]
            ended = not t.active
            obs[agent] = self._obs(tid)
            rewards[agent] = float(summary["reward"]) if summary else 0.0
            terms[agent] = ended and not (summary and ep.truncated)
            truncs[agent] = ended and bool(summary and ep.truncated)
            infos[agent] = {"event": events.get(tid), "status": t.status.value, "reason": t.reason}
            if summary:
                infos[agent]["episode"] = summary
        self.agents = [a for a in live if not (terms[a] or truncs[a])]
        if self.render_mode == "human":
            self.render()
        return obs, rewards, terms, truncs, infos

    def render(self) -> str | None:
        """The thread tree: returned as text ('ansi'), printed ('human', returns None), or None."""
        return self.config.render(self.episode)
