"""Typed errors of the HTTP backends (SGLang native, OpenAI-compatible).

Every class subclasses `runtime.backends.base.BackendError` (itself a `RuntimeError`), so a
caller that catches `BackendError` catches all of them. Each carries the URL, the HTTP status
where there was one, and an excerpt of the response body, and its message says what to check.

Which failures are retried, and how often, is `http_policy.py`'s business; these classes only
name the final outcome. Raised `from` the underlying httpx exception where there is one.
"""

from __future__ import annotations

from runtime.backends.base import BackendError, ContextLengthError

BODY_EXCERPT_CHARS = 500
"""Characters of a response body kept in an error (enough for a server's error message)."""


def body_excerpt(text: str | bytes | None, limit: int = BODY_EXCERPT_CHARS) -> str:
    """The first `limit` characters of a body, marked when cut; bytes are decoded leniently."""
    if text is None:
        return ""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    return text if len(text) <= limit else text[:limit] + f"... [{len(text) - limit} more chars]"


class HTTPBackendError(BackendError):
    """A request to an inference server failed.

    Attributes:
        url: The URL of the last attempt.
        status: The HTTP status of the last response, or None when none came back.
        body: An excerpt of the last response body ('' when none).
        attempts: How many times the request was sent.
    """

    def __init__(
        self,
        message: str,
        *,
        url: str,
        status: int | None = None,
        body: str = "",
        attempts: int = 1,
    ):
        self.url = url
        self.status = status
        self.body = body
        self.attempts = attempts
        parts = [message, f"url={url}"]
        if status is not None:
            parts.append(f"status={status}")
        parts.append(f"attempts={attempts}")
        if body:
            parts.append(f"body={body!r}")
        super().__init__("; ".join(parts))


class BackendConnectionError(HTTPBackendError):
    """The server could not be reached (refused, reset, DNS) on any attempt. Is it running at that URL?"""


class BackendTimeoutError(HTTPBackendError):
    """No response within the read timeout on any attempt (raise `read_timeout_s` for long generations)."""


class BackendStatusError(HTTPBackendError):
    """The server answered with an error status: a non-retryable 4xx at once, or 408/409/429/5xx
    still failing after the last retry. `status` and `body` say what the server objected to."""


class BackendResponseError(HTTPBackendError):
    """The server answered 2xx but the body is not what the API promises (bad JSON, missing field).

    Attributes:
        field: Dotted path of the missing or malformed field (``"meta_info.finish_reason"``), or
            None when the body is not JSON at all.
    """

    def __init__(self, message: str, *, url: str, field: str | None = None, **kwargs):
        self.field = field
        super().__init__(message, url=url, **kwargs)


class BackendGenerationError(HTTPBackendError):
    """The server answered 2xx but says generation of this request failed (vLLM's finish reason
    ``error``: a request-level internal error such as a KV-cache load failure). The request has no
    usable output; vLLM itself calls it retryable and usually turns it into a 500, which the retry
    policy resends. A failure of the backend for that request, never a finished thread."""


class BackendContextLengthError(BackendStatusError, ContextLengthError):
    """A 400 whose body says the request is longer than the server's context (vLLM's
    ``max_model_len``, SGLang's ``context length``, `apr-env serve`'s own message)."""


_LENGTH_PHRASES = (
    "context length",
    "context_length",
    "max_model_len",
    "maximum context length",
    "longer than the model",
)


def is_context_length_refusal(status: int | None, body: str) -> bool:
    """True for a 400 (or 413) whose body names the context length as the reason."""
    text = body.lower()
    return status in (400, 413) and any(phrase in text for phrase in _LENGTH_PHRASES)
