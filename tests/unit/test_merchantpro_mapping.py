"""MerchantPro mappers: feed a shop record, check the canonical one (the bodies back: test_merchantpro_writes)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from erpsync.connectors.merchantpro.mapping import MappingError, inventory_units, order_from_shop, product_from_shop
from erpsync.core.models import ShippingStatus
from tests.unit.merchantpro_rows import MULTI, ORDER


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
    # every line is kept: the product, and the discount line (no price: it books nothing)
    assert [(line.kind, line.sku, line.quantity) for line in order.lines] == [
        ("product", "TS-S", Decimal(2)),
        ("discount", "", Decimal(1)),
    ]
    assert order.shipping_status is ShippingStatus.CONFIRMED
    assert order.shipping_amount == Decimal("15.00")


def test_order_line_without_sku_is_a_mapping_error() -> None:
    bad = dict(ORDER, line_items=[{"id": 9, "item_type": "product", "product_sku": "", "quantity": 1}])
    with pytest.raises(MappingError, match="no SKU"):
        order_from_shop(bad)


def test_unknown_order_status_is_a_mapping_error() -> None:
    with pytest.raises(MappingError, match="teleported"):
        order_from_shop(dict(ORDER, shipping_status="teleported"))


def test_prices_round_half_up_to_the_cent() -> None:
    from erpsync.core.models import gross_from_net, net_from_gross

    assert gross_from_net(Decimal("0.50"), Decimal(19)) == Decimal("0.60")  # 0.595 -> 0.60, not banker's 0.60/0.59
    assert gross_from_net(Decimal("10.50"), Decimal(9)) == Decimal("11.45")  # 11.445 -> 11.45
    assert net_from_gross(Decimal("11.90"), Decimal(19)) == Decimal("10.00")
