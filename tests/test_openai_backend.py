"""`OpenAIBackend`: the completions body, where token ids come from, and use against real servers.

Covers: the ``/v1/completions`` body (token-id prompt, logprobs, the vLLM/SGLang extensions and
switching them off); token ids read from ``choices[0].token_ids``, else from vLLM's
``"token_id:N"`` logprob tokens, else an error naming the field, or (opted in) re-encoded text
with a warning and a counter; finish reasons, ``matched_stop`` / vLLM's ``stop_reason``, usage
with cached tokens; malformed responses naming their field; end to end against
`runtime.server` (ids, logprobs, model name from ``/v1/models``, 16 concurrent requests); a
4xx not retried and a 500 retried (httpx.MockTransport, no waiting).
"""

from __future__ import annotations

import json
import re

import httpx
import pytest
from test_llm_agent import GOLDEN, TOK, _problem
from test_runner_failures import _script_for_all
from test_server import FakeBackend, FakeTokenizer, count_on

from agents.llm_agent import LLMAgent
from runtime.backends.base import GenerationRequest, SamplingParams
from runtime.backends.http_errors import BackendGenerationError, BackendResponseError, BackendStatusError
from runtime.backends.http_policy import HTTPPolicy, HTTPTransport
from runtime.backends.openai_backend import OpenAIBackend, build_completion_body, ids_from_logprob_tokens
from runtime.runner import RunConfig, run_episodes
from runtime.server import serve

FAST = HTTPPolicy(connect_timeout_s=2.0, read_timeout_s=5.0, initial_delay_s=0.001, max_delay_s=0.001)


def request(ids=(1, 2), n=3, logprob=False, **kwargs) -> GenerationRequest:
    return GenerationRequest(list(ids), SamplingParams(max_new_tokens=n, **kwargs), return_logprob=logprob)


# ---------------------------------------------------------------- request body


def test_body_sends_the_prompt_as_token_ids_with_extensions():
    body = build_completion_body(request(top_k=5, stop=("\n",), stop_token_ids=(9,), seed=4), model="m")
    assert body == {
        "model": "m",
        "prompt": [1, 2],
        "max_tokens": 3,
        "temperature": 0.0,
        "top_p": 1.0,
        "n": 1,
        "stream": False,
        "stop": ["\n"],
        "seed": 4,
        "top_k": 5,
        "stop_token_ids": [9],
        "skip_special_tokens": False,
        "no_stop_trim": True,
        "include_stop_str_in_output": True,
        "return_token_ids": True,
        "return_tokens_as_token_ids": True,
    }


def test_body_without_extensions_has_only_openai_fields():
    body = build_completion_body(
        request(top_k=5, stop_token_ids=(9,), logprob=True), model="m", extensions=False
    )
    assert set(body) == {"model", "prompt", "max_tokens", "temperature", "top_p", "n", "stream", "logprobs"}
    assert body["logprobs"] == 0


def test_body_leaves_top_k_out_when_disabled():
    assert "top_k" not in build_completion_body(request(), model="m")


# ---------------------------------------------------------------- response parsing


def response(choice: dict, usage: dict | None = None) -> dict:
    base = {"index": 0, "text": "abc", "finish_reason": "stop", "logprobs": None}
    return {"choices": [{**base, **choice}], "usage": usage or {"prompt_tokens": 2, "completion_tokens": 3}}


@pytest.fixture
def offline():
    backend = OpenAIBackend("http://127.0.0.1:9", model="m")  # never contacted by these tests
    yield backend
    backend.close()


def test_ids_come_from_token_ids_when_the_server_sends_them(offline):
    data = response(
        {"token_ids": [5, 6, 7], "matched_stop": 7},
        {"prompt_tokens": 2, "prompt_tokens_details": {"cached_tokens": 1}},
    )
    result = offline.parse_response(data, request(), url="u")
    assert (result.output_ids, result.text, result.matched_stop) == ([5, 6, 7], "abc", 7)
    assert (result.prompt_tokens, result.cached_tokens, result.finish_reason) == (2, 1, "stop")


