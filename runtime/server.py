"""`apr-env serve`: SGLang's native HTTP API (and OpenAI completions) over any `Backend`, on FastAPI + uvicorn.

So the HTTP path (`SGLangBackend`, `OpenAIBackend`, SGLang's own frontend, the `openai` client)
runs and is tested on machines without SGLang: `apr-env serve --model DIR` loads a transformers
model folder into the in-process `TransformersBackend` and serves it.

    apr-env serve --model runs/sft/checkpoint-100 --port 30000 [--api-key K] [--weights-dir runs/sft]
    curl -s localhost:30000/generate -d '{"input_ids": [1, 2, 3], "sampling_params": {"max_new_tokens": 8}}'

Routes (shapes and defaults as current SGLang serves them; request models in `runtime.server_api`):

- ``POST|PUT /generate``: ``text`` or ``input_ids`` (one prompt or a batch), ``sampling_params``,
  ``return_logprob``, ``logprob_start_len`` (prompt logprobs from that position:
  ``meta_info.input_token_logprobs``, what ``sgl.select`` ranks by), ``top_logprobs_num``,
  ``return_text_in_logprobs``, ``rid``, ``stream`` (server-sent events, ``data: {...}`` with the
  text and ids so far, then ``data: [DONE]``).
- ``POST /v1/completions``: OpenAI's completions, ``prompt`` as text or ids (or a list), ``n`` = 1,
  ``logprobs=N`` (top N per token), ``stream``; extensions ``return_token_ids``,
  ``return_tokens_as_token_ids``, ``top_k``, ``stop_token_ids``; ``matched_stop`` as SGLang.
- ``GET /health``, ``GET /health_generate`` (a 1-token generation; 503 when it fails),
  ``GET|POST /flush_cache``, ``POST /update_weights_from_disk`` (only folders under
  ``--weights-dir``), ``POST /abort_request`` ``{"rid"}``, ``GET /model_info`` (and
  ``/get_model_info``), ``GET /server_info`` (and ``/get_server_info``), ``GET /v1/models``
  (``max_model_len``). The context length is in all three info routes.

Safety: binds 127.0.0.1 unless told otherwise; with ``--api-key`` every route needs
``Authorization: Bearer KEY`` (401); bodies over ``--max-body-mb`` get 413; prompts that do not
fit the context get 400 (a prompt + ``max_new_tokens`` beyond it is cut at the context, finish
``length``); more than ``--max-running-requests`` prompts in flight get 429 with ``Retry-After``;
a client that disconnects has its generation aborted. Every client error is a 4xx with a JSON
body ``{"object": "error", "message", "type", "code"}`` (unknown route 404, wrong method 405,
invalid JSON or fields 400); a backend failure on a valid request is a 500.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from runtime.backends.base import Backend, BackendError, GenerationRequest, GenerationResult, SamplingParams
from runtime.backends.detokenize import make_decode
from runtime.serve_config import ServeConfig, add_arguments, config_from_args
from runtime.server_api import (
    CompletionReq,
    GenerateReq,
    SGLangSampling,
    UpdateWeightsReq,
    completion_body,
    completion_choice,
    generation_request,
    sglang_meta,
)

__all__ = ["RunningServer", "ServeConfig", "add_arguments", "config_from_args", "create_app", "run", "serve"]

logger = logging.getLogger(__name__)

HEALTH_GENERATE_TIMEOUT_S = 60.0
"""How long ``/health_generate`` waits for its one-token generation before answering 503."""
DISCONNECT_POLL_S = 0.05
"""How often a waiting request checks whether its client is still there."""
MAX_CHARS_PER_TOKEN = 64
"""A text prompt longer than context * this is refused before it is tokenized (no token is that long)."""


class ApiError(Exception):
    """A request refused with `status`; `message` goes back to the client in the JSON error body."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers


