"""The pure rules of an order's life after import: what came back, the next cancel or return, edits and their
diff, and what the status back-sync writes of invoices and shipments."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from erpsync.connectors.merchantpro.mapping import order_from_shop, returned_quantity
from erpsync.core.models import Address, Customer, ErpInvoice, ErpOrderStatus, ErpShipment, Order, OrderLine
from erpsync.core.order_after import (
    baseline,
    content,
    content_diff,
    dump_content,
    dump_lines,
    plan_undo,
    taken_back,
    wanted_back,
)
from erpsync.core.order_rules import INVOICE_META, SHIPMENTS_META, plan_status, status_record


@dataclass(frozen=True)
class Event:
    seq: int
    kind: str
    state: str = "done"
    reference: str | None = None
    lines: str | None = None
    payload: str | None = None


def order(status: str = "awaiting", returned: dict[str, int] | None = None, **fields: object) -> Order:
    returned = returned or {}
    lines = [
        OrderLine(
            sku=f"P-{sku}",
            quantity=Decimal(qty),
            unit_price_gross=Decimal("10.00"),
            vat_rate=Decimal(21),
            returned_quantity=Decimal(returned.get(sku, 0)),
        )
        for sku, qty in (("A", 2), ("B", 1))
    ]
    values: dict[str, object] = {
        "shop_id": "42209911",
        "customer": Customer(email="ana@example.ro", name="Ana"),
        "lines": lines,
        "shipping_status": status,
        "total": Decimal("30.00"),
        "shipping": Address(name="Ana", city="Cluj"),
    }
    values.update(fields)
    return Order.model_validate(values)


def test_a_cancelled_or_returned_order_wants_everything_back_a_returned_line_only_itself() -> None:
    assert wanted_back(order(), "P-") == {}
    assert wanted_back(order("cancelled"), "P-") == {"A": 2, "B": 1}  # ERP SKUs: the store's prefix taken off
    assert wanted_back(order("returned"), "P-") == {"A": 2, "B": 1}
    assert wanted_back(order(returned={"B": 1}), "P-") == {"B": 1}
    assert wanted_back(order(returned={"A": 5}), "P-") == {"A": 2}  # never more than was sold


def test_the_first_undo_of_a_whole_order_is_a_cancel_later_ones_returns_of_what_is_left() -> None:
    plan = plan_undo(order("cancelled"), [], erp_reference="B-42209911", sku_prefix="P-")
    assert plan is not None and (plan.kind, plan.reference, plan.lines) == ("cancel", "B-42209911/R1", {"A": 2, "B": 1})
    partial = [Event(1, "baseline"), Event(2, "return", reference="B-42209911/R1", lines=dump_lines({"B": Decimal(1)}))]
    plan = plan_undo(order("returned"), partial, erp_reference="B-42209911", sku_prefix="P-")
    assert plan is not None and (plan.kind, plan.reference, plan.lines) == ("return", "B-42209911/R2", {"A": 2})
    assert [(r.sku, r.quantity) for r in plan.return_lines()] == [("A", 2)]


def test_a_partial_return_books_only_that_line_and_a_rerun_books_nothing() -> None:
    shop = order(returned={"B": 1})
    plan = plan_undo(shop, [Event(1, "baseline")], erp_reference="42209911", sku_prefix="P-")
    assert plan is not None and (plan.kind, plan.lines) == ("return", {"B": 1})
    done = [Event(1, "baseline"), Event(2, "return", reference=plan.reference, lines=dump_lines(plan.lines))]
    assert plan_undo(shop, done, erp_reference="42209911", sku_prefix="P-") is None
    assert taken_back(done, shop, "P-") == {"B": 1}


def test_a_pending_event_is_resumed_as_written_never_planned_again() -> None:
    pending = [Event(1, "cancel", state="pending", reference="X/R1", lines=dump_lines({"A": Decimal(2)}))]
    plan = plan_undo(order("cancelled"), pending, erp_reference="X", sku_prefix="P-")
    assert plan is not None and (plan.seq, plan.kind, plan.reference, plan.lines) == (1, "cancel", "X/R1", {"A": 2})
    done = [Event(1, "cancel", reference="X/R1", lines=dump_lines({"A": Decimal(2), "B": Decimal(1)}))]
    assert plan_undo(order("cancelled"), done, erp_reference="X", sku_prefix="P-") is None


def test_a_held_event_takes_nothing_back() -> None:
    held = [Event(1, "return", state="held", reference="X/R1", lines=dump_lines({"B": Decimal(1)}))]
    assert taken_back(held, order(), "P-") == {}


def test_edits_are_the_content_that_changed_and_say_what() -> None:
    old = content(order())
    new = content(
        order(
            lines=[
                OrderLine(sku="P-A", quantity=Decimal(3), unit_price_gross=Decimal("10.00"), vat_rate=Decimal(21)),
                OrderLine(sku="P-C", quantity=Decimal(1), unit_price_gross=Decimal("5.00"), vat_rate=Decimal(21)),
            ],
            total=Decimal("35.00"),
            shipping=Address(name="Ana", city="Iasi"),
        )
    )
    diff = content_diff(old, new)
    assert "SKU P-A quantity 2 -> 3" in diff
    assert "SKU P-C added (quantity 1)" in diff
    assert "SKU P-B removed" in diff
    assert "total 30.00 -> 35.00" in diff
    assert "shipping address city: 'Cluj' -> 'Iasi'" in diff
    # statuses and returns are not edits
    assert content(order("shipped", returned={"B": 1}, awb="AWB1")) == old
    assert content_diff(old, old) == []


def test_the_baseline_is_the_last_applied_or_accepted_content() -> None:
    first, second = dump_content(order()), dump_content(order(total=Decimal("31.00")))
    events = [Event(1, "baseline", payload=first), Event(2, "edit", state="held", payload=second)]
    assert baseline(events) == json.loads(first)  # a held edit is not what the ERP has
    assert baseline([*events, Event(3, "edit", payload=second)]) == json.loads(second)
    assert baseline([]) is None


def test_a_returned_line_is_read_from_the_shop_line_status_or_an_explicit_quantity() -> None:
    assert returned_quantity({"status": {"id": 4, "name": "Returnat", "color": "#d9534f"}}, Decimal(2)) == 2
    assert returned_quantity({"status": {"name": "Refuzat"}}, Decimal(1)) == 1
    assert returned_quantity({"status": {"name": "Livrat"}}, Decimal(2)) == 0
    assert returned_quantity({"status": None}, Decimal(2)) == 0
    assert returned_quantity({"returned_quantity": "1"}, Decimal(3)) == 1
    row = {
        "id": "42209911",
        "shipping_status": "delivered",
        "has_returns": True,
        "meta_fields": {"erp_invoice_number": "F 7"},
        "line_items": [
            {"id": 1, "product_sku": "A", "quantity": 2, "unit_price_gross": 10, "status": {"name": "Returnat"}},
            {"id": 2, "product_sku": "B", "quantity": 1, "unit_price_gross": 10},
        ],
    }
    shop = order_from_shop(row)
    assert [line.returned_quantity for line in shop.lines] == [2, 0]
    assert shop.meta == {"erp_invoice_number": "F 7"}


def status(**fields: object) -> ErpOrderStatus:
    return ErpOrderStatus.model_validate({"erp_id": "17", "state": "processing", **fields})


def test_the_invoice_goes_to_the_shop_once_with_number_date_and_link() -> None:
    invoice = ErpInvoice(erp_id="9", number="FACT 12", issued=date(2026, 12, 4), url="https://erp/inv/9")
    erp = status(invoiced=True, invoice_number="FACT 12", invoices=[invoice])
    plan = plan_status(erp, shop_status="awaiting", last_record=None)
    assert plan is not None and plan.invoice_tag == "Factura FACT 12"
    assert plan.meta == {
        INVOICE_META["number"]: "FACT 12",
        INVOICE_META["date"]: "2026-12-04",
        INVOICE_META["url"]: "https://erp/inv/9",
    }
    assert plan_status(erp, shop_status=plan.shop_status, last_record=plan.record) is None  # a re-run: nothing
    credit = ErpInvoice(erp_id="10", number="CN 1", credit=True)
    assert plan_status(status(invoices=[credit]), shop_status="awaiting", last_record=None).meta == {}  # type: ignore[union-attr]


def test_several_shipments_each_reach_the_shop_with_awb_and_carrier() -> None:
    one = ErpShipment(erp_id="1", state="done", shipped=True, awb="AWB1", carrier="Fan Courier")
    two = ErpShipment(erp_id="2", state="done", shipped=True, awb="AWB2", carrier="Sameday")
    waiting = ErpShipment(erp_id="3", state="waiting")
    first = status(awb="AWB1", shipments=[one, waiting])
    plan = plan_status(first, shop_status="in_process", last_record=None)
    assert plan is not None and plan.awb == "AWB1" and plan.shortcut is None  # not every line left: not shipped
    assert plan.meta == {SHIPMENTS_META: "AWB1 (Fan Courier)"} and plan.tags == ()
    both = status(awb="AWB1", shipped=True, shipments=[one, two])
    later = plan_status(both, shop_status="in_process", last_record=status_record(first))
    assert later is not None and later.shortcut == "shipped" and later.awb is None  # AWB1 is there already
    assert later.tags == ("AWB AWB2 (Sameday)",)
    assert later.meta == {SHIPMENTS_META: "AWB1 (Fan Courier); AWB2 (Sameday)"}
