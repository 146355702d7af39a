"""`APRCountdown-v0`: Countdown with spawn/join threads as a single-agent Gymnasium environment."""

from __future__ import annotations

import gymnasium as gym
from gymnasium import spaces

from apr_env.envs.common import RENDER_MODES, EnvConfig
from apr_env.episode import Episode


class APRCountdownEnv(gym.Env):
    """Countdown solved by a tree of reasoning threads that one policy plays (parameter sharing, as in APR).

    ## Description
    Each episode is one Countdown problem (reach the target using every number once with
    ``+ - * /``). The root thread starts from the protocol's prompt; a thread may end its
    text with a spawn request (APR: a ``<Calling Sub Searches>`` block), which creates
    child threads that search in parallel; when they have all ended, their verified answers
    are joined into the parent's context and the parent continues. The policy acts for one
    thread per step. Rules, limits and metrics: `apr_env.episode`; grammar: `apr_env.protocols`.

    ## Action Space
    `Text`: the text the acting thread generates next, a whole segment that ends at a spawn
    request or ends the thread (then its answer is read from the text). Structured actions
    are accepted too (`apr_env.actions`: `Text(text, token_ids, partial)`, `Spawn(labels)`,
    `Answer(path)`, `Join()`, or the equivalent dicts). Any other value, however malformed,
    is recorded as that thread's outcome (``invalid_action_*``), never raised.

    ## Observation Space
    `Dict` with ``thread`` (`Discrete(max_threads)`: the acting thread's id) and ``context``
    (`Text` over printable ASCII, newline and tab: the acting thread's prompt and what it has
    generated in the current call).

    ## Rewards
    0 on every step but the last. At the end, by default
    ``c + c * 0.5 * min(1 - critical_path / total_tokens, 0.2)`` with c = 1 if the root's
    answer verifies (``reward="binary"``: c only). Components are in ``info``.

    ## Starting State
    The root thread (id 0) with the protocol's prompt for a problem drawn with the env's RNG
    from `problems`, or generated from the seeded stream (default: the APR distribution);
    ``options={"problem": p}`` or ``options={"index": i}`` chooses it.

    ## Episode End
    Terminated when the root thread ends (its answer verified or not). Truncated when a
    limit ends the root: its context window, or the total generated-token budget
    (``info["outcome"]`` says which). Child threads that hit a limit fail and join as 'no
    solution'. Scheduling is first-in first-out: children act in spawn order after their
    parent's spawn; the parent acts again once all of them have ended.

    ## Info
    Every step: ``thread`` (the thread that acted), ``event`` ('spawn', 'finish', 'fail', ...),
    ``runnable`` (thread ids in scheduling order). Last step: also ``outcome``, ``correct``,
    ``answer``, ``verdict``, ``metrics`` (total, prefill, critical-path, longest-thread and
    max-context tokens, threads, spawns, depth, ...), reward components, ``format_errors`` and
    ``tree`` (one dict per thread).

    ## Arguments
    See `apr_env.envs.common.EnvConfig`: ``protocol``, ``protocol_kwargs``, ``problems``,
    ``problem_seed``, ``generator``, ``limits`` or ``context_window`` / ``max_threads`` /
    ``max_children_per_spawn`` / ``max_depth`` / ``max_total_tokens``, ``reward``,
    ``tokenizer``, ``render_mode`` (None; 'human': the thread tree printed after reset and
    every step, `render` returns None; 'ansi': `render` returns it as text). A
    ``context_window`` that cannot hold the root prompt of the problems the configuration
    draws raises `ConfigError` (at construction; at reset for a problem given in
    ``options``). A window exactly the prompt's size is accepted: the first action that adds
    a token is cut and truncates the episode.

    >>> import gymnasium as gym, apr_env
    >>> env = gym.make("APRCountdown-v0", protocol="apr")
    >>> obs, info = env.reset(seed=0)
    >>> obs["context"].splitlines()[0]
    'Moving to Node #0'

    ## Version History
    - v0: first version.
    """

    metadata = {"render_modes": RENDER_MODES, "render_fps": 4}

    def __init__(self, **kwargs):
        self.config = EnvConfig(**kwargs)
        limits = self.config.limits
        self.render_mode = self.config.render_mode
        self.observation_space = spaces.Dict(
            {
                "thread": spaces.Discrete(limits.max_threads),
                "context": self.config.context_space(),
            }
        )
        self.action_space = self.config.action_space()
        self.episode: Episode | None = None

    def _obs(self, tid: int) -> dict:
        return {"thread": tid, "context": self.episode.observation(tid)}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        problem = self.config.pick_problem(self.np_random, options)
        self.episode = self.config.new_episode(problem)
        info = {
            "thread": 0,
            "event": "reset",
            "runnable": self.episode.runnable,
            "problem": problem.info(),
        }
        if self.render_mode == "human":
            self.render()
        return self._obs(0), info

    def step(self, action):
        if self.episode is None:
            raise gym.error.ResetNeeded("Call reset before using step method.")
        ep = self.episode
        if ep.done:
            raise gym.error.ResetNeeded("The episode is over (terminated or truncated); call reset.")
        tid = ep.next_thread
        event = ep.act(tid, action)
        info = {"thread": tid, "event": event, "runnable": ep.runnable}
        if self.render_mode == "human":
            self.render()
        if not ep.done:
            return self._obs(ep.next_thread), 0.0, False, False, info
        summary = ep.summary()
        info.update(summary)
        return self._obs(0), float(summary["reward"]), not ep.truncated, ep.truncated, info

    def render(self) -> str | None:
        """The thread tree: returned as text ('ansi'), printed ('human', returns None), or None."""
        return self.config.render(self.episode)
