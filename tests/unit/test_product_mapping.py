"""erpsync.core.mapping: field ownership per direction, ERP -> shop and shop -> ERP transforms, the store's hook."""

from __future__ import annotations

from decimal import ROUND_FLOOR, Decimal
from typing import Any

import pytest

from erpsync.core.config import ProductSettings, settings_from_dict
from erpsync.core.mapping import (
    SYNC_FIELDS,
    HookContext,
    HookError,
    Rejected,
    StoreRules,
    attach_shop_ids,
    load_hook,
    normalised,
    ownership,
    shape_mismatch,
    to_erp,
    to_shop,
)
from erpsync.core.models import Product, ProductStatus, Variant

D = Decimal
RULES = StoreRules(store="main", sku_prefix="MP-", vat_taxes={"19": 1, "9": 2})
SEEN: list[HookContext] = []


# --------------------------------------------------------------------------------------------- hooks used by tests


def charm_prices(product: Product, context: HookContext) -> Product | None:
    """The example hook of docs/products.md: shop gross prices end in .90; 'DISCONTINUED' products stay out."""
    SEEN.append(context)
    if context.target != "shop":
        return product
    if product.name.startswith("DISCONTINUED"):
        return None
    items: list[Product | Variant] = [product, *product.variants]
    for item in items:
        if item.price_gross is not None:
            item.price_gross = item.price_gross.to_integral_value(rounding=ROUND_FLOOR) + D("0.90")
    return product


def broken_hook(product: Product, context: HookContext) -> Product:
    raise KeyError("brand")


def wrong_type_hook(product: Product, context: HookContext) -> Any:
    return {"sku": product.sku}


NOT_CALLABLE = 42


def rules_with(hook: str) -> StoreRules:
    return StoreRules(store="main", sku_prefix="MP-", vat_taxes={"19": 1, "9": 2}, hook_path=hook, hook=load_hook(hook))


def basic(**changes: Any) -> Product:
    values: dict[str, Any] = {
        "sku": "A-1",
        "name": "Cana",
        "erp_id": "17",
        "vat_rate": D("19"),
        "price_net": D("10"),
        "stock": D("5"),
        "description": "<p>Cana</p>",
    }
    values.update(changes)
    return Product(**values)


def multi() -> Product:
    return Product(
        sku="TS",
        name="Tricou",
        erp_id="3",
        vat_rate=D("19"),
        price_net=D("50"),
        variants=[
            Variant(sku="TS-S", erp_id="31", price_net=D("50"), options={"variant": "S"}, stock=D(2)),
            Variant(sku="TS-M", erp_id="32", price_net=D("52.5"), price_gross=D("62.48"), options={"variant": "M"}),
        ],
    )


# --------------------------------------------------------------------------------------------- ownership


def test_ownership_follows_direction_and_owner_lists() -> None:
    default = ProductSettings()
    erp_to_shop = ownership(default)
    assert erp_to_shop.to_erp == frozenset()
    # every field the shop does not own goes ERP -> shop (a field in neither list belongs to the source side)
    assert erp_to_shop.to_shop == frozenset(SYNC_FIELDS) - {"description", "images", "attributes"}

    both = ownership(ProductSettings(direction="both"))
    assert both.to_shop == {"name", "price", "old_price", "ean", "weight", "status", "vat"}
    assert both.to_erp == {"description", "images", "attributes"}

    shop_to_erp = ownership(ProductSettings(direction="shop_to_erp", erp_owns=["price"], shop_owns=[]))
    assert shop_to_erp.to_shop == frozenset()
    assert shop_to_erp.to_erp == frozenset(SYNC_FIELDS) - {"price"}


def test_ownership_leaves_out_fields_the_erp_cannot_hold() -> None:
    tryton_like = ["name", "description", "price", "ean", "status", "vat"]
    both = ownership(ProductSettings(direction="both"), tryton_like)
    assert both.to_shop == {"name", "price", "ean", "status", "vat"}  # no weight / old price in that ERP
    assert both.to_erp == {"description"}  # images and attributes have nowhere to go in it


