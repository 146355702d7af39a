"""`SFTRunConfig`: every option of an SFT run (data, model, optimisation, budget, evaluation).

The training options map onto TRL's `SFTConfig` (`to_trl`), which `trainers.sft` hands to TRL's
`SFTTrainer` as it is. Defaults are for CPU-scale runs (3-number problems, solved traces only,
the `small` preset, fp32); the paper's setting is noted on each field it differs from.

What this module leaves to others: building rows (`trainers.sft_data`), running (`trainers.sft`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from apr_env.errors import ConfigError
from apr_env.generator import GeneratorConfig

PROTOCOLS = ("apr", "serial")
OPERATION_LOSSES = ("all", "results")
"""Which tokens of an operation row carry loss: all but bos, or each result and its newline."""


@dataclass
class SFTRunConfig:
    """One SFT run; each field's doc line is its CLI help."""

    out: str = "runs/sft"
    """Output folder: checkpoints, the final model, metrics.csv, run.json, eval.json."""
    preset: str = "small"
    """Model preset to initialise when --model is not given (tiny, mini, small, paper)."""
    model: str | None = None
    """Start from this Hugging Face model folder instead of a fresh preset."""
    data: str | None = None
    """Traces from `apr-env data traces` (folder or traces.json); default: generate --n-train of them."""
    protocol: str = "apr"
    """Which solver's traces to generate: apr (fork-join) or serial (SoS+)."""
    n_train: int = 2000
    """Training problems when generating traces."""
    n_test: int = 200
    """Held-out test problems (no (sorted numbers, target) shared with training)."""
    numbers: int = 3
    """Count of input numbers per problem (official: 4)."""
    min_value: int = 1
    """Smallest input number."""
    max_value: int = 99
    """Largest input number."""
    min_target: int = 10
    """Smallest target."""
    max_target: int = 100
    """Largest target."""
    problem_seed: int = 0
    """Seed of the train/test problem split."""
    solved_only: bool = True
    """Train on solved traces only (the official data also keeps failed searches)."""
    condition: bool = False
    """Add condition prefixes: 'Sub Call Budget: n ' (APR) or 'Token Budget: b ' (SoS+)."""
    max_length: int | None = None
    """Longest row in tokens (longer rows are dropped); default: the model's context length."""
    operations_only: bool = False
    """Train on the traces' `Exploring Operation: a op b=c` lines only, packed into rows: an
    arithmetic warm-up to start trace SFT from (--model)."""
    operation_row_tokens: int = 512
    """Tokens per packed row with --operations-only or --operations-mix."""
    operation_loss: str = "all"
    """Loss on operation rows: all (every token but bos) or results (each result and its newline:
    no loss on the randomly drawn operands)."""
    operations_mix: float = 0.0
    """Share of the training tokens that are packed operation-line rows mixed among the trace rows
    (0 <= share < 1): keeps the arithmetic a warm-up taught (--model) while the format is learnt."""
    batch_size: int = 16
    """Rows per optimizer step (per micro-batch; see grad_accum). Paper: 256 x 4096 tokens."""
    grad_accum: int = 1
    """Micro-batches per optimizer step."""
    lr: float = 1e-3
    """Peak learning rate (paper, 228M model: 5e-5)."""
    min_lr_ratio: float = 0.01
    """Cosine floor as a fraction of lr (paper: 5e-7 / 5e-5)."""
    warmup_steps: int = 20
    """Linear warm-up steps (paper: 1)."""
    weight_decay: float = 0.01
    """AdamW weight decay (paper: 0.01; betas 0.9/0.999, grad clip 1.0)."""
    epochs: float = 1.0
    """Passes over the rows; sets the schedule's length when max_steps is not given."""
    max_steps: int = -1
    """Optimizer steps of the schedule (overrides epochs when > 0)."""
    minutes: float | None = None
    """Stop after this much training time in this invocation (a checkpoint is saved). It does not
    shorten the learning-rate schedule, which --max-steps, --tokens or --epochs set: use it to
    split a run across sessions (then --resume), not to size one."""
    tokens: int | None = None
    """Stop once this many non-padding input tokens have been trained on (counted across resumes)."""
    stop_at_step: int | None = None
    """Stop at this global step (a checkpoint is saved); --resume continues the same schedule."""
    bf16: bool = False
    """bf16 autocast on fp32 master weights; off by default: 4-13x slower per step on this CPU (no bf16 units)."""
    seed: int = 0
    """Seed of the model init, data order and everything else."""
    save_steps: int = 200
    """Checkpoint every this many steps (and when a budget stops the run)."""
    logging_steps: int = 10
    """Log loss, lr and tokens/s every this many steps."""
    resume: bool = False
    """Continue from the newest checkpoint in --out (same data, same schedule: identical losses)."""
    eval: bool = True
    """After training, run the LLM agent on the held-out problems and write eval.json."""
    eval_n: int | None = None
    """Held-out problems to evaluate (default: all n_test)."""
    eval_context_window: int | None = None
    """Context window of the evaluation (default: the model's context length)."""
    num_threads: int | None = None
    """torch CPU threads (default: torch's choice)."""
    progress: bool = True
    """Show a progress bar with loss and tokens/s."""

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ConfigError(f"protocol={self.protocol!r}; accepted: {', '.join(PROTOCOLS)}")
        for name in ("n_train", "batch_size", "grad_accum", "save_steps", "logging_steps"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}={getattr(self, name)} must be >= 1")
        if self.operation_loss not in OPERATION_LOSSES:
            raise ConfigError(
                f"operation_loss={self.operation_loss!r}; accepted: {', '.join(OPERATION_LOSSES)}"
            )
        if not 0 <= self.operations_mix < 1:
            raise ConfigError(f"operations_mix={self.operations_mix}; accepted: a share in [0, 1)")
        if self.operations_mix and self.operations_only:
            raise ConfigError("operations_mix mixes operation rows into trace rows: not with operations_only")
        if self.operation_row_tokens < 2:
            raise ConfigError(
                f"operation_row_tokens={self.operation_row_tokens} must be >= 2 (bos + a token)"
            )
        if self.n_test < 0 or self.warmup_steps < 0:
            raise ConfigError(f"n_test={self.n_test} and warmup_steps={self.warmup_steps} must be >= 0")
        if self.lr <= 0 or not 0 <= self.min_lr_ratio <= 1:
            raise ConfigError(f"lr={self.lr} must be > 0 and min_lr_ratio={self.min_lr_ratio} in [0, 1]")
        if self.epochs <= 0 and self.max_steps <= 0:
            raise ConfigError(
                f"epochs={self.epochs}, max_steps={self.max_steps}: give epochs > 0 or max_steps > 0"
            )
        for name in ("minutes", "tokens", "stop_at_step", "max_length", "eval_n", "eval_context_window"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(f"{name}={value} must be > 0 (or left unset)")
        self.problem_config()  # range checks with GeneratorConfig's messages

    def problem_config(self) -> GeneratorConfig:
        """The problem distribution of the train and test splits."""
        return GeneratorConfig(
            min_numbers=self.numbers,
            max_numbers=self.numbers,
            min_value=self.min_value,
            max_value=self.max_value,
            min_target=self.min_target,
            max_target=self.max_target,
        )

    def to_dict(self) -> dict:
        return asdict(self)

    def to_trl(self, max_length: int):
        """TRL's `SFTConfig` for this run (pre-tokenised rows, no packing, length-grouped batches)."""
        from trl import SFTConfig

        try:
            import tensorboard  # noqa: F401

            report_to = ["tensorboard"]
        except ImportError:
            report_to = "none"
        return SFTConfig(
            output_dir=str(Path(self.out)),
            use_cpu=not _cuda(),
            seed=self.seed,
            data_seed=self.seed,
            per_device_train_batch_size=self.batch_size,
            gradient_accumulation_steps=self.grad_accum,
            learning_rate=self.lr,
            lr_scheduler_type="cosine_with_min_lr",
            lr_scheduler_kwargs={"min_lr_rate": self.min_lr_ratio},
            warmup_steps=self.warmup_steps,
            weight_decay=self.weight_decay,
            adam_beta1=0.9,
            adam_beta2=0.999,
            max_grad_norm=1.0,
            optim="adamw_torch",
            num_train_epochs=self.epochs,
            max_steps=self.max_steps,
            bf16=self.bf16,
            fp16=False,
            activation_checkpointing=False,  # TRL turns it on; it only trades speed for memory we have
            packing=False,  # padding-free packing needs FlashAttention (GPU only)
            max_length=max_length,
            completion_only_loss=None,
            train_sampling_strategy="group_by_length",
            include_num_input_tokens_seen="non_padding",
            logging_steps=self.logging_steps,
            report_to=report_to,
            save_strategy="steps",
            save_steps=self.save_steps,
            save_total_limit=2,
            save_only_model=False,  # optimizer, scheduler and RNG states: --resume continues exactly
            disable_tqdm=True,  # our bar shows tokens/s too
            dataloader_num_workers=0,
            shuffle_dataset=False,  # the sampler shuffles (seeded) every epoch
        )


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()
