"""`GRPOConfig`: every setting of the tree-aware GRPO trainer (`trainers.grpo`), one doc line each.

Defaults follow reference/apr-reference.md section 6 where it is sound (temperature 1.0,
clip 0.2, grad-norm clip 1.0, AdamW weight decay 0.01) and fix its flaws (section 8 items
20-25): fp32 master weights, sampler token ids and logprobs, explicit loss normalisation,
KL off by default (TRL ``beta=0``), importance ratio against the sampler.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from apr_env.errors import ConfigError

ADVANTAGE_SCHEMES = ("broadcast", "local_node", "orchestrator_only")
ADVANTAGE_SCALES = ("mean", "std")
LOSS_NORMS = ("token_mean", "episode_mean", "constant")
BACKENDS = ("transformers", "sglang", "openai")


@dataclass
class GRPOConfig:
    """Settings of `trainers.grpo.train_grpo` (CLI flags are these names with dashes)."""

    # ---- data and run ----
    model: str = ""
    """Folder of a Hugging Face causal LM with the Countdown tokenizer (ignored when a model object is passed)."""
    problems: str = ""
    """Problem file (`apr_env.load_problems`: JSON or JSONL); empty: generate `num_problems` with `seed`."""
    num_problems: int = 256
    """Problems generated when `problems` is empty."""
    out: str = "runs/grpo"
    """Output folder: metrics.csv, TensorBoard events, checkpoint/, model/."""
    steps: int = 100
    """Optimizer updates of the run (each: one rollout batch, `ppo_epochs` passes)."""
    seed: int = 0
    """Seeds problem choice per step and every sampled episode (same seed, same run)."""
    resume: bool = False
    """Continue from `out`/checkpoint (the model, optimizer, step and metrics so far)."""
    save_every: int = 10
    """Steps between checkpoints (and one at the end); 0: only at the end."""
    tensorboard: bool = True
    """Also write TensorBoard events when tensorboard is installed (CSV is always written)."""
    progress: bool = True
    """Show a rich progress bar."""

    # ---- rollouts ----
    problems_per_step: int = 8
    """Distinct problems per step (global, over all processes)."""
    group_size: int = 4
    """Episodes per problem (G): the GRPO group the baseline is computed over."""
    protocol: str = "apr"
    """Registered protocol the episodes run under."""
    protocol_kwargs: dict = field(default_factory=dict)
    """Protocol constructor kwargs, e.g. {'sub_call_budget': 10}."""
    context_window: int = 4096
    """Tokens per thread (the environment's limit and the agent's)."""
    max_threads: int = 64
    """Threads per episode, root included."""
    max_depth: int = 3
    """Deepest thread level (root = 0)."""
    max_new_tokens: int | None = None
    """Cap on tokens per model call; None: what the context window leaves."""
    temperature: float = 1.0
    """Rollout sampling temperature (the sampler logprobs are the raw model's, temperature 1)."""
    backend: str = "transformers"
    """'transformers' (the trained model serves rollouts in-process), 'sglang' (weights pushed
    after each step), 'openai' (not supported: no weight-reload route)."""
    urls: list[str] = field(default_factory=list)
    """SGLang server base URLs (backend 'sglang'); several servers or a router for data-parallel rollouts."""
    weights_dir: str = ""
    """Folder the SGLang servers can read, where weights are saved each step; empty: `out`/weights."""
    rollout_batch_size: int = 16
    """In-process backend: sequences decoded together. 1 (with `reuse_kv` off) makes rollouts
    independent of batch composition, hence bit-exact across runs and resumes."""
    reuse_kv: bool = True
    """In-process backend: keep a thread's KV across calls and fork it into children."""
    max_concurrent: int = 64
    """Episodes alive at once in the runner."""

    # ---- reward ----
    reward: str = "critical_path"
    """Environment reward: 'critical_path' (correctness + gated critical-path bonus) or 'binary' (APR)."""
    spawn_bonus: float = 0.0
    """Added to the reward of an episode that spawned at least once (against serial collapse); 0: off."""
    spawn_bonus_anneal_steps: int = 0
    """Steps over which the spawn bonus decays linearly to 0; 0: constant."""

    # ---- objective ----
    advantage: str = "broadcast"
    """'broadcast' (episode advantage on every row), 'local_node' (own + mean child success),
    'orchestrator_only' (broadcast, children's rows masked)."""
    advantage_scale: str = "mean"
    """'mean': r - group mean (no std; Dr.GRPO, ThreadWeaver); 'std': also divide by the group std."""
    loss_norm: str = "episode_mean"
    """'token_mean' (÷ trainable tokens of the batch), 'episode_mean' (each episode weighs 1),
    'constant' (÷ episodes × `loss_constant`)."""
    loss_constant: int = 1024
    """Tokens per episode in the 'constant' denominator."""
    clip_eps: float = 0.2
    """PPO clip range of the importance ratio trainer/sampler."""
    kl_beta: float = 0.0
    """Weight of the k3 KL to a frozen copy of the initial model; 0: no reference model."""
    ppo_epochs: int = 1
    """Optimizer updates per rollout batch (APR used 2)."""
    micro_batch_size: int = 8
    """Rows per forward/backward; the loss does not depend on it (global denominators)."""
    drop_zero_advantage: bool = True
    """Skip rows whose advantage is 0 when `kl_beta` is 0 (they add nothing to the gradient)."""

    # ---- optimisation ----
    lr: float = 1e-5
    """AdamW learning rate (fp32 master weights)."""
    weight_decay: float = 0.01
    """AdamW weight decay."""
    max_grad_norm: float = 1.0
    """Gradient-norm clip; 0: off."""
    bf16: bool = False
    """bf16 autocast for the training forward (weights and optimizer stay fp32)."""

    def __post_init__(self) -> None:
        choices = {
            "advantage": ADVANTAGE_SCHEMES,
            "advantage_scale": ADVANTAGE_SCALES,
            "loss_norm": LOSS_NORMS,
            "backend": BACKENDS,
            "reward": ("critical_path", "binary"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ConfigError(
                    f"GRPOConfig.{name}={getattr(self, name)!r}; accepted: {', '.join(map(repr, allowed))}"
                )
        positive = ("steps", "problems_per_step", "group_size", "ppo_epochs", "micro_batch_size",
                    "context_window", "rollout_batch_size", "max_concurrent", "loss_constant")  # fmt: skip
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"GRPOConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.group_size < 2:
            raise ConfigError(
                f"GRPOConfig.group_size={self.group_size}: a group baseline needs at least 2 episodes per problem"
            )
        for name in (
            "clip_eps",
            "kl_beta",
            "lr",
            "weight_decay",
            "max_grad_norm",
            "spawn_bonus",
            "temperature",
        ):
            if getattr(self, name) < 0:
                raise ConfigError(f"GRPOConfig.{name} must be >= 0, got {getattr(self, name)}")
        if self.backend == "sglang" and not self.urls:
            raise ConfigError("GRPOConfig.backend='sglang' needs urls (the servers' base URLs)")
