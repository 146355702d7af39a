"""`APRCountdownMacro-v0`: the APR episode as a numeric macro-action Gymnasium environment.

Registered when `agents` is imported (`agents/__init__.py`), with a string entry point, so both
``gym.make("agents:APRCountdownMacro-v0")`` and ``import agents; gym.make("APRCountdownMacro-v0")``
work. It lives in `agents`, not `apr_env`, because it wraps the symbolic search
(`agents.search`), and `apr_env` imports nothing above it. The game itself is `agents.macro_game`.
"""

from __future__ import annotations

from dataclasses import fields

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from agents.macro_game import MacroConfig, MacroGame, observation_space
from apr_env.envs.common import EnvConfig
from apr_env.render import render_tree

_MACRO_FIELDS = {f.name for f in fields(MacroConfig)}


class APRCountdownMacroEnv(gym.Env):
    """Countdown's APR episode, one numeric decision of a thread's search per step.

    ## Description
    The same episode as `APRCountdown-v0` (protocol ``apr``), but the policy does not write text:
    at each step the acting thread (first-in first-out, as in the text env) picks a macro-action
    of its best-first search (`agents.macro_game`); the env renders it into the protocol's text
    and plays it through `apr_env.Episode`. Child threads are played by the same policy.

    ## Action Space
    `Discrete(K + 2)`, K = ``max_spawn``: 0 expands the best frontier node; k in 1..K spawns k
    children on the k best frontier nodes; K + 1 gives up (``No solution found.``).
    `action_masks()` gives the legal ones (limits: children per spawn, depth, threads, context
    window, token budget). A masked action is a recorded no-op (``info["illegal_action"]``) with
    reward ``-illegal_penalty``; it never raises.

    ## Observation Space
    A flat `Dict` of float32 `Box`es (`agents.macro_game.observation_space`): target, numbers of
    the best frontier node, frontier summary, budgets left, depth, thread id.

    ## Rewards
    Default: the text env's reward, at the last step (correctness plus the critical-path bonus,
    `apr_env.rewards`), 0 before. Shaping (``token_cost``) and illegal-action penalties are added
    per step and reported apart in ``info["shaping"]`` and ``info["penalty"]``; ``info["env_reward"]``
    is the text env's reward at the end.

    ## Starting State
    As `APRCountdown-v0` (``problems``/``problem_seed``/``generator``, ``options={"problem": p}``
    or ``{"index": i}``); ``options={"seed": s}`` fixes the search seed (beams, shuffles), else it
    is drawn from the env's RNG.

    ## Episode End
    Terminated when the root thread ends; truncated when the episode is truncated by a limit or
    after ``max_illegal_actions`` illegal actions (``info["outcome"] == "illegal_action_limit"``).

    ## Arguments
    `EnvConfig`'s (protocol must be 'apr') plus `MacroConfig`'s: ``max_spawn``, ``beam_size``,
    ``sub_beam_size``, ``illegal_penalty``, ``max_illegal_actions``, ``token_cost``.

    ## Version History
    - v0: first version.
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(self, **kwargs):
        macro_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k in _MACRO_FIELDS}
        self.macro = MacroConfig(**macro_kwargs)
        self.config = EnvConfig(**kwargs)
        if self.config.protocol.name != "apr":
            from apr_env.errors import ConfigError

            raise ConfigError(
                f"APRCountdownMacro-v0 plays the APR grammar; protocol={self.config.protocol.name!r} "
                "is not supported (accepted: 'apr')"
            )
        self.render_mode = self.config.render_mode
        self.action_space = spaces.Discrete(self.macro.n_actions)
        self.observation_space = observation_space(self.macro)
        self.game: MacroGame | None = None
        self._tid: int | None = None
        self._illegal = 0
        self._over = True

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        problem = self.config.pick_problem(self.np_random, options)
        options = options or {}
        search_seed = options.get("seed")
        if search_seed is None:
            search_seed = int(self.np_random.integers(2**31))
        self.game = MacroGame(problem, self.config, self.macro, int(search_seed))
        self._illegal = 0
        self._tid = self.game.advance()
        self._over = False
        info = {"thread": self._tid, "event": "reset", "problem": problem.info(), "seed": int(search_seed)}
        return self.game.observe(self._tid), info

    def action_masks(self) -> np.ndarray:
        """Legal actions of the acting thread (bool, length K + 2); only give-up once the episode is over."""
        if self.game is None or self._tid is None:
            masks = np.zeros(self.macro.n_actions, dtype=bool)
            masks[self.macro.give_up] = True
            return masks
        return self.game.masks(self._tid)

    def step(self, action):
        if self.game is None:
            raise gym.error.ResetNeeded("Call reset before using step method.")
        if self._over:
            raise gym.error.ResetNeeded("The episode is over (terminated or truncated); call reset.")
        game, tid = self.game, self._tid
        index = _as_index(action, self.macro.n_actions)
        info = {"thread": tid, "action": index, "illegal_action": False, "shaping": 0.0, "penalty": 0.0}
        if tid is None:  # the episode ended at reset (a prompt longer than the window): nothing to decide
            return self._finish(info, 0.0)
        if index is None or not game.masks(tid)[index]:
            self._illegal += 1
            info.update(illegal_action=True, penalty=-self.macro.illegal_penalty, event="illegal")
            if self._illegal < self.macro.max_illegal_actions:
                return game.observe(tid), info["penalty"], False, False, info
            self._over = True
            info.update(
                outcome="illegal_action_limit", correct=False, env_reward=0.0, illegal_actions=self._illegal
            )
            return game.observe(tid), info["penalty"], False, True, info
        text = game.decide(tid, index)
        if self.macro.token_cost:
            info["shaping"] = -self.macro.token_cost * game.tokenizer.count(text.text) / 1000.0
        info["event"] = "decision"
        self._tid = game.advance()
        if self._tid is not None:
            return game.observe(self._tid), info["shaping"], False, False, info
        return self._finish(info, info["shaping"])

    def _finish(self, info: dict, reward: float):
        """The last step: the text env's summary and reward (plus this step's shaping)."""
        game = self.game
        self._over = True
        summary = game.episode.summary()
        info.update(summary, env_reward=float(summary["reward"]), illegal_actions=self._illegal)
        info["spawn_widths"] = [a for _, a in game.decisions if 1 <= a <= self.macro.max_spawn]
        truncated = bool(game.episode.truncated)
        return game.observe(None), reward + float(summary["reward"]), not truncated, truncated, info

    def render(self):
        if self.render_mode == "ansi" and self.game is not None:
            return render_tree(self.game.episode)
        return None


def _as_index(action, n: int) -> int | None:
    """The action as an int in [0, n), or None for anything else (recorded as illegal)."""
    if isinstance(action, np.ndarray) and action.shape in ((), (1,)):
        action = action.reshape(()).item()
    if isinstance(action, (np.integer,)):
        action = int(action)
    if isinstance(action, bool) or not isinstance(action, int) or not 0 <= action < n:
        return None
    return action
