"""What one flow run works with for one store: settings, state store, shop client, ERP connector, counters.

Flows open a ``StoreRuntime`` at the start and hand it to their tasks (tasks run in threads of the same
process, so the live clients are shared, not serialised; tasks therefore use no input caching).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from connectors.erp import make_erp
from connectors.erp.base import ErpConnector
from connectors.merchantpro import MerchantProClient
from core.config import Settings, StoreSettings, load_config
from core.state import StateStore
from core.summary import RunSummary


@dataclass
class RuntimeOverrides:
    """Process-wide adjustments for simulators and benchmarks (never set in production)."""

    unpaced: bool = False
    shop_options: dict[str, Any] = field(default_factory=dict)
    erp_options: dict[str, Any] = field(default_factory=dict)


overrides = RuntimeOverrides()
_stores: dict[str, StateStore] = {}
_stores_lock = threading.Lock()


def state_store(url: str) -> StateStore:
    """The process's state store for ``url``, migrated to the current schema on first use."""
    with _stores_lock:
        store = _stores.get(url)
        if store is None:
            store = _stores[url] = StateStore.open(url)
        return store


def shop_client(store: StoreSettings) -> MerchantProClient:
    """A MerchantPro client for one configured store."""
    options: dict[str, Any] = {
        "requests_per_second": None if overrides.unpaced else store.requests_per_second,
        "max_retries": store.max_retries,
        "connect_timeout": store.connect_timeout_seconds,
        "read_timeout": store.timeout_seconds,
        "customers_path": store.customers_path,
        "timezone": store.timezone,
        **overrides.shop_options,
    }
    return MerchantProClient(store.url, store.api_key.get(), store.api_secret.get(), **options)


@dataclass
class StoreRuntime:
    """Everything a flow run needs for one store."""

    settings: Settings
    store: StoreSettings
    state: StateStore
    shop: MerchantProClient
    erp: ErpConnector
    started: float = field(default_factory=time.monotonic)

    @property
    def name(self) -> str:
        return self.store.name

    def summary(self, flow: str, **counts: Any) -> RunSummary:
        """A summary carrying this run's API counters and elapsed seconds."""
        shop, erp = self.shop.counters, self.erp.counters
        return RunSummary(
            flow=flow,
            store=self.name,
            shop_reads=shop.reads,
            shop_writes=shop.writes,
            erp_reads=erp.reads,
            erp_writes=erp.writes,
            seconds=round(time.monotonic() - self.started, 3),
            **counts,
        )

    def close(self) -> None:
        self.shop.close()
        self.erp.close()

    def __enter__(self) -> StoreRuntime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_runtime(store: str, settings: Settings | None = None) -> StoreRuntime:
    """Open the clients of one configured store (settings from $ERPSYNC_CONFIG / ./erpsync.toml by default)."""
    settings = settings or load_config()
    store_settings = settings.store(store)
    erp_options = dict(overrides.erp_options)
    if overrides.unpaced:
        erp_options.setdefault("unpaced", True)
    return StoreRuntime(
        settings=settings,
        store=store_settings,
        state=state_store(settings.state.url.get()),
        shop=shop_client(store_settings),
        erp=make_erp(settings.erp, **erp_options),
    )
