"""Issue-11 speed targets for tree-aware GRPO, measured side by side in one run.

    .venv/bin/python benchmarks/grpo_side_by_side.py            # ~2-4 min on 2 shared cores
    .venv/bin/python benchmarks/grpo_side_by_side.py --quick    # smoke run, writes nothing

1. Training-step throughput: `trainers.grpo.train_step` vs a raw PyTorch loop computing the
   same loss (PPO-clipped ratio against sampler logprobs, the same global token weights) on
   the same rows with the same micro-batches, AdamW and gradient clip. Both train their own
   copy of the same initial weights; runs alternate and the best of `repeats` is kept. Timed
   in process CPU seconds (one torch thread), because wall time on a shared machine varies 2x
   between runs with the load; wall times are recorded too.
   Reported as raw seconds / ours seconds (our throughput as a share of raw). Target >= 0.9.
   The raw loop is the floor: the same log-prob formula (gather - logsumexp), but none of our
   metrics (entropy, clip fraction, logprob gap, KL to the sampler) and no DDP bookkeeping.
2. The rollout / train split of real steps (`trainers.grpo.grpo_step`) on a ~4M-parameter Llama
   (random weights, the Countdown tokenizer, in-process backend: the trained model serves the
   rollouts), after one warm-up step.

Writes benchmarks/results/grpo_side_by_side.json (numbers, config, command, provenance).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "tests"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import torch  # noqa: E402
from accelerate import Accelerator  # noqa: E402
from tiny_models import count_parameters, make_tiny_llama, make_tiny_tokenizer  # noqa: E402

from apr_env import generate_problems  # noqa: E402
from apr_env.provenance import provenance  # noqa: E402
from trainers.grpo import (  # noqa: E402
    Denominators,
    grpo_step,
    local_counts,
    make_micro_batch,
    setup_grpo,
    token_weights,
    train_step,
)
from trainers.grpo_config import GRPOConfig  # noqa: E402


def small_llama(vocab: int, seed: int = 0):
    """~4M parameters: hidden 256, 5 layers, 4 heads (2 kv), MLP 768."""
    return make_tiny_llama(vocab, seed=seed, hidden=256, layers=5, heads=4, kv_heads=2, intermediate=768,
                           max_pos=2048, init_std=0.02)  # fmt: skip


def raw_step(model, optimizer, rows, config: GRPOConfig) -> float:
    """The same update written as a bare PyTorch loop: pad, forward, gather, clipped loss, backward."""
    tokens, episodes = local_counts(rows)
    weights = token_weights(rows, config, Denominators(tokens, episodes))
    keep = [i for i, r in enumerate(rows) if r.trainable_tokens and r.advantage != 0]
    model.train()
    n = config.micro_batch_size
    for s in range(0, len(keep), n):
        idx = keep[s : s + n]
        mb = make_micro_batch([rows[i] for i in idx], [weights[i] for i in idx], "cpu")
        logits = model(input_ids=mb.input_ids, attention_mask=mb.attention_mask).logits[:, :-1].float()
        logp = logits.gather(-1, mb.targets[..., None])[..., 0] - torch.logsumexp(logits, -1)
        ratio = torch.exp(logp - mb.old_logp)
        adv = mb.advantages
        loss = torch.maximum(-adv * ratio, -adv * ratio.clamp(1 - config.clip_eps, 1 + config.clip_eps))
        (mb.weights.float() * loss).sum().backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return 0.0


def throughput(rows, config: GRPOConfig, model, repeats: int) -> dict:
    """Best-of-`repeats` seconds per training step, ours vs raw, alternating on the same rows."""
    accelerator = Accelerator(cpu=True)
    ours_model, raw_model = copy.deepcopy(model), copy.deepcopy(model)
    ours_opt = torch.optim.AdamW(ours_model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    raw_opt = torch.optim.AdamW(raw_model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    wall = {"ours": float("inf"), "raw": float("inf")}
    cpu = dict(wall)
    train_step(ours_model, ours_opt, rows, config, accelerator)  # warm-up (allocations, kernels)
    raw_step(raw_model, raw_opt, rows, config)
    sides = {"ours": lambda: train_step(ours_model, ours_opt, rows, config, accelerator),
             "raw": lambda: raw_step(raw_model, raw_opt, rows, config)}  # fmt: skip
    for _ in range(repeats):
        for name, fn in sides.items():
            w0, c0 = time.perf_counter(), time.process_time()
            fn()
            wall[name] = min(wall[name], time.perf_counter() - w0)
            cpu[name] = min(cpu[name], time.process_time() - c0)
    best = cpu
    tokens = sum(
        len(r.prompt_ids) + len(r.completion_ids) for r in rows if r.trainable_tokens and r.advantage != 0
    )
    return {
        "seconds_per_step": best,
        "wall_seconds_per_step": wall,
        "ours_over_raw_wall": wall["raw"] / wall["ours"],
        "tokens_per_s": {k: tokens / v for k, v in best.items()},
        "ours_over_raw_throughput": best["raw"] / best["ours"],
        "target": ">= 0.9",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch intra-op threads (1 is steadiest when shared)"
    )
    parser.add_argument("--out", default="benchmarks/results/grpo_side_by_side.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    tok = make_tiny_tokenizer()
    model = small_llama(tok.vocab_size)
    steps, repeats = (2, 1) if args.quick else (3, 3)
    config = GRPOConfig(
        out="/tmp/grpo_side_by_side", steps=steps, problems_per_step=4, group_size=4,
        max_new_tokens=32 if args.quick else 128, context_window=1024, lr=1e-5, micro_batch_size=8,
        progress=False, tensorboard=False, save_every=0, seed=0,
    )  # fmt: skip
    # the toy reward of tests/test_grpo.py: varied within groups on a random model, so rows train
    run = setup_grpo(config, copy.deepcopy(model), tok, problems=generate_problems(64, seed=0),
                     reward_fn=lambda rec: sum(i % 2 == 0 for i in rec["calls"][0][0]["output_ids"]))  # fmt: skip
    split = []
    try:
        for step in range(steps):
            m = grpo_step(run, step)
            split.append(
                {k: m[k] for k in ("step", "rollout_s", "train_s", "rows", "total_tokens", "threads")}
            )
            print(
                f"step {m['step']}: rollout {m['rollout_s']:.2f} s, train {m['train_s']:.2f} s, {m['rows']} rows"
            )
        # rows of one more rollout, for the side-by-side training step
        from trainers.grpo import (
            assign_advantages,
            build_rows,
            collect_rollouts,
            episode_rewards,
            step_problems,
        )

        rollout = collect_rollouts(run.agent, step_problems(run.problems, config, steps), config, steps, tok)
        rollout.rewards = episode_rewards(rollout.records, config, steps, run.reward_fn)
        rows = build_rows(rollout)
        assign_advantages(rows, {e: (g, r) for e, g, r in zip(rollout.episode_ids, rollout.group_ids,
                                                                 rollout.rewards)}, config)  # fmt: skip
    finally:
        run.backend.close()
    measured = split[1:] or split
    rollout_s = sum(s["rollout_s"] for s in measured) / len(measured)
    train_s = sum(s["train_s"] for s in measured) / len(measured)
    tp = throughput(rows, config, model, repeats)
    report = {
        "command": "python benchmarks/grpo_side_by_side.py"
        + (" --quick" if args.quick else "")
        + (f" --threads {args.threads}" if args.threads != 1 else ""),
        "provenance": provenance(),
        "model": {"parameters": count_parameters(model), "hidden": 256, "layers": 5, "vocab": tok.vocab_size},
        "config": asdict(config),
        "train_step_throughput": {**tp, "rows": len(rows)},
        "step_split": {
            "steps": split,
            "mean_after_warmup": {
                "rollout_s": rollout_s,
                "train_s": train_s,
                "rollout_share": rollout_s / (rollout_s + train_s),
            },
        },
    }
    print(f"model: {count_parameters(model) / 1e6:.2f}M parameters; {len(rows)} rows in the compared step")
    s = tp["seconds_per_step"]
    print(f"train step (CPU s): ours {s['ours']:.3f} s vs raw PyTorch {s['raw']:.3f} s -> {tp['ours_over_raw_throughput']:.2f}x "
          "throughput; target >= 0.9 " + ("ok" if tp["ours_over_raw_throughput"] >= 0.9 else "MISSED"))  # fmt: skip
    print(
        f"real step split: rollout {rollout_s:.2f} s, train {train_s:.2f} s ({100 * rollout_s / (rollout_s + train_s):.0f}% rollout)"
    )
    if args.out and not args.quick:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
