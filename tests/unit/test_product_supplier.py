"""A product's main ERP supplier in the shop: the store's ``supplier_field`` setting, the shop body it makes, and
the plan deciding a change from what was pushed (the shop's reads never return the field)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from erpsync.connectors.merchantpro.writes import product_payload, shop_patch, supplier_fields
from erpsync.core.config import ConfigError, ProductSettings
from erpsync.core.config.fields import WRITTEN_SHOP_PRODUCT_FIELDS
from erpsync.core.mapping import StoreRules, ownership, to_shop
from erpsync.core.models import Product, ProductSupplier, Variant
from erpsync.core.product_diff import encode, field_digests
from erpsync.core.product_plan import Known, LinkRef, Memory, Policy, plan
from tests.unit.test_config import GOOD, _load
from tests.unit.test_config import _env as _env  # autouse: the secrets GOOD names, a temporary directory

D = Decimal
RULES = StoreRules(store="main", vat_taxes={"19": 1})
FURNIZOR = ProductSupplier(erp_id="7", name="Furnizor Demo SRL")
KEY = "supplier:manufacturer"


def erp(supplier: ProductSupplier | None = FURNIZOR, **changes: Any) -> Product:
    values: dict[str, Any] = {"sku": "A-1", "erp_id": "eA-1", "name": "Cana", "vat_rate": D("19")}
    values |= {"price_net": D("10"), "supplier": supplier, **changes}
    return Product(**values)


def shop() -> Product:
    """The shop's product as its reads return it: no supplier (the field is not in the API reference)."""
    return Product(sku="A-1", shop_id="sA-1", name="Cana", vat_rate=D("19"), price_net=D("10"), price_gross=D("11.90"))


def policy(supplier_field: str = "manufacturer", *, erp_suppliers: bool = True) -> Policy:
    settings = ProductSettings(supplier_field=supplier_field)
    return Policy(RULES, ownership(settings, erp_suppliers=erp_suppliers), True, False, True, False)


def pushed(product: Product, p: Policy) -> str:
    desired = to_shop(product, RULES)
    assert desired is not None
    return encode(field_digests(desired, p.own.to_shop, side="shop"))


def memory(pushed_shop: dict[str, str] | None = None) -> Memory:
    link = LinkRef("sA-1", "eA-1", "A-1")
    return Memory({"eA-1": link}, {"A-1": link}, {}, pushed_shop or {}, {})


# --------------------------------------------------------------------------------------------- the shop body


def test_supplier_fields_name_the_configured_shop_field() -> None:
    assert supplier_fields(erp(), {KEY, "price"}) == {"manufacturer": "Furnizor Demo SRL"}
    assert supplier_fields(erp(supplier=None), {KEY}) == {"manufacturer": ""}  # removed in the ERP: cleared
    assert supplier_fields(erp(), {"price", "name"}) == {}  # not configured: nothing


def test_shop_patch_carries_the_supplier_beside_the_other_changed_fields() -> None:
    product = erp(shop_id="sA-1", price_gross=D("11.90"))
    assert shop_patch(product, {KEY}, tax_id=1) == {"manufacturer": "Furnizor Demo SRL"}
    assert shop_patch(product, {KEY, "name"}, tax_id=1) == {"name": "Cana", "manufacturer": "Furnizor Demo SRL"}
    assert "manufacturer" not in shop_patch(product, {"name"}, tax_id=1)


def test_supplier_field_cannot_be_a_field_erpsync_writes_otherwise() -> None:
    """The config's reserved names cover every field of the product bodies erpsync sends."""
    extra: dict[str, Any] = {"weight": D("1"), "old_price_net": D("12"), "stock": D("3")}
    basic = erp(erp_id="9", shop_id="5", ean="5940000000001", images=["https://img.example/a.jpg"], **extra)
    variant = Variant(sku="A-1-S", erp_id="91", shop_id="51", ean="5940000000002", options={"size": "S"}, **extra)
    multi = basic.model_copy(update={"variants": [variant]})
    synced = ["name", "description", "price", "old_price", "ean", "weight", "status", "vat", "images", "attributes"]
    sent: set[str] = {"allow_backorders", "availability_text"}  # MerchantProClient.set_backorders
    for product in (basic, multi):
        payload = product_payload(product, tax_id=1, category_id=3)
        sent |= set(payload) | {key for v in payload.get("variants", []) for key in v}
        sent |= set(shop_patch(product, synced, tax_id=1))
    assert "variant_options" in sent and "ext_ref" in sent and "category_id" in sent
    assert sent <= WRITTEN_SHOP_PRODUCT_FIELDS, sorted(sent - WRITTEN_SHOP_PRODUCT_FIELDS)


# --------------------------------------------------------------------------------------------- ownership


