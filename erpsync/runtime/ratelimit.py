"""The shop's rate limit shared by every process of a store: a Prefect global concurrency limit when a server is there.

Each MerchantPro API key allows ~4 requests/s in total, whatever process spends them. Inside one process the
HTTP layer's token bucket keeps to it; across processes and machines (workers, a manual run during a scheduled
one, the watcher beside a scheduled run) the bucket is a Prefect global concurrency limit with slot decay,
``<prefix>-shop-<store>``, created by ``erpsync serve`` / ``erpsync prefect-yaml`` (or ``ensure_rate_limits``) and
used automatically when it exists.

The limit has ``limit=1`` and ``slot_decay_per_second=rate``: the server grants one slot and frees it 1/rate s
later, so grants to all processes together are spaced at least 1/rate apart. A denied request also restarts
the decay clock on the server (its ``updated`` column), which only ever spaces grants further *(inference from
prefect/server/models/concurrency_limits_v2.py, 3.9.1)*.

The Prefect API is found the way every Prefect client finds it: ``PREFECT_API_URL`` from the environment, else
from the active profile (``prefect profile use`` / ``prefect config set``), else ``prefect.toml``. Each process
says once per limit, at its first client, where its API came from and which limit paces it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

from erpsync.core.config import Settings, StoreSettings

log = logging.getLogger("erpsync.ratelimit")

_announced: set[str] = set()
_announced_lock = threading.Lock()


def limit_name(settings: Settings, store: StoreSettings) -> str:
    return f"{settings.prefect.concurrency_limit_prefix}-shop-{store.name}"


# An ERP's shared pace: SmartBill allows 30 calls in 10 s and Oblio 3 in 1 s per credential, locking it for 10
# minutes beyond. The limit spaces grants a little under that (jitter between a grant and the call's arrival must
# not squeeze one call too many into the ERP's window); each process keeps its own exact window on top.
ERP_SHARED_SHARE = 0.9


def erp_limit(settings: Settings) -> tuple[str, float] | None:
    """The name and requests/s of the ERP's shared limit (SmartBill, Oblio), or None (Tryton has no limit)."""
    erp = settings.erp
    prefix = settings.prefect.concurrency_limit_prefix
    if erp.type == "smartbill":
        return f"{prefix}-erp-smartbill", round(erp.requests_per_10s / 10 * ERP_SHARED_SHARE, 3)
    if erp.type == "oblio":
        return f"{prefix}-erp-oblio", round(min(erp.requests_per_second, 3.0) * ERP_SHARED_SHARE, 3)
    return None


def prefect_api() -> tuple[str, str] | None:
    """The Prefect API this process talks to and where that came from, or None (Prefect's temporary server)."""
    from prefect.context import get_settings_context
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if not url:
        return None
    if os.environ.get("PREFECT_API_URL"):
        return str(url), "the environment (PREFECT_API_URL)"
    profile = get_settings_context().profile
    if PREFECT_API_URL in profile.settings:
        return str(url), f"the active Prefect profile {profile.name!r}"
    return str(url), "Prefect's settings in effect (prefect.toml or a temporary setting)"


def _announce(key: str, message: str, *args: Any) -> None:
    with _announced_lock:
        if key in _announced:
            return
        _announced.add(key)
    log.info(message, *args)


class PrefectRateLimiter:
    """A ``connectors.http.RateLimiter`` backed by a Prefect global concurrency limit with slot decay.

    One ``increment`` call per request; on 423 (no slot) it sleeps the server's Retry-After and asks again. It
    talks to the API directly rather than through ``prefect.concurrency.sync.rate_limit``, which would also emit
    an event per request (server work the shop's budget does not need).
    """

    def __init__(self, name: str, rate: float, api_url: str | None = None) -> None:
        self.name = name
        self.rate = rate
        self.api_url = api_url
        self._client: Any = None
        self._lock = threading.Lock()
        self.denied = 0

    def _prefect(self) -> Any:
        with self._lock:
            if self._client is None:
                from prefect.client.orchestration import get_client

                client = get_client(sync_client=True)
                client.__enter__()
                self._client = client
            return self._client

    def acquire(self) -> float:
        import httpx

        started = time.monotonic()
        while True:
            try:
                granted = self._prefect().increment_concurrency_slots(names=[self.name], slots=1, mode="rate_limit")
            except httpx.HTTPStatusError as error:
                if error.response.status_code != 423:
                    raise
                self.denied += 1
                time.sleep(float(error.response.headers.get("Retry-After") or 1 / self.rate))
                continue
            if not granted.json():
                raise RuntimeError(
                    f"the Prefect rate limit {self.name!r} is gone: create it again (`erpsync prefect-yaml`)"
                )
            return time.monotonic() - started

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.__exit__(None, None, None)
                self._client = None