def test_ids_come_from_vllm_token_id_strings_in_logprobs(offline):
    logprobs = {"tokens": ["token_id:5", "token_id:6"], "token_logprobs": [-0.5, -0.25]}
    result = offline.parse_response(response({"logprobs": logprobs}), request(logprob=True), url="u")
    assert (result.output_ids, result.logprobs) == ([5, 6], [-0.5, -0.25])


def test_vllm_stop_reason_is_the_matched_stop(offline):
    result = offline.parse_response(response({"token_ids": [1], "stop_reason": "\n"}), request(), url="u")
    assert result.matched_stop == "\n"


def test_length_finish_has_no_matched_stop(offline):
    data = response({"token_ids": [1, 2, 3], "finish_reason": "length", "matched_stop": None})
    result = offline.parse_response(data, request(), url="u")
    assert (result.finish_reason, result.matched_stop) == ("length", None)


def test_missing_token_ids_is_an_error_naming_the_field_by_default(offline):
    with pytest.raises(BackendResponseError, match=re.escape("retokenize_fallback=True")) as info:
        offline.parse_response(response({}), request(), url="u")
    assert info.value.field == "choices[0].token_ids"


def test_retokenizing_is_opt_in_warns_once_and_is_counted():
    backend = OpenAIBackend(
        "http://127.0.0.1:9", model="m", tokenizer=FakeTokenizer(), retokenize_fallback=True
    )
    with pytest.warns(UserWarning, match="re-encoding text"):
        first = backend.parse_response(response({"text": "t4 t5"}), request(), url="u")
    second = backend.parse_response(response({"text": "t9"}), request(), url="u")  # no second warning
    backend.close()
    assert (first.output_ids, second.output_ids, backend.retokenized_results) == ([4, 5], [9], 2)


def test_retokenizing_needs_a_tokenizer():
    with pytest.raises(ValueError, match="needs a tokenizer"):
        OpenAIBackend("http://127.0.0.1:9", retokenize_fallback=True)


def test_a_tokenizer_decodes_exact_ids_locally():
    backend = OpenAIBackend("http://127.0.0.1:9", model="m", tokenizer=FakeTokenizer())
    result = backend.parse_response(response({"token_ids": [3, 4], "text": "server"}), request(), url="u")
    backend.close()
    assert result.text == "t3 t4"


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"choices": []}, "choices[0]"),
        ({"error": "x"}, "choices[0]"),
        (response({"text": None}), "choices[0].text"),
        (response({"finish_reason": None}), "choices[0].finish_reason"),
        (response({"logprobs": "x"}), "choices[0].logprobs"),
    ],
    ids=["no-choices", "error-body", "no-text", "no-finish", "bad-logprobs"],
)
def test_malformed_responses_name_the_field(offline, data, field):
    with pytest.raises(BackendResponseError) as info:
        offline.parse_response(data, request(), url="u")
    assert info.value.field == field


def test_asked_for_logprobs_must_come_back_one_per_token(offline):
    data = response({"token_ids": [1, 2], "logprobs": {"tokens": ["a", "b"], "token_logprobs": [-1.0]}})
    with pytest.raises(BackendResponseError, match="has 1 entries for 2 output ids"):
        offline.parse_response(data, request(logprob=True), url="u")


@pytest.mark.parametrize(
    ("tokens", "ids"),
    [
        (["token_id:1", "token_id:22"], [1, 22]),
        (["token_id:1", "a"], None),
        (["token_id:x"], None),
        (None, None),
        ([], []),
    ],
    ids=["ids", "mixed", "not-int", "none", "empty"],
)
def test_ids_from_logprob_tokens(tokens, ids):
    assert ids_from_logprob_tokens(tokens) == ids


# ---------------------------------------------------------------- against the local server


@pytest.fixture
def local():
    fake = FakeBackend(tokenizer=FakeTokenizer())
    with serve(fake, model_name="tiny") as server:
        yield server
    fake.close()


