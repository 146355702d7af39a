"""`PaperConfig`: every setting of the paper experiment (`benchmarks.paper`), one config per scale.

``SCALES["cpu"]`` is sized for this project's 2-core CPU; ``SCALES["gpu"]`` for one large GPU;
``SCALES["paper"]`` is the paper's recipe (reference/apr-reference.md sections 2.10, 6.6, 7.1).
Only the structure of ``gpu`` and ``paper`` has been exercised (by the smoke test, at tiny size);
neither has been run.

Why the CPU scale is what it is (measured with ``python -m benchmarks.paper_sizing --n 300``,
recorded in ``benchmarks/results/paper_sizing.json``; symbolic solvers, Countdown tokenizer):

- Problems: 4 numbers in 1..20, targets 10..50. Four numbers because 3-number APR is degenerate
  (one root spawn); small values so traces are short enough to learn (the 5.2M run of the issue
  learnt the format but not 2-digit arithmetic on 1..99 within 4.8M tokens).
- Beams: the training traces mix parent/child beams (2, 3), (3, 4), (4, 6) in equal thirds. At
  (3, 4) APR spawns in 100% of problems with 3.0 children per spawn, ~2,060 tokens over all
  threads, longest thread 644 (p90 713); SoS+ beam 3 takes ~1,260 tokens (p90 1,620); at (4, 6)
  3,650 / 944 and 2,010. The official draw (up to 10 / 15) costs 6,700 tokens per APR problem,
  three times more demonstration budget per problem for the same model. A mix (not one beam)
  makes the `Sub Call Budget` condition vary (2, 3 or 4 children), so the budget sweep of
  Fig. 4a means something.
- Window: 1,024 tokens per thread (the paper's 4,096 for 4 numbers in 1..99, scaled to the
  traces): at beam 3 every solved APR trace fits (45% solved within 1,024 = 45% unlimited),
  while SoS+ drops from 43% to 28% (15.7 points >= the issue's 10). Evaluations run at the
  preset's 2,048 context and report cumulative accuracy at 512..2,048 (Fig. 4b), so the
  equal-window comparison is the 1,024 column.
- Model and budget: the `mini` preset (0.84M parameters, 4 layers x 128) with 16M non-padding
  input tokens per SFT model (8M in the first three tries), the same for both. Measured here on a quiet machine: TRL SFT of
  `small` (3.3M) ran 1,450 tokens/s with one thread (467k tokens in 354 s), so the issue's 15M
  tokens would take ~2.9 h per model; `mini` runs 2.6x the raw tokens/s of `small` and, with
  both SFT stages side by side (``--jobs 2``, one thread each), 4,100 (APR) and 3,100 (SoS+,
  longer rows) tokens/s in the real run: ~35-45 min per 8M tokens. The data stage gives 9,456 solved
  APR demonstrations (25.7M tokens per epoch) and 8,549 solved SoS+ ones (7.3M per epoch; 718
  beam-4 traces longer than 2,048 tokens are dropped), so 8M tokens are 0.31 and 1.1 epochs.
- Evaluation: the runtime's transformers backend decoded ~350 tokens/s for an early `mini`
  checkpoint with both SFT stages running beside it (32 APR problems, ~1,800 tokens each, 165 s):
  roughly 600-700 tokens/s with a core of its own. 500 held-out problems cost ~1M tokens for APR
  (~25-30 min), so the main rows use all 500, and the budget sweeps and the best-of-N samples
  (N = 2: about APR's total tokens) the first 50. The APR, SoS+ and GRPO evaluations are three
  stages so that two run side by side; each stage's latency column is measured with the other
  stage's process running on the other core.
- GRPO: 12 steps of 8 problems x 4 episodes at the 1,024 window (~64k sampled tokens per step),
  run beside the SFT evaluations; the lr (1e-4, 1/20 of the SFT peak as the paper's 1e-5 is 1/5
  of its 5e-5) is a guess for a 270x smaller model, not tuned; nothing is tuned on the test split.

The first run (``cpu-v1``: no warm-up, 8M trace tokens per model; 2026-12-03,
`benchmarks/results/paper_cpu_v1/README.md`) failed the issue's standard: both SFT models learned
the format but predicted 12-15% of operation results right (`benchmarks.arithmetic_probe`) and
solved 0% of held-out problems, so GRPO had no signal. Operation results are a tenth of a trace's
loss tokens; the same `mini` model trained on operation lines alone got 88% of them right after
5.8M tokens, and a model continued on traces to 20M tokens got 58% and still solved 0/60. So
``cpu`` adds:

- an arithmetic warm-up of 8M tokens (`train sft --operations-only` on the APR traces'
  operation lines, rows of 512 tokens, batch 16; 15 min with 2 threads, which ran 9,200 tokens/s
  against 4,500 with one), from which both SFT models start: 90.9% exact results on held-out
  operation lines (71% in held-out traces, a context it never saw);
- 16M tokens per SFT model after it, 15% of them operation rows of the model's own traces
  (`--operations-mix 0.15`) and 85% traces. Why the mix: a first try (6M trace tokens, no mix;
  `benchmarks/results/paper_cpu/README.md`) took the APR model from 71% to 42.7% exact results in
  traces: trace SFT at the warm-up's learning rate forgets the arithmetic faster than the traces
  teach it. Why 16M and only 15%: the second and third tries (8M tokens, 35% operation rows)
  kept the arithmetic (91%) but lost state tracking. Teacher-forced, after the solver's prefix,
  their APR models wrote operands the current state holds in 84% and 75% of lines, against 89%
  for the first run (8M trace tokens) and 97% for a model continued on traces to 20M tokens
  (`benchmarks.arithmetic_probe --operand-lines`, `benchmarks/results/paper_cpu/operand_probe_apr.json`):
  copying operands is learnt from trace tokens, and the tries had 5.2M;
- a probe gate: an SFT model with under 80% exact operation results on the held-out traces is
  not evaluated or RL-trained (the run stops there with a message) instead of spending two hours
  to measure 0%. It stopped the first try (at 90%; the third try's SoS+ model, at 81%, showed the
  bar held back a model worth measuring);
- loss on the results only in every operation row (``operation_loss="results"``): the second
  try (loss on all tokens) wrote operands from the rows' random draw in its own episodes
  (``Exploring Operation: 12-2=10`` with the state [11, 2, 2, 14]). Measured since, teacher-forced,
  the results-only third try chose in-state operands less often (75% vs 84%) with the same
  arithmetic (91.1% vs 91.5%), so this choice is not settled; ``cpu-v3`` and the fourth try
  differ in the mix's size, not its loss.

The fourth try (this ``cpu``, 2026-12-03) learnt the lines: 92.3% exact results and 90.0%
in-state operands teacher-forced, 96% and 92% in its own greedy episodes; and still solved 0 of
500 held-out APR problems (SoS+: 0 of the first 476; the APR solver: 49.4%). What it had not
learnt: 21% of its ``Resulting Numbers`` lists are wrong, a quarter of its operations repeat one already explored
under the same state, and the children's goals that reached the root (1.6% of episodes) were
mostly false: 7 of 8 started from a state their parent had listed wrongly, so they solve the
child's problem and not the root's (`benchmarks.arithmetic_probe.generated_line_checks` and
`joined_goal_checks`; `benchmarks/results/paper_cpu/README.md`). Continued for 8M more
tokens (a side experiment, `benchmarks/results/paper_cpu/continuation.json`) the APR model wrote
86% right lists and 14% repeats and solved 1 of 200 fresh problems: the next ``cpu`` should give
each model more trace tokens (32-40M).

Measured since on a validation split (`benchmarks/results/paper_cpu/token_budget.json`; the test
split untouched): continued with the same data and mix, the APR model solved 0, 1 and 5 of 200
fresh problems at 16, 24, 40 and 52M tokens (0, 0.5, 2.5, 3.5%), SoS+ 0 and 2 at 16 and 32M
(the solvers: 46% and 43.5%). What gates solving is the ``Resulting Numbers`` list from a
4-number state (the root's first move sets every child's start state): right in 22%, 36%, 68%
and 81% of the APR model's own lines at 16, 24, 40 and 52M. ``cpu`` stays the fourth try: a
pipeline at 40M tokens per model needs ~3.5 h for the SoS+ SFT alone here and would, by these
numbers, still be ~10x short of the standard; the
README there says what to try instead.

The warm-up figures above are from the loss-on-all-tokens warm-up of the first two tries; the
``cpu`` warm-up (results only, reused by the third and fourth tries) got 92.6% on held-out
operation lines, 75.6% inside held-out APR traces.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from apr_env.errors import ConfigError
from trainers.sft_config import OPERATION_LOSSES


@dataclass(frozen=True)
class PaperConfig:
    """One scale of the paper experiment; each field's doc line says what it sets."""

    scale: str
    """Name of the scale (cpu, gpu, paper), recorded in every done.json."""
    preset: str = "mini"
    """Model preset of both SFT models (`trainers.models`: tiny, mini, small, paper)."""
    numbers: int = 4
    """Input numbers per problem."""
    min_value: int = 1
    """Smallest input number."""
    max_value: int = 20
    """Largest input number."""
    min_target: int = 10
    """Smallest target."""
    max_target: int = 50
    """Largest target."""
    n_train: int = 20_000
    """Training problems (traces for SFT; GRPO draws its problems from them too)."""
    n_test: int = 500
    """Held-out test problems: no (sorted numbers, target) key shared with training."""
    beams: tuple[tuple[int, int], ...] = ((2, 3), (3, 4), (4, 6))
    """(parent beam, child beam) of the solvers, training problems split evenly among them
    (SoS+ uses the parent beam); empty: the official random draw per problem."""
    solved_only: bool = True
    """Train on solved traces only (the official data keeps failed searches)."""
    condition: bool = True
    """Condition prefixes: `Sub Call Budget: n ` (APR), `Token Budget: b ` (SoS+), for the budget sweeps."""
    warmup_tokens: int | None = None
    """Tokens of an arithmetic warm-up both SFT models start from (`train sft --operations-only` on
    the APR traces' operation lines); None: none (the paper has none)."""
    operation_loss: str = "all"
    """Loss on the warm-up's and the mix's operation rows: all tokens, or results only (no loss on
    the randomly drawn operands)."""
    warmup_row_tokens: int = 512
    """Tokens per packed warm-up row."""
    warmup_batch_size: int = 16
    """Rows per warm-up optimizer step."""
    warmup_num_threads: int | None = 2
    """torch CPU threads of the warm-up, which runs alone (2 threads ran 1.9x one in steady state:
    benchmarks/results/paper_cpu/warmup_threads.json)."""
    sft_tokens: int | None = 8_000_000
    """Non-padding input tokens per SFT model (the same for both; the schedule ends there)."""
    sft_operations_mix: float = 0.0
    """Share of each SFT model's tokens that are packed operation-line rows of its own traces
    (`train sft --operations-mix`), so trace SFT keeps the warm-up's arithmetic."""
    sft_max_steps: int | None = None
    """Optimizer steps of each SFT schedule instead of a token budget (the paper: 19,000)."""
    sft_batch_size: int = 8
    """Rows per SFT optimizer step (paper: 256 sequences of 4,096 tokens)."""
    sft_lr: float = 2e-3
    """Peak SFT learning rate (paper: 5e-5 for 228M), cosine to 1% of it."""
    sft_warmup_steps: int = 50
    """Linear warm-up steps of SFT (paper: 1)."""
    max_length: int | None = None
    """Longest SFT row in tokens (longer rows are dropped); None: the preset's context."""
    num_threads: int | None = 1
    """torch CPU threads (1 is faster than 2 on a shared 2-core CPU); None: torch's choice."""
    probe_n: int = 40
    """Held-out problems whose solver traces the arithmetic probe reads after each SFT stage."""
    probe_operand_lines: int = 300
    """Operation lines of those traces whose operands the model writes itself after the solver's
    prefix (`benchmarks.arithmetic_probe.operand_probe`: are they in the state?)."""
    probe_gate: float | None = None
    """Least exact-result accuracy of the probe for an SFT model to be evaluated and RL-trained
    (None: no gate); below it a model solves ~nothing and GRPO gets no signal."""
    eval_n: int = 500
    """Held-out problems of the main rows (each model at its median condition, the symbolic ceilings)."""
    sweep_n: int = 50
    """Held-out problems of each budget-sweep point and each best-of-N sample."""
    eval_window: int = 2048
    """Context window of the evaluations (cumulative accuracy at `windows` comes from their records)."""
    windows: tuple[int, ...] = (512, 768, 1024, 1536, 2048)
    """Context windows of the accuracy columns and Fig. 4b."""
    main_window: int = 1024
    """The equal-window comparison (the scaled-down counterpart of the paper's 4k) and GRPO's window."""
    token_budgets: tuple[int, ...] = (512, 1024, 1536, 2048)
    """SoS+ `Token Budget: b ` prefixes of the sweep (512-token bins)."""
    sub_call_budgets: tuple[int, ...] = (2, 3, 4)
    """APR `Sub Call Budget: n ` prefixes of the sweep."""
    bon_ns: tuple[int, ...] = (2,)
    """Best-of-N / self-consistency sizes for SoS+ (N sampled episodes per problem)."""
    bon_temperature: float = 1.0
    """Sampling temperature of the best-of-N samples (the paper's scaling plots: 1.0)."""
    grpo_steps: int = 12
    """GRPO optimizer steps on the APR model (paper: 150 x 2 inner epochs)."""
    grpo_problems_per_step: int = 8
    """Problems per GRPO step (paper: 64)."""
    grpo_group_size: int = 4
    """Episodes per problem, the baseline's group (paper: 5)."""
    grpo_ppo_epochs: int = 1
    """Updates per rollout batch (paper: 2)."""
    grpo_lr: float = 1e-4
    """GRPO learning rate (paper: 1e-5)."""
    grpo_kl_beta: float = 0.0
    """k3 KL weight to the SFT model (paper: 0.001 APR)."""
    grpo_reward: str = "critical_path"
    """Environment reward: critical_path (correctness + gated critical-path bonus) or binary (paper)."""
    grpo_max_new_tokens: int | None = None
    """Cap on tokens per GRPO model call; None: what the window leaves."""
    concurrency: int = 64
    """Episodes in flight in every evaluation (the same batch policy for every row)."""
    seed: int = 0
    """Seed of the problem split, traces, training and evaluation."""
    extra: dict = field(default_factory=dict)
    """Free-form notes recorded with the config (e.g. why a field differs from the scale)."""

    def __post_init__(self) -> None:
        if self.preset not in ("tiny", "mini", "small", "paper"):
            raise ConfigError(f"preset={self.preset!r}; accepted: tiny, mini, small, paper")
        if self.n_test < 1 or self.n_train < 1:
            raise ConfigError(f"n_train={self.n_train} and n_test={self.n_test} must be >= 1")
        if self.sft_tokens is None and self.sft_max_steps is None:
            raise ConfigError("give sft_tokens or sft_max_steps: the SFT budget of both models")
        if max(self.eval_n, self.sweep_n) > self.n_test:
            raise ConfigError(
                f"eval_n={self.eval_n} and sweep_n={self.sweep_n} must be <= n_test={self.n_test}"
            )
        if self.probe_gate is not None and not 0 <= self.probe_gate <= 1:
            raise ConfigError(f"probe_gate={self.probe_gate}; accepted: a fraction in [0, 1] or None")
        if self.operation_loss not in OPERATION_LOSSES:
            raise ConfigError(
                f"operation_loss={self.operation_loss!r}; accepted: {', '.join(OPERATION_LOSSES)}"
            )
        if not 0 <= self.sft_operations_mix < 1:
            raise ConfigError(f"sft_operations_mix={self.sft_operations_mix}; accepted: a share in [0, 1)")
        if self.warmup_tokens is not None and self.warmup_tokens < 0:
            raise ConfigError(f"warmup_tokens={self.warmup_tokens} must be >= 0 (or None: no warm-up)")
        if self.grpo_group_size < 2:
            raise ConfigError(f"grpo_group_size={self.grpo_group_size}: a group baseline needs >= 2")
        if self.main_window not in self.windows or self.eval_window < max(self.windows):
            raise ConfigError(
                f"main_window={self.main_window} must be one of windows={self.windows}, "
                f"all <= eval_window={self.eval_window}"
            )

    def to_dict(self) -> dict:
        return asdict(self)


