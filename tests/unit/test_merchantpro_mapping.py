"""MerchantPro mappers: feed a shop record, check the canonical one (and back)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from erpsync.connectors.merchantpro.mapping import (
    MappingError,
    StockWrite,
    inventory_units,
    order_from_shop,
    order_payload,
    product_from_shop,
    product_patch,
    product_payload,
    stock_payloads,
)
from erpsync.core.models import Product, ShippingStatus, Variant

MULTI = {
    "id": 12,
    "type": "multi_variant",
    "sku": "TS",
    "name": "T-shirt",
    "ext_ref": "77",
    "tax_value": "19",
    "status": "active",
    "date_modified": "2025-12-18T10:40:46+02:00",
    "variants": [
        {
            "id": 1201,
            "sku": "TS-S",
            "stock": 3,
            "price_net": "10.00",
            "price_gross": "11.90",
            "variant_options": [{"name": "Size", "value": "S"}],
        },
        {
            "id": 1202,
            "sku": "TS-M",
            "stock": "0",
            "price_net": 10,
            "price_gross": 11.9,
            "variant_options": [{"name": "Size", "value": "M"}],
        },
    ],
}

ORDER = {
    "id": "95750870.3",
    "sys_id": 95750870,
    "payment_status": "paid",
    "payment_method_code": "wire",
    "shipping_status": "confirmed",
    "customer_email": " Ana@Example.RO ",
    "billing_type": "company",
    "billing_name": "Ana Pop",
    "billing_company": "Pop SRL",
    "billing_fiscal_code": "RO123456",
    "billing_city": "Cluj-Napoca",
    "billing_address": "Str. Lunga 1",
    "billing_country_code": "ro",
    "shipping_as_billing": True,
    "shipping_amount": "15.00",
    "shipping_tax_percent": 19,
    "total_amount": "134.00",
    "date_created": "2026-11-20T09:00:00+02:00",
    "line_items": [
        {
            "id": 1,
            "item_type": "product",
            "product_id": 12,
            "product_sku": "TS-S",
            "product_name": "T-shirt S",
            "product_stock": "-1.000",
            "quantity": 2,
            "unit_price_net": "10.00",
            "unit_price_gross": "11.90",
            "product_tax_percent": "19",
        },
        {"id": 2, "item_type": "discount", "product_sku": "", "quantity": 1},
    ],
}


def test_multi_variant_product_maps_to_variants() -> None:
    product = product_from_shop(MULTI)
    assert product.shop_id == "12" and product.erp_id == "77"
    assert product.is_multi_variant and product.stock is None
    assert [v.sku for v in product.variants] == ["TS-S", "TS-M"]
    assert product.variants[0].options == {"Size": "S"}
    assert product.variants[1].price_gross == Decimal("11.9")
    assert product.variants[1].stock == 0
    assert product.modified_at is not None and product.modified_at.utcoffset() is not None


def test_product_without_sku_is_a_mapping_error() -> None:
    with pytest.raises(MappingError, match="no SKU"):
        product_from_shop({"id": 5, "type": "basic", "sku": ""})


def test_non_numeric_stock_is_a_mapping_error() -> None:
    with pytest.raises(MappingError, match="stock"):
        inventory_units({"id": 5, "type": "basic", "sku": "A", "stock": "lots"})


def test_inventory_units_of_basic_and_multi_variant() -> None:
    basic = inventory_units({"id": 4, "type": "basic", "sku": "B1", "stock": 9})
    assert [(u.sku, u.product_id, u.variant_id, u.stock) for u in basic] == [("B1", "4", None, Decimal(9))]
    multi = inventory_units(MULTI)
    assert [(u.sku, u.variant_id) for u in multi] == [("TS-S", "1201"), ("TS-M", "1202")]


def test_order_maps_company_buyer_and_keeps_the_suffixed_id_whole() -> None:
    order = order_from_shop(ORDER)
    assert order.shop_id == "95750870.3" and order.reference == "95750870.3"
    assert order.customer.email == "ana@example.ro"
    assert order.customer.is_company and order.customer.company_name == "Pop SRL"
    assert order.customer.vat_code == "RO123456"
    assert order.shipping == order.billing and order.billing is not None and order.billing.country_code == "RO"
    assert [(line.sku, line.quantity) for line in order.lines] == [("TS-S", Decimal(2))]
    assert order.shipping_status is ShippingStatus.CONFIRMED
    assert order.shipping_amount == Decimal("15.00")


def test_order_line_without_sku_is_a_mapping_error() -> None:
    bad = dict(ORDER, line_items=[{"id": 9, "item_type": "product", "product_sku": "", "quantity": 1}])
    with pytest.raises(MappingError, match="no SKU"):
        order_from_shop(bad)


def test_unknown_order_status_is_a_mapping_error() -> None:
    with pytest.raises(MappingError, match="teleported"):
        order_from_shop(dict(ORDER, shipping_status="teleported"))


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


def test_prices_round_half_up_to_the_cent() -> None:
    from erpsync.core.models import gross_from_net, net_from_gross

    assert gross_from_net(Decimal("0.50"), Decimal(19)) == Decimal("0.60")  # 0.595 -> 0.60, not banker's 0.60/0.59
    assert gross_from_net(Decimal("10.50"), Decimal(9)) == Decimal("11.45")  # 11.445 -> 11.45
    assert net_from_gross(Decimal("11.90"), Decimal(19)) == Decimal("10.00")
