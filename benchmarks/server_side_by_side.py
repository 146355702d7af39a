"""Server overhead, measured side by side in one run: `apr-env serve` + `SGLangBackend` vs in-process.

    .venv/bin/python benchmarks/server_side_by_side.py            # ~3 min on 2 cores
    .venv/bin/python benchmarks/server_side_by_side.py --quick    # smoke run, under a minute

The same episodes (LLM agent, greedy, the same seeded APR problems) run twice over the same
weights: once with the in-process `TransformersBackend`, once through HTTP against
``python -m runtime.server`` (what ``apr-env serve`` runs) in a subprocess, with `SGLangBackend`
as the client. The model is a small random Llama (`tests/tiny_models.py`) saved to a temporary
folder that both sides load, with the same backend settings and the same torch thread count.

Both sides run without KV reuse across calls (`LLMAgentConfig.reuse_kv=False`): the HTTP
backends do not pass cache hints, so with reuse on the in-process side would also be measuring
KV reuse, not the server. What is left is the cost of the server: JSON over HTTP, uvicorn and
FastAPI, the client's request threads, and the two processes sharing the machine's cores.

It prints and records (benchmarks/results/server_side_by_side.json): decoded tokens/s of each
side (tokens the model generated, over the run's wall time), best of `repeats` alternating runs,
the ratio served / in-process (target >= 90%), and whether every call's token ids are
identical between the two (greedy; they should be, call for call). The machine's load average
is recorded next to the numbers: the CPU is shared, so a busy neighbour shows up there.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from agents.llm_agent import LLMAgent, LLMAgentConfig  # noqa: E402
from apr_env import Limits, generate_problems  # noqa: E402
from apr_env.provenance import provenance  # noqa: E402
from apr_env.tokenizer import default_tokenizer  # noqa: E402
from runtime.backends.sglang_backend import SGLangBackend  # noqa: E402
from runtime.backends.transformers_backend import TransformersBackend, TransformersBackendConfig  # noqa: E402
from runtime.launch_sglang import free_port, wait_until_ready  # noqa: E402
from runtime.runner import RunConfig, run_episodes  # noqa: E402
from tests.tiny_models import count_parameters, make_tiny_llama, save_tiny_model  # noqa: E402


@dataclass
class ServerBenchConfig:
    hidden: int = 256
    """Model width (256 with 6 layers: ~4.8M parameters, as in `runtime_side_by_side.py`)."""
    layers: int = 6
    episodes: int = 32
    """APR episodes per run, all in flight at once."""
    context_window: int = 384
    """Tokens per thread (prompt + output): a random model writes until it runs out."""
    max_batch_size: int = 16
    threads: int = 1
    """Torch intra-op threads on each side (in-process: this process; served: the server's)."""
    repeats: int = 3
    """Runs per side, alternating; the best of each is compared (the CPU is shared)."""
    problem_seed: int = 3
    out: str = "benchmarks/results/server_side_by_side.json"

    @classmethod
    def quick(cls) -> ServerBenchConfig:
        return cls(hidden=64, layers=2, episodes=4, context_window=128, repeats=1, out="")


def start_server(model_dir: Path, cfg: ServerBenchConfig) -> tuple[subprocess.Popen, str]:
    """``python -m runtime.server`` on a free port, with `cfg.threads` torch threads; returns once healthy."""
    port = free_port()
    env = dict(os.environ, OMP_NUM_THREADS=str(cfg.threads), PYTHONPATH=str(ROOT))
    log_path = Path(tempfile.mkdtemp(prefix="apr-serve-")) / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "runtime.server", "--model", str(model_dir), "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(url, proc, timeout_s=120, log_path=log_path, route="/health", name="apr-env serve")
    except BaseException:
        proc.kill()
        raise
    return proc, url


def play(backend, tok, problems, cfg: ServerBenchConfig) -> tuple[list[dict], float]:
    """All episodes at once through `backend`; records (with per-call ids) and wall seconds."""
    agent = LLMAgent(backend, tok, LLMAgentConfig(context_window=cfg.context_window, reuse_kv=False))
    run_cfg = RunConfig(
        protocol="apr",
        limits=Limits(context_window=cfg.context_window),
        max_concurrent=cfg.episodes,
        record_calls=True,
    )
    t0 = time.perf_counter()
    records = run_episodes(agent, problems, run_cfg)
    return records, time.perf_counter() - t0


def call_ids(records: list[dict]) -> list[list[list[list[int]]]]:
    """Every model call's generated ids, per episode and thread."""
    return [
        [[c["output_ids"] for c in thread if "output_ids" in c] for thread in r["calls"]] for r in records
    ]


def decoded_tokens(records: list[dict]) -> int:
    """Tokens the model generated (forced spawn ids excluded: the agent wrote them, not the model)."""
    return sum(
        len(c["output_ids"]) - c["forced_spawns"]
        for r in records
        for thread in r["calls"]
        for c in thread
        if "output_ids" in c
    )


def run(cfg: ServerBenchConfig) -> dict:
    torch.set_num_threads(cfg.threads)
    tok = default_tokenizer()
    model = make_tiny_llama(
        tok.vocab_size, hidden=cfg.hidden, layers=cfg.layers, heads=4, kv_heads=2, max_pos=cfg.context_window
    )
    problems = generate_problems(cfg.episodes, seed=cfg.problem_seed)
    backend_cfg = TransformersBackendConfig(max_batch_size=cfg.max_batch_size)
    report: dict = {
        "config": asdict(cfg),
        "parameters": count_parameters(model),
        "provenance": provenance(),
        "load_average_before": list(os.getloadavg()),
    }
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = save_tiny_model(Path(tmp) / "model", model, tok)
        local = TransformersBackend(str(model_dir), config=backend_cfg)
        proc, url = start_server(model_dir, cfg)
        remote = SGLangBackend(url, tokenizer=tok, max_concurrency=cfg.episodes)
        try:
            for backend in (local, remote):  # warm up both (first-call allocations, connections)
                play(backend, tok, problems[:2], cfg)
            runs: dict[str, list[dict]] = {"in_process": [], "served": []}
            reference = None
            identical = True
            for rep in range(cfg.repeats):
                for side, backend in (("in_process", local), ("served", remote)):
                    records, wall = play(backend, tok, problems, cfg)
                    ids = call_ids(records)
                    reference = ids if reference is None else reference
                    identical &= ids == reference
                    tokens = decoded_tokens(records)
                    runs[side].append(
                        {"wall_s": wall, "decoded_tokens": tokens, "tokens_per_s": tokens / wall}
                    )
                    print(
                        f"  run {rep + 1} {side:10s} {tokens} tokens in {wall:6.2f} s: {tokens / wall:8.1f} tok/s"
                    )
            threads = sum(r["metrics"]["num_threads"] for r in records)
            calls = sum(len(ids) for episode in call_ids(records) for ids in episode)
        finally:
            remote.close()
            local.close()
            proc.terminate()
            proc.wait(timeout=30)
    best = {side: max(r["tokens_per_s"] for r in rs) for side, rs in runs.items()}
    report.update(
        runs=runs,
        best_tokens_per_s=best,
        ratio=best["served"] / best["in_process"],
        target=">= 0.90",
        token_ids_identical=identical,
        episodes_threads_calls=[cfg.episodes, threads, calls],
        load_average_after=list(os.getloadavg()),
    )
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="tiny model, few episodes, one run, nothing saved"
    )
    parser.add_argument(
        "--out", default=None, help="where to write the JSON (default: benchmarks/results/...)"
    )
    args = parser.parse_args(argv)
    cfg = ServerBenchConfig.quick() if args.quick else ServerBenchConfig()
    if args.out is not None:
        cfg.out = args.out
    report = run(cfg)
    report["command"] = " ".join([Path(sys.executable).name, *sys.argv])
    best = report["best_tokens_per_s"]
    print(
        f"in-process {best['in_process']:.1f} tok/s, served {best['served']:.1f} tok/s: "
        f"ratio {report['ratio']:.1%} (target >= 90%); token ids identical: {report['token_ids_identical']}; "
        f"load average {report['load_average_before'][0]:.2f} -> {report['load_average_after'][0]:.2f}"
    )
    if cfg.out:
        path = ROOT / cfg.out
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {path.relative_to(ROOT)}")
    return 0 if report["token_ids_identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
