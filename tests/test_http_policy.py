"""The shared HTTP retry policy: backoff table, Retry-After parsing, which failures retry, typed errors.

Covers: `retry_delay` against a table of (retries done, headers, expected seconds) with the
jitter fixed and the clock fixed, garbage headers included; the jitter range; `HTTPPolicy`
argument checks; which statuses retry; `send_with_retries` over `httpx.MockTransport` (no
sockets, a fake sleep that records instead of waiting): retried then succeeded, gave up,
refused at once, Retry-After obeyed, connection and timeout errors chained `from` the cause,
round-robin per attempt; `HTTPTransport` turning a non-JSON 2xx into a `BackendResponseError`.
"""

from __future__ import annotations

import email.utils
import re

import httpx
import pytest

from runtime.backends.base import BackendError
from runtime.backends.http_errors import (
    BackendConnectionError,
    BackendResponseError,
    BackendStatusError,
    BackendTimeoutError,
    body_excerpt,
)
from runtime.backends.http_policy import (
    HTTPPolicy,
    HTTPTransport,
    is_retryable_status,
    normalize_urls,
    parse_retry_after,
    retry_delay,
    send_with_retries,
)

NOW = 1_700_000_000.0  # a fixed clock for HTTP-date Retry-After values
NO_JITTER = lambda: 0.0  # noqa: E731 - rng returning 0 removes the jitter: delays are exact
POLICY = HTTPPolicy()


def _http_date(seconds_from_now: float) -> str:
    return email.utils.formatdate(NOW + seconds_from_now, usegmt=True)


BACKOFF_TABLE = [
    # (retries done, headers, expected seconds)
    (0, {}, 0.5),
    (1, {}, 1.0),
    (2, {}, 2.0),
    (3, {}, 4.0),
    (4, {}, 8.0),
    (9, {}, 8.0),  # capped at max_delay_s
    (0, {"retry-after": "3"}, 3.0),
    (2, {"retry-after": "2.5"}, 2.5),  # the server's value wins over our schedule
    (0, {"retry-after": "60"}, 60.0),  # at the cap: still obeyed
    (0, {"retry-after": "61"}, 0.5),  # over the cap: ignored
    (1, {"retry-after": "0"}, 1.0),  # zero is not a sane wait
    (1, {"retry-after": "-4"}, 1.0),
    (0, {"retry-after-ms": "1500"}, 1.5),
    (0, {"retry-after-ms": "soon", "retry-after": "2"}, 2.0),  # bad ms header falls back to seconds
    (0, {"retry-after": _http_date(5)}, 5.0),
    (0, {"retry-after": _http_date(-30)}, 0.5),  # a date in the past
    (0, {"retry-after": _http_date(3600)}, 0.5),  # a date too far ahead
    (0, {"retry-after": "soon"}, 0.5),
    (0, {"retry-after": ""}, 0.5),
    (0, {"retry-after": "NaN"}, 0.5),
    (0, {"retry-after": "inf"}, 0.5),
    (0, {"retry-after": "1e400"}, 0.5),
    (0, {"retry-after": "Wed, 99 Foo 2000 25:61:00 GMT"}, 0.5),
    (0, {"retry-after": "3 seconds"}, 0.5),
]


@pytest.mark.parametrize(
    ("retries_done", "headers", "expected"),
    BACKOFF_TABLE,
    ids=[f"{r}-{'+'.join(f'{k}={v}' for k, v in h.items()) or 'none'}" for r, h, _ in BACKOFF_TABLE],
)
def test_retry_delay_follows_the_table(retries_done, headers, expected):
    retry_after = parse_retry_after(headers, now=NOW)
    assert retry_delay(retries_done, POLICY, retry_after=retry_after, rng=NO_JITTER) == pytest.approx(
        expected
    )


@pytest.mark.parametrize(("draw", "factor"), [(0.0, 1.0), (0.5, 0.875), (0.999999, 0.75)])
def test_jitter_removes_up_to_a_quarter_of_the_computed_delay(draw, factor):
    assert retry_delay(2, POLICY, rng=lambda: draw) == pytest.approx(2.0 * factor, rel=1e-5)


