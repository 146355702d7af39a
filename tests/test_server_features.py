"""`apr-env serve` over a real tiny model: streaming, prompt logprobs, top logprobs, the official
`openai` client, API keys, limits (context, vocabulary, concurrency), abort on disconnect, weight
reloads, the server's context length read by the HTTP backends, and model-folder errors that
name the path.
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import Future

import httpx
import openai
import pytest
import torch
from test_server import FakeBackend, FakeTokenizer
from tiny_models import make_tiny_llama, save_tiny_model

from apr_env.tokenizer import default_tokenizer
from runtime.backends.base import Backend, GenerationRequest, GenerationResult, SamplingParams
from runtime.backends.openai_backend import OpenAIBackend
from runtime.backends.sglang_backend import SGLangBackend
from runtime.backends.transformers_backend import TransformersBackend
from runtime.model_files import ModelFolderError, check_model_folder
from runtime.server import serve

CONTEXT = 64
PROMPT = [1, 5, 6, 7, 8]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    tok = default_tokenizer()
    return save_tiny_model(
        tmp_path_factory.mktemp("tiny"), make_tiny_llama(tok.vocab_size, seed=2, max_pos=CONTEXT), tok
    )


@pytest.fixture(scope="module")
def tiny(model_dir):
    tok = default_tokenizer()
    backend = TransformersBackend(str(model_dir), tok)
    with serve(backend, tokenizer=tok, api_key="sekret", weights_dir=str(model_dir.parent)) as server:
        yield server, backend
    backend.close()


@pytest.fixture
def client(tiny):
    with httpx.Client(base_url=tiny[0].url, timeout=30, headers={"Authorization": "Bearer sekret"}) as c:
        yield c


def _generate(client, **body):
    response = client.post("/generate", json={"input_ids": PROMPT, **body})
    assert response.status_code == 200, response.text
    return response.json()


def test_every_route_needs_the_api_key(tiny):
    assert httpx.get(tiny[0].url + "/health").status_code == 401
    wrong = httpx.post(
        tiny[0].url + "/generate", json={"input_ids": [1]}, headers={"Authorization": "Bearer x"}
    )
    assert wrong.status_code == 401 and "API key" in wrong.json()["message"]


def test_streaming_sends_growing_sglang_chunks_then_done(client):
    plain = _generate(client, sampling_params={"max_new_tokens": 6, "temperature": 0})
    with client.stream(
        "POST",
        "/generate",
        json={
            "input_ids": PROMPT,
            "stream": True,
            "sampling_params": {"max_new_tokens": 6, "temperature": 0},
        },
    ) as response:
        lines = [line for line in response.iter_lines() if line.startswith("data:")]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line[5:]) for line in lines[:-1]]
    assert len(chunks) == 7  # one per token, then the final answer
    assert [len(c["output_ids"]) for c in chunks[:-1]] == [1, 2, 3, 4, 5, 6]
    assert all(c["meta_info"]["finish_reason"] is None for c in chunks[:-1])
    assert chunks[-1]["output_ids"] == plain["output_ids"] and chunks[-1]["text"] == plain["text"]
    assert chunks[-1]["meta_info"]["finish_reason"] == {"type": "length", "length": 6}


def test_prompt_logprobs_from_logprob_start_len_match_the_model(client, tiny):
    meta = _generate(
        client,
        sampling_params={"max_new_tokens": 0},
        return_logprob=True,
        logprob_start_len=0,
        return_text_in_logprobs=True,
    )["meta_info"]
    entries = meta["input_token_logprobs"]
    assert [e[1] for e in entries] == PROMPT and entries[0][0] is None
    with torch.no_grad():
        logp = torch.log_softmax(tiny[1].model(input_ids=torch.tensor([PROMPT])).logits[0].float(), -1)
    expected = [logp[i - 1, PROMPT[i]].item() for i in range(1, len(PROMPT))]
    assert [e[0] for e in entries[1:]] == pytest.approx(expected, abs=1e-4)
    assert entries[1][2] == default_tokenizer().decode([PROMPT[1]])
    assert meta["output_token_logprobs"] == []
    tail = _generate(client, sampling_params={"max_new_tokens": 0}, return_logprob=True, logprob_start_len=3)
    assert [e[1] for e in tail["meta_info"]["input_token_logprobs"]] == PROMPT[3:]


def test_top_logprobs_num_lists_the_most_likely_ids(client):
    meta = _generate(
        client,
        sampling_params={"max_new_tokens": 3, "temperature": 0},
        return_logprob=True,
        top_logprobs_num=4,
    )["meta_info"]
    for (lp, tid, _), top in zip(meta["output_token_logprobs"], meta["output_top_logprobs"]):
        assert len(top) == 4 and top[0][1] == tid and top[0][0] == pytest.approx(lp, abs=1e-5)
        assert [t[0] for t in top] == sorted((t[0] for t in top), reverse=True)


def test_sglangs_neutral_defaults_are_accepted(client):
    neutral = {
        "max_new_tokens": 2,
        "min_new_tokens": 0,
        "n": 1,
        "stop": [],
        "stop_token_ids": [],
        "stop_regex": [],
        "temperature": 0,
        "top_p": 1.0,
        "top_k": -1,
        "min_p": 0.0,
        "frequency_penalty": 0.0,
        "presence_penalty": 0.0,
        "ignore_eos": False,
        "regex": None,
        "json_schema": None,
        "skip_special_tokens": False,
        "spaces_between_special_tokens": True,
    }
    assert len(_generate(client, sampling_params=neutral, rid="my-id")["output_ids"]) == 2
    assert _generate(client, sampling_params={"max_new_tokens": 1}, rid="my-id")["meta_info"]["id"] == "my-id"


@pytest.mark.parametrize(
    ("ids", "message"),
    [([1, 10**6], "holds token id 1000000"), ([1] * CONTEXT, f"context length is {CONTEXT}")],
    ids=["out-of-vocabulary", "longer-than-context"],
)
def test_prompts_the_model_cannot_take_are_a_400(client, ids, message):
    response = client.post("/generate", json={"input_ids": ids})
    assert response.status_code == 400 and message in response.json()["message"]


def test_a_huge_text_prompt_is_refused_before_tokenizing(client):
    response = client.post("/generate", json={"text": "1" * (CONTEXT * 64 + 1)})
    assert response.status_code == 400 and "cannot fit the context" in response.json()["message"]


def test_the_openai_client_drives_completions_with_logprobs_and_streaming(tiny, client):
    oa = openai.OpenAI(base_url=tiny[0].url + "/v1", api_key="sekret", max_retries=0)
    done = oa.completions.create(model="m", prompt=PROMPT, max_tokens=5, temperature=0, logprobs=2)
    choice = done.choices[0]
    assert len(choice.logprobs.tokens) == 5 and all(len(top) == 2 for top in choice.logprobs.top_logprobs)
    assert done.usage.completion_tokens == 5
    native = _generate(client, sampling_params={"max_new_tokens": 5, "temperature": 0})
    assert choice.text == native["text"]
    pieces = oa.completions.create(model="m", prompt=PROMPT, max_tokens=5, temperature=0, stream=True)
    chunks = list(pieces)
    assert "".join(c.choices[0].text for c in chunks) == native["text"]
    assert chunks[-1].choices[0].finish_reason == "length" and len(chunks) >= 2
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=tiny[0].url + "/v1", api_key="wrong", max_retries=0).completions.create(
            model="m", prompt=PROMPT, max_tokens=1
        )


def test_update_weights_from_disk_loads_a_same_shaped_model_and_refuses_others(
    tiny, client, model_dir, tmp_path
):
    other = save_tiny_model(
        model_dir.parent / "other",
        make_tiny_llama(default_tokenizer().vocab_size, seed=9, max_pos=CONTEXT),
        default_tokenizer(),
    )
    before = _generate(client, sampling_params={"max_new_tokens": 8, "temperature": 0})["output_ids"]
    ok = client.post("/update_weights_from_disk", json={"model_path": str(other)})
    assert ok.status_code == 200 and ok.json()["success"] is True
    after = _generate(client, sampling_params={"max_new_tokens": 8, "temperature": 0})["output_ids"]
    back = client.post("/update_weights_from_disk", json={"model_path": str(model_dir)})
    assert back.status_code == 200
    assert _generate(client, sampling_params={"max_new_tokens": 8, "temperature": 0})["output_ids"] == before
    assert after != before  # other weights, other tokens
    wider = save_tiny_model(
        model_dir.parent / "wider",
        make_tiny_llama(default_tokenizer().vocab_size, hidden=32, max_pos=CONTEXT),
        default_tokenizer(),
    )
    refused = client.post("/update_weights_from_disk", json={"model_path": str(wider)})
    assert refused.status_code == 400 and "does not fit the served model" in refused.json()["message"]


def test_abort_stops_a_running_generation(tiny):
    backend = tiny[1]
    request = GenerationRequest(
        input_ids=PROMPT, sampling=SamplingParams(max_new_tokens=CONTEXT - len(PROMPT))
    )
    seen = threading.Event()
    request.on_token = lambda t: seen.set()
    future = backend.submit(request)
    assert seen.wait(30)
    backend.abort(request.request_id)
    result = future.result(timeout=30)
    assert result.finish_reason == "abort" and len(result.output_ids) < CONTEXT - len(PROMPT)


class HeldBackend(Backend):
    """Futures resolve only when the test releases them; records aborts."""

    context_length = 512

    def __init__(self):
        self.futures: list[tuple[GenerationRequest, Future]] = []
        self.aborted: list[str] = []
        self.submitted = threading.Event()

    def submit(self, request):
        future: Future = Future()
        self.futures.append((request, future))
        self.submitted.set()
        return future

    def abort(self, request_id):
        self.aborted.append(request_id)

    def release_all(self):
        for request, future in self.futures:
            if not future.done():
                future.set_result(GenerationResult(request.request_id, [1], "t1", "length", prompt_tokens=1))


def test_requests_beyond_the_limit_get_429_and_a_disconnect_aborts():
    backend = HeldBackend()
    with serve(backend, max_running_requests=1) as server:
        timed_out = []

        def impatient() -> None:
            try:
                httpx.post(server.url + "/generate", json={"input_ids": [1], "rid": "gone"}, timeout=1.0)
            except httpx.ReadTimeout:
                timed_out.append(True)

        first = threading.Thread(target=impatient, daemon=True)
        first.start()
        assert backend.submitted.wait(10)
        busy = httpx.post(server.url + "/generate", json={"input_ids": [2]}, timeout=5)
        assert busy.status_code == 429 and busy.headers["retry-after"] == "1"
        first.join(10)
        assert timed_out
        deadline = time.time() + 5
        while not backend.aborted and time.time() < deadline:
            time.sleep(0.05)
        assert backend.aborted == ["gone"]  # the client timed out and went away: generation aborted
        assert backend.futures[0][1].cancelled() or backend.futures[0][1].done()
        info = httpx.get(server.url + "/server_info", timeout=5).json()
        assert info["internal_states"] == [{"running_requests": 0}]  # the aborted one freed its place


def test_http_backends_read_the_servers_context_length_and_clamp_the_window():
    fake = FakeBackend(tokenizer=FakeTokenizer())
    with serve(fake) as server:
        for cls in (SGLangBackend, OpenAIBackend):
            with cls(server.url) as backend:
                window, warning = backend.fit_context_window(4096)
                assert (window, backend.context_length) == (512, 512)
                assert "serves a context of 512 tokens" in warning and "--context-window 512" in warning
                assert backend.fit_context_window(256) == (256, None)
    fake.close()


def test_model_folder_errors_name_the_path_and_what_was_expected(model_dir, tmp_path):
    with pytest.raises(
        ModelFolderError, match="'/missing/model' does not exist; expected a local transformers"
    ):
        check_model_folder("/missing/model")
    junk = tmp_path / "junk.txt"
    junk.write_text("hello")
    with pytest.raises(ModelFolderError, match="is a file, not a folder"):
        check_model_folder(junk)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text("hello")
    with pytest.raises(ModelFolderError, match=r"config\.json is not valid JSON"):
        check_model_folder(bad)
    cut = tmp_path / "cut"
    cut.mkdir()
    for f in model_dir.iterdir():
        (cut / f.name).write_bytes(f.read_bytes())
    weights = cut / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(ModelFolderError, match=r"model.safetensors is truncated: its tensors need \d+ bytes"):
        check_model_folder(cut)
    check_model_folder(model_dir)


def test_serve_and_eval_stop_with_the_path_in_the_message(tmp_path):
    from apr_env.cli import main as cli

    with pytest.raises(SystemExit, match="apr-env serve: model folder '/missing' does not exist"):
        cli(["serve", "--model", "/missing"])
    with pytest.raises(SystemExit, match="apr-env eval: model folder '/missing' does not exist"):
        cli(["eval", "--agent", "llm", "--backend", "transformers", "--model", "/missing", "--n", "1"])
