"""Shared set-up of the flow tests on the real SmartBill connector: the Prefect harness, a simulated MerchantPro
shop and the SmartBill simulator, both served on loopback, configured through an ``erpsync.toml`` with ``[erp]
type = "smartbill"``. A test module wraps ``sb_stack_factory`` in its own fixture::

    @pytest.fixture
    def make_sb_stack(tmp_path, monkeypatch, prefect_harness):
        yield from sb_stack_factory(tmp_path, monkeypatch)
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
from erpsync.connectors.erp.smartbill import InvoiceId
from erpsync.connectors.http import reset_shared_limiters
from erpsync.core.state import StateStore
from erpsync.core.summary import RunState, RunSummary
from erpsync.dev.stack import SimShop, start_shop, write_config
from erpsync.runtime.store_runtime import open_runtime, overrides
from erpsync.testing.server import RunningServer, serve_in_thread
from erpsync.testing.smartbill import SimInvoice, SmartBillSimulator

STORE = "main"
CIF = "RO12345678"
USER, TOKEN = "office@example.ro", "sb-token-0001"
WAREHOUSE = "Depozit"
SKUS = ("SKU-A", "SKU-B")
VAT_21 = 5  # the simulated shop's "TVA 21%" (SmartBill's simulator knows 21, 11 and 0)
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
class SmartBillStack:
    shop: SimShop
    sb: SmartBillSimulator
    state_url: str
    url: str  # SmartBill's API base on loopback
    stock_calls: list[tuple[str, set[str]]] = field(default_factory=list)

    @property
    def sim(self) -> Any:
        return self.shop.sim

    @property
    def state(self) -> StateStore:
        return runtime_module.state_store(self.state_url)

    def order(self, lines: dict[str, int], **fields: Any) -> str:
        """A paid shop order of these SKUs and quantities (shipping 15); ``fields`` override the payload."""
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
        # the shipping VAT is the shop's setting (read-only in the API); the simulated shop's default 19% is a rate
        # SmartBill no longer has (21% since August 2025)
        self.sim.orders[order_id] = {**self.sim.orders[order_id], "shipping_tax_percent": 21}
        return order_id

    def run(self, flow: str = "orders", *, ok: bool = True, **params: Any) -> RunSummary:
        """Run a flow of the store in this process; ``ok``: assert it completed."""
        from erpsync.flows.registry import load_flow

        summary = run_flow(load_flow(flow), flow, STORE, params)
        if ok:
            assert summary.state is RunState.COMPLETED, summary.message
        return summary

    def invoices(self) -> list[SimInvoice]:
        """The SmartBill documents issued that are neither stornos nor returns (positive quantities)."""
        return [i for i in self.sb.invoices.values() if i.storno_of is None and not negative(i)]

    def returns(self) -> list[SimInvoice]:
        """The return invoices: negative quantities, not a storno."""
        return [i for i in self.sb.invoices.values() if i.storno_of is None and negative(i)]

    def tags(self, order_id: str) -> list[str]:
        return [t["name"] for t in self.sim.orders[order_id]["tags"]]

    def shop_stock(self, sku: str) -> Any:
        """The shop's stock of one unit (basic product or variant), read without an API call."""
        for product in self.sim.products.values():
            for unit in product.get("variants") or [product]:
                if unit.get("sku") == sku:
                    return unit.get("stock")
        raise KeyError(sku)


def negative(invoice: SimInvoice) -> bool:
    return any(Decimal(str(line.get("quantity") or 0)) < 0 for line in invoice.products)


def printed(invoice: SimInvoice) -> str:
    """The document's number as erpsync shows it (``"WEB 0002"``, ``InvoiceId.printed``)."""
    return InvoiceId.parse(invoice.key).printed


def products_of(invoice: SimInvoice) -> dict[str, Decimal]:
    """code -> quantity of the stock lines of a SmartBill document."""
    return {str(p["code"]): Decimal(str(p["quantity"])) for p in invoice.products if p.get("code")}


def set_status(order_id: str, status: str) -> None:
    """What the shop's admin does: ``PATCH /orders/{id}/<status>`` (through the real shop client)."""
    with open_runtime(STORE) as runtime:
        runtime.shop.set_order_status(order_id, status)  # type: ignore[arg-type]


def sb_stack_factory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., SmartBillStack]]:
    """A factory of stacks; everything it started is stopped after the test.

    ``make(orders=..., erp=..., store=..., stock=..., shop_products=..., record_stock=True, sim=...)``:
    ``orders`` the ``[stores.orders]`` keys, ``erp`` extra ``[erp]`` keys, ``store`` extra store keys (``products``,
    ``reconcile``...), ``stock`` SmartBill's warehouses (name -> code -> quantity; default 10 of each of ``SKUS``
    in ``Depozit``), ``shop_products`` SKU -> shop stock (None: no stock given) of the shop's basic products,
    ``record_stock`` replaces the order flow's stock sub-flow by a recorder (False: the real sub-flow runs),
    ``sim`` the simulator's keyword arguments.
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
        shop_products: Mapping[str, float | None] | None = None,
        record_stock: bool = True,
        unpaced: bool = True,
        sim: Mapping[str, Any] | None = None,
    ) -> SmartBillStack:
        shop = start_shop(STORE)
        shops.append(shop)
        for sku, quantity in (shop_products if shop_products is not None else dict.fromkeys(SKUS)).items():
            extra = {} if quantity is None else {"stock": quantity}
            shop.sim.add_product({"name": f"Produs {sku}", "sku": sku, "price_gross": 121, "tax_id": VAT_21, **extra})
        warehouses = stock if stock is not None else {WAREHOUSE: dict.fromkeys(SKUS, 10)}
        sb = SmartBillSimulator(cif=CIF, users={USER: TOKEN}, warehouses=warehouses, series=("WEB",), **(sim or {}))
        server = serve_in_thread(sb)
        servers.append(server)
        state_url = f"sqlite:///{tmp_path / 'state.db'}"
        store_keys: dict[str, Any] = {"warehouses": [next(iter(warehouses))]}
        if orders:
            store_keys["orders"] = dict(orders)
        store_keys.update(store or {})
        path = write_config(
            tmp_path / "erpsync.toml",
            erp={
                "type": "smartbill",
                "url": f"{server.url}/SBORO/api",
                "username": USER,
                "token": f"literal:{TOKEN}",
                "cif": CIF,
                "invoice_series": "WEB",
                **(erp or {}),
            },
            shops=[shop],
            state_url=state_url,
            stores={STORE: store_keys},
        )
        stack = SmartBillStack(shop, sb, state_url, f"{server.url}/SBORO/api")
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