def test_jitter_never_touches_a_server_retry_after():
    assert retry_delay(0, POLICY, retry_after=3.0, rng=lambda: 0.9) == 3.0


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504, 599])
def test_transient_statuses_are_retryable(status):
    assert is_retryable_status(status)


@pytest.mark.parametrize("status", [200, 301, 400, 401, 403, 404, 413, 422, 600])
def test_other_statuses_are_not_retryable(status):
    assert not is_retryable_status(status)


def test_policy_rejects_none_retries_listing_what_is_accepted():
    with pytest.raises(
        TypeError, match=re.escape("max_retries must be an int >= 0 (e.g. 0 to disable, 2 by default)")
    ):
        HTTPPolicy(max_retries=None)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_retries": -1}, "max_retries must be >= 0, got -1"),
        ({"read_timeout_s": 0}, "read_timeout_s must be > 0 seconds, got 0"),
        ({"connect_timeout_s": -1.0}, "connect_timeout_s must be > 0 seconds, got -1.0"),
        ({"max_delay_s": -1}, "max_delay_s must be >= 0 seconds, got -1"),
        ({"jitter": 1.0}, "jitter must be in [0, 1), got 1.0"),
    ],
    ids=["negative-retries", "zero-read-timeout", "negative-connect", "negative-delay", "jitter-1"],
)
def test_policy_rejects_out_of_range_values(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        HTTPPolicy(**kwargs)


def test_policy_timeout_carries_connect_and_read_seconds():
    timeout = HTTPPolicy(connect_timeout_s=1.5, read_timeout_s=7.0).timeout()
    assert (timeout.connect, timeout.read) == (1.5, 7.0)


# ---------------------------------------------------------------- the request loop


class Script:
    """A MockTransport handler answering from a list of responses (or exceptions) in order."""

    def __init__(self, *steps):
        self.steps = list(steps)
        self.urls: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.urls.append(str(request.url))
        step = self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]
        if isinstance(step, Exception):
            raise step
        return step


def _send(script: Script, *, policy: HTTPPolicy = POLICY, url="http://a/x"):
    sleeps: list[float] = []
    with httpx.Client(transport=httpx.MockTransport(script)) as client:
        response = send_with_retries(
            client, "POST", url, json={}, policy=policy, sleep=sleeps.append, rng=NO_JITTER, now=lambda: NOW
        )
    return response, sleeps


def test_a_500_then_success_is_retried_once_after_the_first_delay():
    script = Script(httpx.Response(500, text="boom"), httpx.Response(200, json={"ok": 1}))
    response, sleeps = _send(script)
    assert response.json() == {"ok": 1}
    assert len(script.urls) == 2 and sleeps == [0.5]


def test_a_429_waits_for_the_servers_retry_after():
    script = Script(httpx.Response(429, headers={"retry-after": "7"}), httpx.Response(200, json={}))
    _, sleeps = _send(script)
    assert sleeps == [7.0]


def test_a_persistent_503_gives_up_after_two_retries_with_a_typed_error():
    script = Script(httpx.Response(503, text="overloaded"))
    with pytest.raises(BackendStatusError) as info:
        _send(script)
    err = info.value
    assert (err.status, err.attempts, err.url, err.body) == (503, 3, "http://a/x", "overloaded")
    assert len(script.urls) == 3
    assert isinstance(err, BackendError)


def test_the_backoff_sleeps_double_between_attempts():
    script = Script(httpx.Response(502))
    sleeps: list[float] = []
    policy = HTTPPolicy(max_retries=4)
    with httpx.Client(transport=httpx.MockTransport(script)) as client, pytest.raises(BackendStatusError):
        send_with_retries(client, "GET", "http://a/", policy=policy, sleep=sleeps.append, rng=NO_JITTER)
    assert sleeps == [0.5, 1.0, 2.0, 4.0] and len(script.urls) == 5


