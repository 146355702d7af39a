"""A local HTTP server speaking a subset of SGLang's native API (and OpenAI completions) over any `Backend`.

So the HTTP path (`SGLangBackend`, `OpenAIBackend`) runs and is tested on machines without
SGLang: `apr-env serve --model DIR` loads a transformers model folder into the in-process
`TransformersBackend` and serves it.

    apr-env serve --model runs/sft/checkpoint-100 --port 30000
    python -m runtime.server --model runs/sft/checkpoint-100        # same, without the CLI
    curl -s localhost:30000/generate -d '{"input_ids": [1, 2, 3], "sampling_params": {"max_new_tokens": 8}}'

Routes (request and response shapes follow SGLang's; see `runtime/backends/sglang_backend.py`):

- ``POST /generate``: ``input_ids`` (a list of ints, or a list of such lists for a batch) or
  ``text`` (str or list; needs a tokenizer, encoded with its defaults as SGLang does),
  ``sampling_params`` (dict, or one per batch item) and ``return_logprob``. Answers
  ``{"text", "output_ids", "meta_info": {"id", "finish_reason": {"type", "matched"|"length"},
  "prompt_tokens", "completion_tokens", "cached_tokens", "e2e_latency"[, "output_token_logprobs":
  [[logprob, id, null], ...]]}}``, a list for a batch. Sampling defaults are SGLang's
  (temperature 1.0, max_new_tokens 128). Text always keeps special tokens and the matched stop
  (``skip_special_tokens``/``no_stop_trim``/``spaces_between_special_tokens`` are accepted and
  ignored); unknown or unsupported sampling keys are a 400, as in SGLang.
- ``POST /v1/completions``: OpenAI-compatible, ``prompt`` as text or token ids (or a list of
  them), ``n`` = 1, no streaming; ``logprobs`` gives the sampled token's logprob only;
  ``return_token_ids`` adds ``choices[i].token_ids``; ``matched_stop`` as in SGLang.
- ``GET /health``, ``GET /health_generate`` (one 1-token generation, 503 on failure),
  ``POST /flush_cache``, ``POST /update_weights_from_disk`` ``{"model_path"}`` (calls
  ``backend.update_weights_from_disk(path)``, 400 when the backend has none), ``GET
  /get_model_info``, ``GET /v1/models``.

Malformed JSON, a missing field or a bad value is a 400 with a JSON error body
(``{"object": "error", "message", "type", "code"}``); a backend failure is a 500; nothing crashes
the server. Each connection gets a thread (`ThreadingHTTPServer`) that submits to the backend
and waits, so concurrent requests reach the backend together and it batches them.

Not here: batching and KV reuse (the backend's job), streaming, auth, TLS. This module is
longer than most (~650 lines) because it holds two APIs' request parsers and response builders,
the HTTP plumbing and the command line; the parsers and builders (`sampling_from_sglang`,
`sglang_output`, `ServerApp`) could move to their own module if it grows further.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from runtime.backends.base import (
    Backend,
    BackendError,
    GenerationRequest,
    GenerationResult,
    SamplingParams,
    is_int_list,
)
from runtime.backends.detokenize import make_decode

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024 * 1024
"""Largest request body accepted (a 4096-token batch of 1000 prompts is ~30 MB of JSON)."""
HEALTH_GENERATE_TIMEOUT_S = 60.0
"""How long ``/health_generate`` waits for its one-token generation before answering 503."""

_SAMPLING_IGNORED = frozenset({"skip_special_tokens", "spaces_between_special_tokens", "no_stop_trim"})
_SAMPLING_KEYS = frozenset(
    {"max_new_tokens", "temperature", "top_p", "top_k", "stop", "stop_token_ids", "sampling_seed", "n"}
)
# OpenAI completions keys that would change the result if set to a non-default value we do not implement.
_COMPLETION_UNSUPPORTED = {
    "echo": False,
    "suffix": None,
    "best_of": 1,
    "frequency_penalty": 0,
    "presence_penalty": 0,
}


class BadRequest(ValueError):
    """A request the server refuses with HTTP 400; the message goes back to the client."""


@dataclass
class ServeConfig:
    """What `apr-env serve` needs; each field's ``doc`` is its CLI help."""

    model: str = field(default="", metadata={"doc": "transformers model folder to serve (required)"})
    host: str = field(default="127.0.0.1", metadata={"doc": "interface to listen on (0.0.0.0 for all)"})
    port: int = field(
        default=30000, metadata={"doc": "TCP port (0 picks a free one); 30000 is SGLang's default"}
    )

    def __post_init__(self) -> None:
        if not self.model:
            raise ValueError("ServeConfig.model is required: the path of a transformers model folder")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be in 0..65535, got {self.port}")