class _ClientGone(Exception):
    """The client disconnected while its generation ran (it was aborted; nobody reads the answer)."""


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    kind = {400: "BadRequestError", 401: "AuthenticationError", 404: "NotFound", 405: "MethodNotAllowed"}
    body = {
        "object": "error",
        "message": message,
        "type": kind.get(status, str(status)),
        "param": None,
        "code": status,
    }
    return JSONResponse(body, status_code=status, headers=headers)


_UNION_TAGS = {"str", "bool", "int", "float", "none", "dict", "list"}


def _validation_message(err: ValidationError) -> str:
    """pydantic's errors as one line: ``field.path: what is wrong (got value)``, first error per field.

    Union branches (``list[int]`` vs ``list[list[int]]``) are pydantic's internal names: they are
    dropped from the path, so each field is named as the client wrote it.
    """
    seen: dict[str, str] = {}
    for e in err.errors(include_url=False):
        loc = ".".join(
            str(x)
            for x in e["loc"]
            if not (isinstance(x, str) and ("[" in x or x.startswith("function-") or x in _UNION_TAGS))
        )
        if loc in seen:
            continue
        msg = e["msg"].removeprefix("Value error, ")
        got = (
            ""
            if e["type"] in ("missing", "value_error")
            else f" (got {json.dumps(e.get('input'), default=str)[:80]})"
        )
        seen[loc] = f"{loc or 'the body'}: {msg}{got}"
    parts = list(seen.values())
    return "; ".join(parts[:4]) + (f"; and {len(parts) - 4} more" if len(parts) > 4 else "")


class _Guard:
    """ASGI middleware: the API key on every route and the body-size limit (by Content-Length)."""

    def __init__(self, app, *, api_key: str, max_body_bytes: int):
        self.app, self.key, self.max_body = app, api_key.encode(), max_body_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            if self.key and headers.get(b"authorization") != b"Bearer " + self.key:
                return await _error(401, "missing or wrong API key: send 'Authorization: Bearer KEY'")(
                    scope, receive, send
                )
            length = headers.get(b"content-length")
            if length is not None and length.isdigit() and int(length) > self.max_body:
                message = f"request body of {int(length)} bytes is over the limit of {self.max_body}"
                return await _error(413, message)(scope, receive, send)
        await self.app(scope, receive, send)


