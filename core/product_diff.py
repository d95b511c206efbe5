"""Change detection for products: a fingerprint per record over the synced fields, and which fields changed.

A product's fingerprint is one short digest per field (``field_digests``), written as one string
(``encode``: ``"p1;name=1f0c...;price=9a2b..."``). It is what the state store keeps as the *pushed* hash of a
record: equal strings mean nothing to write; otherwise ``changed_fields`` names the fields whose digest
moved, and only those go into the PATCH. A field added to the synced set later has no digest in an old
fingerprint and so counts as changed once.

Values are compared in a normal form that both sides reach the same way (prices to the cent, numbers without
trailing zeros, text without surrounding blanks), so a record read back after we wrote it compares equal:
that is what keeps a write from echoing back as a change.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, Literal

from erpsync.core.models import CENT, Product, Variant

VERSION = "p1"
DIGEST_CHARS = 16
SUPPLIER_PREFIX = "supplier:"

Side = Literal["shop", "erp"]


def supplier_key(shop_field: str) -> str:
    """The synced field that writes a product's main supplier into the shop field ``shop_field``; the shop field is
    part of the name (and so of the fingerprint): naming another field makes every supplier due again."""
    return SUPPLIER_PREFIX + shop_field


def supplier_target(name: str) -> str | None:
    """The shop field a ``supplier_key`` writes to; None for any other synced field."""
    return name[len(SUPPLIER_PREFIX) :] if name.startswith(SUPPLIER_PREFIX) else None


def _money(value: Decimal | None) -> str | None:
    return None if value is None else str(value.quantize(CENT))


def _number(value: Decimal | None) -> str | None:
    if value is None:
        return None
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "0") else text


def _text(value: str | None) -> str:
    return (value or "").replace("\r\n", "\n").strip()


def _variants(product: Product, only: Iterable[str] | None) -> list[Variant]:
    wanted = None if only is None else set(only)
    return sorted((v for v in product.variants if wanted is None or v.sku in wanted), key=lambda v: v.sku)


def field_value(product: Product, name: str, *, side: Side, variant_skus: Iterable[str] | None = None) -> Any:
    """The normal form of one synced field (JSON-able); ``variant_skus`` limits the variants looked at.

    A multi-variant product's prices, old prices, EANs and weights are those of its variants (by SKU);
    its attributes are the variants' options, plus the product's own attributes on the ERP side (the shop
    API has no field for those).
    """
    variants = _variants(product, variant_skus)
    multi = bool(product.variants)
    if name == "name":
        return _text(product.name)
    if name == "description":
        return _text(product.description)
    if name == "price":
        if multi:
            return {v.sku: [_money(v.price_net), _money(v.price_gross)] for v in variants}
        return [_money(product.price_net), _money(product.price_gross)]
    if name == "old_price":
        if multi:
            return {v.sku: [_money(v.old_price_net), _money(v.old_price_gross)] for v in variants}
        return [_money(product.old_price_net), _money(product.old_price_gross)]
    if name == "ean":
        if multi:
            return {"": product.ean or None, **{v.sku: v.ean or None for v in variants}}
        return product.ean or None
    if name == "weight":
        if multi:
            return {v.sku: _number(v.weight) for v in variants}
        return _number(product.weight)
    if name == "status":
        return product.status.value
    if name == "vat":
        return _number(product.vat_rate)
    if name == "images":
        return [url.strip() for url in product.images]
    if supplier_target(name) is not None:
        return (_text(product.supplier.name) or None) if product.supplier else None
    if name == "attributes":
        options = {v.sku: sorted(v.options.items()) for v in variants}
        if side == "shop":
            return options
        return {"product": sorted(product.attributes.items()), "variants": options}
    raise ValueError(f"unknown product field {name!r}")


def _digest(value: Any) -> str:
    blob = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()[:DIGEST_CHARS]


def field_digests(
    product: Product, fields: Iterable[str], *, side: Side, variant_skus: Iterable[str] | None = None
) -> dict[str, str]:
    """A short digest of each field's normal form."""
    skus = None if variant_skus is None else list(variant_skus)
    return {name: _digest(field_value(product, name, side=side, variant_skus=skus)) for name in sorted(set(fields))}


def absent_digest() -> str:
    """The digest of a field that has no value (``None``): e.g. a product without supplier."""
    return _digest(None)


def encode(digests: Mapping[str, str]) -> str:
    """The fingerprint string of a record (what the state store keeps as its pushed hash)."""
    return ";".join([VERSION, *(f"{name}={digests[name]}" for name in sorted(digests))])


def decode(fingerprint: str | None) -> dict[str, str] | None:
    """The per-field digests of a fingerprint; None for no fingerprint or one this version cannot read."""
    if not fingerprint:
        return None
    version, _, rest = fingerprint.partition(";")
    if version != VERSION:
        return None
    digests: dict[str, str] = {}
    for part in rest.split(";") if rest else []:
        name, sep, digest = part.partition("=")
        if not sep:
            return None
        digests[name] = digest
    return digests


def changed_fields(before: Mapping[str, str] | str | None, after: Mapping[str, str]) -> set[str]:
    """The fields of ``after`` whose digest differs from ``before`` (a fingerprint or digests; None: all)."""
    old = decode(before) if isinstance(before, str) or before is None else dict(before)
    if old is None:
        return set(after)
    return {name for name, digest in after.items() if old.get(name) != digest}


def restrict(fingerprint: str | None, fields: Iterable[str]) -> str | None:
    """The fingerprint cut to ``fields`` (an unreadable one stays None)."""
    digests = decode(fingerprint)
    if digests is None:
        return None
    wanted = set(fields)
    return encode({k: v for k, v in digests.items() if k in wanted})


def duplicate_skus(products: Iterable[Product]) -> dict[str, list[Product]]:
    """SKUs (of products or their variants) that more than one record claims: SKU -> the products claiming it."""
    first: dict[str, Product] = {}
    clashes: dict[str, list[Product]] = {}
    for product in products:
        for sku in {product.sku, *(v.sku for v in product.variants)}:
            owner = first.setdefault(sku, product)
            if owner is not product:
                clashes.setdefault(sku, [owner]).append(product)
    return clashes
