"""Side by side: SFT step throughput of our SFT (TRL's `SFTTrainer`) vs a raw PyTorch AdamW loop.

Run from the repository root:

    .venv/bin/python benchmarks/sft_side_by_side.py            # writes benchmarks/results/sft_side_by_side.json
    .venv/bin/python benchmarks/sft_side_by_side.py --quick    # fewer steps, no file

Same `small` model (same initial weights), same batches (APR solver rows of 3-number problems,
in the trainer's length-grouped order, padded by TRL's collator), same optimiser (AdamW,
lr 1e-3, weight decay 0.01, grad clip 1.0, cosine schedule):

- ``sft``: `trainers.sft`'s TRL setup (`SFTRunConfig.to_trl`) with the sampler set to sequential
  so that it sees the batches in the given order; each optimizer step timed by a callback
  (``on_step_begin`` to ``on_step_end``: data collation, forward, backward, clip, step, TRL's
  per-step metrics);
- ``raw_fp32`` / ``raw_bf16``: a plain loop (collate, forward under ``torch.autocast`` for
  bf16, backward, clip, step, schedule), fp32 master weights in both.

Throughput is tokens with loss per second (and non-padding input tokens per second), summed
over the measured steps of every round; the first step of each run is warm-up and dropped.
The bf16 loop runs fewer steps, so its ratios use only the steps (batches) it ran.
Rounds alternate the variants so that load changes on a shared CPU hit them alike (the bf16
loop, ~25x slower than fp32 on this project's CPU, runs in the first round only). Ratios:
``sft / raw_fp32`` (same precision: what our default costs over a bare loop) and
``sft / raw_bf16`` (the issue's reference loop). On a CPU without bf16 units, bf16 autocast is
far slower than fp32 (10-13x per step here), which is why `SFTRunConfig.bf16` defaults to off.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from apr_env import generate_problems  # noqa: E402
from apr_env.provenance import provenance  # noqa: E402
from apr_env.tokenizer import default_tokenizer  # noqa: E402
from trainers.data import build_traces  # noqa: E402
from trainers.models import init_model, load_model  # noqa: E402
from trainers.sft_config import SFTRunConfig  # noqa: E402
from trainers.sft_data import IGNORE, build_rows  # noqa: E402

OUT = "benchmarks/results/sft_side_by_side.json"


def make_batches(n_problems: int, batch_size: int, seed: int) -> list[list[dict]]:
    """APR rows of 3-number problems in the trainer's length-grouped order, cut into batches."""
    from transformers.trainer_pt_utils import LengthGroupedSampler

    problems = generate_problems(n_problems, seed=seed, min_numbers=3, max_numbers=3)
    rows, _ = build_rows(build_traces(problems, "apr", seed=seed), default_tokenizer(), max_length=2048)
    order = list(
        LengthGroupedSampler(
            batch_size, lengths=[r["length"] for r in rows], generator=torch.Generator().manual_seed(seed)
        )
    )
    rows = [{"input_ids": rows[i]["input_ids"], "labels": rows[i]["labels"]} for i in order]
    batches = [rows[s : s + batch_size] for s in range(0, len(rows) - batch_size + 1, batch_size)]
    return batches[1:]  # the sampler puts the longest batch first (to fail early on memory): not typical


def _counts(batch: list[dict]) -> tuple[int, int, int]:
    """(tokens with loss, non-padding tokens, padded tokens) of a batch."""
    loss = sum(sum(1 for t in r["labels"] if t != IGNORE) for r in batch)
    real = sum(len(r["input_ids"]) for r in batch)
    return loss, real, max(len(r["input_ids"]) for r in batch) * len(batch)


def _config(folder: Path, batch_size: int, steps: int, bf16: bool):
    return SFTRunConfig(
        out=str(folder / "sft-out"), batch_size=batch_size, max_steps=steps, warmup_steps=1, bf16=bf16,
        save_steps=10**6, logging_steps=10**6, progress=False, eval=False,
    )  # fmt: skip


def run_sft(model_dir: Path, batches: list[list[dict]], bf16: bool = False) -> list[float]:
    """Seconds per optimizer step of TRL's SFTTrainer on `batches` (in order)."""
    from datasets import Dataset
    from transformers import AutoTokenizer, PrinterCallback, TrainerCallback
    from trl import SFTTrainer

    times: list[float] = []

    class StepTimer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            self.t = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            times.append(time.perf_counter() - self.t)

    with tempfile.TemporaryDirectory() as tmp:
        args = _config(Path(tmp), len(batches[0]), len(batches), bf16).to_trl(max_length=2048)
        args.train_sampling_strategy = "sequential"
        args.save_strategy = "no"
        args.report_to = []
        trainer = SFTTrainer(
            model=load_model(model_dir),
            args=args,
            train_dataset=Dataset.from_list([r for b in batches for r in b]),
            processing_class=AutoTokenizer.from_pretrained(str(model_dir)),
            callbacks=[StepTimer()],
        )
        trainer.remove_callback(PrinterCallback)
        trainer.train()
    return times


