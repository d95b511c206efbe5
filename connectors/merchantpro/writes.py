"""Pure transforms from the canonical records to MerchantPro request bodies (the write side). No I/O here.

``product_payload`` (``POST /products``), ``product_patch`` (the smallest ``PATCH /products/{id}`` for changed
canonical fields), ``stock_payloads`` (absolute stock writes, grouped per product), ``order_payload``
(``POST /orders`` for an order of another channel), and ``shop_patch``: the product sync plans its writes as
synced fields (``core.mapping.SYNC_FIELDS``: ``price``, ``attributes``, ...) and this turns one such write into
the body to send, on top of ``product_patch`` (canonical fields of the parent) and ``product_payload`` (whole
variants, for the new ones). Reading the shop's JSON back into canonical records is ``mapping``'s side.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from erpsync.connectors.merchantpro.mapping import BASIC, MULTI_VARIANT
from erpsync.core.models import Address, Order, Product, Variant
from erpsync.core.product_diff import supplier_target

# Fields that live on the variants of a multi-variant product; sending them on the parent is refused.
VARIANT_ONLY_FIELDS = frozenset(
    {"stock", "price_net", "price_gross", "old_price_net", "old_price_gross", "weight", "cost_net", "cost_gross"}
)


def to_json_number(value: Decimal) -> int | float:
    """A Decimal as the JSON number the API expects: an int when integral."""
    return int(value) if value == value.to_integral_value() else float(value)


# --------------------------------------------------------------------------- products


def _money(value: Decimal | None) -> float | int | None:
    return None if value is None else to_json_number(value)


def _price_fields(item: Product | Variant) -> dict[str, Any]:
    fields = {
        "price_net": _money(item.price_net),
        "price_gross": _money(item.price_gross),
        "old_price_net": _money(item.old_price_net),
        "old_price_gross": _money(item.old_price_gross),
        "weight": _money(item.weight),
    }
    return {key: value for key, value in fields.items() if value is not None}


def _variant_payload(variant: Variant) -> dict[str, Any]:
    payload: dict[str, Any] = {"sku": variant.sku, **_price_fields(variant)}
    if variant.shop_id:
        payload["id"] = int(variant.shop_id) if variant.shop_id.isdigit() else variant.shop_id
    if variant.erp_id:
        payload["ext_ref"] = variant.erp_id
    if variant.ean:
        payload["ean"] = variant.ean
    if variant.stock is not None:
        payload["stock"] = to_json_number(variant.stock)
    payload["variant_options"] = [{"name": name, "value": value} for name, value in sorted(variant.options.items())]
    return payload


def product_payload(product: Product, *, tax_id: int | None, category_id: int | None = None) -> dict[str, Any]:
    """The body of ``POST /products`` for a canonical product; stock and prices go on variants when it has any."""
    payload: dict[str, Any] = {
        "type": MULTI_VARIANT if product.variants else BASIC,
        "sku": product.sku,
        "name": product.name,
        "description": product.description,
        "status": product.status.value,
    }
    if product.erp_id:
        payload["ext_ref"] = product.erp_id
    if product.ean:
        payload["ean"] = product.ean
    if tax_id is not None:
        payload["tax_id"] = tax_id
    if category_id:
        payload["category_id"] = category_id
    if product.images:
        payload["images"] = [{"url": url} for url in product.images]
    if product.variants:
        names: dict[str, list[str]] = {}
        for variant in product.variants:
            for name, value in variant.options.items():
                values = names.setdefault(name, [])
                if value not in values:
                    values.append(value)
        payload["variant_attributes"] = [
            {"name": name, "options": [{"value": value, "position": i} for i, value in enumerate(values)]}
            for name, values in names.items()
        ]
        payload["variants"] = [_variant_payload(v) for v in product.variants]
    else:
        payload.update(_price_fields(product))
        if product.stock is not None:
            payload["stock"] = to_json_number(product.stock)
    return payload


# Canonical field -> the shop fields that carry it (on the parent of a basic product).
PATCH_FIELDS: dict[str, tuple[str, ...]] = {
    "name": ("name",),
    "description": ("description",),
    "ean": ("ean",),
    "status": ("status",),
    "price_net": ("price_net",),
    "price_gross": ("price_gross",),
    "old_price_net": ("old_price_net",),
    "old_price_gross": ("old_price_gross",),
    "weight": ("weight",),
    "erp_id": ("ext_ref",),
    "images": ("images",),
}


def product_patch(
    product: Product, changed: Iterable[str], *, tax_id: int | None = None, category_id: int | None = None
) -> dict[str, Any]:
    """The smallest ``PATCH /products/{id}`` body that writes the ``changed`` canonical fields.

    For a multi-variant product, price/weight/stock changes are written on the variants (by id) and never on
    the parent, which the API refuses.
    """
    changed = set(changed)
    full = product_payload(product, tax_id=tax_id, category_id=category_id)
    patch: dict[str, Any] = {}
    for name in sorted(changed):
        if name == "vat_rate":
            if tax_id is not None:
                patch["tax_id"] = tax_id
            continue
        if name == "category":
            if category_id:
                patch["category_id"] = category_id
            continue
        if name == "variants":
            continue
        for shop_field in PATCH_FIELDS.get(name, ()):
            if product.variants and shop_field in VARIANT_ONLY_FIELDS:
                continue
            if shop_field in full:
                patch[shop_field] = full[shop_field]
    if product.variants and changed & (VARIANT_ONLY_FIELDS | {"variants"}):
        patch["variants"] = [_variant_payload(v) for v in product.variants if v.shop_id]
    return patch


@dataclass(frozen=True, slots=True)
class StockWrite:
    """An absolute stock quantity for one shop inventory unit."""

    sku: str
    product_id: str
    variant_id: str | None
    quantity: Decimal


def stock_payloads(writes: Sequence[StockWrite]) -> list[tuple[str, dict[str, Any], list[StockWrite]]]:
    """Group absolute stock writes per shop product: ``(product id, PATCH body, writes it carries)``.

    A basic product gets ``{"stock": q}``; the variants of one multi-variant product share one PATCH of the
    parent with ``{"variants": [{"id": v, "stock": q}, ...]}`` — one call for all of them.
    """
    groups: dict[str, list[StockWrite]] = {}
    for write in writes:
        if write.quantity < 0:
            raise ValueError(f"{write.sku}: negative stock {write.quantity} (quantities are clamped before this)")
        groups.setdefault(write.product_id, []).append(write)
    result = []
    for product_id, group in groups.items():
        variants = [w for w in group if w.variant_id is not None]
        basics = [w for w in group if w.variant_id is None]
        if variants and basics:
            raise ValueError(f"product {product_id}: both basic and variant stock writes")
        if variants:
            body: dict[str, Any] = {
                "variants": [
                    {
                        "id": int(w.variant_id) if w.variant_id.isdigit() else w.variant_id,
                        "stock": to_json_number(w.quantity),
                    }
                    for w in variants
                    if w.variant_id is not None
                ]
            }
        else:
            body = {"stock": to_json_number(basics[-1].quantity)}
        result.append((product_id, body, group))
    return result


# --------------------------------------------------------------------------- orders


def _address_fields(address: Address | None, prefix: str) -> dict[str, Any]:
    if address is None:
        return {}
    fields = {
        f"{prefix}_name": address.name,
        f"{prefix}_address": address.street,
        f"{prefix}_city": address.city,
        f"{prefix}_state": address.region,
        f"{prefix}_postal_code": address.postal_code,
        f"{prefix}_country_code": address.country_code,
        f"{prefix}_phone": address.phone,
    }
    return {key: value for key, value in fields.items() if value not in (None, "")}


def order_payload(
    order: Order, *, shipping_method_id: int | None = None, product_ids: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The body of ``POST /orders`` for an order of another channel (the reply carries the new shop id)."""
    product_ids = product_ids or {}
    payload: dict[str, Any] = {
        "payment_status": order.payment_status.value,
        "payment_method_code": order.payment_method or "cash_delivery",
        "shipping_status": order.shipping_status.value,
        "shipping_amount": to_json_number(order.shipping_amount),
        "customer_email": order.customer.email,
        "billing_type": "company" if order.customer.is_company else "individual",
        **_address_fields(order.billing or order.customer.billing, "billing"),
        "shipping_as_billing": order.shipping is None or order.shipping == order.billing,
        **_address_fields(order.shipping, "shipping"),
        "line_items": [],
    }
    if shipping_method_id is not None:
        payload["shipping_method_id"] = shipping_method_id
    if order.customer.is_company:
        if order.customer.company_name:
            payload["billing_company"] = order.customer.company_name
        if order.customer.vat_code:
            payload["billing_fiscal_code"] = order.customer.vat_code
    if order.note:
        payload["customer_note"] = order.note
    if order.reference:
        payload["meta_fields"] = {"erp_reference": order.reference}
    if order.discount_amount:
        payload["discount_amount"] = to_json_number(order.discount_amount)
    for line in order.lines:
        if line.kind != "product":
            # A discount or fee line (*inference*: the shop's encoding, see mapping.DISCOUNT_ITEM_TYPES); one
            # without a price adds nothing and is left out.
            if line.unit_price_gross is None and line.unit_price_net is None:
                continue
            other: dict[str, Any] = {"item_type": line.kind, "product_name": line.name or line.kind}
            other["quantity"] = to_json_number(line.quantity)
            if line.unit_price_gross is not None:
                other["unit_price_gross"] = to_json_number(line.unit_price_gross)
            if line.vat_rate is not None:
                other["product_tax_percent"] = to_json_number(line.vat_rate)
            if line.unit_price_gross is None and line.unit_price_net is not None:
                other["unit_price_net"] = to_json_number(line.unit_price_net)
            payload["line_items"].append(other)
            continue
        item: dict[str, Any] = {"product_sku": line.sku, "quantity": to_json_number(line.quantity)}
        if line.sku in product_ids:
            pid = product_ids[line.sku]
            item["product_id"] = int(pid) if pid.isdigit() else pid
        if line.unit_price_gross is not None:
            item["unit_price_gross"] = to_json_number(line.unit_price_gross)
        if line.unit_price_net is not None:
            item["unit_price_net"] = to_json_number(line.unit_price_net)
        payload["line_items"].append(item)
    return payload


# --------------------------------------------------------------------------- the product sync's writes


# Synced field -> canonical fields for product_patch (attributes: variants).
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


def supplier_fields(product: Product, fields: Iterable[str]) -> dict[str, str]:
    """The shop fields of the synced ``supplier:<field>`` names in ``fields``, each with the product's main supplier
    name ("" when it has none: a supplier removed in the ERP is cleared in the shop).

    No such field is documented (*inference*): the request that carries one sends ``ignore_nonexistent_fields=1``.
    """
    name = product.supplier.name if product.supplier else ""
    return {target: name for f in sorted(fields) if (target := supplier_target(f))}


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
    have yet are sent whole (without id: the shop adds them); the supplier goes to its field (``supplier_fields``).
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
    patch.update(supplier_fields(product, wanted))
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
