"""The local SGLang-compatible server (`runtime.server`) over a deterministic fake backend.

Covers: `/generate` single and batched (ids and text), SGLang's response shape, stop tokens and
stop strings, logprobs; `/v1/completions` with token-id and text prompts, logprobs,
``return_token_ids``; the admin routes (health, health_generate, flush_cache,
update_weights_from_disk with and without backend support, get_model_info, v1/models); bad
requests (malformed JSON, missing and invalid fields) answered 400 with a JSON error and the
server still serving; backend failures answered 500; requests served concurrently (a barrier
in the fake only opens when several are in flight at once); `serve(port=0)` and shutdown; the
command line (`add_arguments`, `run`) with a fake model loader.

The fake backend continues the prompt by counting: each new token is the previous one + 1
(mod `VOCAB`); its tokenizer spells token ``n`` as ``"tn"``. Other test files import
`FakeBackend` and `FakeTokenizer` from here.
"""

from __future__ import annotations

import argparse
import os
import socket
import threading
from concurrent.futures import Future, ThreadPoolExecutor

import httpx
import pytest

from runtime.backends.base import Backend, BackendError, GenerationRequest, GenerationResult
from runtime.server import ServeConfig, add_arguments, config_from_args, run, serve

VOCAB = 1000


class FakeTokenizer:
    """Token n <-> the word "tn"; words joined by spaces."""

    bos_token_id = 0
    name_or_path = "fake-tokenizer"

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return [int(word[1:]) for word in text.split()]

    def decode(self, ids, skip_special_tokens: bool = False) -> str:
        return " ".join(f"t{i}" for i in ids)


def count_on(prompt: list[int], n: int) -> list[int]:
    """What the fake generates: the prompt's last id + 1, + 2, ... (mod VOCAB)."""
    return [(prompt[-1] + k) % VOCAB for k in range(1, n + 1)]


class FakeBackend(Backend):
    """Deterministic backend: counts on from the last prompt token; logprob of token k is -k/10.

    Args:
        gate: when > 0, every generation waits until `gate` of them are running at once.
        fail: every generation raises `BackendError`.
        reloadable: give it an ``update_weights_from_disk`` method.
    """

    context_length = 512

    def __init__(self, *, tokenizer=None, gate: int = 0, fail: bool = False, reloadable: bool = False):
        self.tokenizer = tokenizer
        self.model_path = "fake-model"
        self.fail = fail
        self.barrier = threading.Barrier(gate, timeout=10) if gate else None
        self.pool = ThreadPoolExecutor(max_workers=128)
        self.submitted: list[GenerationRequest] = []
        self.flushed = 0
        self.reloaded: list[str] = []
        if reloadable:
            self.update_weights_from_disk = self._reload

    def _reload(self, path: str) -> None:
        if not os.path.isdir(path):
            raise FileNotFoundError(path)
        self.reloaded.append(path)

    def flush_cache(self) -> None:
        self.flushed += 1

    def submit(self, request: GenerationRequest) -> Future[GenerationResult]:
        self.submitted.append(request)
        return self.pool.submit(self._generate, request)

    def _generate(self, request: GenerationRequest) -> GenerationResult:
        if self.fail:
            raise BackendError("fake backend failure")
        if self.barrier is not None:
            self.barrier.wait()
        s = request.sampling
        out: list[int] = []
        finish, matched = "length", None
        for token in count_on(request.input_ids, s.max_new_tokens):
            out.append(token)
            if token in s.stop_token_ids:
                finish, matched = "stop", token
                break
            text = FakeTokenizer().decode(out)
            hit = [stop for stop in s.stop if text.endswith(stop)]
            if hit:
                finish, matched = "stop", hit[0]
                break
        return GenerationResult(
            request_id=request.request_id,
            output_ids=out,
            text=FakeTokenizer().decode(out),
            finish_reason=finish,
            matched_stop=matched,
            logprobs=[-(k + 1) / 10 for k in range(len(out))] if request.return_logprob else None,
            prompt_tokens=len(request.input_ids),
            cached_tokens=1,
            timings={"total": 0.25},
        )

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