def test_a_400_fails_at_once_with_url_status_and_body():
    script = Script(httpx.Response(400, text='{"message": "input_ids too long"}'), httpx.Response(200))
    with pytest.raises(BackendStatusError, match="status=400") as info:
        _send(script)
    assert len(script.urls) == 1
    assert (
        info.value.status == 400
        and "input_ids too long" in info.value.body
        and info.value.url == "http://a/x"
    )


def test_x_should_retry_false_stops_a_retryable_status():
    script = Script(httpx.Response(503, headers={"x-should-retry": "false"}), httpx.Response(200))
    with pytest.raises(BackendStatusError):
        _send(script)
    assert len(script.urls) == 1


def test_x_should_retry_true_retries_a_4xx():
    script = Script(httpx.Response(400, headers={"x-should-retry": "true"}), httpx.Response(200, json={}))
    response, _ = _send(script)
    assert response.status_code == 200 and len(script.urls) == 2


def test_connection_errors_are_retried_then_raised_from_the_cause():
    script = Script(httpx.ConnectError("refused"))
    with pytest.raises(BackendConnectionError) as info:
        _send(script)
    assert len(script.urls) == 3 and info.value.attempts == 3 and info.value.status is None
    assert isinstance(info.value.__cause__, httpx.ConnectError)


def test_timeouts_are_retried_then_raised_as_timeout_errors():
    script = Script(httpx.ReadTimeout("slow"), httpx.ReadTimeout("slow"), httpx.ReadTimeout("slow"))
    with pytest.raises(BackendTimeoutError, match=re.escape("read 600.0s")) as info:
        _send(script)
    assert isinstance(info.value.__cause__, httpx.ReadTimeout)


def test_a_timeout_then_success_returns_the_success():
    script = Script(httpx.ConnectTimeout("slow"), httpx.Response(200, json={"n": 2}))
    response, sleeps = _send(script)
    assert response.json() == {"n": 2} and sleeps == [0.5]


def test_zero_retries_sends_once():
    script = Script(httpx.Response(500))
    with pytest.raises(BackendStatusError):
        _send(script, policy=HTTPPolicy(max_retries=0))
    assert len(script.urls) == 1


def test_a_url_function_is_asked_again_for_each_attempt():
    urls = iter(["http://a/x", "http://b/x", "http://c/x"])
    script = Script(httpx.Response(500), httpx.Response(500), httpx.Response(200, json={}))
    _send(script, url=lambda: next(urls))
    assert script.urls == ["http://a/x", "http://b/x", "http://c/x"]


def test_transport_turns_a_non_json_success_into_a_response_error_without_retrying():
    script = Script(httpx.Response(200, text="<html>proxy</html>"))
    transport = HTTPTransport("http://a", transport=httpx.MockTransport(script), sleep=lambda s: None)
    with pytest.raises(BackendResponseError, match="not valid JSON") as info:
        transport.send_json("POST", "/generate", json={})
    assert info.value.field is None and info.value.body == "<html>proxy</html>" and len(script.urls) == 1


def test_transport_round_robins_over_servers():
    script = Script(httpx.Response(200, json={}))
    transport = HTTPTransport(["http://a", "http://b/"], transport=httpx.MockTransport(script))
    for _ in range(4):
        transport.send_json("GET", "/x")
    assert script.urls == ["http://a/x", "http://b/x", "http://a/x", "http://b/x"]


@pytest.mark.parametrize(
    "bad", [[], ["localhost:30000"], ["ftp://a"], [None]], ids=["empty", "no-scheme", "ftp", "none"]
)
def test_server_urls_must_be_http(bad):
    with pytest.raises(ValueError, match="URL"):
        normalize_urls(bad)


def test_body_excerpt_cuts_long_bodies_and_says_how_much():
    assert body_excerpt("x" * 600, limit=10) == "x" * 10 + "... [590 more chars]"
    assert body_excerpt(b"\xffok") == "\ufffdok"
