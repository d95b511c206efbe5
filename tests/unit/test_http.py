"""The HTTP layer: pacing, retries, Retry-After, classification, counters, redaction."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from erpsync.connectors.errors import (
    AuthError,
    BadRequestError,
    FatalError,
    RateLimitedError,
    RecordError,
    RetriableError,
)
from erpsync.connectors.http import (
    HttpClient,
    RetryPolicy,
    SlidingWindow,
    TokenBucket,
    classify,
    parse_retry_after,
)
from erpsync.core.redact import register_basic_auth
from tests.support.clock import FakeClock


class Recorder:
    """A MockTransport handler that answers from a script and records when each request arrived."""

    def __init__(self, *replies: httpx.Response | Exception, clock: Callable[[], float] = time.monotonic) -> None:
        self.replies = list(replies)
        self.clock = clock
        self.times: list[float] = []
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.times.append(self.clock())
        self.requests.append(request)
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        if isinstance(reply, Exception):
            raise reply
        return reply


def make_client(handler: Recorder, *, sleeps: list[float] | None = None, **kwargs: object) -> HttpClient:
    def fake_sleep(seconds: float) -> None:
        if sleeps is not None:
            sleeps.append(seconds)

    options: dict[str, object] = {"retry": RetryPolicy(max_retries=3), "sleep": fake_sleep, "rng": random.Random(1)}
    options.update(kwargs)
    return HttpClient("shop", "https://shop.test", transport=httpx.MockTransport(handler), **options)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- pacing


def test_token_bucket_keeps_its_rate_over_40_calls() -> None:
    rate = 40.0
    clock = FakeClock()
    bucket = TokenBucket(rate, clock=clock.now, sleep=clock.sleep)
    stamps = []
    for _ in range(41):
        bucket.acquire()
        stamps.append(clock.now())
    # 40 intervals at 40/s: exactly one second, never faster, never slower.
    assert stamps[-1] - stamps[0] == pytest.approx(40 / rate)
    # No burst: any k consecutive calls span at least (k-1)/rate.
    for k in (2, 5, 10):
        for i in range(len(stamps) - k + 1):
            assert stamps[i + k - 1] - stamps[i] >= (k - 1) / rate - 1e-9


def test_token_bucket_banks_at_most_its_capacity_while_idle() -> None:
    clock = FakeClock()
    bucket = TokenBucket(4.0, capacity=2, clock=clock.now, sleep=clock.sleep)
    assert [bucket.acquire() for _ in range(2)] == [0.0, 0.0]  # the bank starts full
    assert bucket.acquire() == pytest.approx(0.25)
    clock.advance(60)  # a quiet minute banks two tokens, not 240
    assert [bucket.acquire() for _ in range(2)] == [0.0, 0.0]
    assert bucket.acquire() == pytest.approx(0.25)


def test_token_bucket_rate_holds_across_threads_through_the_client() -> None:
    # Real threads on the real clock: only a lower bound is asserted (a loaded machine can only make it slower).
    handler = Recorder(httpx.Response(200, json={"ok": True}))
    client = make_client(handler, limiter=TokenBucket(50.0))

    def worker() -> None:
        for _ in range(10):
            client.request("GET", "/ping")

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    times = sorted(handler.times)
    assert len(times) == 40
    assert times[-1] - times[0] >= 39 / 50.0 - 0.01
    assert client.counters.reads == 40


def test_sliding_window_never_exceeds_its_count() -> None:
    clock = FakeClock()
    window = SlidingWindow(max_calls=10, period=0.5, clock=clock.now, sleep=clock.sleep)
    stamps = []
    for _ in range(35):
        window.acquire()
        stamps.append(clock.now())
    for i, start in enumerate(stamps):
        in_window = [t for t in stamps[i:] if t < start + 0.5]
        assert len(in_window) <= 10
    # 35 calls = 3 full windows + 5: the 31st waits for the third window to pass (plus the 10 ms margin).
    assert stamps[9] == stamps[0]  # the first ten go at once
    assert stamps[-1] - stamps[0] == pytest.approx(1.5 + 3 * 0.01)


def test_token_bucket_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        TokenBucket(0)
    with pytest.raises(ValueError):
        TokenBucket(4, capacity=0.5)


# --------------------------------------------------------------------------- retries


def test_retry_after_seconds_is_honoured() -> None:
    sleeps: list[float] = []
    handler = Recorder(
        httpx.Response(429, headers={"Retry-After": "7"}, json={"error": {"name": "rate", "message": "slow down"}}),
        httpx.Response(200, json={"ok": True}),
    )
    client = make_client(handler, sleeps=sleeps)
    assert client.request("GET", "/x") == {"ok": True}
    assert sleeps and sleeps[0] >= 7.0
    assert client.counters.rate_limited == 1
    assert client.counters.retries == 1


def test_retry_after_http_date_is_honoured() -> None:
    sleeps: list[float] = []
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    handler = Recorder(httpx.Response(429, headers={"Retry-After": when}), httpx.Response(200, json={}))
    client = make_client(handler, sleeps=sleeps)
    client.request("GET", "/x")
    assert 25 <= sleeps[0] <= 31


def test_retry_after_beyond_the_ceiling_goes_up_at_once() -> None:
    sleeps: list[float] = []
    handler = Recorder(httpx.Response(429, headers={"Retry-After": "600"}))
    client = make_client(handler, sleeps=sleeps, retry=RetryPolicy(max_retries=3, max_retry_after=60))
    with pytest.raises(RateLimitedError) as info:
        client.request("GET", "/x")
    assert info.value.retry_after == 600
    assert sleeps == []
    assert len(handler.requests) == 1


def test_retries_are_bounded_with_growing_backoff() -> None:
    sleeps: list[float] = []
    handler = Recorder(httpx.Response(503, json={"error": {"name": "down", "message": "maintenance"}}))
    client = make_client(handler, sleeps=sleeps, retry=RetryPolicy(max_retries=4, backoff_base=1, backoff_max=100))
    with pytest.raises(RetriableError, match="maintenance"):
        client.request("GET", "/x")
    assert len(handler.requests) == 5
    assert len(sleeps) == 4
    # full jitter within [base*2^(n-1)/2, base*2^(n-1)]
    for attempt, delay in enumerate(sleeps, start=1):
        assert 2 ** (attempt - 1) / 2 <= delay <= 2 ** (attempt - 1)


def test_backoff_is_capped() -> None:
    policy = RetryPolicy(backoff_base=1, backoff_max=5)
    rng = random.Random(0)
    assert all(policy.backoff(10, rng) <= 5 for _ in range(100))


@pytest.mark.parametrize(
    "failure",
    [httpx.ReadTimeout("slow"), httpx.ReadError("reset by peer"), httpx.RemoteProtocolError("peer closed")],
)
def test_timeouts_and_resets_are_retried_for_idempotent_requests(failure: Exception) -> None:
    handler = Recorder(failure, httpx.Response(200, json={"n": 1}))
    client = make_client(handler)
    assert client.request("PATCH", "/products/1", json_body={"stock": 1}) == {"n": 1}
    assert len(handler.requests) == 2
    assert client.counters.writes == 2


def test_a_creating_post_is_not_repeated_after_it_may_have_arrived() -> None:
    handler = Recorder(httpx.ReadTimeout("slow"), httpx.Response(201, json={"id": "1"}))
    client = make_client(handler)
    with pytest.raises(RetriableError, match="timed out"):
        client.request("POST", "/orders", json_body={})
    assert len(handler.requests) == 1


def test_a_creating_post_is_repeated_when_it_never_left_or_was_rate_limited() -> None:
    handler = Recorder(httpx.ConnectError("refused"), httpx.Response(429), httpx.Response(201, json={"id": "9"}))
    client = make_client(handler)
    assert client.request("POST", "/orders", json_body={}) == {"id": "9"}
    assert len(handler.requests) == 3


def test_a_read_over_post_is_retried() -> None:
    handler = Recorder(httpx.Response(502), httpx.Response(200, json={"result": []}))
    client = make_client(handler)
    assert client.request("POST", "/rpc", json_body={}, kind="read") == {"result": []}
    assert client.counters.reads == 2 and client.counters.writes == 0


def test_truncated_json_is_retriable_and_retried() -> None:
    handler = Recorder(
        httpx.Response(200, content=b'{"data": [{"id": 1}, {"id"', headers={"Content-Type": "application/json"}),
        httpx.Response(200, json={"data": []}),
    )
    client = make_client(handler)
    assert client.request("GET", "/products") == {"data": []}
    assert client.counters.retries == 1


def test_fatal_errors_fail_fast() -> None:
    handler = Recorder(httpx.Response(401, json={"error": {"name": "unauthorized", "message": "bad key"}}))
    client = make_client(handler)
    with pytest.raises(AuthError, match="bad key"):
        client.request("GET", "/x")
    assert len(handler.requests) == 1


# --------------------------------------------------------------------------- classification


def _response(status: int, body: object | None = None, headers: dict[str, str] | None = None) -> httpx.Response:
    request = httpx.Request("PATCH", "https://shop.test/api/v2/products/5")
    if body is None:
        return httpx.Response(status, headers=headers, request=request)
    return httpx.Response(status, json=body, headers=headers, request=request)


@pytest.mark.parametrize(
    ("status", "record_key", "expected"),
    [
        (200, None, None),
        (201, "SKU-1", None),
        (204, None, None),
        (301, "SKU-1", FatalError),
        (307, None, FatalError),
        (400, "SKU-1", RecordError),
        (400, None, BadRequestError),
        (401, None, AuthError),
        (403, "SKU-1", AuthError),
        (404, "SKU-1", RecordError),
        (404, None, BadRequestError),
        (405, None, BadRequestError),
        (408, None, RetriableError),
        (409, "SKU-1", RecordError),
        (422, "SKU-1", RecordError),
        (429, None, RateLimitedError),
        (429, "SKU-1", RateLimitedError),
        (500, "SKU-1", RetriableError),
        (501, None, FatalError),
        (502, None, RetriableError),
        (503, None, RetriableError),
        (504, None, RetriableError),
        (418, None, FatalError),
    ],
)
def test_classification_table(status: int, record_key: str | None, expected: type[Exception] | None) -> None:
    error = classify(_response(status, {"error": {"name": "x", "message": "m"}}), system="shop", record_key=record_key)
    if expected is None:
        assert error is None
    else:
        assert type(error) is expected
        assert error is not None and error.status == status and error.system == "shop"


def test_classification_keeps_the_servers_words() -> None:
    body = {"error": {"name": "undefined_filter", "message": "No such filter `colour` defined"}}
    error = classify(_response(400, body), system="merchantpro")
    assert isinstance(error, BadRequestError)
    assert error.error_name == "undefined_filter"
    assert "No such filter `colour` defined" in str(error)
    assert str(error).startswith("merchantpro PATCH /api/v2/products/5 -> 400")


def test_a_redirected_write_is_not_taken_for_done() -> None:
    handler = Recorder(httpx.Response(301, headers={"Location": "https://www.shop.test/api/v2/products/5"}))
    client = make_client(handler)
    with pytest.raises(FatalError) as raised:
        client.request("PATCH", "/api/v2/products/5", json_body={"stock": 3}, record_key="SKU-1")
    assert "redirected to https://www.shop.test/api/v2/products/5" in str(raised.value)
    assert raised.value.status == 301 and len(handler.requests) == 1


def test_record_errors_name_the_record() -> None:
    body = {"error": {"name": "invalid", "message": "bad stock"}}
    error = classify(_response(400, body), system="s", record_key="A1")
    assert isinstance(error, RecordError) and error.key == "A1" and "A1" in str(error)


@pytest.mark.parametrize(
    ("header", "expected"),
    [("5", 5.0), ("0", 0.0), ("  12 ", 12.0), ("soon", None), (None, None), ("-3", 0.0)],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header) == expected


# --------------------------------------------------------------------------- secrets


def test_secrets_never_reach_logs_or_errors(caplog: pytest.LogCaptureFixture) -> None:
    key, secret = "key-visible-0001", "s3cr3t-Value-That-Must-Not-Leak"
    register_basic_auth(key, secret)
    token = httpx.BasicAuth(key, secret)._auth_header.split(" ", 1)[1]  # what travels in the header

    def echo(request: httpx.Request) -> httpx.Response:
        # A careless server that echoes the credentials it received into its error message.
        return httpx.Response(
            500, json={"error": {"name": "oops", "message": f"got {request.headers['Authorization']} / {secret}"}}
        )

    client = HttpClient(
        "shop",
        "https://shop.test",
        auth=(key, secret),
        transport=httpx.MockTransport(echo),
        retry=RetryPolicy(max_retries=2),
        sleep=lambda s: None,
    )
    caplog.set_level(logging.DEBUG)
    with pytest.raises(RetriableError) as info:
        client.request("GET", "/x", params={"q": secret})
    logging.getLogger("test").error("failed with %s (secret %s)", info.value, secret)
    texts = [caplog.text, str(info.value), repr(info.value), *(r.getMessage() for r in caplog.records)]
    for text in texts:
        assert secret not in text
        assert token not in text
    assert "***" in caplog.text