@pytest.fixture
def backend():
    b = FakeBackend(tokenizer=FakeTokenizer(), reloadable=True)
    yield b
    b.close()


@pytest.fixture
def weights(tmp_path):
    (tmp_path / "step-2").mkdir()
    return tmp_path


@pytest.fixture
def server(backend, weights):
    with serve(backend, weights_dir=str(weights)) as running:
        yield running


@pytest.fixture
def client(server):
    with httpx.Client(base_url=server.url, timeout=10) as c:
        yield c


GREEDY = {"temperature": 0, "max_new_tokens": 4}

# ---------------------------------------------------------------- /generate


def test_generate_answers_in_sglangs_shape(client):
    out = client.post("/generate", json={"input_ids": [5, 6], "sampling_params": GREEDY}).json()
    assert out["output_ids"] == count_on([5, 6], 4) == [7, 8, 9, 10]
    assert out["text"] == "t7 t8 t9 t10"
    meta = out["meta_info"]
    assert meta["finish_reason"] == {"type": "length", "length": 4}
    assert (meta["prompt_tokens"], meta["completion_tokens"], meta["cached_tokens"]) == (2, 4, 1)
    assert "output_token_logprobs" not in meta


def test_generate_passes_sampling_params_to_the_backend(client, backend):
    params = {"temperature": 0.7, "top_p": 0.9, "top_k": 5, "max_new_tokens": 3, "sampling_seed": 11}
    client.post("/generate", json={"input_ids": [1], "sampling_params": params})
    s = backend.submitted[-1].sampling
    assert (s.temperature, s.top_p, s.top_k, s.max_new_tokens, s.seed) == (0.7, 0.9, 5, 3, 11)


def test_generate_uses_sglangs_defaults_for_missing_sampling_params(client, backend):
    client.post("/generate", json={"input_ids": [1]})
    s = backend.submitted[-1].sampling
    assert (s.temperature, s.max_new_tokens, s.top_p, s.top_k) == (1.0, 128, 1.0, -1)


def test_generate_keeps_a_matched_stop_token_in_output_ids(client):
    params = {**GREEDY, "max_new_tokens": 10, "stop_token_ids": [9]}
    out = client.post("/generate", json={"input_ids": [6], "sampling_params": params}).json()
    assert out["output_ids"] == [7, 8, 9]
    assert out["meta_info"]["finish_reason"] == {"type": "stop", "matched": 9}


def test_generate_reports_a_matched_stop_string(client):
    params = {**GREEDY, "max_new_tokens": 10, "stop": "t8"}
    out = client.post("/generate", json={"input_ids": [6], "sampling_params": params}).json()
    assert out["text"] == "t7 t8"
    assert out["meta_info"]["finish_reason"] == {"type": "stop", "matched": "t8"}


def test_generate_returns_logprobs_as_logprob_id_text_triples(client):
    body = {"input_ids": [1], "sampling_params": {**GREEDY, "max_new_tokens": 2}, "return_logprob": True}
    meta = client.post("/generate", json=body).json()["meta_info"]
    assert meta["output_token_logprobs"] == [[-0.1, 2, None], [-0.2, 3, None]]


def test_generate_batches_ids_and_keeps_the_order(client):
    body = {
        "input_ids": [[10], [20], [30]],
        "sampling_params": [{"max_new_tokens": 1}, {"max_new_tokens": 2}, {"max_new_tokens": 3}],
        "return_logprob": [False, True, False],
    }
    outs = client.post("/generate", json=body).json()
    assert [o["output_ids"] for o in outs] == [[11], [21, 22], [31, 32, 33]]
    assert ["output_token_logprobs" in o["meta_info"] for o in outs] == [False, True, False]


def test_generate_encodes_text_prompts_with_the_tokenizer(client):
    outs = client.post("/generate", json={"text": ["t3", "t4 t8"], "sampling_params": GREEDY}).json()
    assert [o["output_ids"] for o in outs] == [count_on([3], 4), count_on([8], 4)]


