"""Can the `mini` preset learn the traces' arithmetic at all, when the data is only arithmetic?

    python -m benchmarks.arithmetic_density --traces runs/paper_cpu_v1/data/apr/segments.jsonl \
        --problems runs/paper_cpu_v1/data/test_problems.json --minutes 15

A sizing experiment for the paper run (`benchmarks/results/paper_cpu_v1/README.md`). Its SFT models
predicted 15% of operation results right after 8M trace tokens (`benchmarks.arithmetic_probe`),
rising ~1.5 points per further million. Operation results are about a tenth of a trace's loss
tokens (1.1M operation lines in the 25.7M-token APR training set), the rest being copying. This script trains a fresh model of the same
preset on nothing but the ``Exploring Operation: a op b=c`` lines of the training traces (the
same operand distribution, packed into rows, loss on every token) and probes it, at a few points,
on the held-out traces' operation lines in the same dense format. If the arithmetic is learnt
here within a few million tokens, the model is big enough and the traces are the bottleneck: an
arithmetic warm-up (a curriculum) before trace SFT is the fix to try; if not, the model is too
small. A plain torch loop: this is a measurement, not a trainer the project ships.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

from apr_env.tokenizer import PAD_ID
from trainers.sft_data import operation_lines, pack_operation_lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--traces", required=True, help="segments.jsonl of the training traces")
    parser.add_argument("--problems", required=True, help="held-out problem file (probe set)")
    parser.add_argument("--n", type=int, default=40, help="held-out problems probed")
    parser.add_argument("--preset", default="mini")
    parser.add_argument("--minutes", type=float, default=15.0)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--row-tokens", type=int, default=512)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--probe-every", type=int, default=100, help="optimizer steps between probes")
    parser.add_argument("--out", default=None, help="JSON path for the curve")
    args = parser.parse_args(argv)

    import torch
    from transformers import LlamaForCausalLM

    from apr_env.provenance import provenance
    from apr_env.tokenizer import default_tokenizer
    from benchmarks.arithmetic_probe import held_out_rows, probe
    from trainers.models import model_config

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    tok = default_tokenizer()
    with open(args.traces) as f:
        lines = operation_lines(json.loads(row)["completion"] for row in f)
    rng.shuffle(lines)
    rows = [r["input_ids"] for r in pack_operation_lines(lines, tok, row_tokens=args.row_tokens)]
    trace_rows, _ = held_out_rows(args.problems, args.n, "apr", 3, 4, 2048)
    held_lines = operation_lines(tok.decode(r["input_ids"]) for r in trace_rows)
    dense_rows = pack_operation_lines(held_lines, tok, row_tokens=args.row_tokens)
    model = LlamaForCausalLM(model_config(args.preset))
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    est_steps = max(int(args.minutes * 60 / 1.6), 50)  # cosine length from a ~1.6 s/step estimate
    curve, step, tokens, started = [], 0, 0, time.perf_counter()
    print(f"{len(lines)} operation lines -> {len(rows)} rows of <= {args.row_tokens} tokens", flush=True)

    def record():
        model.eval()
        r = probe(model, dense_rows, tok)
        model.train()
        point = {"step": step, "tokens": tokens, "seconds": time.perf_counter() - started,
                 "exact_result_accuracy": r["exact_result_accuracy"], "lines": r["lines"],
                 "by_operator": r["by_operator"]}  # fmt: skip
        curve.append(point)
        print(
            f"step {step} tokens {tokens}: {point['exact_result_accuracy']:.3f} of {r['lines']} lines",
            flush=True,
        )

    model.train()
    while time.perf_counter() - started < args.minutes * 60:
        batch = [rows[rng.randrange(len(rows))] for _ in range(args.batch_size)]
        width = max(len(b) for b in batch)
        ids = torch.tensor([b + [PAD_ID] * (width - len(b)) for b in batch])
        labels = ids.clone()
        labels[ids == PAD_ID] = -100
        lr = args.lr * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(step / est_steps, 1.0))))
        for group in opt.param_groups:
            group["lr"] = lr * min(1.0, (step + 1) / 20)
        loss = model(input_ids=ids, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad()
        step += 1
        tokens += int((labels != -100).sum())
        if step % args.probe_every == 0:
            record()
    record()
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({
            "command": "python -m benchmarks.arithmetic_density " + " ".join(sys.argv[1:]),
            "config": vars(args), "provenance": provenance(), "operation_lines": len(lines), "curve": curve,
        }, indent=2) + "\n")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
