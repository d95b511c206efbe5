"""``erpsync check``: probe the state store, the ERP and every shop, and say what answered.

Under the ERP line come the ERP's own probes of what the configured stores' flows will need (the connector's
optional ``preflight``, ``connectors/erp/base.py``): for Tryton the shipping product, the currency the shops sell
in, the countries, the warehouses, the price lists and the payment terms; for SmartBill the invoice series and
the VAT rates. What a shop sells in and ships to is read from its most recent orders (one page; RON and RO when
it has none or does not answer).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from erpsync.connectors.erp.base import Needs, preflight
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
    if results[-1].ok:  # what the flows will need, under the ERP line (an ERP that did not answer: nothing)
        results += erp_preflight(settings)
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


DEFAULT_CURRENCY = "RON"
DEFAULT_COUNTRY = "RO"


def shop_needs(store: StoreSettings, settings: Settings) -> Needs:
    """What one store's flows need from the ERP: its configuration, plus the currencies and countries of the
    shop's most recent orders (one page, newest first); a shop that does not answer adds nothing."""
    from erpsync.runtime.store_runtime import shop_client

    currencies: dict[str, None] = {}
    countries: dict[str, None] = {DEFAULT_COUNTRY: None}
    try:
        with shop_client(store, settings) as client:
            page = next(iter(client.iter_orders(filters={"sort": "date_created.desc"})), None)
    except (ConnectorError, OSError, ValueError):
        page = None
    for order in page.items if page is not None else []:
        currencies.setdefault(order.currency.upper(), None)
        for address in (order.billing, order.shipping):
            if address is not None and address.country_code:
                countries.setdefault(address.country_code.upper(), None)
    vat_rates = tuple(store.products.vat_taxes or {})
    return Needs(
        store=store.name,
        shipping_sku=store.orders.shipping_sku,
        discount_sku=store.orders.discount_sku,
        fee_sku=store.orders.fee_sku,
        currencies=tuple(currencies) or (DEFAULT_CURRENCY,),
        countries=tuple(countries),
        warehouses=tuple(store.warehouses),
        price_list=store.price_list,
        payment_terms=tuple(dict.fromkeys(store.orders.payment_methods.values())),
        vat_rates=vat_rates,
    )


def erp_preflight(settings: Settings) -> list[ProbeResult]:
    """The ERP's probes of what the stores need (``preflight``): one result a line; none without the method."""
    from erpsync.connectors.erp import make_erp

    needs = [shop_needs(store, settings) for store in settings.stores]
    try:
        connector = make_erp(settings.erp) if settings.stores else None
    except (ConnectorError, ConfigError, OSError, ValueError) as error:
        return [ProbeResult("erp preflight", False, redact(f"{type(error).__name__}: {error}"))]
    if connector is None:
        return []
    try:
        return [ProbeResult(p.target, p.ok, redact(p.detail)) for p in preflight(connector, needs)]
    except (ConnectorError, ConfigError, OSError, ValueError) as error:
        return [ProbeResult("erp preflight", False, redact(f"{type(error).__name__}: {error}"))]
    finally:
        connector.close()
