"""`SGLangBackend`: request bodies, response parsing, and behaviour against real and misbehaving servers.

Covers: the ``/generate`` body (greedy, stops, seed, logprobs, the flags that keep stop tokens
in the text); parsing of good responses (ids from ``output_ids`` or from
``output_token_logprobs``, finish reasons, local decoding) and of broken ones (a typed error
naming the missing field); end to end against `runtime.server` over the fake backend (one
request, 64 concurrent requests paired with their results, admin routes); and against tiny
stdlib servers started here that misbehave: nobody listening, 500 then success (retried, one
result, the server saw two calls), 429 with Retry-After (the backend waits what the server
asked, with sleep mocked), a read timeout, malformed JSON, a body missing fields, a 4xx (not
retried), round-robin over two servers. Every test uses small timeouts and tiny backoff delays.
"""

from __future__ import annotations

import importlib.util
import json
import re
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from test_server import FakeBackend, FakeTokenizer, count_on

from apr_env.errors import DependencyNotInstalled
from runtime.backends.base import BackendError, GenerationRequest, SamplingParams
from runtime.backends.http_errors import (
    BackendConnectionError,
    BackendResponseError,
    BackendStatusError,
    BackendTimeoutError,
)
from runtime.backends.http_policy import HTTPPolicy
from runtime.backends.sglang_backend import SGLangBackend, build_generate_body, parse_generate_response
from runtime.launch_sglang import launch_sglang_server, wait_until_ready
from runtime.server import serve

FAST = HTTPPolicy(connect_timeout_s=2.0, read_timeout_s=5.0, initial_delay_s=0.001, max_delay_s=0.001)
"""Real sockets, but retries wait a millisecond."""


def greedy(ids, n=4, **kwargs) -> GenerationRequest:
    return GenerationRequest(input_ids=list(ids), sampling=SamplingParams(max_new_tokens=n, **kwargs))


# ---------------------------------------------------------------- request body


def test_body_sends_input_ids_and_sglang_sampling_params():
    request = GenerationRequest(
        input_ids=[1, 2],
        sampling=SamplingParams(
            max_new_tokens=7, temperature=0.5, top_p=0.9, top_k=4, stop=("\n",), stop_token_ids=(2,)
        ),
        return_logprob=True,
    )
    assert build_generate_body(request) == {
        "input_ids": [1, 2],
        "sampling_params": {
            "max_new_tokens": 7,
            "temperature": 0.5,
            "top_p": 0.9,
            "top_k": 4,
            "skip_special_tokens": False,
            "no_stop_trim": True,
            "stop": ["\n"],
            "stop_token_ids": [2],
        },
        "return_logprob": True,
    }


def test_body_sends_a_seed_only_when_one_is_set():
    assert "sampling_seed" not in build_generate_body(greedy([1]))["sampling_params"]
    assert build_generate_body(greedy([1], seed=3))["sampling_params"]["sampling_seed"] == 3


def test_body_can_always_ask_for_logprobs():
    assert build_generate_body(greedy([1]), always_return_logprob=True)["return_logprob"] is True


# ---------------------------------------------------------------- response parsing


def good_response(**meta) -> dict:
    return {
        "text": "server text",
        "output_ids": [7, 8, 2],
        "meta_info": {
            "prompt_tokens": 3,
            "completion_tokens": 3,
            "cached_tokens": 2,
            "finish_reason": {"type": "stop", "matched": 2},
            **meta,
        },
    }


def test_parse_reads_ids_counts_and_the_matched_stop_token():
    result = parse_generate_response(good_response(), greedy([1, 2, 3]), url="u", elapsed_s=0.5)
    assert (result.output_ids, result.text, result.finish_reason, result.matched_stop) == (
        [7, 8, 2],
        "server text",
        "stop",
        2,
    )
    assert (result.prompt_tokens, result.cached_tokens, result.timings) == (3, 2, {"total": 0.5})


def test_parse_decodes_ids_locally_when_given_a_tokenizer():
    result = parse_generate_response(good_response(), greedy([1]), url="u", tokenizer=FakeTokenizer())
    assert result.text == "t7 t8 t2"


