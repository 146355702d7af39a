"""What both environment classes share: keyword arguments, spaces, problem sources.

Both `APRCountdownEnv` (Gymnasium) and `APRCountdownParallelEnv` (PettingZoo) take the same
keyword arguments, parsed here into an `EnvConfig`, and build one `apr_env.episode.Episode`
per reset.

A configuration whose window cannot hold the protocol's root prompt is rejected with a
`ConfigError`: at construction for the longest prompt of its problems (the explicit ones, or
the generator's problem with the most digits), at reset for a problem given in ``options``.
An episode therefore never starts over, so vector envs can reset and step any accepted
configuration.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from gymnasium import spaces

from apr_env.envs.shared_text import ContextText
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
        self._check_window()

    def _check_window(self) -> None:
        """ConfigError unless the window holds the root prompt of every problem this configuration draws.

        Explicit problems are all counted. Generated ones are represented by the longest problem
        of the generator's ranges (most numbers, each the largest value, the largest target):
        with the Countdown tokenizer every digit is one token and the rest of the prompt is
        fixed, so no generated prompt is longer; with another tokenizer a prompt may still come
        out longer, and `new_episode` then raises for that problem at reset.
        """
        if self.problems is not None:
            counts = self.tokenizer.count_batch([self.protocol.root_prompt(p) for p in self.problems])
            worst = max(range(len(counts)), key=counts.__getitem__)
            problem, tokens, kind = self.problems[worst], counts[worst], "the longest of the given problems"
        else:
            cfg = self.generator or GeneratorConfig()
            problem = Problem.trusted(cfg.max_target, (cfg.max_value,) * cfg.max_numbers)
            tokens = self.tokenizer.count(self.protocol.root_prompt(problem))
            kind = "the longest problem the generator can draw"
        if tokens > self.limits.context_window:
            raise ConfigError(
                _window_message(self.limits.context_window, self.protocol, problem, tokens, kind)
            )

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

    def context_space(self) -> ContextText:
        """A thread's context as the environments observe it (a `Text` that async vector envs can share)."""
        return ContextText(self.limits.context_window * MAX_CHARS_PER_TOKEN, min_length=0, charset=CHARSET)

    def action_space(self) -> spaces.Text:
        """A text action (a thread's next generation)."""
        return self.text_space(self.limits.context_window * 8)

    def new_episode(self, problem: Problem) -> Episode:
        """An `Episode` of `problem` with this configuration's protocol, limits, tokenizer and reward.

        Raises:
            ConfigError: the window cannot hold `problem`'s root prompt (a problem given in reset's
                options, or a generated one with a tokenizer other than the Countdown one).
        """
        episode = Episode(
            problem, self.protocol, limits=self.limits, tokenizer=self.tokenizer, reward=self.reward
        )
        if episode.outcome == "prompt_exceeds_context_window":
            tokens = episode.threads[0].calls[0].prompt_tokens
            raise ConfigError(
                _window_message(self.limits.context_window, self.protocol, problem, tokens, "this problem")
            )
        return episode

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


def _window_message(window: int, protocol: Protocol, problem: Problem, tokens: int, kind: str) -> str:
    return (
        f"context_window={window} cannot hold the {protocol.name!r} protocol's root prompt of {kind} "
        f"(target {problem.target}, numbers {list(problem.numbers)}): {tokens} tokens; "
        f"accepted: context_window >= {tokens}"
    )
