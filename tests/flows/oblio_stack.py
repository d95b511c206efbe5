"""Shared set-up of the flow tests on the real Oblio connector: the Prefect harness, a simulated MerchantPro shop
and the Oblio simulator (``erpsync/testing/oblio.py``), both served on loopback, configured through an
``erpsync.toml`` with ``[erp] type = "oblio"`` and nothing else Oblio-specific. A test module wraps
``oblio_stack_factory`` in its own fixture::

    @pytest.fixture
    def make_oblio_stack(tmp_path, monkeypatch, prefect_harness):
        yield from oblio_stack_factory(tmp_path, monkeypatch)

The simulator keeps Oblio's real limit by default (3 calls per second per token, then a 10-minute lock) and the
connector its real pace (``requests_per_second`` 3, the window kept on replies): a test that hit the lock would
stall, so none may. The store's warehouse is the Oblio management ``Depozit``; invoices are issued in series ``FCT``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import erpsync.runtime.store_runtime as runtime_module
from erpsync.app.flowrun import run_flow
from erpsync.connectors.erp.oblio import DocId
from erpsync.connectors.http import reset_shared_limiters
from erpsync.core.state import StateStore
from erpsync.core.summary import RunState, RunSummary
from erpsync.dev.stack import SimShop, start_shop, write_config
from erpsync.runtime.store_runtime import open_runtime, overrides
from erpsync.testing.oblio import OblioSimulator, SimDoc, SimItem
from erpsync.testing.server import RunningServer, serve_in_thread

STORE = "main"
CIF = "RO12345678"
EMAIL, SECRET = "office@example.ro", "oblio-secret-0001"
SERIES = "FCT"
WAREHOUSE = "Depozit"  # an Oblio management
SKUS = ("SKU-A", "SKU-B")
VAT_21 = 5  # the simulated shop's "TVA 21%" (Oblio's simulator knows 21, 11 and 0)
BUYER = {
    "customer_email": "ana.popescu@example.ro",
    "billing_type": "individual",
    "billing_name": "Ana Popescu",
    "billing_address": "Str. Lalelelor 4",
    "billing_city": "Bucuresti",
    "billing_postal_code": "010101",
    "billing_country_code": "RO",
    "billing_phone": "0722000111",
    "shipping_as_billing": True,
}


@dataclass
class OblioStack:
    shop: SimShop
    oblio: OblioSimulator
    server: RunningServer
    state_url: str
    url: str  # Oblio's API base on loopback (``.../api``)
    stock_calls: list[tuple[str, set[str]]] = field(default_factory=list)

    @property
    def sim(self) -> Any:
        """The simulated MerchantPro shop."""
        return self.shop.sim

    @property
    def state(self) -> StateStore:
        return runtime_module.state_store(self.state_url)

    def order(self, lines: dict[str, int], **fields: Any) -> str:
        """A paid shop order of these SKUs and quantities (shipping 15, VAT 21 %); ``fields`` override the
        payload."""
        payload = {
            **BUYER,
            "payment_status": "paid",
            "payment_method_code": "wire",
            "shipping_status": "awaiting",
            "shipping_amount": 15,
            "line_items": [{"product_sku": sku, "quantity": qty} for sku, qty in lines.items()],
            **fields,
        }
        order_id = str(self.sim.add_order(payload)["id"])
        # the shipping VAT is the shop's setting (read-only in the API); the simulated shop's default 19 % is a
        # rate Oblio's simulator does not have (21 % since August 2025)
        self.sim.orders[order_id] = {**self.sim.orders[order_id], "shipping_tax_percent": 21}
        return order_id

    def run(self, flow: str = "orders", *, ok: bool = True, **params: Any) -> RunSummary:
        """Run a flow of the store in this process; ``ok``: assert it completed."""
        from erpsync.flows.registry import load_flow

        summary = run_flow(load_flow(flow), flow, STORE, params)
        if ok:
            assert summary.state is RunState.COMPLETED, summary.message
        return summary

    def invoices(self) -> list[SimDoc]:
        """The Oblio invoices that are neither stornos nor returns (positive quantities)."""
        return [d for d in self.oblio.invoices() if d.storno_of is None and not negative(d)]

    def stornos(self) -> list[SimDoc]:
        """The stornos (documents issued with a ``referenceDocument``)."""
        return self.oblio.stornos()

    def returns(self) -> list[SimDoc]:
        """The return invoices: negative quantities, not a storno."""
        return [d for d in self.oblio.invoices() if d.storno_of is None and negative(d)]

    def quantity(self, sku: str, management: str = WAREHOUSE) -> Decimal:
        """Oblio's stock of one code in one management."""
        return self.oblio.quantity(management, sku)

    def set_quantity(self, sku: str, quantity: int | Decimal, management: str = WAREHOUSE) -> None:
        """What a goods receipt or a sale outside the shop does to Oblio's stock."""
        self.oblio.products[sku].stock[management] = Decimal(quantity)

    def tags(self, order_id: str) -> list[str]:
        return [t["name"] for t in self.sim.orders[order_id]["tags"]]

    def shop_stock(self, sku: str) -> Any:
        """The shop's stock of one unit (basic product or variant), read without an API call."""
        for product in self.sim.products.values():
            for unit in product.get("variants") or [product]:
                if unit.get("sku") == sku:
                    return unit.get("stock")
        raise KeyError(sku)

    def calls(self) -> dict[str, int]:
        """Oblio's accepted calls per route so far."""
        return dict(self.oblio.stats.by_route)

    def reset_calls(self) -> None:
        """Forget Oblio's call log (per route and call times; tokens stay valid)."""
        stats = self.oblio.stats
        stats.by_route.clear()
        stats.call_times.clear()
        stats.calls = stats.requests = 0


