"""Side by side: our continuous-batching decode loop vs ``model.generate``, and a KV fork copy vs re-prefill.

Run from the repository root:

    .venv/bin/python benchmarks/decode_side_by_side.py            # writes benchmarks/results/decode_side_by_side.json
    .venv/bin/python benchmarks/decode_side_by_side.py --quick    # fewer tokens and repeats, same report

On a ~5M-parameter random Llama (hidden 256, 6 layers, 4 query / 2 key-value heads, the
Countdown tokenizer's vocabulary), greedy, fp32 unless ``--dtype bfloat16``:

- decode tokens/s of `TransformersBackend` at batch 1 and 8 and of ``model.generate`` on the
  same prompts (end to end, prefill included, all prompts the same length so ``generate``
  needs no padding); the two must produce the same tokens, which is checked and recorded;
- the cost of giving a sequence an existing prefix's KV: `SlotKVCache.load` of a retained
  prefix vs prefilling that prefix (a model forward), for several prefix lengths; and the
  same at the request level (`timings['prefill']` of a child with ``fork_from`` vs without).

Threads: every measurement is taken at each of ``--threads`` (default 1 and 2, the cores of
the machine this was written on), via ``torch.set_num_threads``. On a CPU shared with other
busy processes, 2 threads (OpenMP spin-waiting at every op) can stall for seconds when a core
is taken away, while 1 thread degrades gracefully; compare both before choosing
`TransformersBackendConfig.num_threads`. Each number is the median of ``--repeats`` runs, ours
and ``generate`` alternating; numbers measured under shared load are noisy, so the JSON keeps
the command, versions, commit and date with them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make `tests.tiny_models` and `runtime` importable
    sys.path.insert(0, str(ROOT))

from apr_env.provenance import provenance  # noqa: E402
from runtime.backends.base import GenerationRequest, SamplingParams  # noqa: E402
from runtime.backends.kv_slots import SlotKVCache, cache_kwargs  # noqa: E402
from runtime.backends.transformers_backend import TransformersBackend, TransformersBackendConfig  # noqa: E402
from tests.tiny_models import count_parameters, make_tiny_llama, make_tiny_tokenizer  # noqa: E402


@dataclass
class DecodeBenchConfig:
    """What `run` measures."""

    hidden: int = 256
    """Model width (256 with 6 layers is ~4.8M parameters)."""
    layers: int = 6
    """Decoder layers."""
    prompt_len: int = 32
    """Tokens per prompt in the decode comparison."""
    new_tokens: int = 128
    """Greedy tokens generated per request in the decode comparison."""
    batch_sizes: tuple[int, ...] = (1, 8)
    """Requests decoded together."""
    fork_prefix_lengths: tuple[int, ...] = (64, 256, 1024)
    """Prefix lengths for the fork-copy vs re-prefill comparison."""
    repeats: int = 5
    """Runs per measurement; the median is reported."""
    thread_counts: tuple[int, ...] = (1, 2)
    """torch.set_num_threads values; every measurement is taken at each."""
    dtype: str = "float32"
    """Model dtype: 'float32' or 'bfloat16'."""
    out: str = "benchmarks/results/decode_side_by_side.json"
    """Where the JSON report goes ('' to skip writing)."""

    def __post_init__(self) -> None:
        if self.dtype not in ("float32", "bfloat16"):
            raise ValueError(f"dtype must be 'float32' or 'bfloat16', got {self.dtype!r}")
        if min(self.thread_counts) < 1:
            raise ValueError(f"thread counts must be >= 1, got {self.thread_counts}")
        if min(self.batch_sizes) < 1 or self.repeats < 1 or self.new_tokens < 2 or self.prompt_len < 1:
            raise ValueError(f"batch sizes, repeats, prompt_len must be >= 1 and new_tokens >= 2, got {self}")


@dataclass
class DecodeBenchReport:
    """Measurements of one `run`."""

    config: DecodeBenchConfig
    parameters: int
    decode: list[dict] = field(default_factory=list)
    fork: list[dict] = field(default_factory=list)


def _prompts(n: int, length: int, vocab: int, seed: int) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(4, vocab, (length,), generator=g).tolist() for _ in range(n)]


def _median_time(fn, repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def measure_decode(model, tokenizer, batch: int, cfg: DecodeBenchConfig) -> dict:
    """Tokens/s of our loop and of ``model.generate`` on `batch` prompts, and whether outputs agree.

    The two alternate within each repeat so that both see the same background load.
    """
    prompts = _prompts(batch, cfg.prompt_len, tokenizer.vocab_size, seed=batch)
    requests = [GenerationRequest(p, SamplingParams(max_new_tokens=cfg.new_tokens)) for p in prompts]
    ids = torch.tensor(prompts)

    def hf_generate():
        with torch.inference_mode():
            out = model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=cfg.new_tokens,
                do_sample=False,
                pad_token_id=0,
            )
        return out[:, cfg.prompt_len :].tolist()

    ours_times, hf_times = [], []
    with TransformersBackend(model, tokenizer, TransformersBackendConfig(max_batch_size=batch)) as backend:
        results, hf_ids = backend.generate(requests), hf_generate()  # warm-up: buffers, kernels
        for _ in range(cfg.repeats):
            t0 = time.perf_counter()
            backend.generate(requests)
            t1 = time.perf_counter()
            hf_generate()
            ours_times.append(t1 - t0)
            hf_times.append(time.perf_counter() - t1)
    tokens = batch * cfg.new_tokens
    ours_tok_s = tokens / statistics.median(ours_times)
    hf_tok_s = sum(len(x) for x in hf_ids) / statistics.median(hf_times)
    return {
        "batch": batch,
        "tokens": tokens,
        "ours_tok_s": ours_tok_s,
        "generate_tok_s": hf_tok_s,
        "speedup_vs_generate": ours_tok_s / hf_tok_s,
        "outputs_equal": [r.output_ids for r in results] == hf_ids,
    }


def measure_fork(model, tokenizer, prefix_len: int, cfg: DecodeBenchConfig) -> dict:
    """Seconds to give a slot a `prefix_len`-token prefix: KV copy vs prefill, primitive and per request."""
    prefix = _prompts(1, prefix_len, tokenizer.vocab_size, seed=prefix_len)[0]
    cache = SlotKVCache(num_slots=2, max_len=prefix_len + 8, device="cpu")
    ids = torch.tensor([prefix])
    positions = torch.arange(prefix_len)[None]
    mask = (torch.arange(prefix_len)[None, :] <= torch.arange(prefix_len)[:, None])[None, None]

    def prefill():
        cache.plan_prefill(0, [0], [prefix_len])
        with torch.inference_mode():
            model(
                input_ids=ids,
                attention_mask=mask,
                position_ids=positions,
                logits_to_keep=1,
                **cache_kwargs(model, cache),
            )

    prefill()
    prefill_s, _ = _median_time(prefill, cfg.repeats)
    retained = cache.export(0, prefix_len, prefix)

    def copy():
        with torch.inference_mode():  # the buffers were made under inference mode, like the backend's
            cache.load(1, retained, prefix_len)

    copy_s, _ = _median_time(copy, max(cfg.repeats, 5))

    backend_cfg = TransformersBackendConfig(max_batch_size=2, context_length=prefix_len + 8)
    with TransformersBackend(model, tokenizer, backend_cfg) as backend:
        backend.generate([GenerationRequest(prefix, SamplingParams(max_new_tokens=1), cache_key="parent")])
        child = [*prefix, 5]
        forked, fresh = [], []
        for _ in range(cfg.repeats):
            one = SamplingParams(max_new_tokens=1)
            forked.append(backend.generate([GenerationRequest(child, one, fork_from="parent")])[0])
            fresh.append(backend.generate([GenerationRequest(child, one)])[0])
    forked_s = statistics.median(r.timings["prefill"] for r in forked)
    fresh_s = statistics.median(r.timings["prefill"] for r in fresh)
    return {
        "prefix_len": prefix_len,
        "prefill_s": prefill_s,
        "kv_copy_s": copy_s,
        "prefill_over_copy": prefill_s / copy_s,
        "request_prefill_fresh_s": fresh_s,
        "request_prefill_forked_s": forked_s,
        "request_fresh_over_forked": fresh_s / forked_s,
        "forked_cached_tokens": forked[0].cached_tokens,
    }


def run(cfg: DecodeBenchConfig) -> DecodeBenchReport:
    """Build the model and take every measurement of `cfg`, at each thread count (restored afterwards)."""
    tokenizer = make_tiny_tokenizer()
    max_pos = max(2048, max(cfg.fork_prefix_lengths) + 8, cfg.prompt_len + cfg.new_tokens)
    model = make_tiny_llama(
        tokenizer.vocab_size, hidden=cfg.hidden, layers=cfg.layers, heads=4, kv_heads=2, max_pos=max_pos
    )
    model.generation_config.eos_token_id = None  # generate all new_tokens, as our loop does without stop ids
    model.to(getattr(torch, cfg.dtype))
    report = DecodeBenchReport(cfg, count_parameters(model))
    threads_before = torch.get_num_threads()
    try:
        for threads in cfg.thread_counts:
            torch.set_num_threads(threads)
            for batch in cfg.batch_sizes:
                report.decode.append({"threads": threads, **measure_decode(model, tokenizer, batch, cfg)})
            for prefix_len in cfg.fork_prefix_lengths:
                report.fork.append({"threads": threads, **measure_fork(model, tokenizer, prefix_len, cfg)})
    finally:
        torch.set_num_threads(threads_before)
    return report


def format_report(report: DecodeBenchReport) -> str:
    """The side-by-side tables of `report` as text."""
    cfg = report.config
    lines = [
        f"model: {report.parameters / 1e6:.2f}M parameters, {cfg.dtype}, prompt {cfg.prompt_len}, "
        f"{cfg.new_tokens} new tokens, median of {cfg.repeats}",
        f"{'threads':>7} {'batch':>5} {'ours tok/s':>11} {'generate tok/s':>15} {'ours/gen':>8}  same tokens",
    ]
    for d in report.decode:
        lines.append(
            f"{d['threads']:>7} {d['batch']:>5} {d['ours_tok_s']:>11.0f} {d['generate_tok_s']:>15.0f} "
            f"{d['speedup_vs_generate']:>7.2f}x  {d['outputs_equal']}"
        )
    lines.append(
        f"{'threads':>7} {'prefix':>6} {'prefill ms':>10} {'KV copy ms':>10} {'prefill/copy':>12} "
        f"{'req fresh ms':>12} {'req fork ms':>11}"
    )
    for f in report.fork:
        lines.append(
            f"{f['threads']:>7} {f['prefix_len']:>6} {f['prefill_s'] * 1e3:>10.2f} {f['kv_copy_s'] * 1e3:>10.3f} "
            f"{f['prefill_over_copy']:>11.0f}x {f['request_prefill_fresh_s'] * 1e3:>12.2f} "
            f"{f['request_prefill_forked_s'] * 1e3:>11.2f}"
        )
    return "\n".join(lines)


def write_record(report: DecodeBenchReport, path: Path) -> None:
    """Write `report` as JSON with the command, date, commit, versions and machine it was measured with."""
    record = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "provenance": provenance(),
        "note": "measured on a CPU shared with other processes (noisy); each number is a median",
        "config": asdict(report.config),
        "parameters": report.parameters,
        "decode": report.decode,
        "fork": report.fork,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> DecodeBenchReport:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="32 new tokens, 1 repeat, prefixes 64 and 256")
    parser.add_argument("--threads", type=int, nargs="+", default=list(DecodeBenchConfig.thread_counts))
    parser.add_argument("--repeats", type=int, default=DecodeBenchConfig.repeats)
    parser.add_argument("--dtype", default=DecodeBenchConfig.dtype, choices=["float32", "bfloat16"])
    parser.add_argument(
        "--out", default=None, help=f"JSON path (default {DecodeBenchConfig.out}; --quick: none)"
    )
    args = parser.parse_args(argv)
    out = args.out if args.out is not None else ("" if args.quick else DecodeBenchConfig.out)
    quick = {"new_tokens": 32, "repeats": 1, "fork_prefix_lengths": (64, 256)} if args.quick else {}
    quick.setdefault("repeats", args.repeats)
    cfg = DecodeBenchConfig(thread_counts=tuple(args.threads), dtype=args.dtype, out=out, **quick)
    report = run(cfg)
    print(format_report(report))
    if cfg.out:
        write_record(report, ROOT / cfg.out)
        print(f"wrote {ROOT / cfg.out}")
    return report


if __name__ == "__main__":
    main()
