"""``erpsync check``: probe the state store, the ERP and every shop, and say what answered."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from erpsync.connectors.errors import ConnectorError
from erpsync.core.config import ConfigError, Settings, StoreSettings
from erpsync.core.redact import redact
from erpsync.core.state import StateError, safe_url


@dataclass(frozen=True)
class ProbeResult:
    target: str
    ok: bool
    detail: str


def _probe(target: str, action: Callable[[], str]) -> ProbeResult:
    try:
        return ProbeResult(target, True, action())
    except (ConnectorError, ConfigError, StateError, OSError, ValueError) as error:
        return ProbeResult(target, False, redact(f"{type(error).__name__}: {error}"))


def probe_all(settings: Settings) -> list[ProbeResult]:
    """Probe every system the configuration names; never raises for a system that does not answer."""
    from erpsync.connectors.erp import make_erp
    from erpsync.runtime.store_runtime import shop_client, state_store

    def state() -> str:
        url = settings.state.url.get()
        state_store(url)
        return f"{safe_url(url)}: schema up to date"

    def erp(**options: str) -> str:
        connector = make_erp(settings.erp, **options)
        try:
            return connector.check()
        finally:
            connector.close()

    results = [_probe("state", state), _probe(f"erp ({settings.erp.type})", erp)]
    for store in settings.stores:

        def shop(store_settings: StoreSettings = store) -> str:
            with shop_client(store_settings, settings) as client:
                return client.check()

        results.append(_probe(f"store {store.name}", shop))
        if store.price_list:  # a mistyped list name shows here, not at the first product run

            def price_list(name: str = store.price_list) -> str:
                return erp(price_list=name)

            results.append(_probe(f"store {store.name} price list", price_list))
    return results