def test_text_prompts_without_a_tokenizer_are_refused():
    backend = FakeBackend()
    with serve(backend) as server:
        response = httpx.post(server.url + "/generate", json={"text": "t1"}, timeout=5)
    backend.close()
    assert response.status_code == 400 and "send input_ids instead" in response.json()["message"]


BAD_GENERATE = [
    ("{not json", "the body: Invalid JSON"),
    ("[1, 2]", "the body: Input should be an object"),
    ("{}", "give exactly one of 'input_ids' or 'text'"),
    ('{"input_ids": [1], "text": "t1"}', "give exactly one of 'input_ids' or 'text'"),
    ('{"input_ids": []}', "input_ids: List should have at least 1 item"),
    ('{"input_ids": [1, "2"]}', 'input_ids.1: Input should be a valid integer (got "2")'),
    ('{"input_ids": [-1]}', "input_ids.0: Input should be greater than or equal to 0"),
    (
        '{"input_ids": [1], "sampling_params": {"temperature": "hot"}}',
        "sampling_params.temperature: Input should be a valid number",
    ),
    ('{"input_ids": [1], "sampling_params": {"temperature": NaN}}', "sampling_params.temperature"),
    (
        '{"input_ids": [1], "sampling_params": {"max_new_tokens": 2.5}}',
        "sampling_params.max_new_tokens: Input should be a valid integer",
    ),
    (
        '{"input_ids": [1], "sampling_params": {"top_p": 0}}',
        "sampling_params.top_p: Input should be greater than 0",
    ),
    (
        '{"input_ids": [1], "sampling_params": {"max_new_tokens": -1}}',
        "sampling_params.max_new_tokens: Input should be greater than or equal to 0",
    ),
    ('{"input_ids": [1], "sampling_params": {"beam_size": 4}}', "unsupported sampling_params ['beam_size']"),
    ('{"input_ids": [1], "sampling_params": {"n": 2}}', "unsupported sampling_params ['n'] (got {'n': 2})"),
    ('{"input_ids": [1], "sampling_params": {"regex": "a+"}}', "unsupported sampling_params ['regex']"),
    (
        '{"input_ids": [1], "sampling_params": {"frequency_penalty": 0.5, "min_p": 0.1}}',
        "unsupported sampling_params ['frequency_penalty', 'min_p']",
    ),
    (
        '{"input_ids": [1], "sampling_params": {"ignore_eos": true}}',
        "unsupported sampling_params ['ignore_eos']",
    ),
    (
        '{"input_ids": [1], "sampling_params": {"sampling_seed": 1180591620717411303424}}',
        "sampling_params.sampling_seed",
    ),
    ('{"input_ids": [1], "sampling_params": {"stop": [1]}}', "sampling_params.stop"),
    (
        '{"input_ids": [1], "sampling_params": {"stop_token_ids": "2"}}',
        "sampling_params.stop_token_ids: Input should be a valid array",
    ),
    (
        '{"input_ids": [1], "sampling_params": [{}, {}]}',
        "sampling_params is a list of 2 but the request has 1",
    ),
    (
        '{"input_ids": [[1], [2]], "return_logprob": [true]}',
        "return_logprob is a list of 1 but the request has 2",
    ),
    ('{"input_ids": [1], "return_logprob": "yes"}', "return_logprob: Input should be a valid boolean"),
    (
        '{"input_ids": [1], "logprob_start_len": 0, "return_logprob": true}',
        "logprob_start_len needs prompt logprobs",
    ),
    ('{"input_ids": [1], "stream": true, "text": null, "rid": ["a", "b"]}', "rid is a list of 2"),
    ("[" * 100_000 + "]" * 100_000, "the body: "),
]


