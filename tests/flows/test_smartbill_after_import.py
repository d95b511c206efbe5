"""An order's life after its import through the real order flow on the real SmartBill connector: the Prefect
harness, a simulated MerchantPro shop and the SmartBill simulator, both served on loopback, configured through an
``erpsync.toml`` with ``[erp] type = "smartbill"``. A shop order cancelled after import becomes exactly ONE
storno; a partial return exactly one negative invoice of just the line that came back; with direction "both" the
invoice's number and link reach the shop once. Re-runs book nothing and write nothing.

The stock sync after the orders (``refresh_stock``) is replaced by a recorder: SmartBill stock through the flow is
another test's work; here it is enough that the SKUs that moved are handed to it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from tests.flows.smartbill_stack import (
    WAREHOUSE,
    SmartBillStack,
    printed,
    sb_stack_factory,
    set_status,
)
from tests.flows.smartbill_stack import (
    products_of as _products,
)


@pytest.fixture
def make_sb_stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_harness: None
) -> Iterator[Callable[..., SmartBillStack]]:
    yield from sb_stack_factory(tmp_path, monkeypatch)


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
    stack = make_sb_stack(orders={"direction": "both"})
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
    stack = make_sb_stack(orders={"direction": "both"})
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
