# ruff: noqa: F811  (the make_stack fixture is imported from test_orders_flow and requested by name)
"""An order's life after its import, through the real order flow (Prefect harness, simulated shop) on the
in-memory ERP: cancellations before and after shipping, refused parcels, partial returns, edits applied or held,
the invoice back — each booked once, however often the flow runs."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from typer.testing import CliRunner

from erpsync.app.cli import app
from erpsync.runtime.store_runtime import open_runtime
from tests.flows.test_orders_flow import FakeStack, make_stack  # noqa: F401  (the fixture)

WH = "WH"


def stocked(make: Callable[..., FakeStack], **orders: object) -> FakeStack:
    stack = make(**orders)
    stack.erp.data.order_warehouse = WH
    for sku in ("SKU-A", "SKU-B"):
        stack.product(sku)
        stack.erp.data.set(sku, WH, 10)
    return stack


def level(stack: FakeStack, sku: str) -> tuple[Decimal, Decimal]:
    row = stack.erp.data.stock[(sku, WH)]
    return row.on_hand, row.reserved


def two_lines(stack: FakeStack) -> str:
    return stack.order(
        "SKU-A",
        line_items=[{"product_sku": "SKU-A", "quantity": 2}, {"product_sku": "SKU-B", "quantity": 1}],
    )


def tags(stack: FakeStack, order_id: str) -> list[str]:
    return [t["name"] for t in stack.sim.orders[order_id]["tags"]]


def test_cancelled_before_shipping_the_sale_is_cancelled_and_the_reservation_freed_once(
    make_stack: Callable[..., FakeStack],
) -> None:
    stack = stocked(make_stack)
    order_id = stack.order("SKU-A", quantity=2)
    stack.run()
    assert level(stack, "SKU-A") == (10, 2)
    stack.sim.orders[order_id]["shipping_status"] = "cancelled"
    stack.stock_calls.clear()
    summary = stack.run()
    sale = stack.erp.data.sales_for(order_id)[0]
    assert sale.state == "cancelled" and level(stack, "SKU-A") == (10, 0)
    assert stack.stock_calls == [("main", {"SKU-A"})]  # the shop's stock follows in the same run
    assert [row["what"] for row in summary.details["after_import"]] == ["cancelled"]
    assert "after import: 1 cancelled" in summary.message
    assert tags(stack, order_id) == ["Anulata in ERP"]
    assert stack.state.journal_get("main", order_id).state == "cancelled"  # type: ignore[union-attr]
    again = stack.run()
    assert again.details["after_import"] == [] and stack.erp.data.returns == {} and level(stack, "SKU-A") == (10, 0)


def test_cancelled_after_shipping_becomes_one_return_with_the_stock_back(make_stack: Callable[..., FakeStack]) -> None:
    stack = stocked(make_stack)
    order_id = stack.order("SKU-A", quantity=2)
    stack.run()
    sale = stack.erp.data.sales_for(order_id)[0]
    stack.erp.data.ship(sale.erp_id, awb="AWB1")
    stack.erp.data.invoice(sale.erp_id, "FACT 7")
    assert level(stack, "SKU-A") == (8, 0)
    stack.sim.orders[order_id]["shipping_status"] = "cancelled"
    summary = stack.run()
    assert list(stack.erp.data.returns) == [f"{order_id}/R1"]
    assert stack.erp.data.returns[f"{order_id}/R1"].credit_note == "CN-1"
    assert level(stack, "SKU-A") == (10, 0)
    assert summary.details["after_import"][0]["what"] == "return"
    assert tags(stack, order_id) == ["Retur ERP CN-1"]
    for _ in range(2):
        assert stack.run().details["after_import"] == []
    assert len(stack.erp.data.returns) == 1 and level(stack, "SKU-A") == (10, 0)


def test_a_refused_cod_parcel_and_a_partial_return_book_only_what_came_back(
    make_stack: Callable[..., FakeStack],
) -> None:
    stack = stocked(make_stack)
    order_id = two_lines(stack)
    stack.run()
    sale = stack.erp.data.sales_for(order_id)[0]
    stack.erp.data.ship(sale.erp_id, awb="AWB1")
    assert (level(stack, "SKU-A"), level(stack, "SKU-B")) == ((8, 0), (9, 0))
    stack.sim.return_line(order_id, "SKU-B")  # one of two lines comes back
    stack.stock_calls.clear()
    first = stack.run()
    assert [r["detail"] for r in first.details["after_import"]] == ["SKU-B x 1"]
    assert (level(stack, "SKU-A"), level(stack, "SKU-B")) == ((8, 0), (10, 0))
    assert stack.stock_calls == [("main", {"SKU-B"})]
    assert stack.run().details["after_import"] == []  # re-run: nothing new
    # then the rest of the parcel is refused at the door: the shop marks the order returned
    with open_runtime("main") as runtime:
        runtime.shop.set_order_status(order_id, "returned")
    second = stack.run()
    assert [r["detail"] for r in second.details["after_import"]] == ["SKU-A x 2"]
    assert list(stack.erp.data.returns) == [f"{order_id}/R1", f"{order_id}/R2"]
    assert (level(stack, "SKU-A"), level(stack, "SKU-B")) == ((10, 0), (10, 0))
    assert stack.state.journal_get("main", order_id).state == "cancelled"  # type: ignore[union-attr]
    assert stack.run().details["after_import"] == [] and len(stack.erp.data.returns) == 2


def test_an_edit_to_a_quotation_is_applied(make_stack: Callable[..., FakeStack]) -> None:
    stack = stocked(make_stack, confirm=False)
    stack.erp.data.new_sale_state = "quotation"
    order_id = stack.order("SKU-A", quantity=1)
    stack.run()
    with open_runtime("main") as runtime:
        runtime.shop.patch_order(order_id, {"line_items": [{"product_sku": "SKU-A", "quantity": 3}]})
    summary = stack.run()
    sale = stack.erp.data.sales_for(order_id)[0]
    assert [line.quantity for line in sale.order.lines] == [3]
    assert level(stack, "SKU-A") == (10, 3)
    assert summary.details["after_import"][0]["what"] == "edit applied"
    assert "SKU SKU-A quantity 1 -> 3" in summary.details["after_import"][0]["detail"]
    assert stack.run().details["after_import"] == []


def test_an_edit_to_a_confirmed_order_is_held_with_the_diff_until_a_person_resolves_it(
    make_stack: Callable[..., FakeStack],
) -> None:
    stack = stocked(make_stack)
    order_id = stack.order("SKU-A", quantity=1)
    stack.run()
    with open_runtime("main") as runtime:
        runtime.shop.patch_order(order_id, {"line_items": [{"product_sku": "SKU-A", "quantity": 3}]})
    summary = stack.run()
    assert summary.details["edits_held"] == [order_id] and "1 edits held" in summary.message
    failure = stack.state.failure("main", "order_edit", order_id)
    assert failure is not None and "SKU SKU-A quantity 1 -> 3" in failure.error
    assert [line.quantity for line in stack.erp.data.sales_for(order_id)[0].order.lines] == [1]  # nothing written
    listed = CliRunner().invoke(app, ["failures", "list", "--store", "main", "--json"])
    assert '"held": true' in listed.output and "order_edit" in listed.output
    resolved = CliRunner().invoke(app, ["failures", "resolve", "--store", "main", "--entity", "order_edit", order_id])
    assert resolved.exit_code == 0, resolved.output
    assert stack.state.failure("main", "order_edit", order_id).resolved  # type: ignore[union-attr]
    with open_runtime("main") as runtime:
        runtime.shop.patch_order(order_id, {"customer_note": "ring twice"})  # a later change that is no edit
    assert stack.run().details["edits_held"] == []  # the shop's version is the baseline now
    unknown = CliRunner().invoke(app, ["failures", "resolve", "--store", "main", "--entity", "order_edit", "nope"])
    assert unknown.exit_code == 2 and "nope" in unknown.output


def test_the_invoice_and_every_shipment_reach_the_shop_once(make_stack: Callable[..., FakeStack]) -> None:
    stack = stocked(make_stack, direction="both")
    order_id = stack.order("SKU-A")
    stack.run()
    sale = stack.erp.data.sales_for(order_id)[0]
    stack.erp.data.invoice(sale.erp_id, "FACT 12", url="https://erp.example.ro/invoice/12.pdf")
    stack.erp.data.ship(sale.erp_id, awb="AWB1", carrier="Fan Courier")
    summary = stack.run()
    order = stack.sim.orders[order_id]
    meta = order["meta_fields"]
    assert meta["erp_invoice_number"] == "FACT 12"
    assert meta["erp_invoice_url"] == "https://erp.example.ro/invoice/12.pdf"
    assert meta["erp_invoice_date"] == sale.invoice_date.isoformat()  # type: ignore[union-attr]
    assert meta["erp_shipments"] == "AWB1 (Fan Courier)"
    assert (order["shipping_status"], order["shipping_awb"]) == ("shipped", "AWB1")
    assert "Factura FACT 12" in tags(stack, order_id)
    assert summary.details["invoices_to_shop"] == [
        {"order": order_id, "invoice": "FACT 12", "link": "https://erp.example.ro/invoice/12.pdf"}
    ]
    stack.sim.stats.reset()
    quiet = stack.run()
    assert quiet.details["status_writes"] == 0 and stack.sim.stats.writes == 0 and not quiet.details["invoices_to_shop"]


def test_a_collected_payment_is_booked_once_at_import_or_when_the_shop_marks_it_paid(
    make_stack: Callable[..., FakeStack],
) -> None:
    from dataclasses import replace

    from erpsync.testing.memory_erp import ORDERS

    stack = stocked(make_stack, capabilities=replace(ORDERS, payments_record=True))
    paid = stack.order("SKU-A")  # paid by card before it was imported
    cod = stack.order("SKU-B", payment_status="awaiting", payment_method_code="cash_delivery")
    first = stack.run()
    assert list(stack.erp.data.payments) == [f"{paid}/P1"]
    assert [(r["order"], r["what"]) for r in first.details["after_import"]] == [(paid, "payment")]
    with open_runtime("main") as runtime:
        runtime.shop.patch_order(cod, {"payment_status": "paid"})  # the courier brought the cash
    second = stack.run()
    assert list(stack.erp.data.payments) == [f"{paid}/P1", f"{cod}/P1"]
    assert [(r["order"], r["what"]) for r in second.details["after_import"]] == [(cod, "payment")]
    for _ in range(2):
        assert stack.run().details["after_import"] == []
    assert len(stack.erp.data.payments) == 2