def test_generate_through_the_local_server_returns_exact_ids(local):
    with OpenAIBackend(local.url, model="tiny", policy=FAST) as backend:
        [result] = backend.generate([request(ids=[10], n=5, stop_token_ids=(13,), logprob=True)])
    assert (result.output_ids, result.finish_reason, result.matched_stop) == ([11, 12, 13], "stop", 13)
    assert result.logprobs == [-0.1, -0.2, -0.3] and result.text == "t11 t12 t13"


def test_the_model_name_is_asked_from_v1_models_when_not_given(local):
    with OpenAIBackend(local.url, policy=FAST) as backend:
        backend.generate([request()])
        assert backend.model == "tiny"


def test_concurrent_requests_are_paired_with_their_results(local):
    requests = [request(ids=[i * 31 % 900], n=1 + i % 4) for i in range(16)]
    with OpenAIBackend(local.url, model="tiny", policy=FAST, max_concurrency=16) as backend:
        results = backend.generate(requests)
    assert [r.output_ids for r in results] == [
        count_on(q.input_ids, q.sampling.max_new_tokens) for q in requests
    ]


def test_zero_new_tokens_needs_no_server_call():
    with OpenAIBackend("http://127.0.0.1:9", model="m", policy=HTTPPolicy(max_retries=0)) as backend:
        [result] = backend.generate([request(n=0)])
    assert (result.output_ids, result.finish_reason, result.prompt_tokens) == ([], "length", 2)


# ---------------------------------------------------------------- retry behaviour (mock transport)


def _with_transport(backend: OpenAIBackend, handler) -> OpenAIBackend:
    backend.transport.close()
    backend.transport = HTTPTransport(
        "http://mock", policy=FAST, transport=httpx.MockTransport(handler), sleep=lambda s: None
    )
    return backend


def test_a_4xx_is_raised_at_once():
    calls = []

    def handler(req):
        calls.append(req)
        return httpx.Response(404, json={"message": "model 'm' does not exist"})

    with (
        _with_transport(OpenAIBackend("http://mock", model="m"), handler) as backend,
        pytest.raises(BackendStatusError) as info,
    ):
        backend.generate([request()])
    assert info.value.status == 404 and "does not exist" in info.value.body and len(calls) == 1


def test_a_500_is_retried_and_the_retry_answers():
    answers = [httpx.Response(500), httpx.Response(200, json=response({"token_ids": [8]}))]
    with _with_transport(OpenAIBackend("http://mock", model="m"), lambda req: answers.pop(0)) as backend:
        [result] = backend.generate([request()])
    assert result.output_ids == [8] and answers == []


def test_retokenizing_also_works_with_apr_env_tokenizers_that_add_nothing_by_default():
    class AprStyle:  # apr_env.tokenizer's signature: encode(text, add_bos=False, add_eos=False)
        def encode(self, text, add_bos=False, add_eos=False):
            return [1] * add_bos + [ord(c) for c in text]

        def decode(self, ids, skip_special_tokens=False):
            return "".join(map(chr, ids))

    backend = OpenAIBackend("http://127.0.0.1:9", model="m", tokenizer=AprStyle(), retokenize_fallback=True)
    with pytest.warns(UserWarning):
        result = backend.parse_response(response({"text": "ab"}), request(), url="u")
    backend.close()
    assert result.output_ids == [97, 98]


# ---------------------------------------------------------------- vLLM's finish reasons
# vLLM (v1 engine, ``FinishReason``) documents stop, length, abort, error and repetition, and
# null in streamed chunks before the last. A fake vLLM server (httpx.MockTransport) answers each.


def _fake_vllm(finish, calls: list | None = None, ids=(5, 6)):
    def handler(req):
        if calls is not None:
            calls.append(req)
        choice = {
            "index": 0,
            "text": "x",
            "token_ids": list(ids),
            "finish_reason": finish,
            "stop_reason": None,
        }
        return httpx.Response(200, json={"choices": [choice], "usage": {"prompt_tokens": 2}})

    return _with_transport(OpenAIBackend("http://mock", model="m"), handler)