# ---------------------------------------------------------------- request parsing


def _is_ids(value: Any) -> bool:
    """A non-empty token-id list."""
    return bool(value) and is_int_list(value)


def _number(d: dict, key: str, default: float, *, integer: bool = False) -> Any:
    value = d.get(key)
    if value is None:
        return default
    ok = isinstance(value, int) if integer else isinstance(value, int | float)
    if isinstance(value, bool) or not ok or (not integer and not math.isfinite(value)):
        kind = "an integer" if integer else "a finite number"
        raise BadRequest(f"{key} must be {kind}, got {value!r}")
    return value


def _stops(value: Any, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise BadRequest(f"{key} must be a string or a list of strings, got {value!r}")


def _stop_ids(value: Any, key: str) -> tuple[int, ...]:
    if value is None or value == []:
        return ()
    if not _is_ids(value):
        raise BadRequest(f"{key} must be a list of token ids, got {value!r}")
    return tuple(value)


def _sampling(d: dict, *, max_key: str, max_default: int, seed_key: str) -> SamplingParams:
    """SamplingParams from a request's fields (SGLang and OpenAI name the length and seed differently)."""
    try:
        return SamplingParams(
            max_new_tokens=_number(d, max_key, max_default, integer=True),
            temperature=_number(d, "temperature", 1.0),
            top_p=_number(d, "top_p", 1.0),
            top_k=_number(d, "top_k", -1, integer=True),
            stop=_stops(d.get("stop"), "stop"),
            stop_token_ids=_stop_ids(d.get("stop_token_ids"), "stop_token_ids"),
            seed=_number(d, seed_key, None, integer=True),
        )
    except ValueError as err:
        raise BadRequest(str(err)) from err


def sampling_from_sglang(params: Any) -> SamplingParams:
    """SGLang's ``sampling_params`` dict -> `SamplingParams` (SGLang's defaults for missing keys)."""
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise BadRequest(f"sampling_params must be an object, got {params!r}")
    unknown = set(params) - _SAMPLING_KEYS - _SAMPLING_IGNORED
    if unknown:
        raise BadRequest(
            f"unsupported sampling_params {sorted(unknown)}; this server supports "
            f"{sorted(_SAMPLING_KEYS | _SAMPLING_IGNORED)}"
        )
    if params.get("n") not in (None, 1):
        raise BadRequest(
            f"sampling_params.n must be 1 (send the prompt several times instead), got {params['n']!r}"
        )
    return _sampling(params, max_key="max_new_tokens", max_default=128, seed_key="sampling_seed")


def _per_item(value: Any, n: int, key: str, batch: bool) -> list:
    """One value per prompt: a list must match a batch item for item; a scalar applies to all."""
    if isinstance(value, list):
        if not batch or len(value) != n:
            raise BadRequest(f"{key} is a list of {len(value)} but the request has {n} prompt(s)")
        return value
    return [value] * n


# ---------------------------------------------------------------- response building


def finish_reason_to_sglang(result: GenerationResult) -> dict:
    """`GenerationResult` -> SGLang's ``meta_info.finish_reason`` dict (schedule_batch.py FINISH_*)."""
    if result.finish_reason == "stop":
        return {"type": "stop", "matched": result.matched_stop}
    if result.finish_reason == "length":
        return {"type": "length", "length": result.completion_tokens}
    return {"type": "abort", "message": "generation aborted by the backend"}


def _logprobs_or_fail(result: GenerationResult) -> list[float]:
    if result.logprobs is None or len(result.logprobs) != len(result.output_ids):
        raise BackendError(f"backend returned no logprobs (or the wrong number) for {result.request_id}")
    return result.logprobs


def sglang_output(result: GenerationResult, return_logprob: bool) -> dict:
    """One ``/generate`` answer in SGLang's shape."""
    meta: dict[str, Any] = {
        "id": result.request_id,
        "finish_reason": finish_reason_to_sglang(result),
        "prompt_tokens": result.prompt_tokens,
        "completion_tokens": result.completion_tokens,
        "cached_tokens": result.cached_tokens,
        "e2e_latency": result.timings.get("total"),
    }
    if return_logprob:
        lps = _logprobs_or_fail(result)
        meta["output_token_logprobs"] = [[lp, tid, None] for lp, tid in zip(lps, result.output_ids)]
    return {"text": result.text, "output_ids": list(result.output_ids), "meta_info": meta}


# ---------------------------------------------------------------- the application


class ServerApp:
    """Route handlers over one backend; independent of the HTTP plumbing (tests call it directly)."""

    def __init__(self, backend: Backend, *, tokenizer=None, model_name: str | None = None):
        self.backend = backend
        self.tokenizer = tokenizer if tokenizer is not None else getattr(backend, "tokenizer", None)
        self._decode = make_decode(self.tokenizer)
        self.model_path = model_name or getattr(backend, "model_path", None) or type(backend).__name__
        self.model_name = model_name or str(self.model_path)

    def _encode(self, text: str) -> list[int]:
        if self.tokenizer is None:
            raise BadRequest("text prompts need a tokenizer and this server has none; send input_ids instead")
        return list(self.tokenizer.encode(text))

    def generate(self, body: Any) -> Any:
        if not isinstance(body, dict):
            raise BadRequest("the body must be a JSON object")
        has_ids, has_text = body.get("input_ids") is not None, body.get("text") is not None
        if has_ids == has_text:
            raise BadRequest("give exactly one of 'input_ids' or 'text'")
        if has_ids:
            ids = body["input_ids"]
            if _is_ids(ids):
                batch, prompts = False, [ids]
            elif isinstance(ids, list) and ids and all(_is_ids(x) for x in ids):
                batch, prompts = True, ids
            else:
                raise BadRequest(
                    f"input_ids must be a non-empty list of ints or a list of such lists, got {ids!r:.200}"
                )
        else:
            text = body["text"]
            if isinstance(text, str):
                batch, prompts = False, [self._encode(text)]
            elif isinstance(text, list) and text and all(isinstance(t, str) for t in text):
                batch, prompts = True, [self._encode(t) for t in text]
            else:
                raise BadRequest(f"text must be a string or a non-empty list of strings, got {text!r:.200}")
        n = len(prompts)
        params = _per_item(body.get("sampling_params"), n, "sampling_params", batch)
        logprob_flags = _per_item(body.get("return_logprob", False), n, "return_logprob", batch)
        for flag in logprob_flags:
            if flag is not None and not isinstance(flag, bool):
                raise BadRequest(f"return_logprob must be true or false, got {flag!r}")
        requests = [
            GenerationRequest(input_ids=list(p), sampling=sampling_from_sglang(sp), return_logprob=bool(lp))
            for p, sp, lp in zip(prompts, params, logprob_flags)
        ]
        outs = [sglang_output(r, bool(lp)) for r, lp in zip(self.backend.generate(requests), logprob_flags)]
        return outs if batch else outs[0]

    def completions(self, body: Any) -> dict:
        if not isinstance(body, dict):
            raise BadRequest("the body must be a JSON object")
        if "prompt" not in body:
            raise BadRequest("missing required field 'prompt' (text or a list of token ids)")
        for key, default in _COMPLETION_UNSUPPORTED.items():
            if body.get(key) not in (None, default):
                raise BadRequest(f"{key}={body[key]!r} is not supported by this server (only {default!r})")
        if body.get("n") not in (None, 1) or body.get("stream"):
            raise BadRequest("only n=1 and stream=false are supported")
        prompt = body["prompt"]
        if isinstance(prompt, str):
            prompts = [self._encode(prompt)]
        elif _is_ids(prompt):
            prompts = [prompt]
        elif isinstance(prompt, list) and prompt and all(isinstance(p, str) or _is_ids(p) for p in prompt):
            prompts = [p if isinstance(p, list) else self._encode(p) for p in prompt]
        else:
            raise BadRequest("prompt must be text, a non-empty list of token ids, or a list of either")
        logprobs = body.get("logprobs")
        if logprobs is not None and (
            isinstance(logprobs, bool) or not isinstance(logprobs, int) or logprobs < 0
        ):
            raise BadRequest(f"logprobs must be a non-negative integer or null, got {logprobs!r}")
        sampling = _sampling(body, max_key="max_tokens", max_default=16, seed_key="seed")
        requests = [
            GenerationRequest(list(p), sampling, return_logprob=logprobs is not None) for p in prompts
        ]
        results = self.backend.generate(requests)
        choices = [
            self._choice(
                i,
                r,
                logprobs is not None,
                bool(body.get("return_token_ids")),
                bool(body.get("return_tokens_as_token_ids")),
            )
            for i, r in enumerate(results)
        ]
        prompt_tokens = sum(r.prompt_tokens for r in results)
        completion_tokens = sum(r.completion_tokens for r in results)
        return {
            "id": f"cmpl-{uuid.uuid4().hex}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": self.model_name,
            "choices": choices,
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
                "prompt_tokens_details": {"cached_tokens": sum(r.cached_tokens for r in results)},
            },
        }

    def _token_str(self, token_id: int, as_ids: bool) -> str:
        if as_ids or self.tokenizer is None:
            return f"token_id:{token_id}"
        return self._decode([token_id])

    def _choice(
        self, index: int, r: GenerationResult, want_logprobs: bool, want_ids: bool, as_ids: bool
    ) -> dict:
        finish = r.finish_reason if r.finish_reason in ("stop", "length") else "abort"
        choice: dict[str, Any] = {
            "index": index,
            "text": r.text,
            "logprobs": None,
            "finish_reason": finish,
            "matched_stop": r.matched_stop if finish == "stop" else None,
        }
        if want_logprobs:
            lps = _logprobs_or_fail(r)
            tokens = [self._token_str(t, as_ids) for t in r.output_ids]
            offsets, pos = [], 0
            for token in tokens:
                offsets.append(pos)
                pos += len(token)
            choice["logprobs"] = {
                "tokens": tokens,
                "token_logprobs": lps,
                "top_logprobs": [{t: lp} for t, lp in zip(tokens, lps)],
                "text_offset": offsets,
            }
        if want_ids:
            choice["token_ids"] = list(r.output_ids)
        return choice

    def health_generate(self) -> bool:
        # Any valid id will do; a BOS (transformers' bos_token_id or apr_env's bos_id) always is.
        probe = getattr(self.tokenizer, "bos_token_id", None)
        probe = probe if isinstance(probe, int) else getattr(self.tokenizer, "bos_id", None)
        request = GenerationRequest(
            input_ids=[probe if isinstance(probe, int) else 0], sampling=SamplingParams(max_new_tokens=1)
        )
        try:
            self.backend.submit(request).result(timeout=HEALTH_GENERATE_TIMEOUT_S)
        except Exception as err:  # any failure means "not healthy"; the reason goes to the log
            logger.warning("health_generate failed: %s", err)
            return False
        return True

    def update_weights(self, body: Any) -> tuple[int, dict]:
        path = body.get("model_path") if isinstance(body, dict) else None
        if not isinstance(path, str) or not path:
            raise BadRequest("missing required field 'model_path' (a folder of weights the server can read)")
        method = getattr(self.backend, "update_weights_from_disk", None)
        if method is None:
            message = (
                f"{type(self.backend).__name__} cannot reload weights (it has no "
                "update_weights_from_disk(model_path) method); restart the server on the new folder"
            )
            return 400, {"success": False, "message": message}
        try:
            method(path)
        except Exception as err:  # report, do not crash: the old weights stay loaded
            return 400, {"success": False, "message": f"failed to load {path!r}: {err}"}
        self.model_path = path
        return 200, {
            "success": True,
            "message": "Succeeded to update model weights.",
            "num_paused_requests": 0,
        }

    def model_info(self) -> dict:
        return {
            "model_path": str(self.model_path),
            "tokenizer_path": str(getattr(self.tokenizer, "name_or_path", "") or self.model_path),
            "is_generation": True,
            "context_length": self.backend.context_length,
        }

    def models(self) -> dict:
        card = {
            "id": self.model_name,
            "object": "model",
            "owned_by": "apr-env",
            "max_model_len": self.backend.context_length,
        }
        return {"object": "list", "data": [card]}

    def flush_cache(self) -> None:
        method = getattr(self.backend, "flush_cache", None)
        if method is not None:
            method()