def test_the_supplier_goes_to_the_shop_only_when_configured_and_the_erp_has_suppliers() -> None:
    assert KEY in policy().own.to_shop and policy().own.pushed_only == {KEY}
    assert not any(f.startswith("supplier") for f in policy("").own.to_shop)
    assert not any(f.startswith("supplier") for f in policy(erp_suppliers=False).own.to_shop)
    both = ownership(ProductSettings(direction="both", supplier_field="brand"), erp_suppliers=True)
    assert "supplier:brand" in both.to_shop and "supplier:brand" not in both.to_erp


# --------------------------------------------------------------------------------------------- the plan


def test_an_unchanged_supplier_costs_no_write_although_the_shop_read_lacks_it() -> None:
    p = policy()
    known = Known(erp={"A-1": erp()}, shop={"A-1": shop()}, shop_complete=True)
    result = plan(["A-1"], known, memory({"A-1": pushed(erp(), p)}), p)
    assert result.writes == [] and result.unchanged == 1


def test_a_changed_supplier_is_one_write_of_that_field_alone() -> None:
    p = policy()
    before = pushed(erp(), p)
    other = erp(supplier=ProductSupplier(erp_id="8", name="Alt Furnizor SA"))
    for shop_side in ({"A-1": shop()}, {}):  # the shop product read, or only its link and fingerprint known
        known = Known(erp={"A-1": other}, shop=shop_side, shop_complete=bool(shop_side))
        [write] = plan(["A-1"], known, memory({"A-1": before}), p).writes
        assert (write.kind, write.fields) == ("update", frozenset({KEY}))
        assert shop_patch(write.product, write.fields, tax_id=1) == {"manufacturer": "Alt Furnizor SA"}


def test_a_supplier_never_pushed_is_sent_once_and_none_is_not_sent() -> None:
    p, old = policy(), policy("")
    before = pushed(erp(), old)  # pushed before supplier_field was set: no supplier in the fingerprint
    known = Known(erp={"A-1": erp()}, shop={"A-1": shop()}, shop_complete=True)
    [write] = plan(["A-1"], known, memory({"A-1": before}), p).writes
    assert write.fields == {KEY}
    bare = Known(erp={"A-1": erp(supplier=None)}, shop={"A-1": shop()}, shop_complete=True)
    assert plan(["A-1"], bare, memory({"A-1": pushed(erp(supplier=None), old)}), p).writes == []


def test_another_supplier_field_sends_every_supplier_again() -> None:
    before = pushed(erp(), policy("manufacturer"))
    known = Known(erp={"A-1": erp()}, shop={"A-1": shop()}, shop_complete=True)
    [write] = plan(["A-1"], known, memory({"A-1": before}), policy("brand")).writes
    assert shop_patch(write.product, write.fields, tax_id=1) == {"brand": "Furnizor Demo SRL"}


def test_without_supplier_field_a_supplier_change_writes_nothing() -> None:
    p = policy("")
    other = erp(supplier=ProductSupplier(erp_id="8", name="Alt Furnizor SA"))
    known = Known(erp={"A-1": other}, shop={"A-1": shop()}, shop_complete=True)
    assert plan(["A-1"], known, memory({"A-1": pushed(erp(), p)}), p).writes == []


# --------------------------------------------------------------------------------------------- configuration


def test_supplier_field_is_off_by_default_and_read_when_set() -> None:
    assert _load(GOOD).stores[0].products.supplier_field == ""
    assert _load(GOOD + '[stores.products]\nsupplier_field = "manufacturer"\n').stores[0].products.supplier_field == (
        "manufacturer"
    )


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (
            'supplier_field = "Manufacturer Name"',
            "must be a shop product field name (lowercase letters, digits and '_', starting with a letter) or \"\" "
            "(got 'Manufacturer Name')",
        ),
        (
            "supplier_field = 3",
            "must be a shop product field name (lowercase letters, digits and '_', starting with "
            'a letter) or "" (got 3)',
        ),
        (
            'supplier_field = "name"',
            "'name' is a product field erpsync writes itself: name another field, or \"\" for none",
        ),
        (
            'direction = "shop_to_erp"\nsupplier_field = "brand"',
            "the supplier is written ERP -> shop, and this store's products go shop -> ERP only (direction "
            '"shop_to_erp"): set direction to "erp_to_shop" or "both", or supplier_field ""',
        ),
    ],
    ids=["not-a-field-name", "not-a-string", "a-field-erpsync-writes", "shop-to-erp"],
)
def test_a_bad_supplier_field_is_one_line_naming_the_key(line: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(GOOD + f"[stores.products]\n{line}\n")
    assert str(caught.value) == f"erpsync.toml: stores[0].products.supplier_field: {problem}"