@pytest.mark.parametrize(
    ("raw", "message"),
    BAD_GENERATE,
    ids=[m.split(" ")[0][:20] + str(i) for i, (_, m) in enumerate(BAD_GENERATE)],
)
def test_bad_generate_requests_get_a_400_json_error(client, raw, message):
    response = client.post("/generate", content=raw, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    error = response.json()
    assert error["code"] == 400 and error["object"] == "error" and message in error["message"]


def test_the_server_keeps_serving_after_a_bad_request(client):
    client.post("/generate", content="{oops")
    assert client.post("/generate", json={"input_ids": [1], "sampling_params": GREEDY}).status_code == 200


def test_a_chunked_post_without_content_length_is_read_and_answered(server):
    with httpx.Client() as c:
        request = c.build_request(
            "POST", server.url + "/generate", content=iter([b'{"input_ids": [1]', b"}"])
        )
        response = c.send(request)
    assert response.status_code == 200 and response.json()["output_ids"][:2] == [2, 3]


@pytest.mark.parametrize("length", ["-5", "abc"], ids=["negative", "not-a-number"])
def test_a_malformed_content_length_is_a_400_not_a_hang(server, length):
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        sock.sendall(f"POST /generate HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n".encode())
        reply = sock.recv(65536).decode()
    assert reply.startswith("HTTP/1.1 400")


def test_a_body_over_the_limit_is_a_413_before_it_is_read(server):
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        sock.sendall(f"POST /generate HTTP/1.1\r\nHost: x\r\nContent-Length: {10**12}\r\n\r\n".encode())
        reply = b""
        while b"}" not in reply:
            reply += sock.recv(65536)
    assert reply.startswith(b"HTTP/1.1 413") and b"over the limit" in reply


def test_a_chunked_body_over_the_limit_is_a_413():
    backend = FakeBackend()
    with serve(backend, max_body_bytes=1000) as server, httpx.Client() as c:
        chunks = iter([b'{"input_ids": [', *([b"1, "] * 600), b"1]}"])
        response = c.send(c.build_request("POST", server.url + "/generate", content=chunks))
    backend.close()
    assert response.status_code == 413 and "over the limit of 1000 bytes" in response.json()["message"]


def test_backend_failures_are_a_500_and_do_not_stop_the_server():
    backend = FakeBackend(fail=True)
    with serve(backend) as server, httpx.Client(base_url=server.url, timeout=5) as c:
        first = c.post("/generate", json={"input_ids": [1]})
        second = c.post("/generate", json={"input_ids": [1]})
        health = c.get("/health")
    backend.close()
    assert first.status_code == second.status_code == 500
    assert "fake backend failure" in first.json()["message"]
    assert health.status_code == 200


def test_unknown_routes_are_404_and_wrong_methods_405(client):
    missing = client.get("/nope")
    wrong = client.get("/generate")
    assert missing.status_code == 404 and "/nope" in missing.json()["message"]
    assert wrong.status_code == 405 and "use POST or PUT" in wrong.json()["message"]


@pytest.mark.parametrize(
    ("method", "path"),
    [("PUT", "/v1/completions"), ("DELETE", "/generate"), ("OPTIONS", "/generate"), ("POST", "/health")],
)
def test_other_methods_are_a_405_json_error(client, method, path):
    response = client.request(method, path)
    assert response.status_code == 405 and response.json()["code"] == 405


# ---------------------------------------------------------------- concurrency


def test_concurrent_requests_reach_the_backend_together():
    # The fake's barrier opens only when 8 generations run at once: a server that handled
    # requests one by one would time the barrier out and answer 500.
    backend = FakeBackend(gate=8)

    def one(i: int) -> httpx.Response:
        return c.post("/generate", json={"input_ids": [i * 10], "sampling_params": GREEDY})

    with (
        serve(backend) as server,
        httpx.Client(base_url=server.url, timeout=20) as c,
        ThreadPoolExecutor(8) as pool,
    ):
        responses = list(pool.map(one, range(8)))
    backend.close()
    assert [r.status_code for r in responses] == [200] * 8
    assert [r.json()["output_ids"] for r in responses] == [count_on([i * 10], 4) for i in range(8)]


# ---------------------------------------------------------------- /v1/completions


def test_completions_accepts_token_ids_and_returns_token_ids_on_request(client):
    body = {"prompt": [4, 5], "max_tokens": 3, "temperature": 0, "return_token_ids": True}
    data = client.post("/v1/completions", json=body).json()
    choice = data["choices"][0]
    assert choice["token_ids"] == count_on([5], 3)
    assert (choice["text"], choice["finish_reason"], choice["matched_stop"]) == ("t6 t7 t8", "length", None)
    assert data["usage"] == {
        "prompt_tokens": 2,
        "completion_tokens": 3,
        "total_tokens": 5,
        "prompt_tokens_details": {"cached_tokens": 1},
    }
    assert data["object"] == "text_completion" and data["model"] == "fake-model"


def test_completions_without_return_token_ids_sends_no_ids(client):
    choice = client.post("/v1/completions", json={"prompt": [4], "max_tokens": 1}).json()["choices"][0]
    assert "token_ids" not in choice


def test_completions_logprobs_can_spell_tokens_as_ids(client):
    body = {"prompt": "t1", "max_tokens": 2, "logprobs": 0, "return_tokens_as_token_ids": True}
    logprobs = client.post("/v1/completions", json=body).json()["choices"][0]["logprobs"]
    assert logprobs["tokens"] == ["token_id:2", "token_id:3"]
    assert logprobs["token_logprobs"] == [-0.1, -0.2]


def test_completions_logprobs_spell_tokens_with_the_tokenizer_by_default(client):
    logprobs = client.post("/v1/completions", json={"prompt": [1], "max_tokens": 2, "logprobs": 1}).json()[
        "choices"
    ][0]["logprobs"]
    assert logprobs["tokens"] == ["t2", "t3"] and logprobs["text_offset"] == [0, 2]


def test_completions_stop_token_reports_matched_stop(client):
    body = {"prompt": [1], "max_tokens": 9, "stop_token_ids": [3], "return_token_ids": True}
    choice = client.post("/v1/completions", json=body).json()["choices"][0]
    assert (choice["finish_reason"], choice["matched_stop"], choice["token_ids"]) == ("stop", 3, [2, 3])


def test_completions_with_several_prompts_gives_one_choice_each_in_order(client):
    data = client.post("/v1/completions", json={"prompt": [[1], "t7"], "max_tokens": 1}).json()
    assert [(c["index"], c["text"]) for c in data["choices"]] == [(0, "t2"), (1, "t8")]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"max_tokens": 2}, "prompt: Field required"),
        ({"prompt": [1], "n": 2}, "n: Input should be 1"),
        ({"prompt": [1], "stream": True, "logprobs": 1}, "stream=true takes a single prompt and no logprobs"),
        ({"prompt": [1], "echo": True}, "echo: Input should be False"),
        ({"prompt": [1], "frequency_penalty": 0.5}, "frequency_penalty: Input should be 0"),
        ({"prompt": [1], "logprobs": -1}, "logprobs: Input should be greater than or equal to 0"),
        ({"prompt": [], "max_tokens": 1}, "prompt: "),
        ({"prompt": [1], "temperature": -1}, "temperature: Input should be greater than or equal to 0"),
        ({"prompt": [1], "seed": 2**70}, "seed: Input should be less than or equal to"),
    ],
    ids=["no-prompt", "n", "stream-logprobs", "echo", "penalty", "logprobs", "empty", "temperature", "seed"],
)
def test_bad_completions_requests_get_a_400(client, body, message):
    response = client.post("/v1/completions", json=body)
    assert response.status_code == 400 and message in response.json()["message"]


