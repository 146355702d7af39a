"""`SGLangBackend`: the `Backend` interface over SGLang's native HTTP API (`POST /generate`).

Token ids go end to end: prompts are sent as ``input_ids`` and the sampled ids are read back
from the response's ``output_ids`` (or, on servers that do not return them, from the
``(logprob, token_id, text)`` entries of ``meta_info.output_token_logprobs``). Text is only a
convenience: decoded locally with `tokenizer` when one is given, otherwise the server's.

Wire format, as read in SGLang's source and docs (docs/basic_usage/sampling_params.md,
``io_struct.py::GenerateReqInput``, ``sampling/sampling_params.py::SamplingParams``,
``tokenizer_manager.py``, ``schedule_batch.py`` FINISH_* classes, ``entrypoints/http_server.py``):

- request: ``{"input_ids": [...], "sampling_params": {...}, "return_logprob": bool}``;
  ``sampling_params`` keys used here: ``max_new_tokens``, ``temperature`` (0 = greedy; SGLang
  turns it into top_k=1), ``top_p``, ``top_k`` (-1 = whole vocabulary), ``stop``,
  ``stop_token_ids``, ``sampling_seed`` (only sent when a seed is set: older servers reject the
  key), ``skip_special_tokens=False`` and ``no_stop_trim=True`` so the server's text keeps stop
  tokens and stop strings, as `GenerationResult.text` promises. ``logprob_start_len`` is left
  at its default (-1: logprobs of output tokens only, no prompt recompute).
- response (one request per POST, so a dict, not a list): ``text``, ``output_ids`` (the raw
  sampled ids; SGLang trims stop tokens only from the *text*), and ``meta_info`` with
  ``prompt_tokens``, ``completion_tokens``, ``cached_tokens`` (prefix-cache hits),
  ``finish_reason`` = ``{"type": "stop", "matched": id_or_str}`` | ``{"type": "length",
  "length": n}`` | ``{"type": "abort", "message": ...}``, and with ``return_logprob``
  ``output_token_logprobs`` = ``[[logprob, token_id, text_or_null], ...]``.
- other routes: ``GET /health`` (server up), ``GET /health_generate`` (runs a 1-token
  generation), ``POST /flush_cache``, ``POST /update_weights_from_disk`` with
  ``{"model_path": ...}`` -> ``{"success", "message", ...}`` (400 on failure),
  ``GET /get_model_info`` -> ``{"model_path", "is_generation", ...}``.

Stops: SGLang also ends a sequence on the model's own EOS ids (generation_config and
tokenizer) that are not in ``stop_token_ids`` (``schedule_batch.py::Req._check_token_based_finish``);
its ``ignore_eos`` would switch off ``stop_token_ids`` too, so it is not sent. Put the EOS id in
``stop_token_ids`` to get the same stops from every backend (the in-process one stops only on
the ids it is given).

One request per POST on a thread pool, not one POST per batch: SGLang answers a batched POST
only when its slowest member finishes, which would stall the runner's continuous batching
(the tree advances as each result arrives); the server batches concurrent requests itself.

Not here: retries and timeouts (`http_policy.py`), error classes (`http_errors.py`), launching
a server (`runtime/launch_sglang.py`). KV hints (`cache_key`, `fork_from`) are ignored: SGLang's
radix cache finds shared prefixes on its own (see `GenerationResult.cached_tokens`).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Sequence
from typing import Any

from runtime.backends.base import (
    BackendError,
    GenerationRequest,
    GenerationResult,
    is_int_list,
)
from runtime.backends.detokenize import make_decode
from runtime.backends.http_backend import PooledHTTPBackend, response_field_error
from runtime.backends.http_errors import BackendResponseError, body_excerpt
from runtime.backends.http_policy import HTTPPolicy

logger = logging.getLogger(__name__)


def build_generate_body(
    request: GenerationRequest, *, always_return_logprob: bool = False, rid: str | None = None
) -> dict:
    """The JSON body of ``POST /generate`` for one request (see the module docstring); `rid` names
    the request on the server, so that ``/abort_request`` can stop it."""
    s = request.sampling
    params: dict[str, Any] = {
        "max_new_tokens": s.max_new_tokens,
        "temperature": s.temperature,
        "top_p": s.top_p,
        "top_k": s.top_k,
        # Keep what the model emitted in the text: special tokens and the matched stop.
        "skip_special_tokens": False,
        "no_stop_trim": True,
    }
    if s.stop:
        params["stop"] = list(s.stop)
    if s.stop_token_ids:
        params["stop_token_ids"] = list(s.stop_token_ids)
    if s.seed is not None:
        params["sampling_seed"] = s.seed
    body = {
        "input_ids": list(request.input_ids),
        "sampling_params": params,
        "return_logprob": bool(request.return_logprob or always_return_logprob),
    }
    if rid is not None:
        body["rid"] = rid
    return body


def _missing(data: Any, path: str, url: str, why: str = "is missing") -> BackendResponseError:
    return response_field_error("SGLang /generate", data, path, url, why)


SGLANG_FINISH_TYPES = frozenset({"stop", "length", "abort"})
"""The ``type`` values of SGLang's finish reason (``schedule_batch.py``: FINISH_MATCHED_TOKEN/STR
-> stop, FINISH_LENGTH -> length, FINISH_ABORT -> abort); a subset of `FINISH_REASONS`."""


def parse_finish_reason(finish: Any, data: Any, url: str) -> tuple[str, int | str | None]:
    """SGLang's ``meta_info.finish_reason`` dict -> (finish_reason, matched_stop)."""
    if not isinstance(finish, dict) or finish.get("type") not in SGLANG_FINISH_TYPES:
        raise _missing(
            data, "meta_info.finish_reason", url, f"is {finish!r}; expected type stop|length|abort"
        )
    matched = finish.get("matched") if finish["type"] == "stop" else None
    return finish["type"], matched


