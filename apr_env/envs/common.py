"""What both environment classes share: keyword arguments, spaces, problem sources.

Both `APRCountdownEnv` (Gymnasium) and `APRCountdownParallelEnv` (PettingZoo) take the same
keyword arguments, parsed here into an `EnvConfig`, and build one `apr_env.episode.Episode`
per reset.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from gymnasium import spaces

from apr_env.episode import Episode
from apr_env.errors import ConfigError
from apr_env.generator import GeneratorConfig, generate_problems
from apr_env.limits import Limits
from apr_env.problem import Problem
from apr_env.protocols.base import Protocol, get_protocol
from apr_env.render import render_tree
from apr_env.rewards import RewardConfig

CHARSET = "".join(chr(c) for c in range(32, 127)) + "\n\t"
"""Observation/action alphabet: printable ASCII, newline and tab (covers the whole trace grammar)."""

RENDER_MODES = ["human", "ansi"]
"""'human' prints the thread tree (`apr_env.render.render_tree`) and returns None; 'ansi' returns it."""

MAX_CHARS_PER_TOKEN = 128
"""Characters per token assumed when sizing the observation Text space (the Countdown tokenizer's
longest token has 31; generous for other tokenizers' long whitespace or word tokens)."""


@dataclass
class EnvConfig:
    """Keyword arguments of `gymnasium.make("APRCountdown-v0", ...)` and `apr_env.parallel_env(...)`."""

    protocol: str | Protocol = "apr"
    """Registered protocol name ('apr', 'serial', ...) or a Protocol instance."""
    protocol_kwargs: dict = field(default_factory=dict)
    """Constructor kwargs of a named protocol, e.g. {'sub_call_budget': 10}."""
    problems: Sequence[Problem] | None = None
    """Explicit problems; reset picks one with the env's RNG (or options={'index': i})."""
    problem_seed: int = 0
    """Seed of the generated problem stream when `problems` is None."""
    generator: dict | GeneratorConfig | None = None
    """Generator knobs (fields of GeneratorConfig) for generated problems; default: APR distribution."""
    limits: Limits | None = None
    """All limits at once; or give the fields below individually."""
    context_window: int | None = None
    max_threads: int | None = None
    max_children_per_spawn: int | None = None
    max_depth: int | None = None
    max_total_tokens: int | None = None
    reward: str | dict | RewardConfig = "critical_path"
    """'critical_path', 'binary', a dict of RewardConfig fields, or a RewardConfig."""
    tokenizer: object = None
    """None (the Countdown tokenizer), a Hugging Face tokenizer folder, or an object with encode/decode."""
    render_mode: str | None = None
    """None, 'human' (the thread tree printed after reset, every step and each ``render()``) or 'ansi'."""

    def __post_init__(self) -> None:
        self.protocol = get_protocol(self.protocol, **self.protocol_kwargs)
        overrides = {
            name: getattr(self, name)
            for name in (
                "context_window",
                "max_threads",
                "max_children_per_spawn",
                "max_depth",
                "max_total_tokens",
            )
            if getattr(self, name) is not None
        }
        self.limits = replace(self.limits or Limits(), **overrides)
        if isinstance(self.reward, str):
            self.reward = RewardConfig(kind=self.reward)
        elif isinstance(self.reward, dict):
            self.reward = RewardConfig(**self.reward)
        elif not isinstance(self.reward, RewardConfig):
            raise ConfigError(f"reward must be a kind name, a dict or a RewardConfig, got {self.reward!r}")
        if isinstance(self.generator, dict):
            self.generator = GeneratorConfig.from_kwargs(**self.generator)
        if self.problems is not None:
            self.problems = [Problem.coerce(p) for p in self.problems]
            if not self.problems:
                raise ConfigError("problems is an empty list; give at least one problem or None to generate")
        if self.render_mode not in (None, *RENDER_MODES):
            raise ConfigError(f"render_mode={self.render_mode!r}; accepted: None, 'human', 'ansi'")
        from apr_env.tokenizer import load_tokenizer

        self.tokenizer = load_tokenizer(self.tokenizer)

    def render(self, episode: Episode | None) -> str | None:
        """What an environment's ``render()`` gives for `episode` in this configuration's render mode.

        'ansi' returns the thread tree as text; 'human' prints it (Gymnasium's and PettingZoo's
        convention: shown to a person, nothing returned); None, or no episode yet, gives None."""
        if episode is None or self.render_mode is None:
            return None
        picture = render_tree(episode)
        if self.render_mode == "ansi":
            return picture
        print(picture, end="", flush=True)
        return None

    def text_space(self, chars: int) -> spaces.Text:
        return spaces.Text(max_length=chars, min_length=0, charset=CHARSET)

    def context_space(self) -> spaces.Text:
        """A thread's context as the environments observe it."""
        return self.text_space(self.limits.context_window * MAX_CHARS_PER_TOKEN)

    def action_space(self) -> spaces.Text:
        """A text action (a thread's next generation)."""
        return self.text_space(self.limits.context_window * 8)

    def new_episode(self, problem: Problem) -> Episode:
        """An `Episode` of `problem` with this configuration's protocol, limits, tokenizer and reward."""
        return Episode(
            problem, self.protocol, limits=self.limits, tokenizer=self.tokenizer, reward=self.reward
        )

    def pick_problem(self, rng: np.random.Generator, options: dict | None) -> Problem:
        """The problem of a new episode: options['problem'] / options['index'], else drawn with `rng`."""
        options = options or {}
        if "problem" in options:
            return Problem.coerce(options["problem"])
        if self.problems is not None:
            index = options.get("index")
            if index is None:
                index = int(rng.integers(len(self.problems)))
            return self.problems[index % len(self.problems)]
        index = options.get("index")
        if index is None:
            index = int(rng.integers(2**31))
        cfg = self.generator or GeneratorConfig()
        return generate_problems(1, seed=self.problem_seed, start=index, config=cfg)[0]
