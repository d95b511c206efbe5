"""Oblio's HTTP side: the client-credentials token (fetched, renewed before it expires and once on a 401), the
pace that keeps one token under Oblio's 3 requests/s (above it the token is locked for 10 minutes), and
``classify_oblio`` of the ``{status, statusMessage, data}`` replies (``docs/oblio.md``).
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import httpx

from erpsync.connectors.errors import AuthError, BadRequestError, ConnectorError, RateLimitedError, record_error
from erpsync.connectors.http import (
    Counters,
    HttpClient,
    RateLimiter,
    RetryPolicy,
    TokenBucket,
    classify,
    credential_key,
    shared_limiter,
)
from erpsync.core.redact import register_secret

log = logging.getLogger("erpsync.oblio")

SYSTEM = "oblio"
DEFAULT_URL = "https://www.oblio.eu/api"
LOCK_SECONDS = 600.0
MAX_PER_SECOND = 3  # Oblio: "more than 3 requests a second lock the access token for 10 minutes"
# statusMessage words of the lock (inference: Oblio documents the lock, not its reply), outside quotes
_LOCK_TEXT = re.compile(r"blocat|blocked|too many|prea multe|rate limit|limita", re.IGNORECASE)
_QUOTED = re.compile(r"\"[^\"]*\"|'[^']*'")


def status_message(response: httpx.Response) -> str:
    """Oblio's ``statusMessage`` of a JSON reply, else the text (shortened)."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:300] or f"HTTP {response.status_code}"
    if isinstance(body, dict) and body.get("statusMessage"):
        return str(body["statusMessage"])[:500]
    return str(body)[:300]


def is_lock(message: str) -> bool:
    """Whether a refusal says the token is locked by the rate limit."""
    return _LOCK_TEXT.search(_QUOTED.sub("", message)) is not None


def classify_oblio(response: httpx.Response, *, system: str, record_key: str | None = None) -> ConnectorError | None:
    """``connectors.http.classify`` with Oblio's envelope.

    ==========================================  ===============================================================
    2xx with ``status`` 200 (or no status)       success
    429, or any refusal whose message says the   RateLimitedError with retry_after = the 600 s lock: never
    token is locked ("blocat", "too many"...)    retried by the HTTP layer, and the client calls no more
    401 / 403                                    AuthError (the client renews its token once on a 401 first)
    400 (or a 2xx whose ``status`` is 400)       RecordError for a write about one record (``record_key``),
                                                 else BadRequestError; the message is Oblio's ``statusMessage``
    anything else                                as ``classify`` (5xx retriable ...)
    ==========================================  ===============================================================
    """
    status = response.status_code
    message = status_message(response) if status >= 300 else ""
    if status < 300:
        try:
            body = response.json()
        except ValueError:
            return None
        inner = body.get("status") if isinstance(body, dict) else None
        if not isinstance(inner, int) or inner < 400:
            return None
        status, message = inner, str(body.get("statusMessage") or f"status {inner}")
    request = response.request
    common: dict[str, Any] = {
        "status": status,
        "method": request.method,
        "path": request.url.raw_path.decode(errors="replace"),
    }
    if status == 429 or (status in (400, 401, 403) and is_lock(message)):
        error = RateLimitedError(system, f"token locked by Oblio's rate limit (10 minutes): {message}", **common)
        error.retry_after = LOCK_SECONDS
        return error
    if status in (401, 403):
        return AuthError(system, f"authentication refused: {message}", **common)
    if status == 400:
        if record_key is not None:
            return record_error(system, record_key, message, **common)
        return BadRequestError(system, message, **common)
    if response.status_code >= 300:
        return classify(response, system=system, record_key=record_key)
    return BadRequestError(system, message, **common)


