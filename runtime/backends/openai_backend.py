"""`OpenAIBackend`: the `Backend` interface over an OpenAI-compatible ``POST /v1/completions``.

For vLLM, SGLang's OpenAI routes, `apr-env serve`, and other servers that accept a token-id
prompt (the completions API takes ``prompt`` as a list of ints). Token ids come back exactly
where the server can say them, best source first:

1. ``choices[0].token_ids``, returned when the request sets ``return_token_ids: true``
   (vLLM's ``CompletionRequest.return_token_ids`` and SGLang's
   ``entrypoints/openai/protocol.py::CompletionRequest.return_token_ids``, both recent).
2. ``choices[0].logprobs.tokens`` spelled ``"token_id:123"``, which vLLM returns for
   ``return_tokens_as_token_ids: true`` together with ``logprobs``.
3. Only when the caller opts in (``retokenize_fallback=True``): re-encoding the returned text
   with `tokenizer`. That can differ from what was sampled at token boundaries (reference flaw
   21), so it is off by default, warns once, and is counted in `retokenized_results`.

Request extensions beyond OpenAI's own fields (``top_k``, ``stop_token_ids``,
``skip_special_tokens``, ``no_stop_trim`` (SGLang), ``include_stop_str_in_output`` (vLLM),
``return_token_ids``, ``return_tokens_as_token_ids``) are sent when ``extensions=True`` (the
default); vLLM and SGLang accept unknown fields, strict servers may not (set it False there).
``finish_reason``: every value vLLM documents (``vllm/v1/engine/__init__.py::FinishReason``) is
handled. ``stop`` and ``length`` (OpenAI's), ``abort`` (vLLM and SGLang) and ``repetition`` (vLLM's
repetition detection; the thread ends like a stop without a stop token) become the result's
`finish_reason` (see `base.FINISH_REASONS`). ``error`` (a request-level failure inside vLLM) raises
`BackendGenerationError` for that request, naming the request and server. ``null`` is only valid in
streamed chunks before the last; this backend asks ``stream: false``, so a null finish reason is a
malformed response (`BackendResponseError` naming the field). The matched stop is SGLang's
``matched_stop`` or vLLM's ``stop_reason``.

``cached_tokens`` (prompt tokens served from the server's prefix cache, reported per call in the
records' ``cached_tokens``) is read from ``usage.prompt_tokens_details.cached_tokens`` and is 0 when
the server leaves it out: vLLM reports it only when started with
``--enable-prompt-tokens-details``, SGLang only with ``--enable-cache-report``. A 0 from a server
started without the flag means "not reported", not "no cache hits".

One request per POST on a thread pool (see `sglang_backend.py` for why). Retries and timeouts:
`http_policy.py`. KV hints are ignored.
"""

from __future__ import annotations

import json
import threading
import time
import warnings
from collections.abc import Sequence
from typing import Any

from runtime.backends.base import FINISH_REASONS, GenerationRequest, GenerationResult, is_int_list
from runtime.backends.detokenize import make_decode
from runtime.backends.http_backend import PooledHTTPBackend, response_field_error
from runtime.backends.http_errors import BackendGenerationError, BackendResponseError, body_excerpt
from runtime.backends.http_policy import HTTPPolicy

_TOKEN_ID_PREFIX = "token_id:"


def build_completion_body(request: GenerationRequest, *, model: str, extensions: bool = True) -> dict:
    """The JSON body of ``POST /v1/completions`` for one request (see the module docstring)."""
    s = request.sampling
    body: dict[str, Any] = {
        "model": model,
        "prompt": list(request.input_ids),
        "max_tokens": s.max_new_tokens,
        "temperature": s.temperature,
        "top_p": s.top_p,
        "n": 1,
        "stream": False,
    }
    if s.stop:
        body["stop"] = list(s.stop)
    if s.seed is not None:
        body["seed"] = s.seed
    if request.return_logprob:
        body["logprobs"] = 0  # the sampled token's logprob only, no alternatives
    if extensions:
        if s.top_k != -1:
            body["top_k"] = s.top_k
        if s.stop_token_ids:
            body["stop_token_ids"] = list(s.stop_token_ids)
        body.update(
            skip_special_tokens=False,
            no_stop_trim=True,
            include_stop_str_in_output=True,
            return_token_ids=True,
            return_tokens_as_token_ids=True,
        )
    return body


