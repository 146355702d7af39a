"""Resource limits of an episode: per-thread context window, thread/spawn/depth budgets, total tokens.

A breach never raises out of `step`: it ends the offending thread (or the episode) with a
recorded reason (see `apr_env.episode`). With the defaults an episode always terminates:
every non-final action adds at least one token, the context window bounds each thread and
`max_total_tokens` bounds the sum.
"""

from __future__ import annotations

from dataclasses import dataclass

from apr_env.errors import ConfigError


@dataclass(frozen=True)
class Limits:
    """Budgets enforced by the episode. All counts are tokens of the episode's tokenizer."""

    context_window: int = 4096
    """Tokens one thread may hold (prompt + generated), as the official 4,096-token model context."""
    max_threads: int = 64
    """Threads per episode, root included; also the number of PettingZoo agents t0..t{K-1}."""
    max_children_per_spawn: int = 16
    """Children one spawn may create; extra requested children are rejected (they join as 'No Solution')."""
    max_depth: int = 3
    """Deepest thread level (root = 0). A thread at this depth cannot spawn; the official runtime had 1."""
    max_total_tokens: int | None = None
    """Generated tokens over all threads; None means context_window * max_threads."""

    def __post_init__(self) -> None:
        for name in ("context_window", "max_threads", "max_children_per_spawn"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"Limits.{name} must be a positive int, got {value!r}")
        if isinstance(self.max_depth, bool) or not isinstance(self.max_depth, int) or self.max_depth < 0:
            raise ConfigError(f"Limits.max_depth must be an int >= 0, got {self.max_depth!r}")
        if self.max_total_tokens is not None and (
            isinstance(self.max_total_tokens, bool)
            or not isinstance(self.max_total_tokens, int)
            or self.max_total_tokens < 1
        ):
            raise ConfigError(
                f"Limits.max_total_tokens must be None or a positive int, got {self.max_total_tokens!r}"
            )

    @property
    def total_token_budget(self) -> int:
        return (
            self.max_total_tokens
            if self.max_total_tokens is not None
            else self.context_window * self.max_threads
        )
