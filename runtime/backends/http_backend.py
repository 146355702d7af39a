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
from runtime.backends.http_errors import BackendResponseError, body_excerpt
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
        except BackendError:
            raise
        except RuntimeError as err:  # httpx refuses to send on a closed client
            raise BackendError(
                f"{type(self).__name__}({self.urls}) was closed while the request ran"
            ) from err

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
