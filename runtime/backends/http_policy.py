"""The one retry and timeout policy of every HTTP backend, and the request loop that applies it.

The constants below are the whole policy (after openai-python's `_constants.py`, STYLE.md §7):
a connect and a read timeout on every call; at most 2 retries; 0.5 s doubling to an 8 s cap,
minus up to 25 % jitter; a sane `Retry-After` honoured (seconds, milliseconds in
`retry-after-ms`, or an HTTP date), capped at 60 s. Only transient failures are retried:
connection errors, timeouts, and statuses 408, 409, 429 and 5xx. Any other 4xx fails at once.

`send_with_retries` is the loop: it picks the URL for each attempt (round-robin callers pass a
function, so a retry can land on another server), sleeps between attempts through an injectable
`sleep` (tests pass a fake and never wait), and turns the final failure into a typed error from
`http_errors.py`, raised `from` the httpx exception. `HTTPTransport` bundles one httpx client,
the server list and the policy for the backends, and decodes JSON bodies.

Left to the backends: building request bodies, parsing responses (a 2xx with a bad body is a
`BackendResponseError`, not retried: resending the same request to the same server would give
the same answer), and concurrency.
"""

from __future__ import annotations

import email.utils
import itertools
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import httpx

from runtime.backends.http_errors import (
    BackendConnectionError,
    BackendResponseError,
    BackendStatusError,
    BackendTimeoutError,
    HTTPBackendError,
    body_excerpt,
)

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5.0
"""Seconds to open a TCP connection; a server that is up accepts in milliseconds."""
READ_TIMEOUT_S = 600.0
"""Seconds to wait for response bytes; long generations under load legitimately take minutes."""
MAX_RETRIES = 2
"""Retries after the first attempt (so at most 3 sends)."""
INITIAL_RETRY_DELAY_S = 0.5
"""Delay before the first retry; doubles for each further retry."""
MAX_RETRY_DELAY_S = 8.0
"""Cap on the computed delay between attempts."""
MAX_RETRY_AFTER_S = 60.0
"""A server's Retry-After above this (or <= 0) is ignored in favour of our own backoff."""
JITTER_FRACTION = 0.25
"""Computed delays are multiplied by a uniform factor in (1 - this, 1], so clients do not retry in step."""

RETRYABLE_STATUSES = frozenset({408, 409, 429})
"""4xx statuses that are worth retrying: request timeout, conflict (lock contention), rate limit."""


def is_retryable_status(status: int) -> bool:
    """True for 408, 409, 429 and every 5xx: the failures that may pass on a second try."""
    return status in RETRYABLE_STATUSES or 500 <= status <= 599