def ensure_rate_limits(settings: Settings) -> list[str]:
    """Create (or update) the global rate limit of every store, and the ERP's (SmartBill, Oblio), on the current
    Prefect API; their names."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate, GlobalConcurrencyLimitUpdate
    from prefect.exceptions import ObjectNotFound

    wanted = [(limit_name(settings, store), store.requests_per_second) for store in settings.stores]
    if (erp := erp_limit(settings)) is not None:
        wanted.append(erp)
    names = []
    with get_client(sync_client=True) as client:
        for name, rate in wanted:
            # limit 1 with decay r/s: one slot frees every 1/r s, so calls are spaced as the local bucket spaces them.
            try:
                client.read_global_concurrency_limit_by_name(name)
                client.update_global_concurrency_limit(
                    name, GlobalConcurrencyLimitUpdate(limit=1, slot_decay_per_second=rate)
                )
            except ObjectNotFound:
                client.create_global_concurrency_limit(
                    GlobalConcurrencyLimitCreate(name=name, limit=1, active=True, slot_decay_per_second=rate)
                )
            names.append(name)
    return names


_limiters: dict[tuple[str, str], PrefectRateLimiter] = {}


def _find_limit(name: str, rate: float, who: str) -> PrefectRateLimiter | None:
    """The Prefect limit ``name`` when a Prefect API is configured and the limit exists; says once which it is."""
    api = prefect_api()
    if api is None:
        _announce(
            name,
            "%s: no Prefect API configured (PREFECT_API_URL neither in the environment nor in the active profile): "
            "requests paced at %s/s in this process only",
            who,
            rate,
        )
        return None
    url, source = api
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    try:
        with get_client(sync_client=True) as client:
            client.read_global_concurrency_limit_by_name(name)
    except ObjectNotFound:
        _announce(
            name,
            "%s: Prefect API %s from %s has no rate limit %r: requests paced at %s/s in this process only "
            "(create it with `erpsync prefect-yaml` or `erpsync serve`)",
            who,
            url,
            source,
            name,
            rate,
        )
        return None
    except Exception as error:  # the API is down or old: fall back to the local pace, loudly
        log.warning("cannot read the Prefect rate limit %s on %s (%s); pacing locally", name, url, error)
        return None
    _announce(
        name,
        "%s: requests paced by the Prefect global concurrency limit %r at %s/s on %s (API from %s)",
        who,
        name,
        rate,
        url,
        source,
    )
    key = (url, name)
    limiter = _limiters.get(key)
    if limiter is None or limiter.rate != rate:
        limiter = _limiters[key] = PrefectRateLimiter(name, rate, url)
    return limiter


def shared_limiter_for(settings: Settings, store: StoreSettings) -> PrefectRateLimiter | None:
    """The store's Prefect rate limit when a Prefect API is configured (environment or profile) and the limit
    exists, else None (the caller paces in this process only). Says once per process which it is."""
    return _find_limit(limit_name(settings, store), store.requests_per_second, f"store {store.name!r}")


def install_erp_limits(settings: Settings) -> None:
    """Give the ERP's credential limiters (SmartBill, Oblio: ``connectors.http.shared_limiter``) the ERP's Prefect
    limit as a pace shared across processes, when it exists."""
    from erpsync.connectors.http import set_cross_process_limits

    erp = erp_limit(settings)
    if erp is None:
        return
    name, rate = erp
    system = settings.erp.type

    def provider(key: str) -> PrefectRateLimiter | None:
        if not key.startswith(f"{system}:"):
            return None
        return _find_limit(name, rate, f"ERP {system}")

    set_cross_process_limits(provider)