class _Service:
    """The routes' state and logic over one backend (see the module docstring)."""

    def __init__(
        self,
        backend: Backend,
        *,
        tokenizer,
        model_name: str | None,
        weights_dir: str,
        max_running_requests: int,
        max_body_bytes: int,
    ):
        self.backend = backend
        self.tokenizer = tokenizer if tokenizer is not None else getattr(backend, "tokenizer", None)
        self.decode = make_decode(self.tokenizer) if self.tokenizer is not None else None
        self.model_path = model_name or getattr(backend, "model_path", None) or type(backend).__name__
        self.model_name = model_name or str(self.model_path)
        self.weights_dir = Path(weights_dir).resolve() if weights_dir else None
        self.max_running = max_running_requests
        self.max_body = max_body_bytes
        self.running = 0
        self.vocab_size = getattr(backend, "vocab_size", None)

    # ---- reading requests ---------------------------------------------------------------------------

    async def read(self, request: Request, model: type[BaseModel]) -> Any:
        body = bytearray()
        async for chunk in request.stream():  # chunked bodies have no Content-Length: count here
            body += chunk
            if len(body) > self.max_body:
                raise ApiError(413, f"request body is over the limit of {self.max_body} bytes")
        try:
            return model.model_validate_json(bytes(body) or b"{}")
        except ValidationError as err:
            raise ApiError(400, _validation_message(err)) from err

    def encode(self, text: str) -> list[int]:
        if self.tokenizer is None:
            raise ApiError(
                400, "text prompts need a tokenizer and this server has none; send input_ids instead"
            )
        limit = self.backend.context_length * MAX_CHARS_PER_TOKEN
        if len(text) > limit:
            raise ApiError(
                400,
                f"text of {len(text)} characters cannot fit the context of {self.backend.context_length} tokens",
            )
        return list(self.tokenizer.encode(text))

    def check_prompt(self, ids: list[int], max_new_tokens: int, where: str) -> None:
        if self.vocab_size is not None and max(ids) >= self.vocab_size:
            raise ApiError(
                400, f"{where} holds token id {max(ids)}; this model's ids are 0..{self.vocab_size - 1}"
            )
        context = self.backend.context_length
        if len(ids) > context or (len(ids) == context and max_new_tokens > 0):
            raise ApiError(
                400,
                f"{where} has {len(ids)} tokens; this server's context length is {context} "
                "(prompt plus at least one new token must fit)",
            )

    # ---- running generations ----------------------------------------------------------------------------

    def admit(self, n: int) -> None:
        if self.running + n > self.max_running:
            raise ApiError(
                429,
                f"{self.running} requests are generating (limit {self.max_running}); retry shortly",
                headers={"Retry-After": "1"},
            )
        self.running += n

    async def wait(self, request: Request, future: Future, rid: str) -> Any:
        """The future's result; when the client disconnects first, abort the generation."""
        wrapped = asyncio.wrap_future(future)
        while True:
            done, _ = await asyncio.wait({wrapped}, timeout=DISCONNECT_POLL_S)
            if done:
                return wrapped.result()
            if await request.is_disconnected():
                self.backend.abort(rid)
                future.cancel()
                raise _ClientGone

    async def run(
        self, request: Request, gen: GenerationRequest, score_from: int
    ) -> tuple[GenerationResult, Any]:
        """Generate one request (and score its prompt when `score_from` >= 0)."""
        scorer = getattr(self.backend, "score_prompt", None)
        if score_from >= 0 and scorer is None:
            raise ApiError(
                400,
                f"logprob_start_len needs prompt logprobs, which {type(self.backend).__name__} cannot compute",
            )
        futures = [self.backend.submit(gen)]
        if score_from >= 0:
            futures.append(scorer(gen.input_ids))
        results = [await self.wait(request, f, gen.request_id) for f in futures]
        return results[0], results[1] if score_from >= 0 else None

    # ---- /generate ---------------------------------------------------------------------------------------

    async def generate(self, request: Request) -> Response:
        req: GenerateReq = await self.read(request, GenerateReq)
        try:
            if req.text is not None:
                texts = req.text if isinstance(req.text, list) else [req.text]
                prompts = [self.encode(t) for t in texts]
            else:
                prompts = req.input_ids if req.is_batch else [req.input_ids]
            n = len(prompts)
            params = [p or SGLangSampling() for p in req.per_item("sampling_params", n)]
            logprob = [bool(x) for x in req.per_item("return_logprob", n)]
            starts = [-1 if x is None else x for x in req.per_item("logprob_start_len", n)]
            tops = [x or 0 for x in req.per_item("top_logprobs_num", n)]
            rids = req.per_item("rid", n)
        except ValueError as err:
            raise ApiError(400, str(err)) from err
        gens = []
        for i, (ids, p, lp, top, rid) in enumerate(zip(prompts, params, logprob, tops, rids)):
            self.check_prompt(ids, p.max_new_tokens, f"prompt {i}" if req.is_batch else "the prompt")
            rid = rid or uuid.uuid4().hex
            gens.append(generation_request(ids, p.to_sampling(), logprob=lp, top=top if lp else 0, rid=rid))
        if req.stream:
            if req.is_batch:
                raise ApiError(400, "stream=true takes a single prompt; send a batch without streaming")
            if logprob[0] and starts[0] >= 0 and getattr(self.backend, "score_prompt", None) is None:
                raise ApiError(
                    400,
                    f"logprob_start_len needs prompt logprobs, which {type(self.backend).__name__} cannot compute",
                )
            return self.stream_generate(request, gens[0], logprob[0], starts[0], req.return_text_in_logprobs)
        self.admit(n)
        try:
            pairs = await asyncio.gather(
                *[self.run(request, g, s if lp else -1) for g, s, lp in zip(gens, starts, logprob)]
            )
        finally:
            self.running -= n
        outs = [
            self.sglang_answer(g, r, scores, lp, s, req.return_text_in_logprobs)
            for g, (r, scores), lp, s in zip(gens, pairs, logprob, starts)
        ]
        return JSONResponse(outs if req.is_batch else outs[0])

    def sglang_answer(
        self, gen, result, scores, logprob: bool, start: int, with_text: bool, finished=True
    ) -> dict:
        if with_text and self.decode is None:
            raise ApiError(400, "return_text_in_logprobs needs a tokenizer and this server has none")
        meta = sglang_meta(
            result,
            rid=gen.request_id,
            return_logprob=logprob,
            with_text=with_text,
            decode=self.decode,
            input_ids=gen.input_ids,
            input_logprobs=scores,
            logprob_start_len=start,
            finished=finished,
        )
        return {"text": result.text, "output_ids": list(result.output_ids), "meta_info": meta}

    def stream_generate(self, request, gen, logprob: bool, start: int, with_text: bool) -> StreamingResponse:
        def partial(ids: list[int]) -> GenerationResult:
            text = self.decode(ids) if self.decode is not None else ""
            return GenerationResult(
                gen.request_id, list(ids), text, "abort", prompt_tokens=len(gen.input_ids)
            )

        async def events(chunks: AsyncIterator[tuple[list[int], GenerationResult | None]]):
            async for ids, final in chunks:
                if final is None:
                    if logprob:  # token logprobs arrive with the final result only
                        continue
                    out = self.sglang_answer(gen, partial(ids), None, False, -1, False, finished=False)
                else:
                    scores = None
                    if logprob and start >= 0:
                        scores = await asyncio.wrap_future(self.backend.score_prompt(gen.input_ids))
                    out = self.sglang_answer(gen, final, scores, logprob, start, with_text)
                yield b"data: " + json.dumps(out).encode() + b"\n\n"

        return self.stream(request, gen, events)

    def stream(self, request, gen: GenerationRequest, render) -> StreamingResponse:
        """Server-sent events of `gen`: `render` turns (ids so far, final result or None) into events."""
        self.admit(1)
        loop = asyncio.get_running_loop()
        tokens: asyncio.Queue[int] = asyncio.Queue()
        gen.on_token = lambda t: loop.call_soon_threadsafe(tokens.put_nowait, t)
        future = self.backend.submit(gen)
        wrapped = asyncio.wrap_future(future)

        async def chunks():
            ids: list[int] = []
            while True:
                get = asyncio.ensure_future(tokens.get())
                done, _ = await asyncio.wait({get, wrapped}, return_when=asyncio.FIRST_COMPLETED)
                if get in done:
                    ids.append(get.result())
                    yield ids, None
                    continue
                get.cancel()
                yield ids, wrapped.result()
                return

        async def body():
            try:
                async for event in render(chunks()):
                    yield event
            except BackendError as err:
                error = {"error": {"message": str(err), "type": "BackendError", "code": 500}}
                yield b"data: " + json.dumps(error).encode() + b"\n\n"
            finally:
                self.running -= 1
                if not future.done():  # the client went away mid-stream
                    self.backend.abort(gen.request_id)
                    future.cancel()
            yield b"data: [DONE]\n\n"

        return StreamingResponse(body(), media_type="text/event-stream")

    # ---- /v1/completions ----------------------------------------------------------------------------------

    async def completions(self, request: Request) -> Response:
        req: CompletionReq = await self.read(request, CompletionReq)
        prompts = [self.encode(p) if isinstance(p, str) else p for p in req.prompts()]
        sampling = req.to_sampling()
        lp = req.logprobs is not None
        gens = []
        for i, ids in enumerate(prompts):
            self.check_prompt(
                ids, sampling.max_new_tokens, f"prompt {i}" if len(prompts) > 1 else "the prompt"
            )
            gens.append(
                generation_request(ids, sampling, logprob=lp, top=req.logprobs or 0, rid=uuid.uuid4().hex)
            )
        if req.stream:
            if len(gens) > 1 or lp:
                raise ApiError(400, "stream=true takes a single prompt and no logprobs on this server")
            return self.stream_completion(request, gens[0], req)
        self.admit(len(gens))
        try:
            results = [r for r, _ in await asyncio.gather(*[self.run(request, g, -1) for g in gens])]
        finally:
            self.running -= len(gens)
        choices = [completion_choice(i, r, req, self.decode) for i, r in enumerate(results)]
        return JSONResponse(completion_body(self.model_name, choices, results))

    def stream_completion(self, request, gen: GenerationRequest, req: CompletionReq) -> StreamingResponse:
        cid, created = f"cmpl-{uuid.uuid4().hex}", int(time.time())

        def chunk(choice: dict, usage: dict | None = None) -> bytes:
            body = {"id": cid, "object": "text_completion", "created": created, "model": self.model_name}
            body["choices"] = [choice] if choice else []
            if usage is not None:
                body["usage"] = usage
            return b"data: " + json.dumps(body).encode() + b"\n\n"

        async def events(chunks):
            sent = ""
            async for ids, final in chunks:
                text = final.text if final is not None else (self.decode(ids) if self.decode else "")
                delta, sent = text[len(sent) :], text
                if final is None:
                    if delta:
                        yield chunk({"index": 0, "text": delta, "logprobs": None, "finish_reason": None})
                    continue
                choice = completion_choice(0, final, req, self.decode, text=delta)
                yield chunk(choice)
                if (req.stream_options or {}).get("include_usage"):
                    yield chunk({}, completion_body(self.model_name, [], [final])["usage"])

        return self.stream(request, gen, events)

    # ---- admin -------------------------------------------------------------------------------------------

    async def health_generate(self) -> bool:
        probe = getattr(self.tokenizer, "bos_token_id", None)
        probe = probe if isinstance(probe, int) else getattr(self.tokenizer, "bos_id", None)
        request = GenerationRequest(
            input_ids=[probe if isinstance(probe, int) else 0], sampling=SamplingParams(max_new_tokens=1)
        )
        try:
            await asyncio.wait_for(
                asyncio.wrap_future(self.backend.submit(request)), HEALTH_GENERATE_TIMEOUT_S
            )
        except Exception as err:  # any failure means "not healthy"; the reason goes to the log
            logger.warning("health_generate failed: %s", err)
            return False
        return True

    async def update_weights(self, request: Request) -> JSONResponse:
        req: UpdateWeightsReq = await self.read(request, UpdateWeightsReq)
        method = getattr(self.backend, "update_weights_from_disk", None)
        if method is None:
            message = (
                f"{type(self.backend).__name__} cannot reload weights (it has no update_weights_from_disk); "
                "restart the server on the new folder"
            )
            return JSONResponse(
                {"success": False, "message": message, "num_paused_requests": 0}, status_code=400
            )
        if self.weights_dir is None:
            message = "weight updates are off: start apr-env serve with --weights-dir DIR to allow folders under DIR"
            return JSONResponse(
                {"success": False, "message": message, "num_paused_requests": 0}, status_code=400
            )
        path = Path(req.model_path)
        resolved = (path if path.is_absolute() else self.weights_dir / path).resolve()
        if not resolved.is_relative_to(self.weights_dir):
            message = (
                f"model_path {req.model_path!r} is not under the weights folder {str(self.weights_dir)!r}"
            )
            return JSONResponse(
                {"success": False, "message": message, "num_paused_requests": 0}, status_code=400
            )
        try:
            await asyncio.to_thread(method, str(resolved))
        except Exception as err:  # report, do not crash: the old weights stay loaded
            message = f"failed to load {req.model_path!r}: {type(err).__name__}: {err}"
            return JSONResponse(
                {"success": False, "message": message, "num_paused_requests": 0}, status_code=400
            )
        self.model_path = str(resolved)
        return JSONResponse(
            {"success": True, "message": "Succeeded to update model weights.", "num_paused_requests": 0}
        )

    def model_info(self) -> dict:
        return {
            "model_path": str(self.model_path),
            "served_model_name": self.model_name,
            "tokenizer_path": str(getattr(self.tokenizer, "name_or_path", "") or self.model_path),
            "is_generation": True,
            "context_length": self.backend.context_length,
        }

    def server_info(self) -> dict:
        return {
            "model_path": str(self.model_path),
            "context_length": self.backend.context_length,
            "max_running_requests": self.max_running,
            "weights_dir": None if self.weights_dir is None else str(self.weights_dir),
            "backend": type(self.backend).__name__,
            "version": "apr-env",
            "internal_states": [{"running_requests": self.running}],
        }


