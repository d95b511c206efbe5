"""Totals to the ban in the order rules: a total mismatch is a problem that holds the order at once, the
connectors receive discounts as one line per VAT rate, and non-product lines pass the line checks."""

from __future__ import annotations

from decimal import Decimal

from erpsync.core.models import Customer, Order, OrderLine
from erpsync.core.order_rules import (
    HELD_AT_ONCE,
    Action,
    counted_attempts,
    decide_import,
    holds_at_once,
    is_held,
    order_digest,
    order_problems,
    to_erp_order,
)
from erpsync.core.order_totals import TOTAL_MISMATCH

D = Decimal
VAT = {"21", "11"}


def shop_order(*lines: OrderLine, **fields: object) -> Order:
    values: dict[str, object] = {"shop_id": "95750870.3", "customer": Customer(email="a@b.ro"), "lines": list(lines)}
    values.update(fields)
    return Order.model_validate(values)


def product(sku: str, gross: str, rate: str = "21", qty: int = 1) -> OrderLine:
    return OrderLine(sku=sku, quantity=D(qty), unit_price_gross=D(gross), vat_rate=D(rate))


def voucher(gross: str = "-10.00", rate: str | None = None, name: str = "VARA10") -> OrderLine:
    return OrderLine(
        sku="",
        kind="discount",
        name=name,
        quantity=D(1),
        unit_price_gross=D(gross),
        vat_rate=None if rate is None else D(rate),
    )


def test_an_order_whose_lines_make_the_shop_total_has_no_problem() -> None:
    o = shop_order(product("B-1", "100.00"), voucher(), total=D("90.00"))
    assert order_problems(o, vat_rates=VAT, sku_prefix="B-") == []


def test_the_issue_case_a_dropped_voucher_is_a_total_mismatch_first() -> None:
    o = shop_order(product("SKU-1", "100.00"), total=D("90.00"))
    problems = order_problems(o, vat_rates=VAT)
    assert len(problems) == 1
    assert problems[0].startswith(TOTAL_MISMATCH)
    assert "100.00" in problems[0] and "90.00" in problems[0]
    # the mismatch comes first even when there is more wrong, so the failure is held at once
    worse = shop_order(product("SKU-1", "100.00"), total=D("90.00"))
    problems = order_problems(worse, vat_rates=VAT, sku_prefix="CJ-")
    assert problems[0].startswith(TOTAL_MISMATCH) and "does not carry this store's prefix" in problems[1]


def test_no_product_lines_is_a_problem_only_without_a_product_line() -> None:
    fee = OrderLine(sku="", kind="fee", name="Taxa ramburs", quantity=D(1), unit_price_gross=D("5"), vat_rate=D(21))
    problems = order_problems(shop_order(fee, voucher("-2.00", "21")), vat_rates=VAT)
    assert problems == ["the order has no product lines"]
    assert order_problems(shop_order(product("A", "10"), fee), vat_rates=VAT) == []


def test_non_product_lines_need_no_sku_and_no_prefix() -> None:
    o = shop_order(product("CJ-A", "10.00"), voucher("-1.00"))
    assert order_problems(o, vat_rates=VAT, sku_prefix="CJ-") == []


def test_a_discount_with_no_product_rate_to_spread_over_is_a_problem() -> None:
    line = OrderLine(sku="A", quantity=D(1), unit_price_gross=D("10.00"))  # the shop gave no VAT rate
    problems = order_problems(shop_order(line, voucher("-1.00")), vat_rates=None)
    assert problems == ["discount 'VARA10' has no VAT rate: no product line with a VAT rate to spread it over"]


def test_vat_rate_of_a_fee_is_checked_and_named_by_the_fee() -> None:
    fee = OrderLine(sku="", kind="fee", name="Ambalare", quantity=D(1), unit_price_gross=D("3"), vat_rate=D("5"))
    problems = order_problems(shop_order(product("A", "10.00"), fee), vat_rates=VAT)
    assert len(problems) == 1 and "of fee 'Ambalare'" in problems[0]
    # a spread voucher at a product's unmapped rate is not reported twice
    odd = shop_order(product("A", "10.00", "5"), voucher("-1.00"))
    assert len(order_problems(odd, vat_rates={"21"})) == 1


def test_a_total_mismatch_is_held_at_once_not_retried() -> None:
    reason = order_problems(shop_order(product("A", "100.00"), total=D("90.00")), vat_rates=None)[0]
    assert holds_at_once(reason)
    assert counted_attempts(reason, 1) == HELD_AT_ONCE
    assert is_held(reason, 1, 5)
    assert not is_held("SKU 'X' unknown in Tryton", 1, 5)
    o = shop_order(product("A", "100.00"), total=D("90.00"))
    decision = decide_import(o, order_digest(o), None, HELD_AT_ONCE, skip_statuses=(), max_attempts=5)
    assert decision.action is Action.HOLD and "totals do not match" in decision.reason
    # a person's re-send lifts the hold (and the order is checked again: booked only if its totals now agree)
    forced = decide_import(o, order_digest(o), None, HELD_AT_ONCE, skip_statuses=(), max_attempts=5, forced=True)
    assert forced.action is Action.IMPORT


def test_the_erp_gets_one_discount_line_per_rate_and_skus_without_prefix() -> None:
    o = shop_order(
        product("B-A", "50.00", "21", qty=2),
        product("B-B", "50.00", "11"),
        voucher(),
        discount_amount=D("3.00"),
        total=D("137.00"),
    )
    assert order_problems(o, vat_rates=VAT, sku_prefix="B-") == []
    erp = to_erp_order(o, sku_prefix="B-", reference_prefix="B-")
    assert erp.reference == "B-95750870.3" and erp.discount_amount == 0
    assert [(line.kind, line.sku, line.vat_rate, line.unit_price_gross) for line in erp.lines] == [
        ("product", "A", D("21"), D("50.00")),
        ("product", "B", D("11"), D("50.00")),
        ("discount", "", D("21"), D("-6.67")),
        ("discount", "", D("11"), D("-3.33")),
        ("discount", "", D("21"), D("-2.00")),
        ("discount", "", D("11"), D("-1.00")),
    ]


def test_an_erp_refusal_quoting_a_total_mismatch_is_held_at_once_too() -> None:
    error = f"tryton: B-42: {TOTAL_MISMATCH}Tryton totals the sale at 100.00, the shop's total is 90.00"
    assert holds_at_once(error) and is_held(error, 1, 5)
    assert not holds_at_once("tryton: B-42: unknown SKU 'X' in Tryton")