class ReplyAnchoredWindow:
    """At most ``max_calls`` calls in any ``period`` seconds *as the server counts them*, whatever the latency.

    A call reaches the server after we send it and before its reply comes back, so a call sent ``period +
    margin`` after the reply to the call ``max_calls`` before it cannot share a window with it, however slow or
    uneven the network (a window kept on send times needs a margin as wide as the worst latency difference and
    pays it on every call). While that reply is still out, the next call waits for it (at most ``stall``
    seconds, then counts from then). ``finish()`` — called by ``HttpClient`` when the reply (or an error) is in,
    on the thread that acquired — records it.
    """

    def __init__(
        self,
        max_calls: int,
        period: float,
        *,
        margin: float = 0.02,
        stall: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if max_calls < 1 or period <= 0 or margin < 0:
            raise ValueError("max_calls must be >= 1, period > 0 and margin >= 0")
        self.max_calls = max_calls
        self.period = period
        self.margin = margin
        self.stall = stall
        self._clock = clock
        self._sleep = sleep
        self._replies: deque[list[float]] = deque(maxlen=max_calls)  # [reply time]; inf while the call is out
        self._cond = threading.Condition()
        self._mine = threading.local()

    def acquire(self) -> float:
        started = self._clock()
        with self._cond:
            while True:
                now = self._clock()
                if len(self._replies) < self.max_calls:
                    slot = now
                    break
                anchor = self._replies[0]
                if anchor[0] == math.inf:
                    if now - started >= self.stall:
                        anchor[0] = now  # a reply that never came: count from now
                        continue
                    self._cond.wait(timeout=0.05)
                    continue
                slot = max(now, anchor[0] + self.period + self.margin)
                break
            entry = [math.inf]
            self._replies.append(entry)
            self._mine.entry = entry
        wait = slot - now
        if wait > 0:
            self._sleep(wait)
        return max(0.0, wait) + (now - started)

    def finish(self) -> None:
        entry = getattr(self._mine, "entry", None)
        if entry is None:
            return
        with self._cond:
            entry[0] = self._clock()
            self._mine.entry = None
            self._cond.notify_all()


class _Both:
    """Two limiters in turn: the steady rate, then the strict window (no 4 calls within 1 s at the server)."""

    def __init__(self, *limiters: RateLimiter) -> None:
        self._limiters = limiters
        self._lock = threading.Lock()

    def acquire(self) -> float:
        with self._lock:  # one caller at a time through both, so the second cannot reorder the first
            return sum(limiter.acquire() for limiter in self._limiters)

    def finish(self) -> None:
        for limiter in self._limiters:
            finish = getattr(limiter, "finish", None)
            if finish is not None:
                finish()


def oblio_limiter(
    email: str,
    secret: str,
    rate: float,
    *,
    margin: float = 0.02,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> RateLimiter:
    """The process-wide pace of one credential: ``rate`` calls/s spaced evenly, and never more than 3 calls in
    any second at Oblio's end (``ReplyAnchoredWindow``: each 4th call waits ``1 + margin`` s after the reply to
    the 1st, so latency cannot squeeze 4 into Oblio's second)."""
    rate = min(rate, float(MAX_PER_SECOND))
    return shared_limiter(
        credential_key(SYSTEM, email, secret),
        lambda: _Both(
            TokenBucket(rate, clock=clock, sleep=sleep),
            ReplyAnchoredWindow(MAX_PER_SECOND, 1.0, margin=margin, clock=clock, sleep=sleep),
        ),
    )


class OblioClient:
    """The calls of one connector: bearer token, pace, retries, the lock.

    ``request`` adds the token (fetched on first use, renewed ``renew_margin`` seconds before it expires, and
    once more when a call gets a 401: the server refused the call before running it, so repeating it is safe).
    After a lock no call is made until it is over (``RateLimitedError`` with ``not_sent``).
    """

    def __init__(
        self,
        url: str,
        email: str,
        secret: str,
        *,
        requests_per_second: float = 3.0,
        window_margin_seconds: float = 0.02,
        renew_margin: float = 60.0,
        max_retries: int = 2,
        timeout_seconds: float = 30,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        register_secret(secret)
        self.email = email
        self._secret = secret
        self._clock = clock
        self.renew_margin = renew_margin
        self.limiter = oblio_limiter(
            email, secret, requests_per_second, margin=window_margin_seconds, clock=clock, sleep=sleep
        )
        self._http = HttpClient(
            SYSTEM,
            url.rstrip("/") + "/",
            limiter=self.limiter,
            retry=RetryPolicy(max_retries=max_retries, backoff_base=1.0, backoff_max=8.0, max_retry_after=30.0),
            connect_timeout=min(10.0, timeout_seconds),
            read_timeout=timeout_seconds,
            transport=transport,
            classifier=classify_oblio,
            sleep=sleep,
        )
        self.counters: Counters = self._http.counters
        self._token: str | None = None
        self._expires_at = -math.inf
        self._locked_until = -math.inf
        self.tokens_fetched = 0
        self._token_lock = threading.Lock()

    # -- the token -------------------------------------------------------------------------------------------

    def token(self) -> str:
        """The bearer token, fetched when there is none or it expires within ``renew_margin`` seconds."""
        with self._token_lock:
            if self._token is None or self._clock() >= self._expires_at - self.renew_margin:
                self._fetch_token()
            assert self._token is not None
            return self._token

    def _fetch_token(self) -> None:
        body = {"client_id": self.email, "client_secret": self._secret, "grant_type": "client_credentials"}
        started = self._clock()
        reply = self._http.request("POST", "authorize/token", json_body=body, kind="read", idempotent=True)
        value = reply.get("access_token") if isinstance(reply, dict) else None
        if not value:
            raise AuthError(SYSTEM, f"the token reply has no access_token: {str(reply)[:200]}")
        try:
            ttl = float(reply.get("expires_in") or 3600)
        except (TypeError, ValueError):
            ttl = 3600.0
        register_secret(str(value))
        self._token = str(value)
        self._expires_at = started + ttl
        self.tokens_fetched += 1
        log.debug("Oblio token fetched (valid %.0f s)", ttl)

    def forget_token(self) -> None:
        with self._token_lock:
            self._token = None

    # -- calls -----------------------------------------------------------------------------------------------

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """One call (``kwargs`` as ``HttpClient.request``); returns the reply's ``data``."""
        self._refuse_while_locked(method, path)
        renewed = False
        while True:
            token = self.token()
            headers = {"Authorization": f"Bearer {token}"}
            try:
                reply = self._http.request(method, path, headers=headers, **kwargs)
            except RateLimitedError as error:
                if (error.retry_after or 0) >= LOCK_SECONDS or error.status == 429:
                    self._locked_until = self._clock() + (error.retry_after or LOCK_SECONDS)
                    log.error("Oblio locked the token (more than 3 requests/s); no call for %.0f s", LOCK_SECONDS)
                raise
            except AuthError as error:
                if error.status != 401 or renewed:
                    raise
                renewed = True
                with self._token_lock:
                    if self._token == token:
                        self._token = None
                continue
            return reply.get("data") if isinstance(reply, dict) and "data" in reply else reply

    def _refuse_while_locked(self, method: str, path: str) -> None:
        left = self._locked_until - self._clock()
        if left > 0:
            error = RateLimitedError(
                SYSTEM, f"token locked by Oblio's rate limit; not calling for {left:.0f} s", method=method, path=path
            )
            error.retry_after = left
            error.not_sent = True
            raise error

    def close(self) -> None:
        self._http.close()