@pytest.mark.parametrize(
    ("finish", "expected"),
    [
        ({"type": "length", "length": 3}, ("length", None)),
        ({"type": "stop", "matched": "\n"}, ("stop", "\n")),
        ({"type": "abort", "message": "client disconnected"}, ("abort", None)),
    ],
    ids=["length", "stop-string", "abort"],
)
def test_parse_maps_finish_reasons(finish, expected):
    result = parse_generate_response(good_response(finish_reason=finish), greedy([1]), url="u")
    assert (result.finish_reason, result.matched_stop) == expected


def test_parse_reads_logprobs_from_output_token_logprobs():
    data = good_response(output_token_logprobs=[[-0.5, 7, None], [-1.0, 8, None], [-0.1, 2, None]])
    request = GenerationRequest(input_ids=[1], return_logprob=True)
    assert parse_generate_response(data, request, url="u").logprobs == [-0.5, -1.0, -0.1]


def test_parse_takes_ids_from_logprob_entries_when_output_ids_is_absent():
    data = good_response(output_token_logprobs=[[-0.5, 7, "a"], [-1.0, 9, "b"]])
    del data["output_ids"]
    assert parse_generate_response(data, greedy([1]), url="u").output_ids == [7, 9]


def _without(path: str) -> dict:
    data = good_response()
    *parents, last = path.split(".")
    node = data
    for key in parents:
        node = node[key]
    del node[last]
    return data


BROKEN = [
    ({"text": "x"}, "meta_info"),
    (_without("meta_info.finish_reason"), "meta_info.finish_reason"),
    (good_response(finish_reason={"type": "exploded"}), "meta_info.finish_reason"),
    (_without("meta_info.prompt_tokens"), "meta_info.prompt_tokens"),
    ({**good_response(), "output_ids": [1, "2"]}, "output_ids"),
    (_without("output_ids"), "output_ids"),
    (good_response(output_token_logprobs="nope"), "meta_info.output_token_logprobs"),
    ([good_response()], "<root>"),
]


@pytest.mark.parametrize(("data", "field"), BROKEN, ids=[f"{f}-{i}" for i, (_, f) in enumerate(BROKEN)])
def test_parse_names_the_missing_or_malformed_field(data, field):
    with pytest.raises(BackendResponseError, match=re.escape(repr(field))) as info:
        parse_generate_response(data, greedy([1]), url="http://s/generate")
    assert info.value.field == field and info.value.url == "http://s/generate"


def test_parse_needs_logprobs_when_they_were_asked_for():
    request = GenerationRequest(input_ids=[1], return_logprob=True)
    with pytest.raises(BackendResponseError) as info:
        parse_generate_response(good_response(), request, url="u")
    assert info.value.field == "meta_info.output_token_logprobs"


def test_parse_rejects_a_logprob_count_that_does_not_match_the_ids():
    request = GenerationRequest(input_ids=[1], return_logprob=True)
    with pytest.raises(BackendResponseError, match="has 1 entries for 3 output ids"):
        parse_generate_response(good_response(output_token_logprobs=[[-1.0, 7, None]]), request, url="u")


def test_parse_needs_text_or_a_tokenizer():
    data = good_response()
    del data["text"]
    with pytest.raises(BackendResponseError, match="pass a tokenizer"):
        parse_generate_response(data, greedy([1]), url="u")


# ---------------------------------------------------------------- against the local server


@pytest.fixture
def fake():
    backend = FakeBackend(tokenizer=FakeTokenizer(), reloadable=True)
    yield backend
    backend.close()


@pytest.fixture
def local(fake, tmp_path):
    (tmp_path / "ckpt-7").mkdir()
    with serve(fake, weights_dir=str(tmp_path)) as server:
        server.weights = tmp_path
        yield server


def test_generate_through_the_local_server_returns_the_backends_ids(local):
    with SGLangBackend(local.url, policy=FAST) as backend:
        [result] = backend.generate([greedy([5], n=3, stop_token_ids=(7,))])
    assert (result.output_ids, result.finish_reason, result.matched_stop) == ([6, 7], "stop", 7)
    assert (result.text, result.prompt_tokens, result.cached_tokens) == ("t6 t7", 1, 1)


def test_logprobs_round_trip_through_the_local_server(local):
    with SGLangBackend(local.url, policy=FAST) as backend:
        [result] = backend.generate(
            [GenerationRequest(input_ids=[1], sampling=SamplingParams(max_new_tokens=3), return_logprob=True)]
        )
    assert result.logprobs == [-0.1, -0.2, -0.3]


