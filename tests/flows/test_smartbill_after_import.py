"""An order's life after its import through the real order flow on the real SmartBill connector: the Prefect
harness, a simulated MerchantPro shop and the SmartBill simulator, both served on loopback, configured through an
``erpsync.toml`` with ``[erp] type = "smartbill"``. A shop order cancelled after import becomes exactly ONE
storno; a partial return exactly one negative invoice of just the line that came back; with direction "both" the
invoice's number and link reach the shop once. Re-runs book nothing and write nothing.

The stock sync after the orders (``refresh_stock``) is replaced by a recorder: SmartBill stock through the flow is
another test's work; here it is enough that the SKUs that moved are handed to it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
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
    stock_calls: list[tuple[str, set[str]]] = field(default_factory=list)

    @property
    def sim(self) -> Any:
        return self.shop.sim

    @property
    def state(self) -> StateStore:
        return runtime_module.state_store(self.state_url)

    def order(self, lines: dict[str, int]) -> str:
        """A paid shop order of these SKUs and quantities (shipping 15)."""
        payload = {
            **BUYER,
            "payment_status": "paid",
            "payment_method_code": "wire",
            "shipping_status": "awaiting",
            "shipping_amount": 15,
            "line_items": [{"product_sku": sku, "quantity": qty} for sku, qty in lines.items()],
        }
        order_id = str(self.sim.add_order(payload)["id"])
        # the shipping VAT is the shop's setting (read-only in the API); the simulated shop's default 19% is a rate
        # SmartBill no longer has (21% since August 2025)
        self.sim.orders[order_id] = {**self.sim.orders[order_id], "shipping_tax_percent": 21}
        return order_id

    def run(self) -> RunSummary:
        from erpsync.flows.registry import load_flow

        summary = run_flow(load_flow("orders"), "orders", "main", {})
        assert summary.state is RunState.COMPLETED, summary.message
        return summary

    def invoices(self) -> list[SimInvoice]:
        """The SmartBill documents issued that are neither stornos nor returns (positive quantities)."""
        return [i for i in self.sb.invoices.values() if i.storno_of is None and not _negative(i)]

    def returns(self) -> list[SimInvoice]:
        """The return invoices: negative quantities, not a storno."""
        return [i for i in self.sb.invoices.values() if i.storno_of is None and _negative(i)]

    def tags(self, order_id: str) -> list[str]:
        return [t["name"] for t in self.sim.orders[order_id]["tags"]]


def _negative(invoice: SimInvoice) -> bool:
    return any(Decimal(str(line.get("quantity") or 0)) < 0 for line in invoice.products)


def printed(invoice: SimInvoice) -> str:
    """The document's number as erpsync shows it (``"WEB 0002"``, ``InvoiceId.printed``)."""
    return InvoiceId.parse(invoice.key).printed


def _products(invoice: SimInvoice) -> dict[str, Decimal]:
    """code -> quantity of the stock lines of a SmartBill document."""
    return {str(p["code"]): Decimal(str(p["quantity"])) for p in invoice.products if p.get("code")}


@pytest.fixture
def make_sb_stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_harness: None
) -> Iterator[Callable[..., SmartBillStack]]:
    servers: list[RunningServer] = []
    shops: list[SimShop] = []
    reset_shared_limiters()

    def make(**orders: Any) -> SmartBillStack:
        shop = start_shop("main")
        shops.append(shop)
        for sku in SKUS:
            shop.sim.add_product({"name": f"Produs {sku}", "sku": sku, "price_gross": 121, "tax_id": VAT_21})
        sb = SmartBillSimulator(
            cif=CIF, users={USER: TOKEN}, warehouses={WAREHOUSE: {sku: 10 for sku in SKUS}}, series=("WEB",)
        )
        server = serve_in_thread(sb)
        servers.append(server)
        state_url = f"sqlite:///{tmp_path / 'state.db'}"
        path = write_config(
            tmp_path / "erpsync.toml",
            erp={
                "type": "smartbill",
                "url": f"{server.url}/SBORO/api",
                "username": USER,
                "token": f"literal:{TOKEN}",
                "cif": CIF,
                "invoice_series": "WEB",
            },
            shops=[shop],
            state_url=state_url,
            stores={"main": {"warehouses": [WAREHOUSE], **({"orders": orders} if orders else {})}},
        )
        stack = SmartBillStack(shop, sb, state_url)
        monkeypatch.setenv("ERPSYNC_CONFIG", str(path))
        monkeypatch.setattr(overrides, "unpaced", True)

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