# ---------------------------------------------------------------- HTTP plumbing


def _error(code: int, message: str, kind: str) -> dict:
    return {"object": "error", "message": message, "type": kind, "param": None, "code": code}


class _Handler(BaseHTTPRequestHandler):
    app: ServerApp  # set on the subclass made by `serve`
    protocol_version = "HTTP/1.1"  # keep-alive, so clients reuse connections
    timeout = 120  # seconds an idle keep-alive connection may stay open

    def log_message(self, format: str, *args) -> None:
        logger.debug("%s - %s", self.address_string(), format % args)

    def _send(self, code: int, payload: Any, *, text: str | None = None) -> None:
        data = (text if text is not None else json.dumps(payload)).encode()
        try:
            self.send_response(code)
            self.send_header("Content-Type", "text/plain" if text is not None else "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client went away; nothing to tell it
            self.close_connection = True

    def _body(self) -> Any:
        length = self.headers.get("Content-Length")
        if length is None:
            if self.headers.get("Transfer-Encoding"):
                self.close_connection = True
            raise BadRequest("a request body with a Content-Length header is required")
        try:
            size = int(length)
        except ValueError as err:
            raise BadRequest(f"bad Content-Length {length!r}") from err
        if not 0 <= size <= MAX_BODY_BYTES:
            self.close_connection = True  # the body (if any) was not read: the stream is out of sync
            raise BadRequest(f"Content-Length must be in 0..{MAX_BODY_BYTES} bytes, got {size}")
        raw = self.rfile.read(size) if size else b""
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError) as err:
            raise BadRequest(f"body is not valid JSON: {err}") from err

    def _dispatch(self, method: str) -> None:
        path = self.path.split("?", 1)[0]
        app = self.app
        routes: dict[tuple[str, str], Callable[[], None]] = {
            ("GET", "/health"): lambda: self._send(200, None, text=""),
            ("GET", "/health_generate"): lambda: self._send(
                200 if app.health_generate() else 503, None, text=""
            ),
            ("GET", "/get_model_info"): lambda: self._send(200, app.model_info()),
            ("GET", "/v1/models"): lambda: self._send(200, app.models()),
            ("POST", "/generate"): lambda: self._send(200, app.generate(self._body())),
            ("POST", "/v1/completions"): lambda: self._send(200, app.completions(self._body())),
            ("POST", "/update_weights_from_disk"): lambda: self._send(*app.update_weights(self._body())),
            ("POST", "/flush_cache"): self._flush,
            ("GET", "/flush_cache"): self._flush,
        }
        handler = routes.get((method, path))
        try:
            if handler is None:
                allowed = [m for m, p in routes if p == path]
                if allowed:
                    self._send(
                        405,
                        _error(
                            405,
                            f"{method} {path} not allowed; use {' or '.join(allowed)}",
                            "MethodNotAllowed",
                        ),
                    )
                else:
                    known = sorted({p for _, p in routes})
                    self._send(404, _error(404, f"no route {path!r}; known: {known}", "NotFound"))
                return
            handler()
        except BadRequest as err:
            self._send(400, _error(400, str(err), "BadRequestError"))
        except Exception as err:  # a backend failure or a bug: answer 500, keep serving
            logger.exception("error serving %s %s", method, path)
            self._send(500, _error(500, f"{type(err).__name__}: {err}", "InternalServerError"))

    def _flush(self) -> None:
        size = self.headers.get("Content-Length", "0")
        if size.isdigit() and 0 < int(size) <= MAX_BODY_BYTES:
            self.rfile.read(int(size))  # flush takes no arguments; drain the body so keep-alive stays in sync
        self.app.flush_cache()
        self._send(200, None, text="Cache flushed.\n")

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # idle keep-alive connections must not block shutdown
    request_queue_size = 256  # listen backlog: bursts of concurrent clients must not be refused