# ---------------------------------------------------------------- admin routes


def test_health_routes_answer_200(client):
    assert client.get("/health").status_code == 200
    assert client.get("/health_generate").status_code == 200


def test_health_generate_is_503_when_generation_fails():
    backend = FakeBackend(fail=True)
    with serve(backend) as server:
        status = httpx.get(server.url + "/health_generate", timeout=5).status_code
    backend.close()
    assert status == 503


def test_flush_cache_calls_the_backend(client, backend):
    assert client.post("/flush_cache").status_code == 200
    assert backend.flushed == 1


def test_update_weights_from_disk_calls_the_backend_and_updates_model_info(client, backend, weights):
    response = client.post("/update_weights_from_disk", json={"model_path": str(weights / "step-2")})
    assert response.status_code == 200 and response.json()["success"] is True
    assert backend.reloaded == [str(weights / "step-2")]
    assert client.get("/model_info").json()["model_path"] == str(weights / "step-2")
    relative = client.post("/update_weights_from_disk", json={"model_path": "step-2"})
    assert relative.status_code == 200 and backend.reloaded[-1] == str(weights / "step-2")


def test_update_weights_failure_is_a_400_with_success_false(client, weights):
    response = client.post("/update_weights_from_disk", json={"model_path": str(weights / "missing")})
    assert response.status_code == 400
    assert response.json()["success"] is False and "missing" in response.json()["message"]