def create_app(
    backend: Backend,
    *,
    tokenizer=None,
    model_name: str | None = None,
    api_key: str = "",
    weights_dir: str = "",
    max_running_requests: int = 256,
    max_body_bytes: int = 64 * 2**20,
) -> FastAPI:
    """The FastAPI application serving `backend` (see the module docstring for routes and limits)."""
    svc = _Service(
        backend,
        tokenizer=tokenizer,
        model_name=model_name,
        weights_dir=weights_dir,
        max_running_requests=max_running_requests,
        max_body_bytes=max_body_bytes,
    )
    app = FastAPI(title="apr-env serve", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.service = svc

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, err: ApiError) -> Response:
        return _error(err.status, err.message, err.headers)

    @app.exception_handler(_ClientGone)
    async def _gone(request: Request, err: _ClientGone) -> Response:
        return Response(status_code=499)  # nginx's "client closed request"; nobody reads it

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, err: StarletteHTTPException) -> Response:
        path = request.url.path
        if err.status_code == 405:
            allowed = sorted(m.strip() for m in (err.headers or {}).get("Allow", "").split(",") if m.strip())
            return _error(
                405, f"{request.method} {path} not allowed; use {' or '.join(allowed)}", err.headers
            )
        if err.status_code == 404:
            known = sorted({r.path for r in app.routes})
            return _error(404, f"no route {path!r}; known: {known}")
        return _error(err.status_code, str(err.detail))

    @app.exception_handler(Exception)
    async def _bug(request: Request, err: Exception) -> Response:
        logger.exception("error serving %s %s", request.method, request.url.path)
        return _error(500, f"{type(err).__name__}: {err}")

    @app.exception_handler(BackendError)
    async def _backend_error(request: Request, err: BackendError) -> Response:
        logger.warning("backend failure on %s: %s", request.url.path, err)
        return _error(500, f"{type(err).__name__}: {err}")

    @app.get("/health")
    async def health() -> Response:
        return Response(status_code=200)

    @app.get("/health_generate")
    async def health_generate() -> Response:
        return Response(status_code=200 if await svc.health_generate() else 503)

    @app.api_route("/generate", methods=["POST", "PUT"])
    async def generate(request: Request) -> Response:
        return await svc.generate(request)

    @app.post("/v1/completions")
    async def completions(request: Request) -> Response:
        return await svc.completions(request)

    @app.api_route("/flush_cache", methods=["GET", "POST"])
    async def flush_cache() -> Response:
        svc.backend.flush_cache()
        return PlainTextResponse("Cache flushed.\n")

    @app.post("/update_weights_from_disk")
    async def update_weights(request: Request) -> Response:
        return await svc.update_weights(request)

    @app.post("/abort_request")
    async def abort_request(request: Request) -> Response:
        body = await svc.read(request, _AbortReq)
        svc.backend.abort(body.rid)
        return Response(status_code=200)

    for path in ("/model_info", "/get_model_info"):
        app.get(path)(svc.model_info)
    for path in ("/server_info", "/get_server_info"):
        app.get(path)(svc.server_info)

    @app.get("/v1/models")
    async def models() -> dict:
        card = {
            "id": svc.model_name,
            "object": "model",
            "owned_by": "apr-env",
            "root": svc.model_name,
            "max_model_len": svc.backend.context_length,
        }
        return {"object": "list", "data": [card]}

    return _Guard(app, api_key=api_key, max_body_bytes=max_body_bytes)