class RunningServer:
    """A server started by `serve`: ``.url``, ``.port``, ``.shutdown()``; also a context manager."""

    def __init__(self, httpd: _Server, thread: threading.Thread, app: ServerApp):
        self._httpd, self._thread, self.app = httpd, thread, app
        self.host, self.port = httpd.server_address[0], httpd.server_address[1]
        self.url = f"http://{self.host}:{self.port}"

    def shutdown(self) -> None:
        """Stop accepting requests and close the socket (the backend stays open; its owner closes it)."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()


def serve(
    backend: Backend, host: str = "127.0.0.1", port: int = 0, *, tokenizer=None, model_name: str | None = None
) -> RunningServer:
    """Start serving `backend` in a background thread and return at once.

    Args:
        backend: Any `Backend`; only `submit` and `context_length` are required, plus optional
            ``flush_cache()`` and ``update_weights_from_disk(path)``.
        host, port: Where to listen; port 0 picks a free port (read it from ``.url``).
        tokenizer: For text prompts and logprob token strings (default: ``backend.tokenizer``).
        model_name: Name reported by ``/get_model_info`` and ``/v1/models``.
    """
    app = ServerApp(backend, tokenizer=tokenizer, model_name=model_name)
    handler = type("Handler", (_Handler,), {"app": app})
    httpd = _Server((host, port), handler)
    # poll_interval: how often serve_forever checks for shutdown (so shutdown takes <= 50 ms).
    thread = threading.Thread(
        target=httpd.serve_forever, args=(0.05,), name=f"apr-env-serve:{port}", daemon=True
    )
    thread.start()
    return RunningServer(httpd, thread, app)


# ---------------------------------------------------------------- command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add `ServeConfig`'s fields as ``--flags`` (help text from each field's doc)."""
    for f in fields(ServeConfig):
        parser.add_argument(
            f"--{f.name.replace('_', '-')}",
            type=type(f.default),
            default=f.default,
            required=f.name == "model",
            help=f.metadata["doc"],
        )


