"""Episode rewards: correctness plus a correctness-gated critical-path bonus.

Default (ThreadWeaver form, reference peers section 2):
``r = c + c * rho * min(1 - critical_path / total, clip)`` with c = 1 when the root's final
answer verifies, rho = 0.5, clip = 0.2. The bonus rewards parallelism: it grows as the
critical path becomes a smaller share of all generated tokens, is capped by `clip` so it
never outweighs correctness, and is zero for a wrong answer. ``kind="binary"`` gives the
official APR reward (c only). An optional format penalty is subtracted once when the episode
recorded any format error (malformed spawn block, unknown node id, invalid action, ...).
"""

from __future__ import annotations

from dataclasses import dataclass

from apr_env.errors import ConfigError

REWARD_KINDS = ("critical_path", "binary")


@dataclass(frozen=True)
class RewardConfig:
    kind: str = "critical_path"
    """'critical_path' (correctness + gated parallelism bonus) or 'binary' (official APR)."""
    rho: float = 0.5
    """Weight of the critical-path bonus, >= 0 (0 turns the bonus off)."""
    clip: float = 0.2
    """Cap on 1 - critical_path / total before weighting, >= 0 (0 turns the bonus off)."""
    format_penalty: float = 0.0
    """Subtracted once if the episode recorded any format error (0 disables it)."""

    def __post_init__(self) -> None:
        if self.kind not in REWARD_KINDS:
            raise ConfigError(
                f"RewardConfig.kind={self.kind!r}; accepted: {', '.join(map(repr, REWARD_KINDS))}"
            )
        if self.rho < 0 or self.clip < 0 or self.format_penalty < 0:
            raise ConfigError(
                f"RewardConfig rho={self.rho}, clip={self.clip}, format_penalty={self.format_penalty} must be >= 0"
            )


def compute_reward(
    correct: bool, critical_path_tokens: int, total_tokens: int, format_errors: int, config: RewardConfig
) -> dict[str, float]:
    """The reward and its components: {'correct', 'parallel_bonus', 'format_penalty', 'reward'}."""
    c = 1.0 if correct else 0.0
    bonus = 0.0
    if config.kind == "critical_path" and correct and total_tokens > 0:
        bonus = config.rho * min(1.0 - critical_path_tokens / total_tokens, config.clip)
    penalty = config.format_penalty if format_errors else 0.0
    return {"correct": c, "parallel_bonus": bonus, "format_penalty": penalty, "reward": c + bonus - penalty}