def test_a_field_cannot_have_two_owners() -> None:
    with pytest.raises(ValueError, match="also in erp_owns"):
        ProductSettings(erp_owns=["price"], shop_owns=["price"])


# --------------------------------------------------------------------------------------------- ERP -> shop


def test_to_shop_prefixes_skus_drops_stock_and_derives_gross_from_net() -> None:
    shop = to_shop(basic(price_net=D("10.004"), old_price_net=D("12")), RULES)
    assert shop is not None
    assert shop.sku == "MP-A-1" and shop.erp_id == "17" and shop.shop_id is None
    assert shop.stock is None
    assert (shop.price_net, shop.price_gross) == (D("10.00"), D("11.90"))
    assert (shop.old_price_net, shop.old_price_gross) == (D("12.00"), D("14.28"))


def test_to_shop_keeps_both_prices_when_the_erp_gives_both() -> None:
    shop = to_shop(basic(price_net=D("12.61"), price_gross=D("15.00")), RULES)
    assert shop is not None
    assert (shop.price_net, shop.price_gross) == (D("12.61"), D("15.00"))


def test_to_shop_puts_prices_of_a_multi_variant_product_on_its_variants() -> None:
    shop = to_shop(multi(), RULES)
    assert shop is not None
    assert shop.price_net is None and shop.price_gross is None and shop.weight is None
    assert [v.sku for v in shop.variants] == ["MP-TS-S", "MP-TS-M"]
    assert [(v.price_net, v.price_gross) for v in shop.variants] == [(D("50.00"), D("59.50")), (D("52.50"), D("62.48"))]
    assert all(v.stock is None for v in shop.variants)


def test_to_shop_does_not_change_the_erp_record() -> None:
    product = multi()
    before = product.model_dump()
    shop = to_shop(product, RULES)
    assert shop is not None
    shop.variants[0].options["variant"] = "XL"
    shop.attributes["x"] = "y"
    assert product.model_dump() == before


@pytest.mark.parametrize(
    ("product", "reason"),
    [
        (basic(vat_rate=None), "no VAT rate"),
        (basic(vat_rate=D("24")), "unknown VAT rate 24% (vat_taxes of the store maps: 9, 19)"),
        (basic(price_net=D("-1")), "negative price of A-1 -1.00"),
        (basic(old_price_net=D("-5")), "negative old price"),
        (basic(weight=D("-0.5")), "negative weight"),
        (basic(price_net=None), "no price"),
        (basic(sku=" "), "no SKU"),
    ],
)
def test_to_shop_rejects_what_the_shop_cannot_take(product: Product, reason: str) -> None:
    with pytest.raises(Rejected, match=reason.replace("(", r"\(").replace(")", r"\)")):
        to_shop(product, RULES)


def test_to_shop_rejects_a_variant_without_price() -> None:
    product = multi()
    product.variants[1].price_net = None
    product.variants[1].price_gross = None
    with pytest.raises(Rejected, match="variant MP-TS-M has no price"):
        to_shop(product, RULES)


# --------------------------------------------------------------------------------------------- shop -> ERP


def test_to_erp_takes_the_prefix_off_and_keeps_shop_prices() -> None:
    shop_product = Product(
        sku="MP-A-1",
        shop_id="901",
        name="Cana",
        vat_rate=D("19"),
        price_net=D("12.61"),
        price_gross=D("15"),
        stock=D("4"),
    )
    erp = to_erp(shop_product, RULES)
    assert erp is not None
    assert erp.sku == "A-1" and erp.erp_id is None and erp.shop_id == "901" and erp.stock is None
    assert (erp.price_net, erp.price_gross) == (D("12.61"), D("15.00"))


def test_to_erp_ignores_products_of_another_sku_scheme() -> None:
    assert to_erp(Product(sku="OTHER-1", vat_rate=D("19")), RULES) is None
    with pytest.raises(Rejected, match="does not carry the store's SKU prefix"):
        to_erp(Product(sku="MP-TS", variants=[Variant(sku="TS-S")]), RULES)


