"""Supervised fine-tuning on solver traces with TRL's `SFTTrainer`, then a held-out evaluation.

    apr-env train sft --preset small --protocol apr --n-train 2000 --minutes 10 --out runs/sft-small
    apr-env train sft --out runs/sft-small --minutes 10 --resume         # continue the same schedule
    apr-env eval --agent llm --backend transformers --model runs/sft-small --problems runs/sft-small/test_problems.json

`train_sft(config)` reads top to bottom:

1. problems: a train/test split with no (sorted numbers, target) key in common
   (`apr_env.split_problems`), or the problems of given traces and a test set drawn apart from them;
2. rows: solver traces (`trainers.data.build_traces`, or `--data`) as pre-tokenised rows with
   ``labels`` = -100 on everything the runtime writes (`trainers.sft_data`); with
   ``--operations-only``, the traces' operation lines packed into rows (an arithmetic warm-up);
   with ``--operations-mix``, such rows mixed among the trace rows;
3. model: a fresh preset (`trainers.models.init_model`, written to ``OUT/init``) or ``--model``;
4. TRL's `SFTTrainer` and `SFTConfig` as they are (`SFTRunConfig.to_trl`): AdamW on fp32
   weights, cosine schedule with warm-up to a floor, length-grouped batches, no packing,
   checkpoints with optimizer, scheduler and RNG states (``--resume`` continues exactly),
   TensorBoard when installed; three callbacks: a budget (`BudgetCallback`: minutes, tokens,
   a step), a metrics CSV and a progress bar with loss and tokens/s (`MetricsCallback`);
5. the final model in ``OUT`` (a Hugging Face folder the runtime loads), ``run.json``;
6. an evaluation of the LLM agent on the held-out problems through the runtime
   (`evaluate_model`: accuracy with a 95% Wilson interval) in ``eval.json``.

What this module leaves to others: row layout (`trainers.sft_data`), presets (`trainers.models`),
decoding (`runtime`), the agent (`agents.llm_agent`).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import statistics
import time
from pathlib import Path

from transformers import PrinterCallback, TrainerCallback

from apr_env import Problem, load_problems, save_problems, split_problems
from apr_env.errors import ConfigError
from apr_env.provenance import provenance
from apr_env.tokenizer import default_tokenizer
from trainers.data import build_traces
from trainers.models import init_model, load_model
from trainers.sft_config import SFTRunConfig
from trainers.sft_data import (
    build_rows,
    load_trace_records,
    mix_rows,
    operation_rows,
    padding_waste,
    record_problem,
    sub_call_budget,
    token_budget,
)

METRICS_FIELDS = (
    "step",
    "epoch",
    "loss",
    "learning_rate",
    "grad_norm",
    "mean_token_accuracy",
    "tokens",
    "tokens_per_s",
    "elapsed_s",
)


class BudgetCallback(TrainerCallback):
    """Stops training (and saves a checkpoint) when a time, token or step budget is spent.

    Args:
        minutes: wall-clock training minutes of this invocation.
        tokens: non-padding input tokens over the whole run (``state.num_input_tokens_seen``,
            which checkpoints keep, so the budget spans resumes).
        stop_at_step: a global step to stop at (the schedule still runs to max_steps on --resume).
    """

    def __init__(
        self, minutes: float | None = None, tokens: int | None = None, stop_at_step: int | None = None
    ):
        self.minutes, self.tokens, self.stop_at_step = minutes, tokens, stop_at_step
        self.reason: str | None = None
        self._start = 0.0

    def on_train_begin(self, args, state, control, **kwargs):
        self._start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if self.minutes is not None and time.perf_counter() - self._start >= 60 * self.minutes:
            self.reason = f"time budget of {self.minutes} min"
        elif self.tokens is not None and state.num_input_tokens_seen >= self.tokens:
            self.reason = f"token budget of {self.tokens}"
        elif self.stop_at_step is not None and state.global_step >= self.stop_at_step:
            self.reason = f"stop at step {self.stop_at_step}"
        if self.reason is not None:
            control.should_training_stop = True
            control.should_save = True
        return control


class MetricsCallback(TrainerCallback):
    """Appends each training log to a CSV (`METRICS_FIELDS`) and drives a progress bar.

    On --resume the CSV keeps the rows up to the resumed step, so it reads as one run.
    tokens/s is non-padding input tokens per second of this invocation since the last log.
    """

    def __init__(self, path: str | Path, progress: bool = True):
        self.path = Path(path)
        self.progress = progress
        self.bar = None
        self._last = (0.0, 0)
        self._start = 0.0

    def on_train_begin(self, args, state, control, **kwargs):
        rows = []
        if self.path.is_file():
            with self.path.open() as f:
                rows = [r for r in csv.DictReader(f) if int(r["step"]) <= state.global_step]
        with self.path.open("w", newline="") as f:
            writer = csv.DictWriter(f, METRICS_FIELDS)
            writer.writeheader()
            writer.writerows(rows)
        self._start = time.perf_counter()
        self._last = (self._start, state.num_input_tokens_seen)
        if self.progress:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=state.max_steps, initial=state.global_step, desc="sft", unit="step")

    def on_step_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.update(1)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs or "loss" not in logs:
            return
        now = time.perf_counter()
        t0, n0 = self._last
        rate = (state.num_input_tokens_seen - n0) / max(now - t0, 1e-9)
        self._last = (now, state.num_input_tokens_seen)
        row = {
            "step": state.global_step,
            "epoch": round(state.epoch or 0.0, 4),
            "loss": logs["loss"],
            "learning_rate": logs.get("learning_rate"),
            "grad_norm": logs.get("grad_norm"),
            "mean_token_accuracy": logs.get("mean_token_accuracy"),
            "tokens": state.num_input_tokens_seen,
            "tokens_per_s": round(rate, 1),
            "elapsed_s": round(now - self._start, 2),
        }
        with self.path.open("a", newline="") as f:
            csv.DictWriter(f, METRICS_FIELDS).writerow(row)
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{logs['loss']:.4f}", tok_s=f"{rate:.0f}")

    def on_train_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.close()


# ---------------------------------------------------------------------------------------------- setup steps


def make_problems(config: SFTRunConfig) -> tuple[list[dict], list[Problem]]:
    """Training trace records and held-out test problems (no shared (sorted numbers, target) key).

    With ``--data``, the test problems take their count of numbers from the traces (value and
    target ranges still come from the config) and skip every problem the traces solve.
    """
    gen = config.problem_config()
    if config.data is not None:
        records = load_trace_records(config.data)
        counts = [len(r["nums"]) for r in records]
        gen = dataclasses.replace(gen, min_numbers=min(counts), max_numbers=max(counts))
        used = {record_problem(r).key for r in records}
        test = [
            p
            for p in split_problems(
                {"test": config.n_test + len(records)}, seed=config.problem_seed, config=gen
            )["test"]
            if p.key not in used
        ][: config.n_test]
        return records, test
    splits = split_problems(
        {"train": config.n_train, "test": config.n_test}, seed=config.problem_seed, config=gen
    )
    records = build_traces(splits["train"], config.protocol, seed=config.seed, progress=config.progress)
    return records, splits["test"]


def make_model(config: SFTRunConfig):
    """(model, transformers tokenizer) to start from: ``--model``, or a fresh preset written to OUT/init."""
    from transformers import AutoTokenizer

    folder = Path(config.model) if config.model else Path(config.out) / "init"
    if not config.model and not (folder / "config.json").is_file():
        init_model(config.preset, folder, seed=config.seed)
    model = load_model(folder)
    return model, AutoTokenizer.from_pretrained(str(folder))


def _checkpoint(out: Path) -> str:
    """The newest ``checkpoint-N`` folder in `out`, or a ConfigError naming the folder."""
    from transformers.trainer_utils import get_last_checkpoint

    found = get_last_checkpoint(str(out)) if out.is_dir() else None
    if found is None:
        raise ConfigError(
            f"--resume: no checkpoint-N folder in {str(out)!r}; start a run there first (without --resume)"
        )
    return found


# ---------------------------------------------------------------------------------------------- the run


def train_sft(config: SFTRunConfig) -> dict:
    """Run SFT as configured (see the module docstring); returns the summary also written to ``run.json``."""
    import torch
    from datasets import Dataset
    from trl import SFTTrainer

    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    resume_from = _checkpoint(out) if config.resume else None
    tok = default_tokenizer()
    records, test = make_problems(config)
    save_problems(test, out / "test_problems.json")
    model, hf_tokenizer = make_model(config)
    max_length = config.max_length or int(model.config.max_position_embeddings)

    def ops():  # the operation rows of --operations-only and --operations-mix
        return operation_rows(
            records,
            tok,
            row_tokens=min(config.operation_row_tokens, max_length),
            solved_only=config.solved_only,
            seed=config.seed,
            loss=config.operation_loss,
        )

    if config.operations_only:
        rows, stats = ops()
    else:
        rows, stats = build_rows(
            records, tok, condition=config.condition, solved_only=config.solved_only, max_length=max_length
        )
        if config.operations_mix and rows:
            rows, stats["operations_mix"] = mix_rows(rows, ops()[0], config.operations_mix)
    if not rows:
        raise ConfigError(
            f"no training rows: {stats['traces']} traces, {stats['traces_used']} used "
            f"(solved_only={config.solved_only}), {stats['rows_dropped_too_long']} rows over max_length={max_length}"
        )
    lengths = [r["length"] for r in rows]
    stats["padding_waste"] = {
        "length_grouped": padding_waste(lengths, config.batch_size, grouped=True, seed=config.seed),
        "random": padding_waste(lengths, config.batch_size, grouped=False, seed=config.seed),
    }
    dataset = Dataset.from_list([{"input_ids": r["input_ids"], "labels": r["labels"]} for r in rows])
    budget = BudgetCallback(config.minutes, config.tokens, config.stop_at_step)
    trainer = SFTTrainer(
        model=model,
        args=config.to_trl(max_length),
        train_dataset=dataset,
        processing_class=hf_tokenizer,
        callbacks=[budget, MetricsCallback(out / "metrics.csv", progress=config.progress)],
    )
    trainer.remove_callback(PrinterCallback)  # the bar and metrics.csv show the logs
    started = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=resume_from)
    seconds = time.perf_counter() - started
    trainer.save_model(str(out))
    tok.save(out)  # our tokenizer files (bos/eos/pad named), whatever transformers wrote
    state = trainer.state
    summary = {
        "config": config.to_dict(),
        "data": stats,
        "stopped_by": budget.reason or "schedule end",
        "global_step": state.global_step,
        "max_steps": state.max_steps,
        "tokens_seen": state.num_input_tokens_seen,
        "train_seconds_this_invocation": seconds,
        "train_loss_this_invocation": result.training_loss,
        "final_loss": next((h["loss"] for h in reversed(state.log_history) if "loss" in h), None),
        "model": str(out),
        "parameters": sum(p.numel() for p in model.parameters()),
        "provenance": provenance(("apr-env", "torch", "transformers", "trl", "datasets", "accelerate")),
    }
    if config.eval and test:
        eval_problems = test[: config.eval_n] if config.eval_n else test
        summary["eval"] = evaluate_model(
            out,
            eval_problems,
            protocol=config.protocol,
            protocol_kwargs=_eval_condition(config, records, tok),
            context_window=config.eval_context_window or max_length,
            seed=config.seed,
            progress=config.progress,
        )
        (out / "eval.json").write_text(json.dumps(summary["eval"], indent=2) + "\n")
    (out / "run.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _eval_condition(config: SFTRunConfig, records: list[dict], tok) -> dict:
    """Protocol kwargs of the evaluation: with condition prefixes, the median training condition."""
    if not config.condition:
        return {}
    used = [r for r in records if r.get("solved") or not config.solved_only]
    if config.protocol == "apr":
        return {"sub_call_budget": int(statistics.median_low([sub_call_budget(r) for r in used]))}
    return {"token_budget": int(statistics.median_low([token_budget(r, tok) for r in used]))}


def evaluate_model(
    model_dir: str | Path,
    problems: list[Problem] | str | Path,
    *,
    protocol: str = "apr",
    protocol_kwargs: dict | None = None,
    context_window: int = 4096,
    seed: int = 0,
    temperature: float = 0.0,
    progress: bool = False,
) -> dict:
    """Greedy (by default) LLM-agent episodes of a model folder on `problems` (a list or a problem file).

    The same path as ``apr-env eval --agent llm --backend transformers --model DIR``: the
    transformers backend, the LLM agent and the runtime's runner; the summary row of
    `runtime.report.summarize` (accuracy with its 95% Wilson interval, token metrics).
    """
    from agents.llm_agent import LLMAgent, LLMAgentConfig
    from apr_env import Limits
    from apr_env.tokenizer import load_tokenizer
    from runtime.backends.transformers_backend import TransformersBackend
    from runtime.report import summarize
    from runtime.runner import RunConfig, run_episodes

    if not isinstance(problems, list):
        problems = load_problems(problems)
    tokenizer = load_tokenizer(str(model_dir))
    backend = TransformersBackend(str(model_dir), tokenizer)
    agent = LLMAgent(
        backend, tokenizer, LLMAgentConfig(context_window=context_window, temperature=temperature)
    )
    run = RunConfig(
        protocol=protocol,
        protocol_kwargs=protocol_kwargs or {},
        limits=Limits(context_window=context_window),
        seed=seed,
        progress=progress,
    )
    started = time.perf_counter()
    try:
        records = run_episodes(agent, problems, run)
    finally:
        backend.close()
    point = summarize(
        records,
        protocol=protocol,
        knob="model",
        value=str(model_dir),
        windows=[1024, 2048, 4096],
        seconds=time.perf_counter() - started,
    )
    point["protocol_kwargs"] = protocol_kwargs or {}
    return point
