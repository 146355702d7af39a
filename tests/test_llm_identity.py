"""One tiny model, greedy: in-process, and over HTTP through our SGLang-compatible server with the
SGLang client and with the OpenAI client, plays the same episodes to the same token ids.

The model is random (nothing is downloaded), so episodes are gibberish; what matters is that
every path computes the same thing: same prompts, same sampled ids per call, same metrics.
The model is biased towards the grammar's markers so that spawns and joins happen too.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import httpx
import pytest
import torch
from tiny_models import make_tiny_llama, save_tiny_model

from agents.llm_agent import LLMAgent, LLMAgentConfig
from apr_env import Limits, generate_problems
from apr_env import grammar as g
from apr_env.protocols import ChildSpec, SpawnRequest, register
from apr_env.protocols.self_consistency import SelfConsistencyProtocol
from apr_env.tokenizer import default_tokenizer, load_tokenizer
from runtime.backends.openai_backend import OpenAIBackend
from runtime.backends.sglang_backend import SGLangBackend
from runtime.backends.transformers_backend import TransformersBackend
from runtime.runner import RunConfig, run_episodes
from runtime.server import serve

WINDOW = 160


@register
class TwoChildren(SelfConsistencyProtocol):
    """Any `<End Calling Sub Searches>` spawns two children at the root state: a random model
    rarely writes a well-formed calling block, and this test needs children and joins."""

    name = "test_two_children"

    def parse_spawn(self, thread):
        call = thread.calls[-1]
        if not call.completion.rstrip("\n").endswith(g.END_CALLING) or thread.depth > 0:
            return None
        prompt = self.root_prompt(thread.start)
        children = [ChildSpec(label="0", prompt=prompt, start=thread.start) for _ in range(2)]
        return SpawnRequest(children, len(call.context))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    tok = default_tokenizer()
    model = make_tiny_llama(tok.vocab_size, seed=3, max_pos=WINDOW + 8)
    with torch.no_grad():  # make the markers likely so that some threads spawn
        for marker in (g.CALLING, g.END_CALLING, g.END_SUB_SEARCHES):
            model.lm_head.weight[tok.token_id(marker)] *= 3.0
    return save_tiny_model(tmp_path_factory.mktemp("tiny"), model, tok)


def _play(backend, tokenizer, problems) -> list[dict]:
    agent = LLMAgent(backend, tokenizer, LLMAgentConfig(context_window=WINDOW, max_new_tokens=48))
    records = []
    for protocol in ("apr", "test_two_children"):
        config = RunConfig(
            protocol=protocol,
            limits=Limits(context_window=WINDOW, max_threads=7),
            record_calls=True,
            max_concurrent=4,
        )
        records += run_episodes(agent, problems, config)
    return records


def _ids(records: list[dict]) -> list:
    return [[[c["completion_ids"] for c in calls] for calls in rec["calls"]] for rec in records]


def test_in_process_and_http_backends_give_identical_token_ids(model_dir):
    tokenizer = load_tokenizer(model_dir)
    problems = generate_problems(6, seed=11)
    local = TransformersBackend(str(model_dir), tokenizer)
    try:
        expected = _play(local, tokenizer, problems)
    finally:
        local.close()
    assert sum(rec["metrics"]["total_tokens"] for rec in expected) > 0
    assert sum(rec["metrics"]["num_threads"] > 1 for rec in expected) >= 3  # children and joins happened
    assert sum(rec["metrics"]["num_spawns"] for rec in expected) >= 6
    served = TransformersBackend(str(model_dir), tokenizer)
    server = serve(served, tokenizer=tokenizer)
    try:
        for client in (
            SGLangBackend(server.url, tokenizer=tokenizer),
            OpenAIBackend(server.url, tokenizer=tokenizer),
        ):
            try:
                got = _play(client, tokenizer, problems)
            finally:
                client.close()
            assert _ids(got) == _ids(expected), type(client).__name__
            assert [r["metrics"] for r in got] == [r["metrics"] for r in expected]
    finally:
        server.shutdown()
        served.close()


def test_apr_env_serve_command_answers_native_generate(model_dir):
    """The real CLI entry point: `apr-env serve --model DIR --port P` in a subprocess."""
    port = 30000 + (time.time_ns() // 1000) % 20000
    proc = subprocess.Popen(
        [sys.executable, "-m", "apr_env.cli", "serve", "--model", str(model_dir), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.time() + 60
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, proc.stdout.read().decode()[-2000:]
            assert time.time() < deadline, "server did not come up within 60 s"
            time.sleep(0.2)
        reply = httpx.post(
            f"{url}/generate",
            json={"input_ids": [1, 5, 6], "sampling_params": {"max_new_tokens": 4, "temperature": 0}},
            timeout=30,
        ).json()
        assert len(reply["output_ids"]) == 4 and reply["meta_info"]["completion_tokens"] == 4
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()


def test_apr_env_eval_runs_an_llm_from_a_model_folder(model_dir, tmp_path, capsys):
    from apr_env.cli import main as cli

    out = tmp_path / "eval.json"
    records = tmp_path / "records.jsonl"
    argv = [
        "eval",
        "--agent",
        "llm",
        "--backend",
        "transformers",
        "--model",
        str(model_dir),
        "--n",
        "3",
        "--context-window",
        "128",
        "--sub-call-budget",
        "2",
        "--out",
        str(out),
        "--records",
        str(records),
    ]
    assert cli(argv) == 0
    point = json.loads(out.read_text())["points"][0]
    assert point["episodes"] == 3 and point["latency_s"]["p50"] > 0
    lines = [json.loads(line) for line in records.read_text().splitlines()]
    assert len(lines) == 3
    first_call = lines[0]["calls"][0][0]
    assert first_call["prompt"].startswith("Sub Call Budget: 2 Moving to Node #0")
    assert first_call["prompt_ids"][0] == 1 and len(first_call["logprobs"]) == len(first_call["output_ids"])
    assert "latency per episode" in capsys.readouterr().out
