"""erpsync.core.product_diff: per-field fingerprints in a normal form both sides reach, changed fields, duplicates."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from erpsync.connectors.merchantpro.mapping import product_from_shop
from erpsync.connectors.merchantpro.writes import product_payload
from erpsync.core.mapping import StoreRules, to_shop
from erpsync.core.models import Product, ProductStatus, Variant
from erpsync.core.product_diff import (
    changed_fields,
    decode,
    duplicate_skus,
    encode,
    field_digests,
    field_value,
    restrict,
)

D = Decimal
FIELDS = ("name", "description", "price", "old_price", "ean", "weight", "status", "vat", "images", "attributes")


def basic(**changes: Any) -> Product:
    values: dict[str, Any] = {
        "sku": "A-1",
        "name": "Cana",
        "vat_rate": D("19"),
        "price_net": D("10"),
        "price_gross": D("11.9"),
    }
    values.update(changes)
    return Product(**values)


def multi(**changes: Any) -> Product:
    return Product(
        sku="TS",
        name="Tricou",
        vat_rate=D("19"),
        variants=[
            Variant(sku="TS-S", price_net=D("50"), price_gross=D("59.5"), options={"Marime": "S"}),
            Variant(sku="TS-M", price_net=D("50"), price_gross=D("59.5"), options={"Marime": "M"}, **changes),
        ],
    )


def test_normal_forms_ignore_representation() -> None:
    a = basic(price_net=D("10.00"), weight=D("0.500"), name=" Cana ", description="a\r\nb", vat_rate=D("19.0"))
    b = basic(price_net=D("10"), weight=D("0.5"), name="Cana", description="a\nb", vat_rate=D("19"))
    assert field_digests(a, FIELDS, side="shop") == field_digests(b, FIELDS, side="shop")
    assert field_value(a, "price", side="shop") == ["10.00", "11.90"]
    assert field_value(a, "weight", side="shop") == "0.5"
    assert field_value(a, "vat", side="shop") == "19"


def test_each_field_has_its_own_digest() -> None:
    before = field_digests(basic(), FIELDS, side="shop")
    after = field_digests(basic(price_net=D("11"), price_gross=D("13.09")), FIELDS, side="shop")
    assert changed_fields(before, after) == {"price"}
    after = field_digests(basic(status=ProductStatus.INACTIVE, ean="594"), FIELDS, side="shop")
    assert changed_fields(before, after) == {"status", "ean"}


def test_a_multi_variant_product_is_compared_variant_by_variant() -> None:
    before = field_digests(multi(), FIELDS, side="shop")
    assert field_value(multi(), "price", side="shop") == {"TS-M": ["50.00", "59.50"], "TS-S": ["50.00", "59.50"]}
    assert changed_fields(before, field_digests(multi(ean="594"), FIELDS, side="shop")) == {"ean"}
    # the shop's own extra variants are left out when comparing with the variants the ERP has
    extra = multi()
    extra.variants.append(Variant(sku="TS-XL", price_net=D("1"), price_gross=D("1.19")))
    assert field_digests(extra, FIELDS, side="shop", variant_skus=["TS-S", "TS-M"]) == before
    assert field_digests(extra, FIELDS, side="shop") != before


def test_attributes_on_the_shop_side_are_the_variant_options_only() -> None:
    product = multi()
    product.attributes["Material"] = "bumbac"
    assert field_value(product, "attributes", side="shop") == {"TS-M": [("Marime", "M")], "TS-S": [("Marime", "S")]}
    erp_view = field_value(product, "attributes", side="erp")
    assert erp_view["product"] == [("Material", "bumbac")]


def test_fingerprint_round_trip_and_changes() -> None:
    digests = field_digests(basic(), ("name", "price"), side="shop")
    fingerprint = encode(digests)
    assert fingerprint.startswith("p1;name=") and ";price=" in fingerprint
    assert decode(fingerprint) == digests
    assert changed_fields(fingerprint, digests) == set()
    assert changed_fields(None, digests) == {"name", "price"}
    assert changed_fields("not a fingerprint", digests) == {"name", "price"}
    # a field synced from now on has no digest in an old fingerprint: it counts as changed once
    wider = field_digests(basic(), ("name", "price", "ean"), side="shop")
    assert changed_fields(fingerprint, wider) == {"ean"}
    assert restrict(encode(wider), ["name"]) == encode({"name": digests["name"]})
    assert decode("p1") == {} and decode("p1;broken") is None and decode(None) is None


@pytest.mark.parametrize("make", [basic, multi])
def test_what_the_shop_stores_compares_equal_to_what_was_sent(make: Any) -> None:
    """No echo: a product written to the shop and read back has the same fingerprint (the mappers agree)."""
    rules = StoreRules(store="main", vat_taxes={"19": 1})
    desired = to_shop(make(), rules)
    assert desired is not None
    sent = product_payload(desired, tax_id=1)
    # what a GET returns for it: the sent fields, the tax as a value, ids on the variants, options with ids
    row = {**sent, "id": 9, "tax_value": 19, "variant_attributes": []}
    for index, variant in enumerate(row.get("variants", [])):
        variant["id"] = 10 + index
        variant["variant_options"] = [{**o, "id": 1, "option_id": 2} for o in variant["variant_options"]]
    read_back = product_from_shop(row)
    assert field_digests(read_back, FIELDS, side="shop") == field_digests(desired, FIELDS, side="shop")


def test_duplicate_skus_across_products_and_variants() -> None:
    a = basic(sku="X-1", erp_id="1")
    b = basic(sku="X-1", erp_id="2")
    c = Product(sku="TS", erp_id="3", variants=[Variant(sku="TS"), Variant(sku="Y-1")])
    d = basic(sku="Y-1", erp_id="4")
    e = basic(sku="Z-1", erp_id="5")
    dupes = duplicate_skus([a, b, c, d, e])
    assert set(dupes) == {"X-1", "Y-1"}
    assert [p.erp_id for p in dupes["X-1"]] == ["1", "2"]
    assert [p.erp_id for p in dupes["Y-1"]] == ["3", "4"]
