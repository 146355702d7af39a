"""What the HTTP backends share: a transport with the retry policy, a pool of request threads, closing.

`SGLangBackend` and `OpenAIBackend` differ only in the route, the request body and how a
response is read; each implements `_generate_one(request) -> GenerationResult`, run on this
class's thread pool (one request per POST, so a slow request never holds back the others).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from runtime.backends.base import Backend, BackendError, GenerationRequest, GenerationResult
from runtime.backends.http_errors import (
    BackendContextLengthError,
    BackendResponseError,
    BackendStatusError,
    body_excerpt,
    is_context_length_refusal,
)
from runtime.backends.http_policy import HTTPPolicy, HTTPTransport


def response_field_error(
    route: str, data: Any, path: str, url: str, why: str = "is missing"
) -> BackendResponseError:
    """The typed error for a response whose field `path` is missing or malformed (names route and field)."""
    return BackendResponseError(
        f"{route} response field {path!r} {why}",
        url=url,
        field=path,
        body=body_excerpt(json.dumps(data, default=str)),
    )


class PooledHTTPBackend(Backend):
    """Base class: `submit` runs `_generate_one` on a bounded thread pool over one `HTTPTransport`."""

    def __init__(
        self,
        url: str | Sequence[str],
        *,
        policy: HTTPPolicy | None,
        max_concurrency: int,
        context_length: int | None,
        thread_name: str,
    ):
        if isinstance(max_concurrency, bool) or not isinstance(max_concurrency, int) or max_concurrency < 1:
            raise ValueError(f"max_concurrency must be an int >= 1, got {max_concurrency!r}")
        self.transport = HTTPTransport(url, policy=policy, max_connections=max_concurrency)
        if context_length is not None:
            self.context_length = context_length
        self._pool = ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix=thread_name)
        self._closed = False

    @property
    def urls(self) -> list[str]:
        return list(self.transport.bases)

    def submit(self, request: GenerationRequest) -> Future[GenerationResult]:
        name = type(self).__name__
        if self._closed:
            future: Future[GenerationResult] = Future()
            future.set_exception(BackendError(f"{name}({self.urls}) is closed; create a new one"))
            return future
        if request.forced_output_ids is not None:
            raise ValueError(
                f"{name} cannot teacher-force outputs (forced_output_ids); use TransformersBackend"
            )
        return self._pool.submit(self._generate_one, request)

    def _generate_one(self, request: GenerationRequest) -> GenerationResult:
        raise NotImplementedError

    def _send_json(self, method: str, path: str, **kwargs) -> tuple[Any, str]:
        """`HTTPTransport.send_json`, where a `close` during the call is a BackendError, not httpx's RuntimeError."""
        try:
            return self.transport.send_json(method, path, **kwargs)
        except BackendStatusError as err:
            if is_context_length_refusal(err.status, err.body):
                raise BackendContextLengthError(
                    f"{method} {path}: the server refused the request for length",
                    url=err.url,
                    status=err.status,
                    body=err.body,
                    attempts=err.attempts,
                ) from err
            raise
        except BackendError:
            raise
        except RuntimeError as err:  # httpx refuses to send on a closed client
            raise BackendError(
                f"{type(self).__name__}({self.urls}) was closed while the request ran"
            ) from err

    context_routes: tuple[tuple[str, str], ...] = (("/v1/models", "data.0.max_model_len"),)
    """(route, dotted field) pairs where a server states its context length, tried in order."""

    def server_context_length(self) -> int | None:
        """The context length the first server states (vLLM and SGLang: ``/v1/models``
        ``max_model_len``; SGLang also its info routes), or None when none says.
        One attempt per route, never raises: a server that cannot say is not an error here."""
        base = self.transport.bases[0]
        for route, path in self.context_routes:
            try:
                response = self.transport.client.get(base + route)
                value: Any = response.json() if response.is_success else None
                for key in path.split("."):
                    value = value[int(key)] if isinstance(value, list) else value[key]
            except Exception:  # unreachable, not JSON, no such field: ask the next route
                continue
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
        return None

    def fit_context_window(self, requested: int) -> tuple[int, str | None]:
        """`requested` clamped to the server's context length, and a warning to show when it was.

        Also sets `context_length` to what the server said, so every later check uses it.
        """
        served = self.server_context_length()
        if served is None:
            return requested, None
        self.context_length = served
        if requested <= served:
            return requested, None
        return served, (
            f"the server at {self.transport.bases[0]} serves a context of {served} tokens, less than the "
            f"requested window of {requested}: using {served} tokens per thread (pass --context-window "
            f"{served} or start the server with a longer context to silence this)"
        )

    def _all_healthy(self, path: str) -> bool:
        """True when every server answers ``GET path`` with 2xx. One attempt each, never raises."""
        for base in self.transport.bases:
            try:
                if not self.transport.client.get(base + path).is_success:
                    return False
            except Exception:  # any transport failure means "not healthy"
                return False
        return True

    def close(self) -> None:
        self._closed = True
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.transport.close()