@dataclass(frozen=True)
class HTTPPolicy:
    """Timeouts and retries of one HTTP backend. Defaults are the module constants."""

    connect_timeout_s: float = CONNECT_TIMEOUT_S
    """Seconds to open a connection."""
    read_timeout_s: float = READ_TIMEOUT_S
    """Seconds to wait for the response (per attempt); also used for writes and the pool."""
    max_retries: int = MAX_RETRIES
    """Retries after the first attempt; 0 disables retrying."""
    initial_delay_s: float = INITIAL_RETRY_DELAY_S
    """Delay before the first retry; doubles per retry."""
    max_delay_s: float = MAX_RETRY_DELAY_S
    """Cap on the computed delay."""
    max_retry_after_s: float = MAX_RETRY_AFTER_S
    """Largest server Retry-After we obey; larger ones fall back to the computed delay."""
    jitter: float = JITTER_FRACTION
    """Fraction of the computed delay removed at random (0 gives exact, predictable delays)."""

    def __post_init__(self) -> None:
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int):
            raise TypeError(
                f"max_retries must be an int >= 0 (e.g. 0 to disable, {MAX_RETRIES} by default), "
                f"got {self.max_retries!r}"
            )
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries}")
        for name in ("connect_timeout_s", "read_timeout_s"):
            value = getattr(self, name)
            if not value > 0:
                raise ValueError(f"{name} must be > 0 seconds, got {value!r}")
        for name in ("initial_delay_s", "max_delay_s", "max_retry_after_s"):
            value = getattr(self, name)
            if not value >= 0:
                raise ValueError(f"{name} must be >= 0 seconds, got {value!r}")
        if not 0 <= self.jitter < 1:
            raise ValueError(f"jitter must be in [0, 1), got {self.jitter!r}")

    def timeout(self) -> httpx.Timeout:
        """The httpx timeout of one attempt."""
        return httpx.Timeout(self.read_timeout_s, connect=self.connect_timeout_s)


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds the server asks us to wait, or None when it says nothing usable.

    Reads ``retry-after-ms`` (milliseconds, a non-standard header some APIs send) first, then
    ``retry-after`` as seconds or as an HTTP date (relative to `now`, default `time.time()`).
    Garbage, NaN and infinities give None; the caller decides whether the value is sane.
    """
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        seconds = _finite_float(raw_ms)
        if seconds is not None:
            return seconds / 1000.0
    raw = headers.get("retry-after")
    if raw is None:
        return None
    seconds = _finite_float(raw)
    if seconds is not None:
        return seconds
    try:
        when = email.utils.parsedate_to_datetime(raw.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:  # pragma: no cover - older Pythons returned None instead of raising
        return None
    return when.timestamp() - (time.time() if now is None else now)


def _finite_float(text: str) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if value == value and abs(value) != float("inf") else None


def retry_delay(
    retries_done: int,
    policy: HTTPPolicy,
    *,
    retry_after: float | None = None,
    rng: Callable[[], float] = random.random,
) -> float:
    """Seconds to sleep before retry number `retries_done + 1`.

    A Retry-After in (0, policy.max_retry_after_s] is obeyed as is (the server knows best);
    otherwise ``min(initial * 2**retries_done, max_delay) * (1 - jitter * rng())``.
    """
    if retry_after is not None and 0 < retry_after <= policy.max_retry_after_s:
        return retry_after
    delay = min(policy.initial_delay_s * 2.0**retries_done, policy.max_delay_s)
    return delay * (1.0 - policy.jitter * rng())


def _should_retry(response: httpx.Response) -> bool:
    # A server may override our status rules explicitly (OpenAI's convention).
    hint = response.headers.get("x-should-retry")
    if hint == "true":
        return True
    if hint == "false":
        return False
    return is_retryable_status(response.status_code)


def send_with_retries(
    client: httpx.Client,
    method: str,
    url: str | Callable[[], str],
    *,
    json: object = None,
    policy: HTTPPolicy,
    sleep: Callable[[float], None] | None = None,
    rng: Callable[[], float] = random.random,
    now: Callable[[], float] = time.time,
) -> httpx.Response:
    """Send one request under `policy`; return the first 2xx response.

    Args:
        client: The httpx client (thread-safe; backends share one across worker threads).
        method: "GET" or "POST".
        url: The URL, or a function called once per attempt (round-robin over servers).
        json: Body to send as JSON, or None.
        policy: Timeouts and retry limits.
        sleep, rng, now: Injected for tests (a fake sleep, a fixed jitter, a fixed clock); `sleep`
            defaults to `time.sleep` looked up at call time, so tests may also monkeypatch it.

    Raises:
        BackendStatusError: a non-retryable status at once, or a retryable one after the last retry.
        BackendConnectionError: the server could not be reached on any attempt.
        BackendTimeoutError: every attempt timed out.
    """
    attempts = 0
    while True:
        target = url() if callable(url) else url
        attempts += 1
        response: httpx.Response | None = None
        cause: BaseException | None = None
        try:
            response = client.request(method, target, json=json, timeout=policy.timeout())
        except httpx.TimeoutException as err:
            failure: HTTPBackendError = BackendTimeoutError(
                f"{method} timed out ({type(err).__name__}; connect {policy.connect_timeout_s}s, "
                f"read {policy.read_timeout_s}s)",
                url=target,
                attempts=attempts,
            )
            cause = err
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as err:
            raise BackendConnectionError(
                f"bad URL for {method}: {err}; expected http://host:port", url=target, attempts=attempts
            ) from err
        except httpx.TransportError as err:
            failure = BackendConnectionError(
                f"{method} could not reach the server ({type(err).__name__}: {err})",
                url=target,
                attempts=attempts,
            )
            cause = err
        else:
            if response.is_success:
                return response
            failure = BackendStatusError(
                f"{method} failed with HTTP {response.status_code}",
                url=target,
                status=response.status_code,
                body=body_excerpt(response.text),
                attempts=attempts,
            )
            if not _should_retry(response):
                raise failure
        if attempts > policy.max_retries:
            raise failure from cause
        retry_after = parse_retry_after(response.headers, now=now()) if response is not None else None
        delay = retry_delay(attempts - 1, policy, retry_after=retry_after, rng=rng)
        logger.info(
            "retrying %s %s in %.2fs (retry %d of %d): %s",
            method,
            target,
            delay,
            attempts,
            policy.max_retries,
            failure,
        )
        (sleep or time.sleep)(delay)


class HTTPTransport:
    """One or more servers of the same API behind one httpx client, with the policy applied.

    `send_json` picks the next server (round-robin, per attempt), sends, retries under the policy,
    and decodes the JSON body; a 2xx whose body is not JSON raises `BackendResponseError`.
    `each_base` lists every server, for calls that must reach all of them (flush, weight update).
    Thread-safe: backends call it from many worker threads.
    """

    def __init__(
        self,
        urls: str | Sequence[str],
        *,
        policy: HTTPPolicy | None = None,
        max_connections: int = 64,
        sleep: Callable[[float], None] | None = None,
        rng: Callable[[], float] = random.random,
        transport: httpx.BaseTransport | None = None,
    ):
        self.bases = normalize_urls(urls)
        self.policy = policy if policy is not None else HTTPPolicy()
        self._sleep = sleep
        self._rng = rng
        self._cycle = itertools.cycle(self.bases)
        self._lock = threading.Lock()
        self.client = httpx.Client(
            timeout=self.policy.timeout(),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            transport=transport,  # tests pass httpx.MockTransport; None means real sockets
        )

    def next_base(self) -> str:
        """The next server in round-robin order."""
        with self._lock:
            return next(self._cycle)

    def send(self, method: str, path: str, *, json: object = None, base: str | None = None) -> httpx.Response:
        """Send to `base + path` (or to the next server per attempt) under the policy."""
        url: str | Callable[[], str] = base + path if base is not None else (lambda: self.next_base() + path)
        return send_with_retries(
            self.client, method, url, json=json, policy=self.policy, sleep=self._sleep, rng=self._rng
        )

    def send_json(self, method: str, path: str, *, json: object = None, base: str | None = None):
        """Like `send`, then decode the body. Returns (decoded JSON, URL that answered)."""
        response = self.send(method, path, json=json, base=base)
        try:
            return response.json(), str(response.request.url)
        except ValueError as err:  # json.JSONDecodeError and UnicodeDecodeError both subclass it
            raise BackendResponseError(
                f"{method} {path}: response is not valid JSON ({err})",
                url=str(response.request.url),
                status=response.status_code,
                body=body_excerpt(response.text),
            ) from err

    def close(self) -> None:
        self.client.close()


def normalize_urls(urls: str | Sequence[str]) -> list[str]:
    """Base URLs without a trailing slash; each must start with http:// or https://."""
    items = [urls] if isinstance(urls, str) else list(urls)
    if not items:
        raise ValueError("need at least one server URL, e.g. 'http://127.0.0.1:30000'; got an empty list")
    out = []
    for item in items:
        if not isinstance(item, str) or not item.startswith(("http://", "https://")):
            raise ValueError(f"server URL must start with http:// or https://, got {item!r}")
        out.append(item.rstrip("/"))
    return out