def test_64_concurrent_requests_each_get_their_own_result(local):
    requests = [greedy([i * 13 % 997, i], n=1 + i % 5) for i in range(64)]
    with SGLangBackend(local.url, policy=FAST, max_concurrency=64) as backend:
        results = backend.generate(requests)
    assert [r.request_id for r in results] == [q.request_id for q in requests]
    assert [r.output_ids for r in results] == [
        count_on(q.input_ids, q.sampling.max_new_tokens) for q in requests
    ]


def test_admin_routes_through_the_local_server(local, fake):
    with SGLangBackend(local.url, policy=FAST) as backend:
        assert backend.health() and backend.health(generate=True)
        backend.flush_cache()
        answers = backend.update_weights_from_disk(str(local.weights / "ckpt-7"))
        info = backend.get_model_info()
    ckpt = str(local.weights / "ckpt-7")
    assert fake.flushed == 1 and fake.reloaded == [ckpt] and answers[0]["success"] is True
    assert info["model_path"] == ckpt


def test_a_refused_weight_update_raises_with_the_servers_message(local):
    with SGLangBackend(local.url, policy=FAST) as backend, pytest.raises(BackendStatusError) as info:
        backend.update_weights_from_disk(str(local.weights / "missing"))
    assert info.value.status == 400 and "missing" in info.value.body


def test_submit_after_close_fails_with_a_backend_error(local):
    backend = SGLangBackend(local.url, policy=FAST)
    backend.close()
    with pytest.raises(BackendError, match="is closed"):
        backend.submit(greedy([1])).result(timeout=5)


# ---------------------------------------------------------------- misbehaving servers


class Scripted:
    """A stdlib HTTP server answering each POST from a list of (status, headers, body, delay_s)."""

    def __init__(self, *steps):
        self.steps = list(steps)
        self.calls: list[dict] = []
        self.release = threading.Event()  # lets slow handlers finish at teardown
        script = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                self.do_POST()

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                script.calls.append(json.loads(raw) if raw else {})
                status, headers, body, delay = (
                    script.steps.pop(0) if len(script.steps) > 1 else script.steps[0]
                )
                if delay:
                    script.release.wait(delay)
                data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                try:
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def close(self):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def scripted():
    servers = []

    def make(*steps):
        servers.append(Scripted(*steps))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


OK = (200, {}, good_response(), 0)


def test_a_server_that_is_down_fails_after_the_retries_in_bounded_time():
    with socket.socket() as sock:  # grab a free port, then close it: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    start = time.monotonic()
    with (
        SGLangBackend(f"http://127.0.0.1:{port}", policy=FAST) as backend,
        pytest.raises(BackendConnectionError) as info,
    ):
        backend.generate([greedy([1])])
    assert info.value.attempts == 3 and info.value.url == f"http://127.0.0.1:{port}/generate"
    assert time.monotonic() - start < 10  # a generous bound: it must not hang


def test_a_500_then_success_is_retried_and_gives_one_result(scripted):
    server = scripted((500, {}, "overloaded", 0), OK)
    with SGLangBackend(server.url, policy=FAST) as backend:
        results = backend.generate([greedy([1, 2, 3])])
    assert len(results) == 1 and results[0].output_ids == [7, 8, 2]
    assert len(server.calls) == 2 and server.calls[0] == server.calls[1]


def test_a_429_waits_for_retry_after(scripted, monkeypatch):
    slept = []
    monkeypatch.setattr(time, "sleep", slept.append)  # the policy looks time.sleep up at call time
    server = scripted((429, {"Retry-After": "7"}, "slow down", 0), OK)
    with SGLangBackend(server.url) as backend:
        backend.generate([greedy([1])])
    assert slept == [7.0] and len(server.calls) == 2


def test_a_read_timeout_raises_a_timeout_error(scripted):
    server = scripted((200, {}, good_response(), 3.0))
    policy = HTTPPolicy(connect_timeout_s=2.0, read_timeout_s=0.2, max_retries=1, initial_delay_s=0.001)
    with SGLangBackend(server.url, policy=policy) as backend, pytest.raises(BackendTimeoutError) as info:
        backend.generate([greedy([1])])
    assert info.value.attempts == 2 and len(server.calls) == 2


def test_malformed_json_is_a_response_error_and_not_retried(scripted):
    server = scripted((200, {}, "{truncated", 0))
    with (
        SGLangBackend(server.url, policy=FAST) as backend,
        pytest.raises(BackendResponseError, match="not valid JSON"),
    ):
        backend.generate([greedy([1])])
    assert len(server.calls) == 1


