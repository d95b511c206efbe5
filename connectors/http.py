"""The one HTTP layer every connector goes through.

It owns, in one place: timeouts, pacing (a rate limiter per credential, shared by every client that uses the
credential in this process), bounded retries with exponential backoff and full jitter that honour
``Retry-After``, the classification of replies into the error tree of ``connectors.errors``, counters of reads
and writes, and redaction of secrets from what it logs and raises.

Retries are safe by construction: a request is retried after it may have reached the server only when it is
idempotent (GET, PATCH, PUT, DELETE, or a read over POST such as JSON-RPC ``search_read``). A POST that creates
something is retried only when the server provably did not process it (connection refused, 429); otherwise the
``RetriableError`` goes up to the caller, who knows how to look the record up before trying again.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

import httpx

from erpsync.connectors.errors import (
    AuthError,
    BadRequestError,
    ConnectorError,
    FatalError,
    RateLimitedError,
    RetriableError,
    record_error,
)

log = logging.getLogger("erpsync.http")

Kind = Literal["read", "write"]
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"})


# --------------------------------------------------------------------------- pacing


class RateLimiter(Protocol):
    """Blocks until one more call may be made; returns the seconds it waited."""

    def acquire(self) -> float: ...


class TokenBucket:
    """A token bucket: ``rate`` tokens per second, at most ``capacity`` banked.

    With the default capacity of 1 calls are spaced at least ``1/rate`` apart, so no burst ever exceeds the
    rate. Waiting callers reserve their slot under the lock and sleep outside it, so threads are served in
    arrival order and the rate holds for the process as a whole.
    """

    def __init__(
        self,
        rate: float,
        capacity: float = 1.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be > 0")
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.rate = rate
        self.capacity = capacity
        self._clock = clock
        self._sleep = sleep
        self._tokens = capacity
        self._stamp = clock()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        with self._lock:
            now = self._clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            self._tokens -= 1
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)
        return wait


class SlidingWindow:
    """At most ``max_calls`` calls in any window of ``period`` seconds (for APIs that lock a token when exceeded)."""

    def __init__(
        self,
        max_calls: int,
        period: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if max_calls < 1 or period <= 0:
            raise ValueError("max_calls must be >= 1 and period > 0")
        self.max_calls = max_calls
        self.period = period
        self._clock = clock
        self._sleep = sleep
        self._calls: deque[float] = deque()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        with self._lock:
            now = self._clock()
            while self._calls and self._calls[0] <= now - self.period:
                self._calls.popleft()
            if len(self._calls) < self.max_calls:
                slot = now
            else:
                # The oldest call of the last full window leaves it at oldest + period; a small margin keeps
                # us strictly inside the server's count whatever its rounding.
                slot = max(now, self._calls[-self.max_calls] + self.period + 0.01)
            self._calls.append(slot)
        wait = slot - now
        if wait > 0:
            self._sleep(wait)
        return wait


class ChainedLimiter:
    """This process's own pace, then a pace shared with other processes (``set_cross_process_limits``).

    ``finish()`` (the reply is in) reaches every part that wants it, e.g. a reply-anchored window.
    """

    def __init__(self, local: RateLimiter, shared: RateLimiter) -> None:
        self.local = local
        self.shared = shared

    def acquire(self) -> float:
        return self.local.acquire() + self.shared.acquire()

    def finish(self) -> None:
        for part in (self.local, self.shared):
            finish = getattr(part, "finish", None)
            if finish is not None:
                finish()


CrossProcessLimits = Callable[[str], "RateLimiter | None"]
_limiters: dict[str, RateLimiter] = {}
_limiters_lock = threading.Lock()
_cross_process: CrossProcessLimits | None = None


def set_cross_process_limits(provider: CrossProcessLimits | None) -> None:
    """Install what gives a credential's limiter a pace shared across processes (or None: this process only).

    ``provider(key)`` returns the shared limiter for a ``credential_key`` or None. The run-time layer installs
    it (``erpsync/runtime/ratelimit.py``: Prefect global concurrency limits); connectors never know about it.
    Limiters created before it was installed keep their process-only pace.
    """
    global _cross_process
    with _limiters_lock:
        _cross_process = provider


def credential_key(system: str, *parts: str) -> str:
    """A fingerprint of a credential (never the credential itself) to key shared limiters."""
    digest = hashlib.sha256("\x00".join((system, *parts)).encode()).hexdigest()[:16]
    return f"{system}:{digest}"


def shared_limiter(key: str, factory: Callable[[], RateLimiter]) -> RateLimiter:
    """The process-wide limiter for ``key``, created by ``factory`` on first use (chained with the pace shared
    across processes when ``set_cross_process_limits`` gives one for the key)."""
    with _limiters_lock:
        limiter = _limiters.get(key)
        if limiter is None:
            limiter = factory()
            shared = _cross_process(key) if _cross_process is not None else None
            if shared is not None:
                limiter = ChainedLimiter(limiter, shared)
            _limiters[key] = limiter
        return limiter


def reset_shared_limiters() -> None:
    """Forget every shared limiter (tests)."""
    with _limiters_lock:
        _limiters.clear()


# --------------------------------------------------------------------------- retries and counters


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries: exponential backoff with full jitter, capped; Retry-After honoured up to a ceiling."""

    max_retries: int = 5
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    max_retry_after: float = 120.0

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based): uniform in [base*2^(n-1)/2, base*2^(n-1)]."""
        ceiling = min(self.backoff_max, self.backoff_base * (2 ** (attempt - 1)))
        return rng.uniform(ceiling / 2, ceiling)


@dataclass
class Counters:
    """Requests sent (every attempt counts: each one spends the API's budget), by kind, plus retries."""

    reads: int = 0
    writes: int = 0
    retries: int = 0
    rate_limited: int = 0
    waited_seconds: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def count(self, kind: Kind) -> None:
        with self._lock:
            if kind == "read":
                self.reads += 1
            else:
                self.writes += 1

    def add(self, *, retries: int = 0, rate_limited: int = 0, waited: float = 0.0) -> None:
        with self._lock:
            self.retries += retries
            self.rate_limited += rate_limited
            self.waited_seconds += waited

    def as_dict(self) -> dict[str, float]:
        with self._lock:
            return {
                "reads": self.reads,
                "writes": self.writes,
                "retries": self.retries,
                "rate_limited": self.rate_limited,
                "waited_seconds": round(self.waited_seconds, 3),
            }


# --------------------------------------------------------------------------- classification


def error_message(response: httpx.Response) -> tuple[str, str | None]:
    """The server's own words about an error: ``(message, error name)``, from the usual JSON shapes."""
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip().replace("\n", " ")
        return (text[:200] or response.reason_phrase or f"HTTP {response.status_code}"), None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            name = error.get("name") or error.get("code")
            message = error.get("message") or name or json.dumps(error)[:200]
            return str(message), (str(name) if name else None)
        for key in ("errorText", "message", "detail", "error"):
            value = body.get(key)
            if value:
                return str(value)[:500], None
    return json.dumps(body)[:200], None


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


RECORD_STATUSES = frozenset({400, 404, 409, 422})


def classify(response: httpx.Response, *, system: str, record_key: str | None = None) -> ConnectorError | None:
    """Turn a reply into ``None`` (success) or the error it means.

    ====================  =========================================================
    2xx                   success
    3xx                   FatalError: redirects are not followed, so a write would
                          look done without having happened; configure the target
    401, 403              AuthError (fatal)
    408, 425, 429         RateLimitedError for 429, else RetriableError
    5xx (not 501)         RetriableError
    400/404/409/422       RecordError when the request is about one record (``record_key``),
                          else BadRequestError (fatal: a bug or a configuration problem)
    405                   BadRequestError
    anything else         FatalError
    ====================  =========================================================
    """
    status = response.status_code
    if status < 300:
        return None
    request = response.request
    if status < 400:
        where = response.headers.get("Location") or "?"
        return FatalError(
            system,
            f"redirected to {where}: set the configured URL to the address it points to",
            status=status,
            method=request.method,
            path=request.url.raw_path.decode(errors="replace"),
        )
    message, name = error_message(response)
    common: dict[str, Any] = {
        "status": status,
        "method": request.method,
        "path": request.url.raw_path.decode(errors="replace"),
        "error_name": name,
    }
    if status in (401, 403):
        return AuthError(system, f"authentication refused: {message}", **common)
    if status == 429:
        error = RateLimitedError(system, f"rate limited: {message}", **common)
        error.retry_after = parse_retry_after(response.headers.get("Retry-After"))
        return error
    if status in (408, 425) or (status >= 500 and status != 501):
        return RetriableError(system, message, **common)
    if status in RECORD_STATUSES and record_key is not None:
        return record_error(system, record_key, message, **common)
    if status in RECORD_STATUSES or status == 405:
        return BadRequestError(system, message, **common)
    return FatalError(system, message, **common)


Classifier = Callable[..., ConnectorError | None]


# --------------------------------------------------------------------------- the client


class HttpClient:
    """An httpx client with pacing, bounded retries, classification, counters and redaction.

    ``transport`` is the test seam: ``httpx.MockTransport`` or ``connectors.asgi.SyncASGITransport`` over a
    simulator plug in here, exactly where the network would be.
    """

    def __init__(
        self,
        system: str,
        base_url: str,
        *,
        auth: httpx.Auth | tuple[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        limiter: RateLimiter | None = None,
        retry: RetryPolicy | None = None,
        connect_timeout: float = 10.0,
        read_timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        classifier: Classifier = classify,
        counters: Counters | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.system = system
        self.limiter = limiter
        self.retry = retry or RetryPolicy()
        self.counters = counters or Counters()
        self._classify = classifier
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._client = httpx.Client(
            base_url=base_url,
            auth=auth,
            headers={"Accept": "application/json", **(headers or {})},
            timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
            transport=transport,
            follow_redirects=False,
        )

    @property
    def base_url(self) -> httpx.URL:
        return self._client.base_url

    @property
    def address(self) -> str:
        """scheme://host[:port] of the other system (never credentials nor path)."""
        url = self._client.base_url
        return f"{url.scheme}://{url.host}{f':{url.port}' if url.port else ''}"

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        kind: Kind | None = None,
        idempotent: bool | None = None,
        record_key: str | None = None,
        expect_json: bool = True,
    ) -> Any:
        """Send one request with pacing and bounded retries; return the decoded JSON (or the response).

        ``kind`` says whether it reads or writes (default: by method); ``idempotent`` whether it may be
        repeated after it may have reached the server (default: by method); ``record_key`` names the record a
        write is about, so that a refusal becomes a ``RecordError`` instead of a fatal one.
        """
        method = method.upper()
        kind = kind or ("write" if method in WRITE_METHODS else "read")
        if idempotent is None:
            idempotent = method in IDEMPOTENT_METHODS or kind == "read"
        attempt = 0
        while True:
            attempt += 1
            try:
                return self._attempt(method, url, params, json_body, headers, kind, record_key, expect_json)
            except RetriableError as error:
                delay = self._retry_delay(error, attempt, idempotent)
                if delay is None:
                    error.address = error.address or self.address
                    raise
                log.warning(
                    "%s %s %s failed (%s); retry %d/%d in %.2f s",
                    self.system,
                    method,
                    url,
                    error.message,
                    attempt,
                    self.retry.max_retries,
                    delay,
                )
                self.counters.add(retries=1, waited=delay)
                self._sleep(delay)
            except ConnectorError as error:
                error.address = error.address or self.address
                raise

    def _attempt(
        self,
        method: str,
        url: str,
        params: Mapping[str, Any] | None,
        json_body: Any,
        headers: Mapping[str, str] | None,
        kind: Kind,
        record_key: str | None,
        expect_json: bool,
    ) -> Any:
        if self.limiter is not None:
            waited = self.limiter.acquire()
            if waited:
                self.counters.add(waited=waited)
        self.counters.count(kind)
        started = time.monotonic()
        # a limiter that counts from replies (connectors/erp/oblio/client.py ReplyAnchoredWindow) is told when one is in
        finish = getattr(self.limiter, "finish", None)
        try:
            response = self._client.request(method, url, params=params, json=json_body, headers=headers)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            error = RetriableError(self.system, f"cannot connect: {exc}", method=method, path=url)
            error.not_sent = True
            raise error from None
        except httpx.TimeoutException as exc:
            raise RetriableError(self.system, f"timed out ({type(exc).__name__})", method=method, path=url) from None
        except (httpx.NetworkError, httpx.RemoteProtocolError) as exc:
            raise RetriableError(
                self.system, f"connection broken: {type(exc).__name__}: {exc}", method=method, path=url
            ) from None
        finally:
            if finish is not None:
                finish()
        elapsed = time.monotonic() - started
        log.debug(
            "%s %s %s -> %s in %.3f s",
            self.system,
            method,
            response.request.url.raw_path.decode(errors="replace"),
            response.status_code,
            elapsed,
        )
        refused = self._classify(response, system=self.system, record_key=record_key)
        if refused is not None:
            if isinstance(refused, RateLimitedError):
                self.counters.add(rate_limited=1)
            raise refused
        if not expect_json:
            return response
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise RetriableError(
                self.system,
                f"reply is not valid JSON ({len(response.content)} bytes; truncated?)",
                status=response.status_code,
                method=method,
                path=url,
            ) from None

    def _retry_delay(self, error: RetriableError, attempt: int, idempotent: bool) -> float | None:
        """Seconds to wait before trying again, or None when the error must go up."""
        if attempt > self.retry.max_retries:
            return None
        safe = idempotent or isinstance(error, RateLimitedError) or error.not_sent
        if not safe:
            return None
        delay = self.retry.backoff(attempt, self._rng)
        if isinstance(error, RateLimitedError) and error.retry_after is not None:
            if error.retry_after > self.retry.max_retry_after:
                return None
            delay = max(delay, error.retry_after)
        return delay
