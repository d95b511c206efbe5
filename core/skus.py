"""SKU schemes per store: the shop's SKU is the store's prefix + the ERP's code."""

from __future__ import annotations

from dataclasses import dataclass


def shop_sku(prefix: str, erp_sku: str) -> str:
    """The shop SKU of an ERP code under this store's prefix."""
    return f"{prefix}{erp_sku}"


def erp_sku(prefix: str, shop_sku_value: str) -> str | None:
    """The ERP code of a shop SKU, or None when the SKU does not carry this store's prefix."""
    if not prefix:
        return shop_sku_value
    return shop_sku_value[len(prefix) :] if shop_sku_value.startswith(prefix) else None


@dataclass(frozen=True, slots=True)
class UnitRef:
    """Where one ERP SKU's stock lives in a shop: its shop SKU, product id and (for a variant) variant id."""

    erp_sku: str
    shop_sku: str
    product_id: str
    variant_id: str | None
