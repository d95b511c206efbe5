"""Discount and fee lines as Tryton sale lines: pure functions of connectors/erp/tryton/mapping.py, fed records."""

from __future__ import annotations

from decimal import Decimal

import pytest

from erpsync.connectors.erp.tryton import mapping as tm
from erpsync.core.models import OrderLine

SERVICE = tm.Sellable(id=501, code="DISCOUNT", name="Discount", unit=1, category=7)
FEE = tm.Sellable(id=502, code="FEE", name="Taxă", unit=1, category=7)
CATEGORIES = {
    7: tm.Category(Decimal(19), (11,)),
    8: tm.Category(Decimal(21), (13,)),
    9: tm.Category(Decimal(21), (14,)),  # a second category at 21 %: the lowest id's taxes are used
    10: tm.Category(None, ()),
}


def _discount(**extra: object) -> OrderLine:
    values: dict[str, object] = {
        "sku": "",
        "kind": "discount",
        "name": "Voucher VARA10",
        "quantity": Decimal(1),
        "unit_price_gross": Decimal("-10.00"),
        "vat_rate": Decimal(21),
    }
    return OrderLine.model_validate({**values, **extra})


def test_discount_line_is_the_service_product_at_the_net_of_its_rate_with_that_rates_taxes() -> None:
    taxes = tm.taxes_for_rate(Decimal(21), CATEGORIES)
    assert taxes == (13,)
    assert tm.charge_line(_discount(), SERVICE, taxes) == {
        "type": "line",
        "product": 501,
        "quantity": 1.0,
        "unit": 1,
        "unit_price": Decimal("-8.2645"),
        "taxes": [["add", [13]]],
        "description": "Voucher VARA10",
    }


def test_a_given_net_price_is_kept_and_a_line_without_name_takes_the_products() -> None:
    line = _discount(name="", unit_price_net=Decimal("-8.26"))
    assert tm.charge_line(line, SERVICE, (13,))["unit_price"] == Decimal("-8.26")
    assert tm.charge_line(line, SERVICE, (13,))["description"] == "Discount"


def test_fee_line_is_positive_at_its_own_rate() -> None:
    fee = OrderLine(
        sku="",
        kind="fee",
        name="Taxă ramburs",
        quantity=Decimal(1),
        unit_price_gross=Decimal("5.45"),
        vat_rate=Decimal(9),
    )
    row = tm.charge_line(fee, FEE, (12,))
    assert (row["product"], row["unit_price"], row["taxes"], row["description"]) == (
        502,
        Decimal("5.0000"),
        [["add", [12]]],
        "Taxă ramburs",
    )


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (_discount(vat_rate=None), "no VAT rate"),
        (_discount(unit_price_gross=None), "no price"),
        (_discount(unit_price_gross=Decimal("10.00")), "unit price of 8.2645"),
        (
            OrderLine(
                sku="", kind="fee", name="x", quantity=Decimal(1), unit_price_gross=Decimal(-1), vat_rate=Decimal(21)
            ),
            "fee line 'x' has a unit price of -0.8264",
        ),
    ],
)
def test_lines_tryton_cannot_book_are_refused(line: OrderLine, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        tm.charge_line(line, SERVICE, (13,))


def test_a_rate_no_category_has_is_found_among_the_customer_taxes() -> None:
    rows = [
        {"id": 40, "rate": 0.11, "type": "percentage"},
        {"id": 30, "rate": 0.11, "type": "percentage"},  # the lowest id of that rate
        {"id": 20, "rate": 5, "type": "fixed"},  # a fixed amount is no VAT rate
    ]
    assert tm.taxes_for_rate(Decimal(11), CATEGORIES, rows) == (30,)
    assert tm.taxes_for_rate(Decimal("11.00"), {}, rows) == (30,)
    assert tm.taxes_for_rate(Decimal(5), CATEGORIES, rows) is None
    assert tm.taxes_for_rate(Decimal(24), CATEGORIES, rows) is None


def test_tax_percent_reads_trytons_fractions() -> None:
    assert (tm.tax_percent(0.21), tm.tax_percent(Decimal("0.0950")), tm.tax_percent("0.21")) == (
        Decimal(21),
        Decimal("9.5"),
        None,
    )


D = Decimal


@pytest.mark.parametrize(
    ("entries", "prices"),
    [
        # 100.00 - 10.00 at 21 %, gross only: 82.6446 -> 82.64 and -8.2645 -> -8.26 make the base 74.38 already
        ([(D(21), D(1), D("100.00"), None), (D(21), D(1), D("-10.00"), None)], [None, None]),
        # 10 x 24.99 at 21 % with the shop's net 20.65: 206.50 + 43.37 = 249.87; 206.53 + 43.37 = 249.90
        ([(D(21), D(10), D("249.90"), D("20.65"))], [D("20.6530")]),
        # the shop's net kept, the cent goes to the line priced from its gross (shipping)
        (
            [(D(21), D(10), D("249.90"), D("20.65")), (D(21), D(1), D("15.00"), None)],
            [None, D("12.4300")],  # 206.50 + 12.40 -> 206.50 + 12.43 = round(264.90 / 1.21) = 218.93 (264.91)
        ),
        # the shop's Cluj price 23.75 (gross 28.26) and shipping 15.00 at 19 %: 23.75 + 12.60 = 36.35 already
        ([(D(19), D(1), D("28.26"), D("23.75")), (D(19), D(1), D("15.00"), None)], [None, None]),
        # a line without the shop's gross leaves its rate alone; a line without rate is left alone
        ([(D(19), D(1), None, D(10)), (D(19), D(10), D("119.10"), D("10.01")), (None, D(1), D(5), None)], [None] * 3),
    ],
)
def test_fit_unit_prices_reaches_the_shops_gross_per_rate(
    entries: list[tuple[Decimal | None, Decimal, Decimal | None, Decimal | None]], prices: list[Decimal | None]
) -> None:
    assert tm.fit_unit_prices(entries) == prices


def test_fit_reaches_what_can_be_reached() -> None:
    # 3 lines of 0.99 at 21 % from their gross: 3 x 0.82 = 2.46 (+ 0.52 = 2.98); the base round(2.97 / 1.21) =
    # 2.45 (+ 0.51 = 2.96: 2.97 is not reachable) takes a cent off one line
    assert tm.fit_unit_prices([(D(21), D(1), D("0.99"), None)] * 3) == [D("0.8100"), None, None]
    # 11.99 at 21 %: round(9.909) = 9.91 gives 9.91 + 2.08 = 11.99 exactly, nothing to change
    assert tm.fit_unit_prices([(D(21), D(1), D("11.99"), None)]) == [None]
