"""The shop's rate limit shared by every run of a store: a Prefect global concurrency limit when a server is there.

Each MerchantPro API key allows ~4 requests/s in total, whatever process spends them. Inside one process the
HTTP layer's token bucket keeps to it; across processes and machines (workers, a manual run during a scheduled
one) the bucket is a Prefect global concurrency limit with slot decay, ``<prefix>-shop-<store>``, created by
``erpsync serve`` / ``erpsync prefect-yaml`` and used automatically when it exists.
"""

from __future__ import annotations

import logging
import os

from erpsync.core.config import Settings, StoreSettings

log = logging.getLogger("erpsync.ratelimit")


def limit_name(settings: Settings, store: StoreSettings) -> str:
    return f"{settings.prefect.concurrency_limit_prefix}-shop-{store.name}"


class PrefectRateLimiter:
    """A ``connectors.http.RateLimiter`` backed by a Prefect global concurrency limit with slot decay."""

    def __init__(self, name: str) -> None:
        self.name = name

    def acquire(self) -> float:
        import time

        from prefect.concurrency.sync import rate_limit

        started = time.monotonic()
        rate_limit(self.name, occupy=1, strict=True)
        return time.monotonic() - started


def ensure_rate_limits(settings: Settings) -> list[str]:
    """Create (or update) the global rate limit of every store on the current Prefect API; their names."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate, GlobalConcurrencyLimitUpdate
    from prefect.exceptions import ObjectNotFound

    names = []
    with get_client(sync_client=True) as client:
        for store in settings.stores:
            name = limit_name(settings, store)
            # limit 1 with decay r/s: one slot frees every 1/r s, so calls are spaced as the local bucket spaces them.
            try:
                client.read_global_concurrency_limit_by_name(name)
                client.update_global_concurrency_limit(
                    name, GlobalConcurrencyLimitUpdate(limit=1, slot_decay_per_second=store.requests_per_second)
                )
            except ObjectNotFound:
                client.create_global_concurrency_limit(
                    GlobalConcurrencyLimitCreate(
                        name=name, limit=1, active=True, slot_decay_per_second=store.requests_per_second
                    )
                )
            names.append(name)
    return names


def shared_limiter_for(settings: Settings, store: StoreSettings) -> PrefectRateLimiter | None:
    """The store's Prefect rate limit when a Prefect server is configured and the limit exists, else None."""
    if not os.environ.get("PREFECT_API_URL"):
        return None
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    name = limit_name(settings, store)
    try:
        with get_client(sync_client=True) as client:
            client.read_global_concurrency_limit_by_name(name)
    except ObjectNotFound:
        return None
    except Exception as error:  # the API is down or old: fall back to the local bucket, loudly
        log.warning("cannot read the Prefect rate limit %s (%s); pacing locally", name, error)
        return None
    return PrefectRateLimiter(name)
