"""Where each SKU's stock lives in a shop: the inventory unit (basic product, or variant of a parent).

Kept in the links table under entity ``unit``: ``erp_id`` = the ERP's SKU (code), ``shop_id`` =
``"<product id>"`` for a basic product or ``"<product id>:<variant id>"`` for a variant, ``sku`` = the shop's
SKU. Written by the product sync (when it creates or links products) and by the stock flows (from a shop
inventory read when a SKU is not known yet); read by the stock flows to address writes without a look-up.
"""

from __future__ import annotations

from collections.abc import Iterable

from erpsync.core.skus import UnitRef
from erpsync.core.state import StateStore

__all__ = ["ENTITY", "UnitRef", "load_units", "parse_unit_key", "save_units", "unit_key"]

ENTITY = "unit"


def unit_key(product_id: str, variant_id: str | None) -> str:
    return f"{product_id}:{variant_id}" if variant_id else product_id


def parse_unit_key(key: str) -> tuple[str, str | None]:
    product_id, _, variant_id = key.partition(":")
    return product_id, variant_id or None


def load_units(state: StateStore, store: str) -> dict[str, UnitRef]:
    """Every known unit of a store, by ERP SKU."""
    units = {}
    for erp_id, shop_id, sku in state.link_ids(store, ENTITY):
        product_id, variant_id = parse_unit_key(shop_id)
        units[erp_id] = UnitRef(erp_id, sku or erp_id, product_id, variant_id)
    return units


def save_units(state: StateStore, store: str, refs: Iterable[UnitRef], known: dict[str, UnitRef]) -> list[str]:
    """Record units that are new or moved, in bulk; updates ``known``; returns the SKUs whose unit is held by
    another SKU's link (not recorded)."""
    changed = {ref.erp_sku: ref for ref in refs if known.get(ref.erp_sku) != ref}
    for sku in changed:
        if sku in known:  # the SKU's unit moved (or its shop SKU changed): its old link goes first
            state.unlink(store, ENTITY, erp_id=sku)
            del known[sku]
    conflicts = state.link_many(
        store, ENTITY, [(unit_key(r.product_id, r.variant_id), r.erp_sku, r.shop_sku) for r in changed.values()]
    )
    refused = []
    for ref in changed.values():
        if (unit_key(ref.product_id, ref.variant_id), ref.erp_sku) in conflicts:
            refused.append(ref.erp_sku)
        else:
            known[ref.erp_sku] = ref
    return refused