def run_raw(model_dir: Path, batches: list[list[dict]], bf16: bool) -> list[float]:
    """Seconds per step of a bare AdamW loop (fp32 weights; bf16 autocast when asked)."""
    from transformers import get_cosine_with_min_lr_schedule_with_warmup
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    model = load_model(model_dir).train()
    collate = DataCollatorForLanguageModeling(pad_token_id=0)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    rest = [p for n, p in model.named_parameters() if p.ndim < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.01}, {"params": rest, "weight_decay": 0.0}],
        lr=1e-3,
        betas=(0.9, 0.999),
    )
    sched = get_cosine_with_min_lr_schedule_with_warmup(opt, 1, len(batches), min_lr_rate=0.01)
    times = []
    for batch in batches:
        t = time.perf_counter()
        inputs = collate(batch)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(**inputs).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - t)
    return times


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 steps per run, 1 round, no file")
    parser.add_argument("--steps", type=int, default=6, help="optimizer steps per run (the first is warm-up)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of (raw_fp32, sft[, raw_bf16])")
    parser.add_argument(
        "--bf16-steps", type=int, default=2, help="steps of the bf16 run (slow on CPUs without bf16)"
    )
    parser.add_argument("--bf16-rounds", type=int, default=1, help="rounds that include the bf16 run")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 on a shared 2-core CPU)")
    parser.add_argument("--out", default=OUT)
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.rounds, args.bf16_steps, args.bf16_rounds, args.out = 3, 1, 2, 1, ""
    torch.set_num_threads(args.threads)
    batches = make_batches(400, args.batch_size, seed=0)[: args.steps]
    runs: dict[str, list[tuple[int, float, list[dict]]]] = {"raw_fp32": [], "sft": [], "raw_bf16": []}
    per_step: dict[str, list[list[float]]] = {name: [] for name in runs}
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = init_model("small", Path(tmp) / "small", seed=0)
        for r in range(args.rounds):
            for name in runs:
                if name == "raw_bf16" and r >= args.bf16_rounds:
                    continue
                use = batches[: args.bf16_steps] if name == "raw_bf16" else batches
                if name == "sft":
                    times = run_sft(model_dir, use)
                else:
                    times = run_raw(model_dir, use, bf16=name == "raw_bf16")
                runs[name] += [(i, t, b) for i, (t, b) in enumerate(zip(times, use)) if i > 0]
                per_step[name].append(times)
                print(f"round {r}: {name} {[round(t, 2) for t in times]} s/step", flush=True)

    def summary(steps: list[tuple[int, float, list[dict]]]) -> dict:
        secs = sum(t for _, t, _ in steps)
        counts = [_counts(b) for _, _, b in steps]
        return {
            "steps_measured": len(steps),
            "seconds": secs,
            "loss_tokens_per_s": sum(c[0] for c in counts) / secs,
            "input_tokens_per_s": sum(c[1] for c in counts) / secs,
            "padding_waste": 1 - sum(c[1] for c in counts) / sum(c[2] for c in counts),
        }

    results = {name: summary(steps) for name, steps in runs.items()}
    # bf16 runs fewer steps: compare it on exactly the batches it ran (same step indices)
    bf16_steps = {i for i, _, _ in runs["raw_bf16"]}
    matched = {
        name: summary([s for s in runs[name] if s[0] in bf16_steps])
        for name in ("raw_fp32", "sft", "raw_bf16")
    }
    ratios = {
        "sft_over_raw_fp32": results["sft"]["loss_tokens_per_s"] / results["raw_fp32"]["loss_tokens_per_s"],
        "sft_over_raw_bf16_same_batches": matched["sft"]["loss_tokens_per_s"]
        / matched["raw_bf16"]["loss_tokens_per_s"],
        "raw_bf16_over_raw_fp32_same_batches": matched["raw_bf16"]["loss_tokens_per_s"]
        / matched["raw_fp32"]["loss_tokens_per_s"],
    }
    for name, r in results.items():
        print(
            f"{name:>9}: {r['loss_tokens_per_s']:8.1f} loss tok/s, {r['input_tokens_per_s']:8.1f} input tok/s "
            f"over {r['steps_measured']} steps ({r['padding_waste']:.1%} padding)"
        )
    for k, v in ratios.items():
        print(f"{k}: {v:.3f}")
    record = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "provenance": provenance(("apr-env", "torch", "transformers", "trl", "accelerate")),
        "note": "CPU shared with other processes (noisy); rounds alternate the variants",
        "config": {**vars(args), "model": "small", "threads": args.threads},
        "results": results,
        "results_on_the_bf16_batches": matched,
        "seconds_per_step": per_step,
        "ratios": ratios,
    }
    if args.out:
        path = ROOT / args.out
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record, indent=2) + "\n")
        print(f"wrote {path}")
    return record


if __name__ == "__main__":
    main()