@pytest.mark.parametrize("path", ["/etc", "../..", "step-2/../../"])
def test_update_weights_loads_only_from_under_the_weights_dir(client, backend, path):
    response = client.post("/update_weights_from_disk", json={"model_path": path})
    assert response.status_code == 400 and "is not under the weights folder" in response.json()["message"]
    assert backend.reloaded == []


def test_update_weights_is_off_without_a_weights_dir(backend):
    with serve(backend) as server:
        response = httpx.post(server.url + "/update_weights_from_disk", json={"model_path": "/x"}, timeout=5)
    assert response.status_code == 400 and "--weights-dir" in response.json()["message"]
    assert backend.reloaded == []


def test_update_weights_needs_a_model_path(client):
    response = client.post("/update_weights_from_disk", json={})
    assert response.status_code == 400 and "model_path" in response.json()["message"]


def test_update_weights_on_a_backend_without_support_is_a_400_saying_so():
    backend = FakeBackend()
    with serve(backend, weights_dir="/tmp") as server:
        response = httpx.post(
            server.url + "/update_weights_from_disk", json={"model_path": "/tmp"}, timeout=5
        )
    backend.close()
    assert response.status_code == 400
    assert "FakeBackend cannot reload weights" in response.json()["message"]


def test_model_info_server_info_and_models_describe_the_backend(client):
    info = client.get("/get_model_info").json()
    assert info == client.get("/model_info").json()
    assert info == {
        "model_path": "fake-model",
        "served_model_name": "fake-model",
        "tokenizer_path": "fake-tokenizer",
        "is_generation": True,
        "context_length": 512,
    }
    assert client.get("/server_info").json()["context_length"] == 512
    assert client.get("/get_server_info").json()["max_running_requests"] == 256
    card = client.get("/v1/models").json()["data"][0]
    assert (card["id"], card["max_model_len"]) == ("fake-model", 512)


# ---------------------------------------------------------------- lifecycle and command line


def test_serve_on_port_zero_picks_a_free_port_and_shutdown_closes_it(backend):
    server = serve(backend, port=0)
    assert server.port > 0 and server.url == f"http://127.0.0.1:{server.port}"
    assert httpx.get(server.url + "/health", timeout=5).status_code == 200
    server.shutdown()
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url + "/health", timeout=2)


def test_add_arguments_makes_the_serve_flags_from_the_config():
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    config = config_from_args(parser.parse_args(["--model", "m", "--port", "0", "--api-key", "k"]))
    assert config == ServeConfig(model="m", host="127.0.0.1", port=0, api_key="k")
    assert "transformers model folder" in parser.format_help()


def test_serve_config_requires_a_model():
    with pytest.raises(ValueError, match="model is required"):
        ServeConfig()


def test_run_loads_the_model_serves_until_stopped_and_closes_the_backend(capsys):
    loaded, seen = [], {}
    stop = threading.Event()

    class Closing(FakeBackend):
        closed = False

        def close(self):
            Closing.closed = True
            super().close()

    def factory(path):
        loaded.append(path)
        return Closing()

    def on_ready(server):
        seen["status"] = httpx.get(server.url + "/health", timeout=5).status_code
        stop.set()

    assert (
        run(ServeConfig(model="some/dir", port=0), backend_factory=factory, stop=stop, on_ready=on_ready) == 0
    )
    assert loaded == ["some/dir"] and seen == {"status": 200} and Closing.closed
    assert "apr-env serve: some/dir at http://127.0.0.1:" in capsys.readouterr().out