SCALES: dict[str, PaperConfig] = {
    "cpu": PaperConfig(
        scale="cpu",
        warmup_tokens=8_000_000,
        operation_loss="results",
        sft_tokens=16_000_000,
        sft_operations_mix=0.15,
        probe_gate=0.8,
    ),
    "cpu-v3": PaperConfig(
        scale="cpu-v3",
        warmup_tokens=8_000_000,
        operation_loss="results",
        sft_tokens=8_000_000,
        sft_operations_mix=0.35,
        probe_gate=0.9,
        extra={"note": "the third CPU try as it was run (recorded as scale 'cpu'): 0/93 solved"},
    ),
    "cpu-v1": PaperConfig(
        scale="cpu-v1",
        extra={"note": "the first CPU run as it was run (recorded as scale 'cpu'): no warm-up, 0% solved"},
    ),
    "gpu": PaperConfig(
        scale="gpu",
        preset="paper",
        max_value=99,
        max_target=100,
        n_train=100_000,
        n_test=1000,
        beams=(),
        sft_tokens=2_000_000_000,
        sft_batch_size=64,
        sft_lr=1e-4,
        sft_warmup_steps=100,
        num_threads=None,
        eval_n=1000,
        sweep_n=500,
        eval_window=4096,
        windows=(1024, 2048, 3072, 4096),
        main_window=4096,
        token_budgets=(1024, 2048, 3072, 4096),
        sub_call_budgets=(1, 2, 4, 6, 8, 10),
        bon_ns=(2, 4, 8),
        grpo_steps=150,
        grpo_problems_per_step=64,
        grpo_group_size=5,
        grpo_ppo_epochs=2,
        grpo_lr=1e-5,
        grpo_kl_beta=0.001,
        grpo_reward="binary",
        concurrency=256,
        extra={"note": "one large GPU: the paper's model on a fifth of its data (not run here)"},
    ),
    "paper": PaperConfig(
        scale="paper",
        preset="paper",
        max_value=99,
        max_target=100,
        n_train=500_000,
        n_test=1000,
        beams=(),
        solved_only=False,
        sft_tokens=None,
        sft_max_steps=19_000,
        sft_batch_size=256,
        sft_lr=5e-5,
        sft_warmup_steps=1,
        num_threads=None,
        eval_n=1000,
        sweep_n=1000,
        eval_window=4096,
        windows=(1024, 2048, 3072, 4096),
        main_window=4096,
        token_budgets=(512, 1024, 1536, 2048, 2560, 3072, 3584, 4096),
        sub_call_budgets=(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10),
        bon_ns=(2, 4, 8),
        grpo_steps=150,
        grpo_problems_per_step=64,
        grpo_group_size=5,
        grpo_ppo_epochs=2,
        grpo_lr=1e-5,
        grpo_kl_beta=0.001,
        grpo_reward="binary",
        concurrency=256,
        extra={
            "note": "reference sections 7.1 (SFT: 19,000 steps x 256 x 4,096, lr 5e-5 cosine to 5e-7) "
            "and 6.6 (GRPO: 150 steps x 2, 64 x 5, lr 1e-5, KL 0.001); the official data keeps failed "
            "searches; one conditioned model per method here where the paper trained separate ones"
        },
    ),
}
"""The documented scales (`apr-env experiment paper --scale NAME`)."""
