"""erpsync.connectors.merchantpro.writes: request bodies from canonical records, and the product sync's smallest
PATCH bodies from synced fields."""

from __future__ import annotations

from decimal import Decimal

import pytest

from erpsync.connectors.merchantpro.mapping import order_from_shop, product_from_shop
from erpsync.connectors.merchantpro.writes import (
    StockWrite,
    order_payload,
    product_patch,
    product_payload,
    shop_patch,
    stock_payloads,
)
from erpsync.core.models import Product, Variant
from tests.unit.merchantpro_rows import MULTI, ORDER

D = Decimal


def test_product_payload_puts_stock_and_prices_on_variants() -> None:
    product = Product(
        sku="TS",
        name="T",
        erp_id="7",
        variants=[
            Variant(
                sku="TS-S",
                price_net=Decimal("10"),
                price_gross=Decimal("11.90"),
                stock=Decimal(3),
                options={"Size": "S"},
            )
        ],
    )
    payload = product_payload(product, tax_id=1)
    assert payload["type"] == "multi_variant"
    assert "stock" not in payload and "price_net" not in payload
    assert payload["variants"][0] == {
        "sku": "TS-S",
        "price_net": 10,
        "price_gross": 11.9,
        "stock": 3,
        "variant_options": [{"name": "Size", "value": "S"}],
    }
    assert payload["variant_attributes"] == [{"name": "Size", "options": [{"value": "S", "position": 0}]}]


def test_product_patch_is_minimal_and_never_puts_prices_on_a_parent() -> None:
    basic = Product(sku="B", name="New name", price_net=Decimal("5"), price_gross=Decimal("5.95"))
    assert product_patch(basic, {"name"}) == {"name": "New name"}
    assert product_patch(basic, {"price_net", "price_gross"}) == {"price_net": 5, "price_gross": 5.95}
    multi = product_from_shop(MULTI)
    patch = product_patch(multi, {"price_gross", "name"})
    assert "price_gross" not in patch and patch["name"] == "T-shirt"
    assert [v["id"] for v in patch["variants"]] == [1201, 1202]


def test_stock_payloads_group_variants_of_one_parent_into_one_patch() -> None:
    writes = [
        StockWrite("TS-S", "12", "1201", Decimal(4)),
        StockWrite("B1", "4", None, Decimal(0)),
        StockWrite("TS-M", "12", "1202", Decimal("2")),
    ]
    payloads = stock_payloads(writes)
    assert [(pid, body) for pid, body, _ in payloads] == [
        ("12", {"variants": [{"id": 1201, "stock": 4}, {"id": 1202, "stock": 2}]}),
        ("4", {"stock": 0}),
    ]


def test_negative_stock_write_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        stock_payloads([StockWrite("A", "1", None, Decimal(-1))])


def test_order_payload_for_another_channel() -> None:
    order = order_from_shop(ORDER)
    payload = order_payload(order, product_ids={"TS-S": "12"})
    assert payload["customer_email"] == "ana@example.ro"
    assert payload["billing_type"] == "company" and payload["billing_fiscal_code"] == "RO123456"
    assert payload["line_items"] == [
        {"product_sku": "TS-S", "quantity": 2, "product_id": 12, "unit_price_gross": 11.9, "unit_price_net": 10}
    ]
    assert payload["shipping_as_billing"] is True


def test_shop_patch_is_minimal() -> None:
    product = Product(
        sku="A-1",
        shop_id="9",
        name="Cana",
        vat_rate=D("19"),
        price_net=D("10"),
        price_gross=D("11.90"),
        old_price_net=None,
        description="d",
    )
    assert shop_patch(product, {"price"}, tax_id=1) == {"price_net": 10, "price_gross": 11.9}
    assert shop_patch(product, {"old_price", "weight", "ean"}, tax_id=1) == {
        "old_price_net": None,
        "old_price_gross": None,
        "weight": None,
        "ean": None,
    }
    assert shop_patch(product, {"vat"}, tax_id=2) == {"tax_id": 2}
    assert shop_patch(product, {"images"}, tax_id=1) == {"images": []}
    assert shop_patch(product, {"attributes"}, tax_id=1) == {}


def test_shop_patch_of_a_multi_variant_product_goes_on_the_variants() -> None:
    product = Product(
        sku="TS",
        shop_id="70",
        name="Tricou",
        vat_rate=D("19"),
        variants=[
            Variant(sku="TS-S", shop_id="71", price_net=D("50"), price_gross=D("59.50"), options={"Marime": "S"}),
            Variant(sku="TS-L", price_net=D("51"), price_gross=D("60.69"), options={"Marime": "L"}),
        ],
    )
    patch = shop_patch(product, {"price", "name"}, tax_id=1)
    assert patch["name"] == "Tricou" and "price_net" not in patch
    assert patch["variants"] == [
        {"id": 71, "price_net": 50, "price_gross": 59.5},
        {"sku": "TS-L", "price_net": 51, "price_gross": 60.69, "variant_options": [{"name": "Marime", "value": "L"}]},
    ]
    assert shop_patch(product, {"attributes"}, tax_id=1)["variants"][0] == {
        "id": 71,
        "variant_options": [{"name": "Marime", "value": "S"}],
    }
