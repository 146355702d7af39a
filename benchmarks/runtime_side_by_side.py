"""Runtime overhead, measured side by side in one run: latency, throughput and KV reuse.

    .venv/bin/python benchmarks/runtime_side_by_side.py            # ~5 min on 2 cores
    .venv/bin/python benchmarks/runtime_side_by_side.py --quick    # smoke run, seconds

Real decode compute, real episode shapes: a ~5M-parameter random Llama (as in
`decode_side_by_side.py`) runs every prefill and decode step, while the *text* of each
thread is the symbolic APR solver's (`ScriptedTimingAgent` teacher-forces the solver's tokens
with `GenerationRequest.forced_output_ids`: the model still runs every step, so costs are
honest, and the KV holds the tokens the episode sees, so KV reuse works as with a trained
model). Episodes have the official APR shape (spawns of ~beam children, joins, resumed
parents).

It prints and records (benchmarks/results/runtime_side_by_side.json):

1. Latency: APR episodes one at a time through `runtime.runner` vs the ideal
   ``critical_path_tokens x t1`` with t1 the model's batch-1 per-token decode time measured
   with the raw backend in the same run (target <= 1.3x).
2. Throughput: generated tokens/s of the runner with many episodes in flight vs the raw
   batched decode loop at the runner's own mean decode batch size, replaying the runner's
   own requests (same prompt and generation lengths, so attention works on the same
   contexts) straight into the backend (target >= 85%). KV reuse is off for this run, since
   the replay prefills every prompt in full; tokens are what the backend decoded on both sides.
3. KV reuse per protocol (apr, fork_full_context): prompt tokens actually prefilled and
   prefill seconds with KV reuse (a resumed parent keeps its KV across the join, a forked
   child copies its parent's) vs without, and the cost of a join's re-prefill.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from concurrent.futures import Future
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from agents.llm_agent import LLMAgent, LLMAgentConfig  # noqa: E402
from agents.symbolic import SymbolicAgent, SymbolicConfig  # noqa: E402
from apr_env import Limits, generate_problems  # noqa: E402
from apr_env.actions import Text  # noqa: E402
from apr_env.agent import ThreadObservation  # noqa: E402
from apr_env.provenance import provenance  # noqa: E402
from apr_env.tokenizer import default_tokenizer  # noqa: E402
from runtime.backends.base import GenerationRequest, SamplingParams  # noqa: E402
from runtime.backends.transformers_backend import TransformersBackend, TransformersBackendConfig  # noqa: E402
from runtime.runner import RunConfig, run_episodes  # noqa: E402
from tests.tiny_models import count_parameters, make_tiny_llama  # noqa: E402


@dataclass
class RuntimeBenchConfig:
    hidden: int = 256
    """Model width (256 with 6 layers: ~4.8M parameters)."""
    layers: int = 6
    beam_size: int = 4
    """APR parent beam of the scripted solver (children per spawn)."""
    latency_episodes: int = 6
    throughput_episodes: int = 16
    kv_episodes: int = 4
    max_batch_size: int = 16
    threads: int = 1
    """torch.set_num_threads. 1 leaves the second core to the runner and the environments (with 2,
    OpenMP workers and the Python thread fight over 2 cores and single steps stall for seconds)."""
    context_window: int = 4096
    problem_seed: int = 3
    out: str = "benchmarks/results/runtime_side_by_side.json"

    @classmethod
    def quick(cls) -> RuntimeBenchConfig:
        return cls(
            hidden=64, layers=2, beam_size=2, latency_episodes=2, throughput_episodes=4, kv_episodes=2, out=""
        )


class ScriptedTimingAgent(LLMAgent):
    """An `LLMAgent` whose threads say what the symbolic solver says, at the model's real decode cost."""

    name = "scripted-llm"

    def __init__(self, backend, tokenizer, config: LLMAgentConfig, solver: SymbolicAgent):
        super().__init__(backend, tokenizer, config)
        self.solver = solver

    def submit(self, obs: ThreadObservation) -> Future:
        action = self.solver.act([obs])[0]
        text = action.text if isinstance(action, Text) else action
        script = self.tokenizer.encode(text)
        prompt_ids = self._prompt_ids(obs)
        out: Future = Future()
        request = GenerationRequest(
            input_ids=prompt_ids,
            sampling=SamplingParams(max_new_tokens=len(script), temperature=0.0),
            forced_output_ids=script,
            cache_key=f"{obs.episode}/{obs.thread}" if self.config.reuse_kv else None,
            fork_from=self._parent_key(obs) if self.config.reuse_kv else None,
        )

        def done(f: Future) -> None:
            try:
                result = f.result()
                if len(result.output_ids) != len(script):
                    raise RuntimeError(f"asked for {len(script)} tokens, got {len(result.output_ids)}")
                key = (obs.episode, obs.thread)
                self._remember(key, prompt_ids + script, base=self._threads.get(key), kept=len(prompt_ids))
                meta = {
                    "cached_tokens": result.cached_tokens,
                    "timings": result.timings,
                    "prompt_len": len(prompt_ids),
                }
                out.set_result(Text(text, tuple(script), getattr(action, "partial", False), meta))
            except Exception as err:
                out.set_exception(err)

        if not script:
            out.set_result(Text("", None))
            return out
        self.backend.submit(request).add_done_callback(done)
        return out