def parse_generate_response(
    data: Any, request: GenerationRequest, *, url: str, tokenizer=None, elapsed_s: float = 0.0
) -> GenerationResult:
    """Turn one ``/generate`` response into a `GenerationResult`.

    Raises:
        BackendResponseError: a field the API promises is missing or has the wrong type; its
            `field` names it (e.g. ``"meta_info.finish_reason"``).
    """
    if not isinstance(data, dict):
        raise _missing(data, "<root>", url, f"is a {type(data).__name__}; expected an object")
    meta = data.get("meta_info")
    if not isinstance(meta, dict):
        raise _missing(data, "meta_info", url)
    if "finish_reason" not in meta:
        raise _missing(data, "meta_info.finish_reason", url)
    finish_reason, matched = parse_finish_reason(meta["finish_reason"], data, url)
    prompt_tokens = meta.get("prompt_tokens")
    if not isinstance(prompt_tokens, int):
        raise _missing(data, "meta_info.prompt_tokens", url, "is missing or not an int")

    entries = meta.get("output_token_logprobs")
    if entries is not None and not (
        isinstance(entries, list) and all(isinstance(e, list | tuple) and len(e) >= 2 for e in entries)
    ):
        raise _missing(data, "meta_info.output_token_logprobs", url, "is not a list of [logprob, id, text]")
    if "output_ids" in data:
        output_ids = data["output_ids"]
        if not is_int_list(output_ids):
            raise _missing(data, "output_ids", url, "is not a list of ints")
    elif entries is not None:
        output_ids = [e[1] for e in entries]
        if not is_int_list(output_ids):
            raise _missing(data, "meta_info.output_token_logprobs", url, "has non-int token ids")
    else:
        raise _missing(
            data,
            "output_ids",
            url,
            "is missing and there are no output_token_logprobs to read ids from; use an SGLang that "
            "returns output_ids or SGLangBackend(..., always_return_logprob=True)",
        )

    logprobs = None
    if request.return_logprob:
        if entries is None:
            raise _missing(data, "meta_info.output_token_logprobs", url)
        if len(entries) != len(output_ids):
            raise _missing(
                data,
                "meta_info.output_token_logprobs",
                url,
                f"has {len(entries)} entries for {len(output_ids)} output ids",
            )
        logprobs = [float(e[0]) for e in entries]

    if tokenizer is not None:
        text = make_decode(tokenizer)(output_ids)  # as every backend decodes: specials kept, no clean-up
    elif isinstance(data.get("text"), str):
        text = data["text"]
    else:
        raise _missing(data, "text", url, "is missing (pass a tokenizer to decode output_ids locally)")

    cached = meta.get("cached_tokens", 0)
    return GenerationResult(
        request_id=request.request_id,
        output_ids=list(output_ids),
        text=text,
        finish_reason=finish_reason,
        matched_stop=matched,
        logprobs=logprobs,
        prompt_tokens=prompt_tokens,
        cached_tokens=cached if isinstance(cached, int) else 0,
        timings={"total": elapsed_s},
    )