class _AbortReq(BaseModel):
    rid: str


class RunningServer:
    """A server started by `serve`: ``.url``, ``.port``, ``.shutdown()``; also a context manager."""

    def __init__(self, server, thread: threading.Thread, host: str, port: int):
        self._server, self._thread = server, thread
        self.host, self.port = host, port
        self.url = f"http://{host}:{port}"

    def shutdown(self) -> None:
        """Stop accepting requests and close the socket (the backend stays open; its owner closes it)."""
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()


def serve(
    backend: Backend,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    tokenizer=None,
    model_name: str | None = None,
    api_key: str = "",
    weights_dir: str = "",
    max_running_requests: int = 256,
    max_body_bytes: int = 64 * 2**20,
) -> RunningServer:
    """Start serving `backend` with uvicorn in a background thread; return once it listens.

    Args:
        backend: Any `Backend`; `submit` and `context_length` are required; ``abort``,
            ``flush_cache``, ``score_prompt`` (prompt logprobs), ``update_weights_from_disk`` and
            ``vocab_size`` are used when present.
        host, port: Where to listen; port 0 picks a free port (read it from ``.url``).
        tokenizer: For text prompts and token strings (default: ``backend.tokenizer``).
        model_name: Name reported by the info routes and ``/v1/models``.
        api_key, weights_dir, max_running_requests, max_body_bytes: see `ServeConfig`.
    """
    import uvicorn

    app = create_app(
        backend,
        tokenizer=tokenizer,
        model_name=model_name,
        api_key=api_key,
        weights_dir=weights_dir,
        max_running_requests=max_running_requests,
        max_body_bytes=max_body_bytes,
    )
    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=1, lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"apr-env-serve:{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise OSError(f"apr-env serve could not listen on {host}:{port} (see the log above)")
        time.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()
    return RunningServer(server, thread, host, bound[1])


def load_transformers_backend(model: str) -> Backend:
    """The in-process backend for a model folder, checked first (torch loads only here)."""
    from runtime.backends.transformers_backend import TransformersBackend
    from runtime.model_files import check_model_folder

    check_model_folder(model)
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
        server = serve(
            backend,
            config.host,
            config.port,
            model_name=config.model,
            api_key=config.api_key,
            weights_dir=config.weights_dir,
            max_running_requests=config.max_running_requests,
            max_body_bytes=int(config.max_body_mb * 2**20),
        )
        print(f"apr-env serve: {config.model} at {server.url} (Ctrl-C stops)", flush=True)
        if on_ready is not None:
            on_ready(server)
        try:
            if stop is not None:
                stop.wait()
            else:
                while server._thread.is_alive():
                    server._thread.join(timeout=3600)
        except KeyboardInterrupt:
            pass
        server.shutdown()
    finally:
        backend.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m runtime.server --model DIR [--host H] [--port P] ...``."""
    import argparse

    parser = argparse.ArgumentParser(prog="apr-env serve", description=__doc__.split("\n")[0])
    add_arguments(parser)
    return run(config_from_args(parser.parse_args(argv)))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