def set_status(order_id: str, status: str) -> None:
    """What the shop's admin does: ``PATCH /orders/{id}/cancelled`` (through the real shop client)."""
    with open_runtime("main") as runtime:
        runtime.shop.set_order_status(order_id, status)  # type: ignore[arg-type]


def test_a_cancelled_order_becomes_exactly_one_storno(make_sb_stack: Callable[..., SmartBillStack]) -> None:
    stack = make_sb_stack()
    order_id = stack.order({"SKU-A": 2})
    first = stack.run()
    assert (first.created, first.failed) == (1, 0), first.message
    assert len(stack.sb.invoices) == 1 and stack.sb.quantity(WAREHOUSE, "SKU-A") == 8
    (invoice,) = stack.invoices()
    assert _products(invoice) == {"SKU-A": Decimal(2)} and invoice.mentions.find(order_id) >= 0
    assert stack.state.journal_get("main", order_id).erp_order_id == invoice.key  # type: ignore[union-attr]
    assert (first.erp_reads, first.erp_writes) == (1, 1)  # GET /tax, POST /invoice
    assert stack.stock_calls == [("main", {"SKU-A"})]

    set_status(order_id, "cancelled")
    stack.stock_calls.clear()
    stack.sb.stats.by_route.clear()
    undone = stack.run()
    stornos = stack.sb.stornos()
    assert [s.storno_of for s in stornos] == [invoice.key] and len(stack.sb.invoices) == 2
    assert stornos[0].total == -invoice.total and stack.sb.quantity(WAREHOUSE, "SKU-A") == 10
    assert stack.sb.stats.by_route == {"invoice/reverse": 1}
    assert (undone.erp_reads, undone.erp_writes) == (0, 1)
    rows = undone.details["after_import"]
    assert [(r["order"], r["what"], r["ERP document"]) for r in rows] == [(order_id, "storno", printed(stornos[0]))]
    assert rows[0]["detail"] == f"storno {printed(stornos[0])} of {printed(invoice)}: SKU-A x 2"
    assert "after import: 1 returned" in undone.message
    assert stack.tags(order_id) == [f"Retur ERP {printed(stornos[0])}"]
    assert stack.stock_calls == [("main", {"SKU-A"})]  # the shop's stock follows in the same run
    assert stack.state.journal_get("main", order_id).state == "cancelled"  # type: ignore[union-attr]
    events = [(e.kind, e.state, e.reference) for e in stack.state.order_events("main", order_id)]
    assert events[1:] == [("cancel", "done", f"{order_id}/R1")]

    for _ in range(2):
        again = stack.run()
        assert again.details["after_import"] == [] and (again.erp_reads, again.erp_writes) == (0, 0)
    assert len(stack.sb.stornos()) == 1 and len(stack.sb.invoices) == 2
    assert stack.sb.quantity(WAREHOUSE, "SKU-A") == 10 and stack.tags(order_id) == [f"Retur ERP {printed(stornos[0])}"]