def _model(cfg: RuntimeBenchConfig):
    tok = default_tokenizer()
    model = make_tiny_llama(
        tok.vocab_size,
        hidden=cfg.hidden,
        layers=cfg.layers,
        heads=4,
        kv_heads=2,
        max_pos=cfg.context_window + 64,
    )
    return model, tok


def batch1_token_time(backend: TransformersBackend, tokens: int) -> float:
    """Seconds per decoded token at batch 1 over a `tokens`-long generation (prefill excluded), median of 3.

    The generation is as long as an episode's critical path, so attention over a growing
    context costs the same as on that path.
    """
    times = []
    for seed in range(3):
        request = GenerationRequest([1, 6 + seed, 7], SamplingParams(max_new_tokens=tokens))
        result = backend.generate([request])[0]
        times.append(result.timings["decode"] / max(len(result.output_ids) - 1, 1))
    return statistics.median(times)


def raw_replay_tokens_per_s(model, tok, calls: list[tuple[int, int]], batch: int) -> float:
    """Tokens/s of the backend alone on the runner's own request mix, `batch` sequences at a time.

    `calls` are (prompt tokens, generated tokens) of every call the runner made. They are all
    submitted at once to a backend with `batch` decode slots, so the loop runs at that batch
    size over the same sequence lengths (attention over the same contexts), without the
    runner, the environments or children waiting for their parents. Median of 3.
    """
    backend = TransformersBackend(model, tok, TransformersBackendConfig(max_batch_size=batch))
    rates = []
    try:
        for rep in range(3):
            requests = [
                GenerationRequest(
                    [1] + [6 + (i + rep + k) % 90 for k in range(p - 1)],
                    SamplingParams(max_new_tokens=n),
                    forced_output_ids=[7 + (i + k) % 80 for k in range(n)],
                )
                for i, (p, n) in enumerate(calls)
                if n > 0
            ]
            t0 = time.perf_counter()
            results = backend.generate(requests)
            rates.append(sum(len(r.output_ids) for r in results) / (time.perf_counter() - t0))
    finally:
        backend.close()
    return statistics.median(rates)


def _run(
    backend, tok, problems, protocol, cfg, *, concurrent: int, reuse_kv: bool = True, record_calls=False
):
    agent = ScriptedTimingAgent(
        backend,
        tok,
        LLMAgentConfig(context_window=cfg.context_window, reuse_kv=reuse_kv),
        SymbolicAgent(SymbolicConfig(beam_size=cfg.beam_size)),
    )
    run_cfg = RunConfig(
        protocol=protocol,
        limits=Limits(context_window=cfg.context_window),
        max_concurrent=concurrent,
        record_calls=record_calls,
    )
    backend.stats.reset()
    t0 = time.perf_counter()
    records = run_episodes(agent, problems, run_cfg)
    return records, time.perf_counter() - t0, asdict(backend.stats) | {"mean_batch": backend.stats.mean_batch}


