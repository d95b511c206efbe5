"""SKU schemes per store: the shop's SKU is the store's prefix + the ERP's code."""

from __future__ import annotations


def shop_sku(prefix: str, erp_sku: str) -> str:
    """The shop SKU of an ERP code under this store's prefix."""
    return f"{prefix}{erp_sku}"


def erp_sku(prefix: str, shop_sku_value: str) -> str | None:
    """The ERP code of a shop SKU, or None when the SKU does not carry this store's prefix."""
    if not prefix:
        return shop_sku_value
    return shop_sku_value[len(prefix) :] if shop_sku_value.startswith(prefix) else None
