"""The runner over HTTP when the server misbehaves: retries recover without losing or duplicating
an episode record; a dead server fails fast with a typed error instead of hanging."""

from __future__ import annotations

import socket
import threading
import time
from concurrent.futures import Future

import pytest
from test_llm_agent import GOLDEN, TOK, ScriptBackend, _problem, golden_script

from agents.llm_agent import LLMAgent
from runtime.backends.base import Backend, BackendError
from runtime.backends.http_errors import BackendConnectionError
from runtime.backends.http_policy import HTTPPolicy
from runtime.backends.sglang_backend import SGLangBackend
from runtime.runner import RunConfig, run_episodes
from runtime.server import serve

FAST_RETRIES = HTTPPolicy(
    connect_timeout_s=0.5, read_timeout_s=10, max_retries=3, initial_delay_s=0.01, max_delay_s=0.05
)


class FlakyBackend(Backend):
    """The first attempt of every `every`-th distinct request fails (the server answers 500); retries succeed."""

    def __init__(self, inner: Backend, every: int):
        self.inner, self.every, self.failed = inner, every, 0
        self.seen: dict[tuple, int] = {}
        self.lock = threading.Lock()

    def submit(self, request) -> Future:
        key = tuple(request.input_ids)
        with self.lock:
            first = key not in self.seen
            if first:
                self.seen[key] = len(self.seen)
            fail = first and self.seen[key] % self.every == 0
            self.failed += fail
        if fail:
            future: Future = Future()
            future.set_exception(BackendError("flaky backend: try again"))
            return future
        return self.inner.submit(request)


def _script_for_all(prompt: str) -> str:
    for entry in GOLDEN:
        out = golden_script(entry)(prompt)
        if out != "No solution found.\n":
            return out
    return "No solution found.\n"


def test_server_errors_are_retried_and_every_episode_is_recorded_once():
    flaky = FlakyBackend(ScriptBackend(_script_for_all), every=3)
    server = serve(flaky, tokenizer=TOK)
    client = SGLangBackend(server.url, tokenizer=TOK, policy=FAST_RETRIES)
    problems = [_problem(e) for e in GOLDEN[:12]]
    seen = []
    try:
        records = run_episodes(
            LLMAgent(client, TOK),
            problems,
            RunConfig(protocol="apr", max_concurrent=12),
            on_record=lambda r: seen.append(r["index"]),
        )
    finally:
        client.close()
        server.shutdown()
    assert flaky.failed > 0  # the server really did fail some requests
    assert sorted(seen) == list(range(12))  # one record per episode, none lost, none twice
    assert [r["correct"] for r in records] == [e["official_correct"] for e in GOLDEN[:12]]
    assert [r["answer"] for r in records] == [e["official_answer_path"] for e in GOLDEN[:12]]


def test_a_dead_server_fails_the_run_quickly_with_a_typed_error():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = SGLangBackend(f"http://127.0.0.1:{port}", tokenizer=TOK, policy=FAST_RETRIES)
    started = time.perf_counter()
    with pytest.raises(BackendConnectionError):
        run_episodes(LLMAgent(client, TOK), [_problem(GOLDEN[0])], RunConfig(protocol="apr"))
    client.close()
    assert time.perf_counter() - started < 10