def negative(doc: SimDoc) -> bool:
    return any(Decimal(str(line.get("quantity") or 0)) < 0 for line in doc.products)


def printed(doc: SimDoc) -> str:
    """The document's number as erpsync shows it (``"FCT 0002"``, ``DocId.printed``)."""
    return DocId.parse(doc.key).printed


def products_of(doc: SimDoc) -> dict[str, Decimal]:
    """code -> quantity of the stock lines of an Oblio document (shipping and discount lines have no code)."""
    return {str(p["code"]): Decimal(str(p["quantity"])) for p in doc.products if p.get("code")}


def set_status(order_id: str, status: str) -> None:
    """What the shop's admin does: ``PATCH /orders/{id}/<status>`` (through the real shop client)."""
    with open_runtime(STORE) as runtime:
        runtime.shop.set_order_status(order_id, status)  # type: ignore[arg-type]


def good(code: str, stock: Mapping[str, Any], *, price: str = "121.00", vat: int = 21, name: str = "") -> SimItem:
    """An Oblio good (``Marfa``) at ``price`` RON with VAT ``vat`` % included, ``stock`` management -> quantity."""
    item = SimItem(name=name or f"Produs {code}", code=code, price=Decimal(price), vat=Decimal(vat))
    item.stock.update({m: Decimal(str(q)) for m, q in stock.items()})
    return item


def oblio_stack_factory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., OblioStack]]:
    """A factory of stacks; everything it started is stopped after the test.

    ``make(orders=..., erp=..., store=..., stock=..., items=..., shop_products=..., record_stock=True, sim=...)``:
    ``orders`` the ``[stores.orders]`` keys, ``erp`` extra ``[erp]`` keys, ``store`` extra store keys
    (``products``, ``reconcile``...), ``stock`` Oblio's managements (name -> code -> quantity; default 10 of each
    of ``SKUS`` in ``Depozit``; the codes become goods at 121 RON, VAT 21 % included), ``items`` extra
    ``SimItem`` goods, ``shop_products`` SKU -> shop stock (None: no stock given) of the shop's basic products,
    ``record_stock`` replaces the order flow's stock sub-flow by a recorder (False: the real sub-flow runs),
    ``sim`` the simulator's keyword arguments (``rate_limit``...).
    """
    servers: list[RunningServer] = []
    shops: list[SimShop] = []
    reset_shared_limiters()

    def make(
        *,
        orders: Mapping[str, Any] | None = None,
        erp: Mapping[str, Any] | None = None,
        store: Mapping[str, Any] | None = None,
        stock: Mapping[str, Mapping[str, Any]] | None = None,
        items: list[SimItem] | None = None,
        shop_products: Mapping[str, float | None] | None = None,
        record_stock: bool = True,
        unpaced: bool = True,
        sim: Mapping[str, Any] | None = None,
    ) -> OblioStack:
        shop = start_shop(STORE)
        shops.append(shop)
        for sku, quantity in (shop_products if shop_products is not None else dict.fromkeys(SKUS)).items():
            extra = {} if quantity is None else {"stock": quantity}
            shop.sim.add_product({"name": f"Produs {sku}", "sku": sku, "price_gross": 121, "tax_id": VAT_21, **extra})
        managements = stock if stock is not None else {WAREHOUSE: dict.fromkeys(SKUS, 10)}
        oblio = OblioSimulator(cif=CIF, users={EMAIL: SECRET}, **(sim or {}))
        for management in managements:
            oblio.add_management(management)
        for management, quantities in managements.items():
            for code, quantity in quantities.items():
                item = oblio.products.get(code)
                if item is None:
                    item = good(code, {})
                    oblio.add_product(item)
                item.stock[management] = Decimal(str(quantity))
        for item in items or []:
            oblio.add_product(item)
        server = serve_in_thread(oblio)
        servers.append(server)
        state_url = f"sqlite:///{tmp_path / 'state.db'}"
        store_keys: dict[str, Any] = {"warehouses": [next(iter(managements), WAREHOUSE)]}
        if orders:
            store_keys["orders"] = dict(orders)
        store_keys.update(store or {})
        path = write_config(
            tmp_path / "erpsync.toml",
            erp={
                "type": "oblio",
                "url": f"{server.url}/api",
                "email": EMAIL,
                "secret": f"literal:{SECRET}",
                "cif": CIF,
                "invoice_series": SERIES,
                **(erp or {}),
            },
            shops=[shop],
            state_url=state_url,
            stores={STORE: store_keys},
        )
        stack = OblioStack(shop, oblio, server, state_url, f"{server.url}/api")
        monkeypatch.setenv("ERPSYNC_CONFIG", str(path))
        monkeypatch.setattr(overrides, "unpaced", unpaced)
        if record_stock:

            def refresh_stock(store: str, skus: set[str]) -> str:
                if skus:
                    stack.stock_calls.append((store, set(skus)))
                return ""

            monkeypatch.setattr("erpsync.flows.orders.refresh_stock", refresh_stock)
        return stack

    yield make
    for shop in shops:
        shop.stop()
    for server in servers:
        server.stop()
    reset_shared_limiters()