def test_a_partial_return_becomes_one_negative_invoice_of_that_line(
    make_sb_stack: Callable[..., SmartBillStack],
) -> None:
    stack = make_sb_stack()
    order_id = stack.order({"SKU-A": 2, "SKU-B": 1})
    assert stack.run().created == 1
    (invoice,) = stack.invoices()
    assert _products(invoice) == {"SKU-A": Decimal(2), "SKU-B": Decimal(1)}
    assert (stack.sb.quantity(WAREHOUSE, "SKU-A"), stack.sb.quantity(WAREHOUSE, "SKU-B")) == (8, 9)

    stack.sim.return_line(order_id, "SKU-B")
    stack.stock_calls.clear()
    returned = stack.run()
    (credit,) = stack.returns()
    assert _products(credit) == {"SKU-B": Decimal(-1)} and not stack.sb.stornos()
    assert credit.series == invoice.series and credit.total < 0
    assert (stack.sb.quantity(WAREHOUSE, "SKU-A"), stack.sb.quantity(WAREHOUSE, "SKU-B")) == (8, 10)
    assert (returned.erp_reads, returned.erp_writes) == (0, 1)
    rows = returned.details["after_import"]
    assert [(r["what"], r["ERP document"]) for r in rows] == [("return", printed(credit))]
    assert stack.tags(order_id) == [f"Retur ERP {printed(credit)}"]
    assert stack.stock_calls == [("main", {"SKU-B"})]
    assert returned.details["edits_held"] == []  # a returned line is no edit
    assert stack.state.journal_get("main", order_id).state == "created"  # type: ignore[union-attr]

    again = stack.run()
    assert again.details["after_import"] == [] and (again.erp_reads, again.erp_writes) == (0, 0)
    assert len(stack.sb.invoices) == 2 and len(stack.returns()) == 1


def test_the_invoice_number_and_link_reach_the_shop_once(make_sb_stack: Callable[..., SmartBillStack]) -> None:
    stack = make_sb_stack(direction="both")
    order_id = stack.order({"SKU-A": 1})
    first = stack.run()
    assert first.created == 1, first.message
    (invoice,) = stack.invoices()
    meta = stack.sim.orders[order_id]["meta_fields"]
    assert meta["erp_invoice_number"] == printed(invoice)
    assert meta["erp_invoice_url"] == invoice.url and invoice.url.startswith("https://")
    assert first.details["invoices_to_shop"] == [{"order": order_id, "invoice": printed(invoice), "link": invoice.url}]
    assert (first.erp_reads, first.erp_writes) == (1, 1)  # statuses come from the registry: no call

    stack.sim.stats.reset()
    quiet = stack.run()
    assert quiet.details["invoices_to_shop"] == [] and quiet.details["status_writes"] == 0
    assert stack.sim.stats.writes == 0 and (quiet.erp_reads, quiet.erp_writes) == (0, 0)
    assert len(stack.sb.invoices) == 1


def test_a_partial_return_then_the_rest_refused_are_two_returns_and_never_a_storno(
    make_sb_stack: Callable[..., SmartBillStack],
) -> None:
    stack = make_sb_stack(direction="both")
    order_id = stack.order({"SKU-A": 2, "SKU-B": 1})
    assert stack.run().created == 1
    (invoice,) = stack.invoices()
    stack.sim.return_line(order_id, "SKU-B")
    stack.sim.stats.reset()
    first = stack.run()
    assert [r["detail"] for r in first.details["after_import"]] == ["return WEB 0002 of WEB 0001: SKU-B x 1"]
    assert first.details["status_writes"] == 0 and stack.sim.stats.writes == 1  # the tag; the credit is no invoice
    # then the rest of the parcel is refused at the door: the shop marks the order returned
    set_status(order_id, "returned")
    stack.stock_calls.clear()
    second = stack.run()
    rows = second.details["after_import"]
    assert [(r["what"], r["detail"]) for r in rows] == [("return", "return WEB 0003 of WEB 0001: SKU-A x 2")]
    assert [_products(c) for c in stack.returns()] == [{"SKU-B": Decimal(-1)}, {"SKU-A": Decimal(-2)}]
    assert not stack.sb.stornos() and not stack.sb.invoices[invoice.key].cancelled
    assert (stack.sb.quantity(WAREHOUSE, "SKU-A"), stack.sb.quantity(WAREHOUSE, "SKU-B")) == (10, 10)
    assert stack.stock_calls == [("main", {"SKU-A"})]
    assert stack.state.journal_get("main", order_id).state == "cancelled"  # type: ignore[union-attr]
    references = [e.reference for e in stack.state.order_events("main", order_id) if e.kind in ("cancel", "return")]
    assert references == [f"{order_id}/R1", f"{order_id}/R2"]
    stack.sim.stats.reset()
    again = stack.run()
    assert again.details["after_import"] == [] and stack.sim.stats.writes == 0 and len(stack.sb.invoices) == 3
