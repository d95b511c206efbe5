# ruff: noqa: F811  (the make_tryton_stack fixture is imported from test_orders_flow and requested by name)
"""An order's life after import end to end: the real order flow, the real Tryton (the session's server) and the
simulated shop. Cancelled before shipping, cancelled after shipping, a refused cash-on-delivery parcel, a partial
return — each time the shop's stock is back after ONE orders run (its targeted stock sync), and running again
books nothing new in Tryton."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from erpsync.core.summary import RunState
from erpsync.runtime.store_runtime import open_runtime
from tests.flows.test_orders_flow import TrytonStack, make_tryton_stack, unique_order_id  # noqa: F401


def shop_stock(t: TrytonStack, *skus: str) -> dict[str, float]:
    return {p["sku"]: p["stock"] for p in t.sim.products.values() if p["sku"] in skus}


def order_of(t: TrytonStack, lines: dict[str, int]) -> str:
    """A cash-on-delivery shop order of these SKUs and quantities."""
    order_id = unique_order_id()
    t.sim.add_order(
        {
            **t.buyer(),
            "id": order_id,
            "payment_status": "awaiting",
            "payment_method_code": "cash_delivery",
            "shipping_status": "awaiting",
            "shipping_amount": 15,
            "line_items": [{"product_sku": sku, "quantity": qty} for sku, qty in lines.items()],
        }
    )
    return order_id


def returns_of(t: TrytonStack, order_id: str) -> list[dict[str, Any]]:
    """The Tryton return sales booked for a shop order (reference = the order's + /R<n>)."""
    rows: list[dict[str, Any]] = t.session.call(
        "model.sale.sale.search_read",
        [("reference", "like", f"{order_id}/R%")],
        0,
        None,
        [("id", "ASC")],
        ["reference", "state", "invoices", "lines"],
        t.session.context,
    )
    return rows


def return_lines(t: TrytonStack, sale: dict[str, Any]) -> dict[str, float]:
    lines = t.session.call("model.sale.line.read", sale["lines"], ["product.code", "quantity"], t.session.context)
    return {line["product."]["code"]: line["quantity"] for line in lines if line.get("product.")}


def credit_notes(t: TrytonStack, sale: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = t.session.call(
        "model.account.invoice.read", sale["invoices"], ["state", "total_amount", "number"], t.session.context
    )
    return rows


def set_status(order_id: str, status: str) -> None:
    with open_runtime("main") as runtime:
        runtime.shop.set_order_status(order_id, status)  # type: ignore[arg-type]


def test_e2e_cancelled_before_shipping_the_sale_is_undone_and_the_shop_stock_is_back(
    make_tryton_stack: Callable[..., TrytonStack],
) -> None:
    t = make_tryton_stack()
    sku = t.product(tryton_stock=20)
    order_id = order_of(t, {sku: 3})
    first = t.run()
    assert first.created == 1 and shop_stock(t, sku) == {sku: 17}
    set_status(order_id, "cancelled")
    undone = t.run()
    assert undone.state is RunState.COMPLETED, undone.message
    assert [r["what"] for r in undone.details["after_import"]] == ["cancelled"]
    sale = t.sales(order_id)[0]
    # Tryton cannot cancel a processing sale: its shipment and draft invoice are cancelled and the exceptions
    # ignored, so it ends "done" with nothing shipped nor invoiced (docs/orders.md, "After the import").
    assert sale["state"] in ("cancelled", "done")
    shipments = t.session.call("model.stock.shipment.out.read", sale["shipments"], ["state"], t.session.context)
    assert {s["state"] for s in shipments} == {"cancelled"}
    assert shop_stock(t, sku) == {sku: 20}  # what it was before the order, after this one run
    again = t.run()
    assert again.details["after_import"] == [] and again.erp_writes == 0
    assert returns_of(t, order_id) == [] and len(t.sales(order_id)) == 1


def test_e2e_cancelled_after_shipping_is_a_return_with_a_credit_note_and_the_stock_back(
    make_tryton_stack: Callable[..., TrytonStack],
) -> None:
    t = make_tryton_stack()
    sku = t.product(tryton_stock=20)
    order_id = order_of(t, {sku: 2})
    t.run()
    t.ship_and_invoice(order_id, "AWB-RET-1")
    set_status(order_id, "cancelled")
    booked = t.run()
    assert booked.state is RunState.COMPLETED, booked.message
    returns = returns_of(t, order_id)
    assert [r["reference"] for r in returns] == [f"{order_id}/R1"]
    assert return_lines(t, returns[0]) == {sku: -2.0}
    notes = credit_notes(t, returns[0])
    assert len(notes) == 1 and float(notes[0]["total_amount"]) < 0 and notes[0]["state"] == "posted"
    assert shop_stock(t, sku) == {sku: 20}
    assert booked.details["after_import"][0]["what"] == "return"
    for _ in range(2):
        assert t.run().details["after_import"] == []
    assert len(returns_of(t, order_id)) == 1 and shop_stock(t, sku) == {sku: 20}


def test_e2e_a_refused_parcel_and_a_partial_return_book_only_what_came_back(
    make_tryton_stack: Callable[..., TrytonStack],
) -> None:
    t = make_tryton_stack()
    sku_a, sku_b = t.product(tryton_stock=20), t.product(tryton_stock=20)
    partial = order_of(t, {sku_a: 1, sku_b: 2})
    refused = order_of(t, {sku_a: 2})
    t.run()
    t.ship_and_invoice(partial, "AWB-PART-1")
    t.ship_and_invoice(refused, "AWB-REF-1")
    assert shop_stock(t, sku_a, sku_b) == {sku_a: 17, sku_b: 18}
    t.sim.return_line(partial, sku_b)  # one of two lines comes back
    set_status(refused, "returned")  # the courier brings the parcel back: refused at the door
    booked = t.run()
    assert booked.state is RunState.COMPLETED, booked.message
    assert {r["order"] for r in booked.details["after_import"]} == {partial, refused}
    [partial_return] = returns_of(t, partial)
    assert return_lines(t, partial_return) == {sku_b: -2.0}  # only that line
    [refused_return] = returns_of(t, refused)
    assert return_lines(t, refused_return) == {sku_a: -2.0}
    assert shop_stock(t, sku_a, sku_b) == {sku_a: 19, sku_b: 20}
    again = t.run()
    assert again.details["after_import"] == []
    assert len(returns_of(t, partial)) == 1 and len(returns_of(t, refused)) == 1


def test_e2e_an_edit_to_a_quotation_is_applied(
    make_tryton_stack: Callable[..., TrytonStack],
) -> None:
    quotations = make_tryton_stack(confirm=False)
    sku = quotations.product(tryton_stock=20)
    order_id = order_of(quotations, {sku: 1})
    quotations.run()
    [sale] = quotations.sales(order_id)
    assert sale["state"] == "quotation"
    with open_runtime("main") as runtime:
        runtime.shop.patch_order(order_id, {"line_items": [{"product_sku": sku, "quantity": 3}]})
    applied = quotations.run()
    assert applied.state is RunState.COMPLETED, applied.message
    assert [r["what"] for r in applied.details["after_import"]] == ["edit applied"]
    [sale] = quotations.sales(order_id)
    lines = quotations.session.call(
        "model.sale.line.read",
        quotations.session.call("model.sale.sale.read", [sale["id"]], ["lines"], quotations.session.context)[0][
            "lines"
        ],
        ["product.code", "quantity"],
        quotations.session.context,
    )
    quantities = {line["product."]["code"]: line["quantity"] for line in lines if line.get("product.")}
    assert quantities == {sku: 3.0, "SHIPPING": 1.0}
    assert sale["state"] == "quotation" and quotations.run().details["after_import"] == []


def test_e2e_an_edit_to_a_processing_sale_is_held_with_the_diff(make_tryton_stack: Callable[..., TrytonStack]) -> None:
    t = make_tryton_stack()
    sku = t.product(tryton_stock=20)
    order_id = order_of(t, {sku: 1})
    t.run()
    with open_runtime("main") as runtime:
        runtime.shop.patch_order(order_id, {"line_items": [{"product_sku": sku, "quantity": 2}]})
    held = t.run()
    assert held.details["edits_held"] == [order_id]
    failure = t.state.failure("main", "order_edit", order_id)
    assert failure is not None and f"SKU {sku} quantity 1 -> 2" in failure.error
    [sale] = t.sales(order_id)
    assert sale["state"] == "processing"
