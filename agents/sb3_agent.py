"""A trained macro-action policy (SB3 / sb3-contrib) as an `apr_env.agent.Agent` for the runner.

The runner (`runtime.runner.run_episodes`, hence ``apr-env eval``) hands agents text
observations and wants text actions. `MacroPolicyAgent` keeps, per episode, a shadow
`agents.macro_game.MacroGame` (same problem, seed, limits and protocol): for each thread that
must act it plays the forced move or asks the policy for an action on the game's numeric
observation with the game's masks, plays it on the shadow and returns its text, which the
runner plays on the real episode. The runner's waves act in queue order, the order the shadow
uses, so both episodes stay identical; the agent checks that (the thread's context must match)
and raises when they diverge (different limits, or another agent playing some threads).

    from agents.sb3_agent import MacroPolicyAgent
    agent = MacroPolicyAgent.load("runs/ppo/model.zip")
    records = runtime.runner.run_episodes(agent, problems, RunConfig(protocol="apr"))
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path

import numpy as np

from agents.macro_game import MacroConfig, MacroGame
from apr_env.actions import Text
from apr_env.agent import Agent, ThreadObservation
from apr_env.envs.common import EnvConfig

_MACRO_FIELDS = {f.name for f in fields(MacroConfig)}


def env_kwargs_path(model_path: str | Path) -> Path:
    """Where `trainers.ppo` stores the environment kwargs next to a saved model (``*.env.json``)."""
    path = Path(model_path)
    return path.with_name(path.name.removesuffix(".zip") + ".env.json")


class MacroPolicyAgent(Agent):
    """Plays every thread of an APR episode with a macro-action policy (see the module docstring).

    Args:
        policy: an object with ``predict(obs, action_masks=..., deterministic=...)`` (a
            `sb3_contrib.MaskablePPO`), or a callable ``(obs, masks) -> int``.
        env_kwargs: the macro env's keyword arguments the policy was trained with (limits,
            ``max_spawn``, beams, ...); the runner must use the same limits.
        deterministic: take the most likely legal action (True) or sample.
    """

    name = "ppo"

    def __init__(self, policy, env_kwargs: dict | None = None, *, deterministic: bool = True):
        env_kwargs = dict(env_kwargs or {})
        self.macro = MacroConfig(**{k: env_kwargs.pop(k) for k in list(env_kwargs) if k in _MACRO_FIELDS})
        env_kwargs.pop("problems", None)
        self.config = EnvConfig(**env_kwargs)
        self.policy = policy
        self.deterministic = deterministic
        self._games: dict[int, MacroGame] = {}
        self.history: dict[int, list[tuple[int, int, int]]] = {}
        """Per finished episode key, its decisions as (thread, depth, action): for behaviour reports."""

    @classmethod
    def load(cls, path: str | Path, *, deterministic: bool = True, **overrides) -> MacroPolicyAgent:
        """A MaskablePPO zip saved by `trainers.ppo`, with its ``.env.json`` (`overrides` replace fields)."""
        from sb3_contrib import MaskablePPO

        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(
                f"no saved policy at {path}; train one with `apr-env train ppo --out DIR`"
            )
        sidecar = env_kwargs_path(path)
        env_kwargs = json.loads(sidecar.read_text()) if sidecar.exists() else {}
        env_kwargs.update(overrides)
        return cls(MaskablePPO.load(path, device="cpu"), env_kwargs, deterministic=deterministic)

    def choose(self, obs: dict, masks: np.ndarray) -> int:
        """The policy's action for one observation, masks applied."""
        if hasattr(self.policy, "predict"):
            action, _ = self.policy.predict(obs, action_masks=masks, deterministic=self.deterministic)
            return int(np.asarray(action).reshape(()))
        return int(self.policy(obs, masks))

    def act(self, observations: Sequence[ThreadObservation]) -> list:
        return [self._act(o) for o in observations]

    def _act(self, o: ThreadObservation):
        game = self._games.get(o.episode)
        if game is None:
            game = self._games[o.episode] = MacroGame(o.problem, self.config, self.macro, o.seed)
        if game.done or not game.thread_running(o.thread):
            return Text("")  # the episode ended earlier in this wave
        tid = game.episode.next_thread
        if tid != o.thread or game.episode.threads[tid].context != o.context:
            raise RuntimeError(
                f"episode {o.episode}: the runner's thread {o.thread} no longer matches the agent's shadow game "
                f"(expected thread {tid}); run it with the limits the policy was trained with "
                f"({self.config.limits}) and protocol 'apr', and let this agent play every thread"
            )
        forced = game.play_forced(tid)
        if forced is not None:
            return forced
        return game.decide(tid, self.choose(game.observe(tid), game.masks(tid)))

    def end_episode(self, episode: int) -> None:
        game = self._games.pop(episode, None)
        if game is not None:
            self.history[episode] = [(t, game.episode.threads[t].depth, a) for t, a in game.decisions]