def run(cfg: RuntimeBenchConfig) -> dict:
    torch.set_num_threads(cfg.threads)
    model, tok = _model(cfg)
    backend = TransformersBackend(model, tok, TransformersBackendConfig(max_batch_size=cfg.max_batch_size))
    report: dict = {"config": asdict(cfg), "parameters": count_parameters(model), "provenance": provenance()}
    try:
        backend.generate([GenerationRequest([1, 6, 7], SamplingParams(max_new_tokens=8))])  # warm up
        problems = generate_problems(cfg.latency_episodes + cfg.throughput_episodes, seed=cfg.problem_seed)

        # 1. latency: one episode at a time, children decoded together
        records, _, _ = _run(backend, tok, problems[: cfg.latency_episodes], "apr", cfg, concurrent=1)
        path = int(statistics.median(r["metrics"]["critical_path_tokens"] for r in records))
        t1 = batch1_token_time(backend, path)
        ratios = [r["latency_s"] / (r["metrics"]["critical_path_tokens"] * t1) for r in records]
        report["latency"] = {
            "batch1_s_per_token": t1,
            "batch1_measured_over_tokens": path,
            "episodes": [
                {
                    "latency_s": r["latency_s"],
                    "critical_path_tokens": r["metrics"]["critical_path_tokens"],
                    "total_tokens": r["metrics"]["total_tokens"],
                    "threads": r["metrics"]["num_threads"],
                    "ratio_to_ideal": q,
                }
                for r, q in zip(records, ratios)
            ],
            "mean_ratio_to_ideal": statistics.fmean(ratios),
            "median_ratio_to_ideal": statistics.median(ratios),
            "target": "<= 1.3",
        }

        # 2. throughput: many episodes in flight vs the raw loop at the same mean batch size. KV reuse
        # is off here: the raw replay prefills every prompt in full, so the runner must too (reuse is
        # measured on its own in 3); both sides count the tokens the backend decoded.
        records, wall, stats = _run(
            backend,
            tok,
            problems[cfg.latency_episodes :],
            "apr",
            cfg,
            concurrent=cfg.throughput_episodes,
            reuse_kv=False,
            record_calls=True,
        )
        calls = [
            (c["prompt_len"], len(c["completion_ids"] or ()))
            for r in records
            for thread in r["calls"]
            for c in thread
            if "prompt_len" in c
        ]
        generated = sum(n for _, n in calls)
        batch = max(1, round(stats["mean_batch"]))
        raw = raw_replay_tokens_per_s(model, tok, calls, batch)
        report["throughput"] = {
            "runner_tokens_per_s": generated / wall,
            "runner_wall_s": wall,
            "generated_tokens": generated,
            "backend": stats,
            "raw_batch": batch,
            "raw_requests": len(calls),
            "raw_tokens_per_s": raw,
            "ratio": generated / wall / raw,
            "target": ">= 0.85",
        }

        # 3. KV reuse per protocol
        kv = {}
        subset = problems[: cfg.kv_episodes]
        for protocol in ("apr", "fork_full_context"):
            for reuse in (True, False):
                records, wall, stats = _run(
                    backend, tok, subset, protocol, cfg, concurrent=cfg.kv_episodes, reuse_kv=reuse
                )
                kv[f"{protocol}/{'reuse' if reuse else 'no_reuse'}"] = {
                    "wall_s": wall,
                    "prefill_tokens_run": stats["prefill_tokens"],
                    "reused_tokens": stats["reused_tokens"],
                    "prefill_s": stats["prefill_s"],
                    "decode_s": stats["decode_s"],
                    "env_prefill_tokens": sum(r["metrics"]["prefill_tokens"] for r in records),
                }
            on, off = kv[f"{protocol}/reuse"], kv[f"{protocol}/no_reuse"]
            kv[f"{protocol}/prefill_saved"] = {
                "tokens": off["prefill_tokens_run"] - on["prefill_tokens_run"],
                "seconds": off["prefill_s"] - on["prefill_s"],
                "prefill_time_ratio_no_reuse_over_reuse": off["prefill_s"] / max(on["prefill_s"], 1e-9),
            }
        report["kv_reuse"] = kv
    finally:
        backend.close()
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny model and few episodes (smoke run)")
    args = parser.parse_args(argv)
    cfg = RuntimeBenchConfig.quick() if args.quick else RuntimeBenchConfig()
    report = run(cfg)
    report["command"] = "python benchmarks/runtime_side_by_side.py" + (" --quick" if args.quick else "")
    lat, thr = report["latency"], report["throughput"]
    print(
        f"model: {report['parameters'] / 1e6:.2f}M parameters, batch-1 decode {1 / lat['batch1_s_per_token']:.0f} tok/s"
    )
    print(
        f"latency: APR episode / (critical path x batch-1 token time) = {lat['mean_ratio_to_ideal']:.2f}x "
        f"(target <= 1.3x) over {len(lat['episodes'])} episodes"
    )
    print(
        f"throughput: runner {thr['runner_tokens_per_s']:.0f} tok/s vs raw loop {thr['raw_tokens_per_s']:.0f} tok/s "
        f"on the same {thr['raw_requests']} requests at batch {thr['raw_batch']}: {100 * thr['ratio']:.0f}% "
        "(target >= 85%)"
    )
    for key, value in report["kv_reuse"].items():
        if key.endswith("prefill_saved"):
            print(
                f"KV reuse {key.split('/')[0]}: {value['tokens']} prefill tokens saved, "
                f"prefill time x{value['prefill_time_ratio_no_reuse_over_reuse']:.1f} without reuse"
            )
    if cfg.out:
        Path(cfg.out).write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {cfg.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
