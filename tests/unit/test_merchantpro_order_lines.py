"""MerchantPro order lines that are not products reach the canonical order (discounts, vouchers, fees), and the
order-level discount is read defensively."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from erpsync.connectors.merchantpro.mapping import MappingError, line_kind, order_from_shop
from erpsync.core.order_totals import booked_total, total_problem

D = Decimal


def product_line(**fields: Any) -> dict[str, Any]:
    line: dict[str, Any] = {
        "id": 1,
        "item_type": "product",
        "product_id": 12,
        "product_sku": "TS-S",
        "product_name": "Tricou S",
        "quantity": 1,
        "unit_price_net": "82.64",
        "unit_price_gross": "100.00",
        "product_tax_percent": 21,
    }
    line.update(fields)
    return line


def shop_order(*lines: dict[str, Any], **fields: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": "42209911",
        "customer_email": "ana@example.ro",
        "billing_name": "Ana Pop",
        "shipping_as_billing": True,
        "shipping_amount": 0,
        "shipping_tax_percent": 21,
        "line_items": list(lines),
    }
    row.update(fields)
    return row


def test_the_issue_order_a_voucher_line_is_kept_and_the_totals_agree() -> None:
    voucher = {
        "id": 2,
        "item_type": "discount",
        "product_name": "VARA10",
        "quantity": 1,
        "unit_price_gross": "-10.00",
        "line_subtotal_gross": "-10.00",
    }
    order = order_from_shop(shop_order(product_line(), voucher, total_amount="90.00"))
    assert [(line.kind, line.sku, line.name, line.unit_price_gross) for line in order.lines] == [
        ("product", "TS-S", "Tricou S", D("100.00")),
        ("discount", "", "VARA10", D("-10.00")),
    ]
    assert order.lines[1].vat_rate is None and order.lines[1].shop_line_id == "2"
    assert order.total == D("90.00") and order.discount_amount == 0
    assert booked_total(order) == D("90.00") and total_problem(order) is None


def test_a_fee_line_is_kept_with_its_rate() -> None:
    fee = {"id": 3, "item_type": "payment_fee", "product_name": "Taxa ramburs", "quantity": 1}
    fee |= {"unit_price_gross": "5.00", "product_tax_percent": 21}
    order = order_from_shop(shop_order(product_line(), fee, total_amount="105.00"))
    assert [(line.kind, line.name, line.unit_price_gross, line.vat_rate) for line in order.lines][1] == (
        "fee",
        "Taxa ramburs",
        D("5.00"),
        D("21"),
    )
    assert total_problem(order) is None


@pytest.mark.parametrize(
    ("row", "kind"),
    [
        ({"product_sku": "A"}, "product"),  # no item_type: a product, as before
        ({"item_type": "product"}, "product"),
        ({"item_type": "voucher"}, "discount"),
        ({"item_type": "coupon"}, "discount"),
        ({"item_type": "gift_card"}, "discount"),
        ({"item_type": "cart_discount"}, "discount"),
        ({"item_type": "other", "product_name": "Cupon de reducere"}, "discount"),
        ({"item_type": "adjustment", "line_subtotal_gross": "-3.00"}, "discount"),
        ({"item_type": "packaging", "unit_price_gross": "2.50"}, "fee"),
        ({"item_type": "something_new"}, "fee"),  # unknown: a fee
    ],
)
def test_line_kinds(row: dict[str, Any], kind: str) -> None:
    assert line_kind(row) == kind


def test_a_product_line_still_needs_a_sku_but_other_lines_do_not() -> None:
    with pytest.raises(MappingError, match="no SKU"):
        order_from_shop(shop_order(product_line(product_sku="")))
    fee = {"id": 4, "item_type": "packaging", "product_sku": None, "unit_price_gross": "2"}
    order = order_from_shop(shop_order(product_line(), fee))
    assert order.lines[1].kind == "fee" and order.lines[1].sku == "" and order.lines[1].quantity == 1


def test_unit_gross_derived_from_the_line_subtotal() -> None:
    fee = {"id": 5, "item_type": "packaging", "quantity": 2, "line_subtotal_gross": "7.00", "product_tax_percent": 11}
    order = order_from_shop(shop_order(product_line(), fee, total_amount="107.00"))
    assert order.lines[1].unit_price_gross == D("3.50") and order.lines[1].unit_price_net is None
    assert booked_total(order) == D("107.00")


def test_a_discount_becomes_one_negative_line_whatever_sign_and_quantity() -> None:
    voucher = {"id": 6, "item_type": "voucher", "voucher_code": "X5", "quantity": 2, "unit_price_gross": "5.00"}
    order = order_from_shop(shop_order(product_line(), voucher, total_amount="90.00"))
    line = order.lines[1]
    assert (line.kind, line.name, line.quantity, line.unit_price_gross) == ("discount", "X5", D(1), D("-10.00"))
    assert total_problem(order) is None


def test_a_shipping_discount_without_a_rate_takes_the_shipping_rate() -> None:
    free = {"id": 7, "item_type": "discount", "product_name": "Transport gratuit", "unit_price_gross": "-15.00"}
    row = shop_order(product_line(), free, shipping_amount="15.00", shipping_tax_percent=21, total_amount="100.00")
    order = order_from_shop(row)
    assert order.lines[1].vat_rate == D("21")


@pytest.mark.parametrize("key", ["discount_amount", "discount_total", "voucher_amount", "total_discount"])
def test_order_level_discount_is_read_from_any_known_name(key: str) -> None:
    order = order_from_shop(shop_order(product_line(), **{key: "12.50", "total_amount": "87.50"}))
    assert order.discount_amount == D("12.50")
    assert booked_total(order) == D("87.50") and total_problem(order) is None


def test_no_order_level_discount_is_zero_and_one_equal_to_the_lines_is_not_counted_twice() -> None:
    assert order_from_shop(shop_order(product_line())).discount_amount == 0
    voucher = {"id": 2, "item_type": "discount", "product_name": "V", "unit_price_gross": "-10.00"}
    order = order_from_shop(shop_order(product_line(), voucher, discount_amount="10.00", total_amount="90.00"))
    assert order.discount_amount == 0 and total_problem(order) is None


def test_the_shop_total_is_read_and_a_mismatch_found() -> None:
    order = order_from_shop(shop_order(product_line(), total_amount="90.00"))
    assert order.total == D("90.00")
    problem = total_problem(order)
    assert problem is not None and "100.00" in problem and "90.00" in problem
