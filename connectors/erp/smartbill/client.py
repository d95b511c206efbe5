"""SmartBill's HTTP side: Basic auth, the strict 30-calls/10 s window, the lock-out, and ``errorText`` replies.

The token is locked for ten minutes when more than 30 calls reach it in 10 s: every call goes through one strict
sliding window per credential, and a 429 is retried only when its Retry-After is short (30 s at most); otherwise
no call is made until the lock-out is over. SmartBill reports refusals as ``errorText`` in the body, with HTTP
400 or HTTP 200: ``classify_smartbill`` turns those into the error tree of ``connectors.errors``.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Callable
from typing import Any

import httpx

from erpsync.connectors.errors import (
    AuthError,
    BadRequestError,
    ConnectorError,
    RateLimitedError,
    RecordError,
    RetriableError,
    record_error,
)
from erpsync.connectors.http import (
    Counters,
    HttpClient,
    RetryPolicy,
    SlidingWindow,
    classify,
    credential_key,
    shared_limiter,
)
from erpsync.core.redact import register_basic_auth

log = logging.getLogger("erpsync.smartbill")

SYSTEM = "smartbill"
DEFAULT_URL = "https://ws.smartbill.ro/SBORO/api"
LOCKOUT_SECONDS = 600.0

# errorText phrases (Romanian and English) that mean the credentials or the company rights are wrong. They are
# looked for outside quotes, where SmartBill echoes product codes and names ("ACCESORII-1" is not an auth error).
_AUTH_TEXT = re.compile(
    r"autentific|neautorizat|unauthori[sz]ed|authenticat|drepturi de acces|nu aveti drept|access denied"
    r"|token(?:ul)? (?:invalid|expirat|gresit)|invalid token|parola",
    re.IGNORECASE,
)
_QUOTED = re.compile(r"\"[^\"]*\"|'[^']*'|„[^”]*”")
_TRANSIENT_TEXT = re.compile(r"temporar|incercati din nou|try again|unavailable|indisponibil", re.IGNORECASE)
_ALREADY_CANCELLED = re.compile(r"deja anulat|already cancel", re.IGNORECASE)


# --------------------------------------------------------------------------- errorText classification


def error_text(response: httpx.Response) -> str:
    """SmartBill's ``errorText`` from a JSON object reply, or ``""`` (no JSON body, or no error).

    The body decides, not the Content-Type: an error object sent as text/plain must not pass for a success.
    """
    if response.content.lstrip()[:1] != b"{":
        return ""
    try:
        body = response.json()
    except ValueError:
        return ""
    if isinstance(body, dict):
        text = body.get("errorText")
        if text:
            return str(text).strip()
    return ""


def classify_smartbill(
    response: httpx.Response, *, system: str, record_key: str | None = None
) -> ConnectorError | None:
    """``connectors.http.classify`` plus SmartBill's habits.

    ======================================  ====================================================
    HTTP 200 with an empty ``errorText``    success
    ``errorText`` about credentials/rights  AuthError (on 200, 400 and the other refusals)
    HTTP 200, ``errorText`` "temporar..."   RetriableError
    HTTP 200, other ``errorText``           RecordError for a write about one record
                                            (``record_key``), else BadRequestError
    429 without Retry-After                 RateLimitedError with retry_after = the 600 s lock-out,
                                            so the HTTP layer never retries into a locked token
    anything else                           as ``classify``
    ======================================  ====================================================
    """
    error = classify(response, system=system, record_key=record_key)
    request = response.request
    common: dict[str, Any] = {
        "status": response.status_code,
        "method": request.method,
        "path": request.url.raw_path.decode(errors="replace"),
    }
    if isinstance(error, RateLimitedError):
        if error.retry_after is None:
            error.retry_after = LOCKOUT_SECONDS
        return error
    text = error_text(response)
    if error is not None:
        if isinstance(error, RecordError | BadRequestError) and _is_auth_text(text):
            return AuthError(system, f"authentication refused: {text}", **common)
        return error
    if not text:
        return None
    if _is_auth_text(text):
        return AuthError(system, f"authentication refused: {text}", **common)
    if _TRANSIENT_TEXT.search(_QUOTED.sub("", text)):
        return RetriableError(system, text, **common)
    if record_key is not None:
        return record_error(system, record_key, text, **common)
    return BadRequestError(system, text, **common)


def _is_auth_text(text: str) -> bool:
    return bool(text) and _AUTH_TEXT.search(_QUOTED.sub("", text)) is not None


def is_already_cancelled(message: str) -> bool:
    """Whether a refused cancel only says the invoice is cancelled already (cancelling twice is harmless)."""
    return _ALREADY_CANCELLED.search(message) is not None


# --------------------------------------------------------------------------- the calls


class SmartBillClient:
    """The calls of one connector: the HTTP layer with SmartBill's pacing, retries and lock-out.

    The sliding window is shared per credential (every client in the process using one token shares it); the
    lock-out after a 429 is this client's own: it makes no call until the lock-out is over.
    """

    def __init__(
        self,
        url: str,
        username: str,
        token: str,
        *,
        requests_per_10s: int = 30,
        window_seconds: float = 10.0,
        window_margin_seconds: float = 1.0,
        max_retries: int = 2,
        timeout_seconds: float = 30,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        register_basic_auth(username, token)
        self._clock = clock
        # The margin widens the window the limiter keeps, so that calls whose latency differs cannot arrive
        # closer together than SmartBill's 10 s; the first call past 30 would cost a 10-minute lock-out.
        period = window_seconds + window_margin_seconds
        self.limiter = shared_limiter(
            credential_key(SYSTEM, username, token),
            lambda: SlidingWindow(requests_per_10s, period, clock=clock, sleep=sleep),
        )
        self._http = HttpClient(
            SYSTEM,
            url,
            auth=(username, token),
            limiter=self.limiter,
            retry=RetryPolicy(max_retries=max_retries, backoff_base=1.0, backoff_max=8.0, max_retry_after=30.0),
            connect_timeout=min(10.0, timeout_seconds),
            read_timeout=timeout_seconds,
            transport=transport,
            classifier=classify_smartbill,
            sleep=sleep,
        )
        self.counters: Counters = self._http.counters
        self._locked_until = -math.inf

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """One call (``kwargs`` as ``HttpClient.request``); after a 429 the token is left alone until its
        lock-out is over: ``RateLimitedError`` with ``not_sent`` and the seconds left, no call made."""
        left = self._locked_until - self._clock()
        if left > 0:
            error = RateLimitedError(
                SYSTEM,
                f"token locked by SmartBill's rate limit; not calling for {left:.0f} s",
                method=method,
                path=path,
            )
            error.retry_after = left
            error.not_sent = True
            raise error
        try:
            return self._http.request(method, path, **kwargs)
        except RateLimitedError as error:
            wait = error.retry_after or LOCKOUT_SECONDS
            self._locked_until = self._clock() + wait
            log.error("SmartBill rate limit hit: token locked for %.0f s; no call until then", wait)
            raise

    def close(self) -> None:
        """Close the HTTP client."""
        self._http.close()