def config_from_args(args: argparse.Namespace) -> ServeConfig:
    return ServeConfig(**{f.name: getattr(args, f.name) for f in fields(ServeConfig)})


def load_transformers_backend(model: str) -> Backend:
    """The in-process backend for a model folder (imported lazily: torch loads only here)."""
    from runtime.backends.transformers_backend import TransformersBackend

    return TransformersBackend(model)


def run(
    config: ServeConfig,
    *,
    backend_factory: Callable[[str], Backend] = load_transformers_backend,
    stop: threading.Event | None = None,
    on_ready: Callable[[RunningServer], None] | None = None,
) -> int:
    """Load the model, serve until Ctrl-C (or until `stop` is set), then close everything."""
    backend = backend_factory(config.model)
    try:
        server = serve(backend, config.host, config.port, model_name=config.model)
        print(f"apr-env serve: {config.model} at {server.url} (Ctrl-C stops)", flush=True)
        if on_ready is not None:
            on_ready(server)
        try:
            if stop is not None:
                stop.wait()
            else:
                _wait_forever()
        except KeyboardInterrupt:
            pass
        server.shutdown()
    finally:
        backend.close()
    return 0


def _wait_forever() -> None:
    while True:
        time.sleep(3600)


def main(argv: list[str] | None = None) -> int:
    """``apr-env serve --model DIR [--host H] [--port P]``."""
    parser = argparse.ArgumentParser(prog="apr-env serve", description=__doc__.split("\n")[0])
    add_arguments(parser)
    return run(config_from_args(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
