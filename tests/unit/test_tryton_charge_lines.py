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