def _bad(data: Any, path: str, url: str, why: str = "is missing") -> BackendResponseError:
    return response_field_error("/v1/completions", data, path, url, why)


def ids_from_logprob_tokens(tokens: Any) -> list[int] | None:
    """Token ids from vLLM's ``"token_id:123"`` logprob tokens, or None if any token is not spelled so."""
    if not isinstance(tokens, list):
        return None
    ids = []
    for token in tokens:
        if not isinstance(token, str) or not token.startswith(_TOKEN_ID_PREFIX):
            return None
        try:
            ids.append(int(token[len(_TOKEN_ID_PREFIX) :]))
        except ValueError:
            return None
    return ids


def _encode_plain(tokenizer, text: str) -> list[int]:
    """Ids of `text` without BOS/EOS, for transformers tokenizers and `apr_env.tokenizer` ones alike."""
    try:
        return list(tokenizer.encode(text, add_special_tokens=False))
    except TypeError:  # apr_env tokenizers take add_bos/add_eos and add nothing by default
        return list(tokenizer.encode(text))


class OpenAIBackend(PooledHTTPBackend):
    """Generate through an OpenAI-compatible completions server, token ids in and out.

    Args:
        url: Base URL(s) of the server (``"http://127.0.0.1:8000"``; ``/v1/completions`` is
            appended), round-robin when several.
        model: Model name to send; None asks ``GET /v1/models`` once and takes the first.
        tokenizer: Decodes ids to text locally (preferred over the server's text) and, with
            ``retokenize_fallback``, encodes text when the server returns no ids.
        policy: Timeouts and retries (`HTTPPolicy`).
        max_concurrency: Requests in flight at once.
        context_length: Tokens per sequence the served model accepts.
        extensions: Send the vLLM/SGLang request extensions listed in the module docstring.
        retokenize_fallback: Allow re-encoding text when the server gives no token ids.
    """

    def __init__(
        self,
        url: str | Sequence[str],
        *,
        model: str | None = None,
        tokenizer=None,
        policy: HTTPPolicy | None = None,
        max_concurrency: int = 32,
        context_length: int | None = None,
        extensions: bool = True,
        retokenize_fallback: bool = False,
    ):
        if retokenize_fallback and tokenizer is None:
            raise ValueError("retokenize_fallback=True needs a tokenizer to re-encode text; pass tokenizer=")
        super().__init__(
            url,
            policy=policy,
            max_concurrency=max_concurrency,
            context_length=context_length,
            thread_name="openai-http",
        )
        self.model = model
        self.tokenizer = tokenizer
        self._decode = make_decode(tokenizer)
        self.extensions = extensions
        self.retokenize_fallback = retokenize_fallback
        self.retokenized_results = 0
        """How many results got their ids by re-encoding text (0 when the server returns ids)."""
        self._lock = threading.Lock()

    def resolved_model(self) -> str:
        """The model name sent with requests (asks ``/v1/models`` the first time if none was given)."""
        with self._lock:
            if self.model is None:
                data, url = self._send_json("GET", "/v1/models", base=self.transport.bases[0])
                try:
                    self.model = str(data["data"][0]["id"])
                except (KeyError, IndexError, TypeError) as err:
                    raise _bad(data, "data[0].id", url, "is missing; pass model= explicitly") from err
            return self.model

    def _generate_one(self, request: GenerationRequest) -> GenerationResult:
        start = time.perf_counter()
        if request.sampling.max_new_tokens == 0:  # OpenAI servers reject max_tokens=0
            return GenerationResult(
                request.request_id, [], "", "length", prompt_tokens=len(request.input_ids)
            )
        body = build_completion_body(request, model=self.resolved_model(), extensions=self.extensions)
        data, url = self._send_json("POST", "/v1/completions", json=body)
        return self.parse_response(data, request, url=url, elapsed_s=time.perf_counter() - start)

    def parse_response(
        self, data: Any, request: GenerationRequest, *, url: str, elapsed_s: float = 0.0
    ) -> GenerationResult:
        """Turn one completions response into a `GenerationResult`.

        Raises:
            BackendResponseError: a promised field is missing or malformed (its `field` names it),
                or the server returned no token ids and ``retokenize_fallback`` is off.
        """
        choices = data.get("choices") if isinstance(data, dict) else None
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise _bad(data, "choices[0]", url)
        choice = choices[0]
        text = choice.get("text")
        if not isinstance(text, str):
            raise _bad(data, "choices[0].text", url, "is missing or not a string")
        finish = choice.get("finish_reason")
        if finish == "error":
            raise BackendGenerationError(
                f"/v1/completions: the server reports finish_reason 'error' for {request.request_id}: "
                "generation failed inside the server (vLLM: a request-level internal error, e.g. a KV "
                "load failure); the partial output is discarded. Check the server's log",
                url=url,
                body=body_excerpt(json.dumps(data, default=str)),
            )
        if finish is None:
            raise _bad(
                data,
                "choices[0].finish_reason",
                url,
                "is null: only streamed chunks before the last may omit it, and this backend asks "
                "stream=false, so the server returned an unfinished completion",
            )
        if finish not in FINISH_REASONS:
            raise _bad(
                data,
                "choices[0].finish_reason",
                url,
                f"is {finish!r}; expected one of {'|'.join(sorted(FINISH_REASONS | {'error'}))}",
            )
        logprobs_obj = choice.get("logprobs")
        if logprobs_obj is not None and not isinstance(logprobs_obj, dict):
            raise _bad(data, "choices[0].logprobs", url, "is not an object")

        exact = True
        if is_int_list(choice.get("token_ids")):
            output_ids = list(choice["token_ids"])
        elif (
            logprobs_obj is not None
            and (ids := ids_from_logprob_tokens(logprobs_obj.get("tokens"))) is not None
        ):
            output_ids = ids
        elif self.retokenize_fallback:
            output_ids = _encode_plain(self.tokenizer, text)
            exact = False
            with self._lock:
                self.retokenized_results += 1
                first = self.retokenized_results == 1
            if first:
                warnings.warn(
                    f"{url} returned no token ids; re-encoding text instead (may differ from the sampled "
                    "ids at token boundaries). Use a server that supports return_token_ids.",
                    stacklevel=2,
                )
        else:
            raise _bad(
                data,
                "choices[0].token_ids",
                url,
                "is missing (no 'token_id:N' logprob tokens either); use a server that supports "
                "return_token_ids (vLLM, SGLang) or OpenAIBackend(..., retokenize_fallback=True)",
            )

        logprobs = None
        if request.return_logprob:
            values = logprobs_obj.get("token_logprobs") if logprobs_obj is not None else None
            if not isinstance(values, list) or not all(isinstance(v, int | float) for v in values):
                raise _bad(data, "choices[0].logprobs.token_logprobs", url, "is missing or has non-numbers")
            if exact and len(values) != len(output_ids):
                raise _bad(
                    data,
                    "choices[0].logprobs.token_logprobs",
                    url,
                    f"has {len(values)} entries for {len(output_ids)} output ids",
                )
            logprobs = [float(v) for v in values]

        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        prompt_tokens = usage.get("prompt_tokens", len(request.input_ids))
        details = usage.get("prompt_tokens_details")
        cached = details.get("cached_tokens", 0) if isinstance(details, dict) else 0
        if self.tokenizer is not None and exact:
            text = self._decode(output_ids)
        matched = choice.get("matched_stop", choice.get("stop_reason"))
        return GenerationResult(
            request_id=request.request_id,
            output_ids=output_ids,
            text=text,
            finish_reason=finish,
            matched_stop=matched if finish == "stop" else None,
            logprobs=logprobs,
            prompt_tokens=prompt_tokens if isinstance(prompt_tokens, int) else len(request.input_ids),
            cached_tokens=cached if isinstance(cached, int) else 0,
            timings={"total": elapsed_s},
        )

    def health(self) -> bool:
        """True when every server answers ``GET /health`` with 2xx (vLLM and SGLang both serve it)."""
        for base in self.transport.bases:
            try:
                if not self.transport.client.get(base + "/health").is_success:
                    return False
            except Exception:  # any transport failure means "not healthy"
                return False
        return True