def test_a_response_missing_fields_names_the_field(scripted):
    server = scripted((200, {}, {"text": "hello"}, 0))
    with SGLangBackend(server.url, policy=FAST) as backend, pytest.raises(BackendResponseError) as info:
        backend.generate([greedy([1])])
    assert info.value.field == "meta_info" and "hello" in info.value.body


def test_a_4xx_is_not_retried(scripted):
    server = scripted((400, {}, {"object": "error", "message": "input too long"}, 0), OK)
    with SGLangBackend(server.url, policy=FAST) as backend, pytest.raises(BackendStatusError) as info:
        backend.generate([greedy([1])])
    assert info.value.status == 400 and "input too long" in info.value.body and len(server.calls) == 1


def test_requests_round_robin_over_servers(scripted):
    a, b = scripted(OK), scripted(OK)
    with SGLangBackend([a.url, b.url], policy=FAST, max_concurrency=1) as backend:
        backend.generate([greedy([1]) for _ in range(4)])
    assert (len(a.calls), len(b.calls)) == (2, 2)


def test_health_is_false_when_nobody_answers():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with SGLangBackend(f"http://127.0.0.1:{port}", policy=FAST) as backend:
        assert backend.health() is False


def test_max_concurrency_must_be_positive():
    with pytest.raises(ValueError, match="max_concurrency must be an int >= 1, got 0"):
        SGLangBackend("http://127.0.0.1:1", max_concurrency=0)


# ---------------------------------------------------------------- launching SGLang


def test_launch_without_sglang_names_the_pip_extra_and_starts_nothing(monkeypatch):
    def no_process(*args, **kwargs):
        raise AssertionError("must not start a process")

    find_spec = importlib.util.find_spec  # sglang's frontend is installed for the interop tests: hide it
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "sglang" else find_spec(name, *a)
    )
    monkeypatch.setattr(subprocess, "Popen", no_process)
    with pytest.raises(DependencyNotInstalled, match=re.escape("pip install 'apr-env[sglang]'")) as info:
        launch_sglang_server("some/model", 30000)
    assert isinstance(info.value, ImportError)


@pytest.fixture
def sleeper():
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    yield process
    process.kill()
    process.wait()


def test_wait_until_ready_returns_once_health_generate_answers(local, sleeper, tmp_path):
    wait_until_ready(local.url, sleeper, timeout_s=5, log_path=tmp_path / "log", poll_interval_s=0.01)


def test_wait_until_ready_reports_a_server_that_exited_with_its_log(tmp_path):
    log = tmp_path / "server.log"
    log.write_text("CUDA error: no kernel image is available\n")
    process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    process.wait()
    with pytest.raises(BackendError, match="exited with code 3") as info:
        wait_until_ready("http://127.0.0.1:9", process, timeout_s=5, log_path=log)
    assert "no kernel image" in str(info.value)


def test_wait_until_ready_gives_up_at_the_deadline(sleeper, tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(TimeoutError, match="not ready after 0s"):
        wait_until_ready(
            f"http://127.0.0.1:{port}", sleeper, timeout_s=0, log_path=tmp_path / "log", sleep=lambda s: None
        )


class _AbortRecorder(FakeBackend):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.aborted: list[str] = []

    def abort(self, request_id: str) -> None:
        self.aborted.append(request_id)


def test_abort_names_the_request_to_the_server_with_the_rid_its_generate_sent():
    fake = _AbortRecorder(tokenizer=FakeTokenizer())
    seen: list[GenerationRequest] = []
    submit = fake.submit
    fake.submit = lambda request: (seen.append(request), submit(request))[1]
    with serve(fake) as server, SGLangBackend(server.url, policy=FAST) as backend:
        request = greedy([5], n=2)
        backend.generate([request])
        backend.abort(request.request_id)
    fake.close()
    assert [r.request_id for r in seen] == fake.aborted  # the server's id for it, both times
    assert fake.aborted[0].endswith(request.request_id) and fake.aborted[0] != request.request_id


def test_two_clients_never_share_a_server_side_request_id():
    with SGLangBackend("http://127.0.0.1:9") as a, SGLangBackend("http://127.0.0.1:9") as b:
        assert a._rid("req-1") != b._rid("req-1")
