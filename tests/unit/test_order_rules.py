"""The order stream's pure rules: import/skip/cancel/hold decisions, in-doubt steps, validation, mapping,
ERP orders for the shop, and the status back-sync written only on change."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from erpsync.core.models import Customer, ErpOrderStatus, Order, OrderLine, ShippingStatus
from erpsync.core.order_rules import (
    IN_DOUBT_REASON,
    Action,
    ResumeStep,
    counted_attempts,
    customer_key,
    decide_import,
    dedupe_orders,
    erp_marker,
    erp_reference,
    is_held,
    needs_status_check,
    order_digest,
    order_problems,
    plan_status,
    resume_step,
    status_record,
    to_erp_order,
    to_shop_order,
    wants_erp_order,
)

SKIP = ("temporary",)
VAT = {"19", "9", "5", "0"}


@dataclass(frozen=True)
class Entry:
    state: str = "pending"
    erp_order_id: str | None = None
    digest: str | None = None
    attempts: int = 0


def order(shop_id: str | None = "42209911", status: str = "awaiting", **fields: object) -> Order:
    values: dict[str, object] = {
        "shop_id": shop_id,
        "customer": Customer(email="Ana@Example.ro", name="Ana"),
        "lines": [
            OrderLine(sku="SKU-1", quantity=Decimal(2), unit_price_gross=Decimal("23.80"), vat_rate=Decimal("19.00"))
        ],
        "shipping_status": ShippingStatus(status),
    }
    values.update(fields)
    return Order.model_validate(values)


def decide(o: Order, entry: Entry | None, failures: int = 0, **kw: object) -> Action:
    options: dict[str, object] = {"skip_statuses": SKIP, "max_attempts": 5, **kw}
    return decide_import(o, order_digest(o), entry, failures, **options).action  # type: ignore[arg-type]


# --------------------------------------------------------------------------- decisions


def test_new_orders_are_imported_unless_skipped_or_cancelled() -> None:
    assert decide(order(), None) is Action.IMPORT
    assert decide(order(status="temporary"), None) is Action.SKIP
    assert decide(order(status="cancelled"), None) is Action.SKIP
    assert decide(order(status="shipped"), None) is Action.IMPORT
    assert decide(order(status="awaiting"), None, skip_statuses=("awaiting",)) is Action.SKIP


def test_a_claimed_but_never_sent_entry_is_imported_like_a_new_one() -> None:
    assert decide(order(), Entry(attempts=0)) is Action.IMPORT
    assert decide(order(status="temporary"), Entry(attempts=0)) is Action.SKIP


def test_an_order_sent_before_without_an_erp_id_is_resumed_never_blindly_created() -> None:
    assert decide(order(), Entry(state="pending", attempts=1)) is Action.RESUME
    assert decide(order(), Entry(state="failed", attempts=3)) is Action.RESUME
    # cancelled in the shop meanwhile: still looked up (it may exist in the ERP and need cancelling)
    assert decide(order(status="cancelled"), Entry(state="failed", attempts=1)) is Action.RESUME


def test_imported_orders_are_unchanged_or_looked_at_after_import() -> None:
    o = order()
    done = Entry(state="created", erp_order_id="17", digest=order_digest(o), attempts=1)
    assert decide(o, done) is Action.UNCHANGED
    assert decide(o, done, forced=True) is Action.AFTER  # a person's re-send looks again (returns, edits)
    changed = o.model_copy(update={"note": "please ring twice"})
    assert decide(changed, done) is Action.AFTER  # changed in the shop: cancels, returns, edits are checked
    cancelled = o.model_copy(update={"shipping_status": ShippingStatus.CANCELLED})
    assert decide(cancelled, done) is Action.AFTER
    already = Entry(state="cancelled", erp_order_id="17", digest=order_digest(cancelled), attempts=1)
    assert decide(cancelled, already) is Action.UNCHANGED
    assert decide(changed, already) is Action.SEEN  # undone in the ERP: nothing more to book


def test_modified_at_alone_does_not_change_the_digest() -> None:
    o = order(modified_at=datetime(2026, 11, 20, 10, tzinfo=UTC))
    later = o.model_copy(update={"modified_at": datetime(2026, 11, 21, 10, tzinfo=UTC)})
    assert order_digest(o) == order_digest(later)
    assert order_digest(o) != order_digest(o.model_copy(update={"awb": "AWB1"}))


def test_failed_too_often_is_held_unless_a_person_forces_it() -> None:
    assert decide(order(), Entry(state="failed", attempts=5), failures=5) is Action.HOLD
    assert decide(order(), None, failures=5) is Action.HOLD  # e.g. an unmappable order, never claimed
    assert decide(order(), None, failures=4) is Action.IMPORT
    assert decide(order(), Entry(state="failed", attempts=5), failures=5, forced=True) is Action.RESUME
    done = Entry(state="created", erp_order_id="17", attempts=1)
    cancelled = order(status="cancelled")
    assert decide(cancelled, done, failures=5) is Action.HOLD
    assert decide(cancelled, done, failures=5, forced=True) is Action.AFTER
    # a held failure does not stop an imported order from being recognised as unchanged
    assert (
        decide(order(), Entry(state="created", erp_order_id="17", digest=order_digest(order())), 9) is Action.UNCHANGED
    )


@pytest.mark.parametrize(
    ("found", "cancelled", "authoritative", "forced", "step"),
    [
        (True, False, True, False, ResumeStep.CREATE),  # completes a half-done sale, returns the same id
        (True, True, True, False, ResumeStep.AFTER_FOUND),
        (False, False, True, False, ResumeStep.CREATE),  # the ERP says it is not there: send it
        (False, True, True, False, ResumeStep.MARK_CANCELLED),
        (False, False, False, False, ResumeStep.HOLD),  # cannot tell: a person checks (SmartBill)
        (False, True, False, False, ResumeStep.HOLD),
        (False, False, False, True, ResumeStep.CREATE),  # the person said: send it
        (True, False, False, False, ResumeStep.CREATE),  # the registry knew it
    ],
)
def test_resume_steps(found: bool, cancelled: bool, authoritative: bool, forced: bool, step: ResumeStep) -> None:
    assert resume_step(found, shop_cancelled=cancelled, authoritative=authoritative, forced=forced) is step


@pytest.mark.parametrize(
    ("found", "cancelled", "step"),
    [
        (False, False, ResumeStep.CREATE),  # Oblio: the re-sent POST returns the invoice of the first send
        (False, True, ResumeStep.HOLD),  # cancelled meanwhile: not re-sent only to find out; a person checks
        (True, True, ResumeStep.AFTER_FOUND),
    ],
)
def test_resume_steps_of_an_idempotent_create(found: bool, cancelled: bool, step: ResumeStep) -> None:
    assert resume_step(found, shop_cancelled=cancelled, authoritative=False, forced=False, idempotent=True) is step


def test_in_doubt_reason_tells_the_person_what_to_do() -> None:
    assert "resync-order" in IN_DOUBT_REASON and "reference" in IN_DOUBT_REASON


def test_dedupe_keeps_the_last_copy_of_each_id_in_first_seen_order() -> None:
    a1, b, a2 = order("A"), order("B"), order("A", note="newer")
    assert [(o.shop_id, o.note) for o in dedupe_orders([a1, b, a2])] == [("A", "newer"), ("B", "")]


# --------------------------------------------------------------------------- validation and mapping


def test_problems_name_the_line_and_the_missing_vat_mapping() -> None:
    assert order_problems(order(), vat_rates=VAT) == []
    odd = order(lines=[OrderLine(sku="SKU-1", quantity=Decimal(1), vat_rate=Decimal("24.0"))])
    assert order_problems(odd, vat_rates=VAT) == [
        "VAT rate 24% of SKU 'SKU-1' has no mapping ([stores.products] vat_taxes has 0, 19, 5, 9)"
    ]
    assert order_problems(odd, vat_rates=None) == []  # no VAT check asked for
    shipping = order(shipping_amount=Decimal("15"), shipping_vat_rate=Decimal("21"))
    assert order_problems(shipping, vat_rates=VAT) == [
        "shipping VAT rate 21% has no mapping ([stores.products] vat_taxes)"
    ]
    assert order_problems(order(lines=[]), vat_rates=VAT) == ["the order has no product lines"]
    assert order_problems(order(), vat_rates=VAT, sku_prefix="CJ-") == [
        "SKU 'SKU-1' does not carry this store's prefix 'CJ-'"
    ]


def test_erp_order_takes_off_the_prefix_and_maps_the_payment_method() -> None:
    o = order(lines=[OrderLine(sku="CJ-TRY-1", quantity=Decimal(1))], payment_method="cash_delivery")
    mapped = to_erp_order(o, sku_prefix="CJ-", payment_methods={"cash_delivery": "Ramburs"})
    assert [line.sku for line in mapped.lines] == ["TRY-1"] and mapped.payment_method == "Ramburs"
    assert o.lines[0].sku == "CJ-TRY-1"  # the original is untouched
    same = to_erp_order(o.model_copy(update={"payment_method": "wire"}), payment_methods={"card": "Card"})
    assert same.payment_method == "wire" and same.lines[0].sku == "CJ-TRY-1"


def test_the_erp_reference_is_the_store_prefix_plus_the_shop_order_id() -> None:
    """Two shops' orders with one id become two ERP references; the shop id (the journal's key) stays."""
    o = order(reference="42209911")
    bucuresti, cluj = to_erp_order(o, reference_prefix="B-"), to_erp_order(o, reference_prefix="C-")
    assert (
        (bucuresti.reference, cluj.reference)
        == ("B-42209911", "C-42209911")
        == (erp_reference("B-", "42209911"), erp_reference("C-", "42209911"))
    )
    assert bucuresti.shop_id == cluj.shop_id == o.shop_id == "42209911"
    assert to_erp_order(order(reference=None)).reference == "42209911"  # no prefix: the shop order id, as before


def test_customer_key_is_vat_for_companies_else_email() -> None:
    company = order(customer=Customer(email="a@b.ro", is_company=True, vat_code="ro 123 456"))
    assert customer_key(company) == "vat:RO123456"
    assert customer_key(order()) == "email:ana@example.ro"
    assert customer_key(order(customer=Customer(name="Guest"))) is None


# --------------------------------------------------------------------------- ERP orders for the shop


def test_only_unlinked_orders_of_configured_channels_go_to_the_shop() -> None:
    phone = order(shop_id=None, channel="phone", erp_id="7")
    assert wants_erp_order(phone, channels=["phone"], linked=False)
    assert not wants_erp_order(phone, channels=["phone"], linked=True)
    assert not wants_erp_order(phone, channels=["market"], linked=False)
    assert not wants_erp_order(order(shop_id=None, channel=None), channels=["phone"], linked=False)
    # never echoed: what erpsync created from a shop order, or anything with a shop id
    assert not wants_erp_order(order(shop_id=None, channel="erpsync"), channels=["erpsync"], linked=False)
    assert not wants_erp_order(order(shop_id="9", channel="phone"), channels=["phone"], linked=False)
    for status in ("cancelled", "temporary"):  # cancelled, or a draft not yet an order
        assert not wants_erp_order(
            order(shop_id=None, channel="phone", status=status), channels=["phone"], linked=False
        )


def test_shop_copy_of_an_erp_order_carries_shop_skus_and_the_marker() -> None:
    phone = order(shop_id=None, channel="phone", erp_id="7", lines=[OrderLine(sku="TRY-1", quantity=Decimal(1))])
    copy = to_shop_order(phone, marker=erp_marker("tryton", "7"), sku_prefix="CJ-")
    assert (copy.reference, copy.lines[0].sku, copy.shop_id) == ("tryton:7", "CJ-TRY-1", None)


# --------------------------------------------------------------------------- status back-sync


def status(**fields: object) -> ErpOrderStatus:
    values: dict[str, object] = {"erp_id": "17", "state": "processing"}
    values.update(fields)
    return ErpOrderStatus.model_validate(values)


def test_status_written_only_on_change() -> None:
    plain = status()
    first = plan_status(plain, shop_status="awaiting", last_record=None)
    assert first is not None and first.writes == 0  # nothing to write, but remember it
    assert plan_status(plain, shop_status="awaiting", last_record=first.record) is None

    invoiced = status(invoiced=True, invoice_number="INV-7")
    plan = plan_status(invoiced, shop_status="awaiting", last_record=first.record)
    assert plan is not None
    assert (plan.shortcut, plan.awb, plan.invoice_tag, plan.shop_status) == (
        "in_process",
        None,
        "Factura INV-7",
        "in_process",
    )
    shipped = status(invoiced=True, invoice_number="INV-7", shipped=True, awb="AWB-1")
    plan2 = plan_status(shipped, shop_status="in_process", last_record=plan.record)
    assert plan2 is not None
    assert (plan2.shortcut, plan2.awb, plan2.invoice_tag) == ("shipped", "AWB-1", None)
    assert plan_status(shipped, shop_status="shipped", last_record=plan2.record) is None
    new_awb = status(invoiced=True, invoice_number="INV-7", shipped=True, awb="AWB-2")
    plan3 = plan_status(new_awb, shop_status="shipped", last_record=plan2.record)
    assert plan3 is not None and (plan3.shortcut, plan3.awb, plan3.invoice_tag) == (None, "AWB-2", None)


def test_status_only_moves_forward_and_never_out_of_final_states() -> None:
    shipped = status(shipped=True)
    plan = plan_status(shipped, shop_status="delivered", last_record=None)
    assert plan is not None and plan.shortcut is None and plan.shop_status == "delivered"
    invoiced = plan_status(status(invoiced=True, invoice_number="1"), shop_status="shipped", last_record=None)
    assert invoiced is not None and invoiced.shortcut is None and invoiced.invoice_tag == "Factura 1"
    cancelled = plan_status(
        status(state="cancelled", cancelled=True, awb="A"), shop_status="in_process", last_record=None
    )
    assert cancelled is not None and cancelled.shortcut == "cancelled" and cancelled.awb is None
    returned = plan_status(status(state="cancelled", cancelled=True), shop_status="returned", last_record=None)
    assert returned is not None and returned.shortcut is None
    delivered = plan_status(status(shipped=True, delivered=True), shop_status="shipped", last_record=None)
    assert delivered is not None and delivered.shortcut == "delivered"
    assert plan_status(status(state="missing"), shop_status="awaiting", last_record=None) is None


def test_status_record_is_stable_and_ignores_the_erp_id() -> None:
    assert status_record(status(erp_id="1", shipped=True)) == status_record(status(erp_id="2", shipped=True))
    assert status_record(status(invoiced=False, invoice_number="X")) == status_record(status())


def test_linked_orders_are_checked_until_final_or_past_the_horizon() -> None:
    now = datetime(2026, 11, 20, tzinfo=UTC)
    assert needs_status_check("awaiting", now - timedelta(days=3), now, 60)
    assert not needs_status_check("delivered", now, now, 60)
    assert not needs_status_check("cancelled", now, now, 60)
    assert not needs_status_check("shipped", now - timedelta(days=61), now, 60)


def test_holds_count_definite_failures_only_and_in_doubt_orders() -> None:
    assert counted_attempts("transient: tryton did not answer", 9) == 0
    assert counted_attempts("unknown SKU 'X'", 3) == 3
    assert is_held("unknown SKU 'X'", 5, 5) and not is_held("unknown SKU 'X'", 4, 5)
    assert not is_held("transient: reset", 50, 5)
    assert is_held(IN_DOUBT_REASON, 1, 5)
