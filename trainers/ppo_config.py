"""`PPOConfig`: everything `trainers.ppo.train_ppo` needs, one doc line per field (CLI help too)."""

from __future__ import annotations

from dataclasses import dataclass

from apr_env.errors import ConfigError

VEC_ENVS = ("dummy", "subproc")


@dataclass
class PPOConfig:
    """MaskablePPO on `APRCountdownMacro-v0` with a short CPU budget."""

    out: str = "runs/ppo"
    """Folder for model.zip, model.env.json, evaluations.npz, monitor logs, the curve PNG and summary.json."""
    total_timesteps: int = 30_000
    """Environment decisions to train on (all envs together)."""
    n_envs: int = 2
    """Parallel training environments."""
    vec_env: str = "dummy"
    """'dummy' (one process) or 'subproc' (one process per env; masks go through env_method)."""
    n_steps: int = 512
    """Rollout length per env between updates."""
    batch_size: int = 128
    """Minibatch size of the PPO update."""
    n_epochs: int = 4
    """Passes over each rollout."""
    learning_rate: float = 3e-4
    """Adam step size."""
    gamma: float = 0.995
    """Discount (the reward comes at the episode's end, tens of decisions later)."""
    gae_lambda: float = 0.95
    """GAE lambda."""
    ent_coef: float = 0.01
    """Entropy bonus (keeps spawn widths explored early on)."""
    net_arch: tuple[int, ...] = (64, 64)
    """Hidden layers of the policy and value MLPs."""
    seed: int = 0
    """Seeds the model, the envs and the search streams."""
    problem_seed: int = 0
    """Seed of the disjoint train / eval / test problem splits (`apr_env.split_problems`)."""
    train_problems: int = 2000
    """Training problems (the env draws among them)."""
    eval_problems: int = 100
    """Held-out problems for MaskableEvalCallback (played in order, deterministic policy)."""
    test_problems: int = 200
    """Held-out problems never seen in training, for `benchmarks/ppo_bench.py` (0: none)."""
    eval_freq: int = 5000
    """Timesteps between evaluations (all envs together)."""
    max_spawn: int = 8
    """K of the macro env: spawn actions 1..K."""
    context_window: int = 4096
    """Tokens per thread."""
    max_threads: int = 64
    """Threads per episode."""
    reward: str = "critical_path"
    """The text env's reward kind: 'critical_path' or 'binary'."""
    token_cost: float = 0.0
    """Shaping: minus this per 1,000 generated tokens (0: the text env's reward only)."""
    progress: bool = True
    """Show SB3's progress bar."""

    def __post_init__(self) -> None:
        for name in (
            "total_timesteps",
            "n_envs",
            "n_steps",
            "batch_size",
            "n_epochs",
            "train_problems",
            "eval_problems",
            "eval_freq",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"PPOConfig.{name} must be a positive int, got {value!r}")
        if (
            isinstance(self.test_problems, bool)
            or not isinstance(self.test_problems, int)
            or self.test_problems < 0
        ):
            raise ConfigError(f"PPOConfig.test_problems must be an int >= 0, got {self.test_problems!r}")
        if self.vec_env not in VEC_ENVS:
            raise ConfigError(f"PPOConfig.vec_env={self.vec_env!r}; accepted: {', '.join(VEC_ENVS)}")
        if self.batch_size > self.n_steps * self.n_envs:
            raise ConfigError(
                f"batch_size ({self.batch_size}) must be <= n_steps * n_envs ({self.n_steps * self.n_envs}); "
                "lower batch_size or raise n_steps"
            )
        self.net_arch = tuple(self.net_arch)

    def env_kwargs(self) -> dict:
        """Keyword arguments of the macro env (saved next to the model as ``model.env.json``)."""
        return {
            "max_spawn": self.max_spawn,
            "context_window": self.context_window,
            "max_threads": self.max_threads,
            "reward": self.reward,
            "token_cost": self.token_cost,
        }
