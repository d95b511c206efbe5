"""The product sync's shop writes as MerchantPro bodies: synced fields -> the smallest ``PATCH /products/{id}``.

Pure, no I/O. The product sync plans its writes as synced fields (``core.mapping.SYNC_FIELDS``: ``price``,
``attributes``, ...); ``shop_patch`` turns one such write into the body to send, on top of ``mapping``'s
``product_patch`` (canonical fields of the parent) and ``product_payload`` (whole variants, for the new ones).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from erpsync.connectors.merchantpro.mapping import PATCH_FIELDS, product_patch, product_payload, to_json_number
from erpsync.core.models import Product, Variant

# Synced field -> canonical fields for connectors.merchantpro.mapping.product_patch (attributes: variants).
SHOP_FIELD_NAMES: dict[str, tuple[str, ...]] = {
    "name": ("name",),
    "description": ("description",),
    "price": ("price_net", "price_gross"),
    "old_price": ("old_price_net", "old_price_gross"),
    "ean": ("ean",),
    "weight": ("weight",),
    "status": ("status",),
    "vat": ("vat_rate",),
    "images": ("images",),
    "attributes": (),
}
VARIANT_GROUPS: dict[str, tuple[str, ...]] = {
    "price": ("price_net", "price_gross"),
    "old_price": ("old_price_net", "old_price_gross"),
    "ean": ("ean",),
    "weight": ("weight",),
}
NULLABLE_SHOP_FIELDS = frozenset({"ean", "old_price_net", "old_price_gross", "weight"})


def _money(value: Decimal | None) -> int | float | None:
    return None if value is None else to_json_number(value)


def _variant_entry(variant: Variant, groups: set[str], with_options: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": int(variant.shop_id) if variant.shop_id and variant.shop_id.isdigit() else variant.shop_id
    }
    for group in sorted(groups):
        for name in VARIANT_GROUPS[group]:
            value = getattr(variant, name)
            entry[name] = value if isinstance(value, str) or value is None else _money(value)
    if with_options:
        entry["variant_options"] = [{"name": k, "value": v} for k, v in sorted(variant.options.items())]
    return entry


def shop_patch(product: Product, fields: Iterable[str], *, tax_id: int | None) -> dict[str, Any]:
    """The smallest PATCH body that writes these synced fields of a product that has its shop ids.

    Product-level fields go through ``product_patch``; a multi-variant product's prices, old prices, EANs,
    weights and options go on its variants by id (only the changed groups), and variants the shop does not
    have yet are sent whole (without id: the shop adds them).
    """
    wanted = set(fields)
    canonical = {name for f in wanted for name in SHOP_FIELD_NAMES.get(f, ())}
    multi = bool(product.variants)
    parent = (
        {n for n in canonical if n not in ("price_net", "price_gross", "old_price_net", "old_price_gross", "weight")}
        if multi
        else canonical
    )
    patch = product_patch(product, parent, tax_id=tax_id)
    patch.pop("variants", None)
    for name in parent:
        for shop_field in PATCH_FIELDS.get(name, ()):
            if shop_field not in patch and shop_field in NULLABLE_SHOP_FIELDS and getattr(product, name) is None:
                patch[shop_field] = None  # a value cleared in the ERP is cleared in the shop
    if "images" in wanted and "images" not in patch:
        patch["images"] = []
    if multi:
        groups = wanted & set(VARIANT_GROUPS)
        with_options = "attributes" in wanted
        entries = []
        full = {v["sku"]: v for v in product_payload(product, tax_id=tax_id)["variants"]}
        for variant in product.variants:
            if not variant.shop_id:
                entries.append(full[variant.sku])
            elif groups or with_options:
                entries.append(_variant_entry(variant, groups, with_options))
        if entries:
            patch["variants"] = entries
    return patch
