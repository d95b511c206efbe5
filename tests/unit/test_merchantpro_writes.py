"""erpsync.connectors.merchantpro.writes: the product sync's smallest PATCH bodies, from synced fields."""

from __future__ import annotations

from decimal import Decimal

from erpsync.connectors.merchantpro.writes import shop_patch
from erpsync.core.models import Product, Variant

D = Decimal


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