class SGLangBackend(PooledHTTPBackend):
    """Generate with one or more SGLang servers through the native ``/generate`` route.

    Args:
        url: A server's base URL (``"http://127.0.0.1:30000"``) or a list of them, used
            round-robin per attempt (a retry may go to another server).
        tokenizer: Optional; when given, result text is ``tokenizer.decode(output_ids,
            skip_special_tokens=False)`` instead of the server's text.
        policy: Timeouts and retries (`HTTPPolicy`; default: the module constants).
        max_concurrency: Requests in flight at once (worker threads and pooled connections).
        context_length: Tokens per sequence the served model accepts (the runner reads it).
        always_return_logprob: Ask for logprobs on every request, so token ids can be read from
            them on SGLang versions whose response has no ``output_ids``.

    Example::

        with SGLangBackend("http://127.0.0.1:30000") as backend:
            [result] = backend.generate([GenerationRequest(input_ids=[1, 2, 3])])
    """

    def __init__(
        self,
        url: str | Sequence[str],
        *,
        tokenizer=None,
        policy: HTTPPolicy | None = None,
        max_concurrency: int = 32,
        context_length: int | None = None,
        always_return_logprob: bool = False,
    ):
        super().__init__(
            url,
            policy=policy,
            max_concurrency=max_concurrency,
            context_length=context_length,
            thread_name="sglang-http",
        )
        self.tokenizer = tokenizer
        self.always_return_logprob = always_return_logprob
        self._rid_prefix = uuid.uuid4().hex[:12]

    context_routes = (
        ("/v1/models", "data.0.max_model_len"),
        ("/server_info", "context_length"),
        ("/model_info", "context_length"),
        ("/get_model_info", "context_length"),
    )

    def _generate_one(self, request: GenerationRequest) -> GenerationResult:
        body = build_generate_body(
            request, always_return_logprob=self.always_return_logprob, rid=self._rid(request.request_id)
        )
        start = time.perf_counter()
        data, url = self._send_json("POST", "/generate", json=body)
        return parse_generate_response(
            data, request, url=url, tokenizer=self.tokenizer, elapsed_s=time.perf_counter() - start
        )

    def health(self, *, generate: bool = False) -> bool:
        """True when every server answers ``/health`` (or ``/health_generate``, which runs a
        one-token generation) with 2xx. One attempt per server, no retries, never raises."""
        return self._all_healthy("/health_generate" if generate else "/health")

    def _rid(self, request_id: str) -> str:
        """The server-side id of a request: unique across clients (request ids count per process)."""
        return f"{self._rid_prefix}-{request_id}"

    def abort(self, request_id: str) -> None:
        """Ask every server to stop generating `request_id` (``POST /abort_request {"rid"}``).

        Best effort, as SGLang's own abort: the request's ``/generate`` call then returns what was
        generated so far (finish ``abort``), or its full output if it had already ended. A server
        that cannot be reached is skipped (the request's own call reports that failure).
        """
        for base in self.transport.bases:
            try:
                self.transport.send("POST", "/abort_request", json={"rid": self._rid(request_id)}, base=base)
            except BackendError as err:
                logger.debug("abort_request %s on %s failed: %s", request_id, base, err)

    def flush_cache(self) -> None:
        """Empty every server's prefix (radix) cache. SGLang skips it while requests are running."""
        for base in self.transport.bases:
            self.transport.send("POST", "/flush_cache", base=base)

    def update_weights_from_disk(self, model_path: str) -> list[dict]:
        """Load new weights from `model_path` (a folder the *server* can read) on every server.

        Returns each server's answer (``{"success": True, "message": ...}``). A refusal comes back
        as HTTP 400 and raises `BackendStatusError` whose body holds SGLang's message.
        """
        answers = []
        for base in self.transport.bases:
            data, url = self.transport.send_json(
                "POST", "/update_weights_from_disk", json={"model_path": model_path}, base=base
            )
            if not isinstance(data, dict) or data.get("success") is not True:
                raise BackendResponseError(
                    f"update_weights_from_disk({model_path!r}) was not confirmed",
                    url=url,
                    field="success",
                    body=body_excerpt(json.dumps(data, default=str)),
                )
            answers.append(data)
        return answers

    def get_model_info(self) -> dict:
        """The first server's ``/get_model_info`` (``model_path``, ``is_generation``, ...)."""
        data, url = self.transport.send_json("GET", "/get_model_info", base=self.transport.bases[0])
        if not isinstance(data, dict):
            raise BackendResponseError(
                "/get_model_info did not return an object", url=url, body=body_excerpt(str(data))
            )
        return data
