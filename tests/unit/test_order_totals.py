"""Totals to the ban (core.order_totals): discounts spread per VAT rate, the booked total, the 0.01 rule."""

from __future__ import annotations

from decimal import Decimal

import pytest

from erpsync.core.models import Customer, Order, OrderLine
from erpsync.core.order_totals import (
    TOTAL_MISMATCH,
    booked_total,
    erp_lines,
    line_gross,
    spread,
    total_problem,
)

D = Decimal


def product(sku: str, gross: str, rate: str | None = "21", qty: int = 1) -> OrderLine:
    return OrderLine(sku=sku, quantity=D(qty), unit_price_gross=D(gross), vat_rate=None if rate is None else D(rate))


def discount(name: str, gross: str, rate: str | None = None) -> OrderLine:
    return OrderLine(
        sku="",
        kind="discount",
        name=name,
        quantity=D(1),
        unit_price_gross=D(gross),
        vat_rate=None if rate is None else D(rate),
    )


def fee(name: str, gross: str, rate: str = "21") -> OrderLine:
    return OrderLine(sku="", kind="fee", name=name, quantity=D(1), unit_price_gross=D(gross), vat_rate=D(rate))


def order(*lines: OrderLine, **fields: object) -> Order:
    values: dict[str, object] = {"shop_id": "7", "customer": Customer(email="a@b.ro"), "lines": list(lines)}
    values.update(fields)
    return Order.model_validate(values)


def discounts(o: Order) -> list[tuple[Decimal | None, Decimal | None, str]]:
    return [(line.vat_rate, line.unit_price_gross, line.name) for line in o.lines if line.kind == "discount"]


# ------------------------------------------------------------------------------------------- erp_lines


def test_one_rate_voucher_is_booked_at_that_rate() -> None:
    booked = erp_lines(order(product("A", "100.00"), discount("VOUCHER10", "-10.00")))
    assert [line.kind for line in booked.lines] == ["product", "discount"]
    assert discounts(booked) == [(D("21"), D("-10.00"), "VOUCHER10")]
    assert booked.lines[1].quantity == 1 and booked.lines[1].sku == ""
    assert booked_total(booked) == D("90.00")


def test_two_rates_voucher_is_spread_two_to_one_to_the_ban() -> None:
    # 21 %: 2 x 50 = 100; 11 %: 50 -> the -10 voucher is -6.67 at 21 % and -3.33 at 11 %
    o = order(product("A", "50.00", "21", qty=2), product("B", "50.00", "11"), discount("V", "-10.00"))
    booked = erp_lines(o)
    assert discounts(booked) == [(D("21"), D("-6.67"), "V (TVA 21%)"), (D("11"), D("-3.33"), "V (TVA 11%)")]
    assert sum((line.unit_price_gross or 0 for line in booked.lines if line.kind == "discount"), D(0)) == D("-10.00")
    assert booked_total(booked) == booked_total(o) == D("140.00")


def test_order_level_discount_is_spread_and_cleared() -> None:
    o = order(product("A", "60.00", "21"), product("B", "40.00", "11"), discount_amount=D("15.00"))
    booked = erp_lines(o)
    assert booked.discount_amount == 0
    assert discounts(booked) == [
        (D("21"), D("-9.00"), "Discount (TVA 21%)"),
        (D("11"), D("-6.00"), "Discount (TVA 11%)"),
    ]
    assert booked_total(o) == booked_total(booked) == D("85.00")
    assert erp_lines(booked) == booked  # idempotent: nothing left to spread


def test_rounding_remainder_goes_on_the_largest_share() -> None:
    # three equal rates: 10 / 3 = 3.333.. each -> 3.33 x 3 = 9.99; the missing ban goes on the largest (the first)
    exact = spread(D("10.00"), {D("21"): D("1"), D("11"): D("1"), D("0"): D("1")})
    assert exact == [(D("21"), D("3.34")), (D("11"), D("3.33")), (D("0"), D("3.33"))]


def test_remainder_can_also_take_a_ban_off() -> None:
    # 2 x 0.005 rounds up twice: 0.01 + 0.01 = 0.02 > 0.01 -> the largest gives a ban back
    parts = spread(D("0.01"), {D("21"): D("1"), D("11"): D("1")})
    assert sum((p for _, p in parts), D(0)) == D("0.01")
    assert parts == [(D("11"), D("0.01"))]  # the first share gave its ban back; a part of 0 is left out


def test_discount_line_with_a_rate_stays_and_fees_are_kept_not_discounted() -> None:
    o = order(
        product("A", "100.00", "21"),
        product("B", "100.00", "11"),
        discount("LIVRARE", "-5.00", "21"),
        fee("Taxa ramburs", "7.00"),
    )
    booked = erp_lines(o)
    assert discounts(booked) == [(D("21"), D("-5.00"), "LIVRARE")]
    assert [line.kind for line in booked.lines] == ["product", "product", "discount", "fee"]
    assert booked_total(booked) == D("202.00")


def test_a_discount_given_as_a_positive_amount_still_takes_off() -> None:
    o = order(product("A", "100.00"), discount("V", "10.00", "21"))
    assert booked_total(o) == D("90.00")
    assert discounts(erp_lines(o)) == [(D("21"), D("-10.00"), "V")]


def test_a_discount_with_nothing_to_spread_over_keeps_no_rate() -> None:
    booked = erp_lines(order(fee("Taxa", "5.00"), discount("V", "-2.00")))
    assert discounts(booked) == [(None, D("-2.00"), "V")]


def test_zero_discounts_are_left_out() -> None:
    booked = erp_lines(order(product("A", "10.00"), discount("V", "0.00")))
    assert [line.kind for line in booked.lines] == ["product"]


# ------------------------------------------------------------------------------------------- booked_total


def test_booked_total_rounds_each_line_and_adds_shipping() -> None:
    o = order(product("A", "33.333", qty=3), shipping_amount=D("15.99"), shipping_vat_rate=D("21"))
    assert line_gross(o.lines[0]) == D("100.00")
    assert booked_total(o) == D("115.99")


def test_booked_total_derives_gross_from_net_and_rate() -> None:
    line = OrderLine(sku="A", quantity=D(3), unit_price_net=D("10.00"), vat_rate=D("21"))
    assert line_gross(line) == D("36.30")
    assert booked_total(order(line)) == D("36.30")


# ------------------------------------------------------------------------------------------- total_problem


@pytest.mark.parametrize("total", ["90.00", "90.01", "89.99", None])
def test_within_a_ban_is_no_problem(total: str | None) -> None:
    o = order(product("A", "100.00"), discount("V", "-10.00"), total=None if total is None else D(total))
    assert total_problem(o) is None


def test_the_booked_total_voucher_case_names_both_totals_and_the_lines() -> None:
    # the issue: the voucher line dropped, 100.00 booked against 90.00 paid
    o = order(product("SKU-1", "100.00"), total=D("90.00"))
    problem = total_problem(o)
    assert problem is not None and problem.startswith(TOTAL_MISMATCH)
    assert "100.00" in problem and "90.00" in problem and "+10.00" in problem
    assert "product SKU-1 1 x 100.00 TVA 21%" in problem


def test_two_bans_off_is_a_problem() -> None:
    o = order(product("A", "100.00"), discount("V", "-10.00"), shipping_amount=D("5"), total=D("95.02"))
    problem = total_problem(o)
    assert problem is not None
    assert "would total 95.00" in problem and "total_amount is 95.02" in problem and "-0.02" in problem
    assert "discount 'V' 1 x -10.00 TVA 21%" in problem
    assert "shipping 5.00" in problem