def test_normalised_derives_the_missing_price() -> None:
    product = normalised(Product(sku="X", vat_rate=D("9"), price_gross=D("10.90")))
    assert (product.price_net, product.price_gross) == (D("10.00"), D("10.90"))


# --------------------------------------------------------------------------------------------- the hook


def test_hook_changes_the_product_before_it_is_written_and_the_other_price_follows() -> None:
    SEEN.clear()
    rules = rules_with("tests.unit.test_product_mapping:charm_prices")
    shop = to_shop(basic(price_net=D("10")), rules)  # gross 11.90 -> 11.90 stays; use a price that moves
    assert shop is not None and shop.price_gross == D("11.90")
    shop = to_shop(basic(price_net=D("21")), rules)  # gross 24.99 -> 24.90, net recomputed from it
    assert shop is not None
    assert (shop.price_net, shop.price_gross) == (D("20.92"), D("24.90"))
    assert SEEN[-1] == HookContext(store="main", target="shop")
    assert to_shop(basic(name="DISCONTINUED cana"), rules) is None
    erp = to_erp(Product(sku="MP-A-1", vat_rate=D("19"), price_net=D("21")), rules)
    assert erp is not None and erp.price_net == D("21.00")
    assert SEEN[-1].target == "erp"


def test_hook_errors_reject_the_product_only() -> None:
    with pytest.raises(Rejected, match=r"hook tests.unit.test_product_mapping:broken_hook: KeyError: 'brand'"):
        to_shop(basic(), rules_with("tests.unit.test_product_mapping:broken_hook"))
    with pytest.raises(Rejected, match="returned dict, not a Product or None"):
        to_shop(basic(), rules_with("tests.unit.test_product_mapping:wrong_type_hook"))


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("tests.unit.no_such_module:hook", "ModuleNotFoundError"),
        ("tests.unit.test_product_mapping:no_such_function", "AttributeError"),
        ("tests.unit.test_product_mapping:NOT_CALLABLE", "is not a function"),
    ],
)
def test_a_hook_that_cannot_be_loaded_is_a_configuration_error(path: str, message: str) -> None:
    with pytest.raises(HookError, match=message):
        load_hook(path)


def test_store_rules_come_from_the_configuration() -> None:
    settings = settings_from_dict(
        {
            "erp": {"type": "tryton", "database": "x", "password": "literal:pw"},
            "stores": [
                {
                    "name": "main",
                    "url": "https://shop.example.ro",
                    "api_key": "literal:k",
                    "api_secret": "literal:s",
                    "sku_prefix": "MP-",
                    "products": {"hook": "tests.unit.test_product_mapping:charm_prices", "vat_taxes": {"19.0": 7}},
                }
            ],
        }
    )
    rules = StoreRules.of(settings.store("main"))
    assert rules.sku_prefix == "MP-" and rules.hook is charm_prices
    assert rules.tax_id(D("19.00")) == 7 and rules.tax_id(D("9")) is None and rules.tax_id(None) is None


# --------------------------------------------------------------------------------------------- ids and shapes


def test_attach_shop_ids_and_shape_mismatch() -> None:
    shop = to_shop(multi(), RULES)
    assert shop is not None
    with_ids = attach_shop_ids(shop, "70", {"MP-TS-S": "71"})
    assert with_ids.shop_id == "70"
    assert [v.shop_id for v in with_ids.variants] == ["71", None]
    assert shop.shop_id is None  # the original is left alone
    assert shape_mismatch(shop, basic()) == (
        "the product is multi-variant on one side and basic on the other (the type cannot be changed)"
    )
    assert shape_mismatch(shop, with_ids) is None


def test_status_and_texts_pass_through() -> None:
    shop = to_shop(basic(status=ProductStatus.INACTIVE, ean="5940000000010", images=["https://x/1.jpg"]), RULES)
    assert shop is not None
    assert shop.status is ProductStatus.INACTIVE and shop.ean == "5940000000010"
    assert shop.images == ["https://x/1.jpg"] and shop.description == "<p>Cana</p>"