@pytest.mark.parametrize("finish", ["stop", "length", "abort", "repetition"])
def test_every_finishing_vllm_reason_becomes_the_results_finish_reason(finish):
    with _fake_vllm(finish) as backend:
        [result] = backend.generate([request()])
    assert (result.finish_reason, result.output_ids, result.matched_stop) == (finish, [5, 6], None)


def test_an_error_finish_fails_that_request_naming_it_and_is_not_retried():
    calls = []
    req = request()
    with _fake_vllm("error", calls) as backend, pytest.raises(BackendGenerationError) as info:
        backend.generate([req])
    message = str(info.value)
    assert "finish_reason 'error'" in message and req.request_id in message and "url=http://mock" in message
    assert len(calls) == 1


def test_a_null_finish_in_a_non_streamed_response_is_malformed_and_says_why():
    with _fake_vllm(None) as backend, pytest.raises(BackendResponseError, match="stream=false") as info:
        backend.generate([request()])
    assert info.value.field == "choices[0].finish_reason"


def test_an_unknown_finish_reason_lists_the_accepted_ones():
    with _fake_vllm("content_filter") as backend, pytest.raises(BackendResponseError) as info:
        backend.generate([request()])
    assert "abort|error|length|repetition|stop" in str(info.value)


def _golden_vllm(finish_for, calls: list):
    """A fake vLLM answering each prompt with the golden APR script, as ids, finishing as
    `finish_for(call_number, ids)` says: (ids, finish_reason)."""

    def handler(req):
        body = json.loads(req.content)
        calls.append(body)
        prompt = TOK.decode([i for i in body["prompt"] if i != TOK.bos_id])
        ids = [*TOK.encode(_script_for_all(prompt)), TOK.eos_id]
        out, finish = [], "length"
        for tid in ids[: body["max_tokens"]]:
            out.append(tid)
            if tid in body["stop_token_ids"]:
                finish = "stop"
                break
        out, finish = finish_for(len(calls), out, finish)
        logprobs = {"token_logprobs": [-0.5] * len(out)} if body.get("logprobs") is not None else None
        choice = {"index": 0, "text": TOK.decode(out), "token_ids": out, "finish_reason": finish}
        choice["logprobs"] = logprobs
        return httpx.Response(
            200, json={"choices": [choice], "usage": {"prompt_tokens": len(body["prompt"])}}
        )

    return _with_transport(OpenAIBackend("http://mock", model="m"), handler)


def test_a_repetition_finish_ends_the_thread_like_a_stop_without_a_stop_token():
    calls = []
    cut = lambda n, out, finish: (out[:12], "repetition") if n == 1 else (out, finish)  # noqa: E731
    with _golden_vllm(cut, calls) as backend:
        [rec] = run_episodes(
            LLMAgent(backend, TOK), [_problem(GOLDEN[0])], RunConfig(protocol="apr", record_calls=True)
        )
    [[root]] = rec["calls"]  # one thread, one call: no spawn, no continuation
    assert root["finish_reason"] == "repetition" and len(root["output_ids"]) == 12
    assert root["forced_spawns"] == 0 and rec["metrics"]["num_threads"] == 1 and len(calls) == 1
    assert rec["correct"] is False and rec["outcome"]


def test_an_error_finish_stops_the_run_and_keeps_the_episodes_already_recorded():
    calls, seen = [], []
    entry = GOLDEN[0]
    per_episode = 1 + sum(map(len, entry["trace_dict"]["sub_calls"])) + 1  # root twice, each child once
    fail = lambda n, out, finish: (out, "error") if n > per_episode else (out, finish)  # noqa: E731
    with _golden_vllm(fail, calls) as backend, pytest.raises(BackendGenerationError, match="'error'"):
        run_episodes(
            LLMAgent(backend, TOK),
            [_problem(entry)] * 2,
            RunConfig(protocol="apr", max_concurrent=1),
            on_record=seen.append,
        )
    assert [r["index"] for r in seen] == [0] and seen[0]["correct"] == entry["official_correct"]
