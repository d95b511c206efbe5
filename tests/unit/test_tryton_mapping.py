"""Tryton mappers: feed Tryton rows (as JSON-RPC returns them), check the canonical records."""

from __future__ import annotations

from decimal import Decimal

import pytest

from erpsync.connectors.erp.tryton import mapping as tm
from erpsync.core.models import ProductStatus, ShippingStatus

CATEGORIES = {7: tm.Category(vat_rate=Decimal(19), taxes=(3,))}
TEMPLATE = {
    "id": 40,
    "code": "TRY-TSHIRT",
    "name": "Tricou",
    "list_price": Decimal("50"),
    "account_category": 7,
    "active": True,
    "salable": True,
    "last_modified_at": None,
}


def variant(vid: int, code: str, suffix: str, **extra: object) -> dict[str, object]:
    return {
        "id": vid,
        "code": code,
        "suffix_code": suffix,
        "active": True,
        "description": "",
        "list_price_used": Decimal("50"),
        "identifiers.": [],
        **extra,
    }


def test_a_template_with_one_variant_is_a_basic_product_with_vat_and_gross() -> None:
    product = tm.product_from(
        {**TEMPLATE, "code": "TRY-0001"},
        [variant(41, "TRY-0001", "", **{"identifiers.": [{"type": "ean", "code": "5940000000017"}]})],
        CATEGORIES,
    )
    assert (product.sku, product.erp_id, product.ean) == ("TRY-0001", "40", "5940000000017")
    assert (product.price_net, product.price_gross, product.vat_rate) == (Decimal("50"), Decimal("59.50"), 19)
    assert not product.variants and product.status is ProductStatus.ACTIVE


def test_several_variants_are_grouped_under_the_template_code() -> None:
    product = tm.product_from(
        TEMPLATE, [variant(41, "TRY-TSHIRT-S", "-S"), variant(42, "TRY-TSHIRT-M", "-M")], CATEGORIES
    )
    assert product.sku == "TRY-TSHIRT"
    assert [(v.sku, v.erp_id, v.options) for v in product.variants] == [
        ("TRY-TSHIRT-S", "41", {"variant": "S"}),
        ("TRY-TSHIRT-M", "42", {"variant": "M"}),
    ]


def test_a_price_list_with_vat_gives_the_gross_price() -> None:
    retail = tm.PriceList(id=1, name="Retail", tax_included=True, changed_at=None)
    product = tm.product_from(
        {**TEMPLATE, "code": "X"}, [variant(41, "X", "", sale_price_uom=Decimal("62.50"))], CATEGORIES, retail
    )
    assert (product.price_net, product.price_gross) == (Decimal("52.52"), Decimal("62.50"))


def test_an_inactive_or_unsalable_template_makes_its_products_inactive() -> None:
    product = tm.product_from({**TEMPLATE, "code": "X", "salable": False}, [variant(41, "X", "")], CATEGORIES)
    assert product.status is ProductStatus.INACTIVE


@pytest.mark.parametrize("code", [None, "", "   "])
def test_a_product_without_a_code_is_refused(code: str | None) -> None:
    with pytest.raises(ValueError, match="without a code"):
        tm.product_from({**TEMPLATE, "code": None}, [variant(41, code, "")], CATEGORIES)  # type: ignore[arg-type]


def test_a_party_with_a_vat_identifier_is_a_company() -> None:
    customer = tm.customer_from(
        {
            "id": 9,
            "name": "Firma SRL",
            "email": "a@firma.ro",
            "phone": None,
            "identifiers.": [{"type": "ro_cf", "code": "RO18547290"}],
        }
    )
    assert customer.is_company and customer.vat_code == "RO18547290" and customer.erp_id == "9"
    person = tm.customer_from({"id": 10, "name": "Ana", "email": "ana@x.ro", "identifiers.": []})
    assert not person.is_company and person.vat_code is None


def test_vat_candidates_with_and_without_the_country_prefix() -> None:
    assert tm.vat_candidates("RO 18.547.290", "RO") == ["RO18547290", "18547290"]
    assert tm.vat_candidates("18547290", "RO") == ["18547290", "RO18547290"]


def test_same_address_ignores_case_and_spacing() -> None:
    assert tm.address_key("Str.  Lunga 1", "Cluj", "400 129") == tm.address_key("str. lunga 1", "CLUJ", "400129")


@pytest.mark.parametrize(
    ("sale", "status"),
    [
        ({"state": "cancelled"}, ShippingStatus.CANCELLED),
        ({"state": "processing", "shipment_state": "sent"}, ShippingStatus.SHIPPED),
        ({"state": "processing"}, ShippingStatus.CONFIRMED),
        ({"state": "quotation"}, ShippingStatus.AWAITING),
        ({"state": "draft"}, ShippingStatus.TEMPORARY),
    ],
)
def test_sale_states_map_to_shop_statuses(sale: dict[str, str], status: ShippingStatus) -> None:
    assert tm.shipping_status_of(sale) is status
