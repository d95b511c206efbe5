"""The product sync's bookkeeping around the plan, as pure functions (``tasks/product*.py`` do the I/O).

- reading: the failures of rows a side could not read (``row_failures``), and of ERP records that share a
  SKU (``split_duplicates``: every record claiming it fails, none is synced);
- writing: the canonical names an ERP connector's ``update_product`` is given for synced fields
  (``erp_update_fields``), and the batches writes go in (``chunks``);
- finishing: where both cursors go (``run_cursors``) given what failed and what was left for the next run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from erpsync.core.cursors import rewinding_cursor
from erpsync.core.models import Product, RowError
from erpsync.core.product_diff import duplicate_skus
from erpsync.core.product_plan import Failed, Side, Write

BATCH_SIZE = 100

# Synced field -> the canonical names an ERP connector's update_product understands.
ERP_FIELD_NAMES: dict[str, tuple[str, ...]] = {
    "price": ("price", "price_net", "price_gross"),
    "old_price": ("old_price", "old_price_net", "old_price_gross"),
    "vat": ("vat", "vat_rate"),
}


def row_stamp(payload: Mapping[str, Any]) -> datetime | None:
    """When an unreadable row was last changed, if its payload says (naive times are the ERP's UTC)."""
    for key in ("date_modified", "modified_at", "last_modified_at", "write_date"):
        value = payload.get(key)
        if isinstance(value, str) and value:
            try:
                parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                continue
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def row_failures(errors: Iterable[RowError], side: Side, origin: Side) -> list[Failed]:
    """The failures of rows read from ``origin`` that could not be read (so not written to ``side``)."""
    return [
        Failed(e.key, side, f"unreadable {origin} record: {e.error}", origin, row_stamp(e.payload), dict(e.payload))
        for e in errors
    ]


def failed_shop_id(payload: Any) -> str | None:
    """The shop product id a failure's payload names (a canonical product's ``shop_id``, a raw row's ``id``)."""
    if not isinstance(payload, dict):
        return None
    value = payload.get("shop_id") or payload.get("id")
    return str(value) if value not in (None, "") else None


def split_duplicates(items: Sequence[Product]) -> tuple[dict[str, Product], list[Failed], set[str]]:
    """ERP products by SKU without those that share a SKU with another record; the failures of those (each
    naming the SKUs it shares and the records it shares them with); and their own SKUs."""
    clashing: dict[int, tuple[Product, set[str]]] = {}
    for sku, owners in duplicate_skus(items).items():
        for owner in owners:
            clashing.setdefault(id(owner), (owner, set()))[1].add(sku)
    failed = []
    for owner, skus in clashing.values():
        others = sorted({p.erp_id or p.sku for p, s in clashing.values() if s & skus and p is not owner})
        failed.append(
            Failed(
                owner.sku,
                "shop",
                f"duplicate SKU in the ERP: {', '.join(sorted(skus))} also used by ERP product(s) {', '.join(others)}",
                "erp",
                owner.modified_at,
                owner.model_dump(mode="json", exclude_none=True),
            )
        )
    products = {p.sku: p for p in items if id(p) not in clashing}
    return products, failed, {owner.sku for owner, _ in clashing.values()}


def erp_update_fields(fields: Iterable[str]) -> set[str]:
    """The canonical names an ERP connector's ``update_product`` is given for these synced fields."""
    return {n for f in fields for n in ERP_FIELD_NAMES.get(f, (f,))}


def chunks(items: Sequence[Write], size: int = BATCH_SIZE) -> list[list[Write]]:
    """Writes in batches of ``size`` (one task run each)."""
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def run_cursors(
    erp_window: datetime,
    previous_erp: datetime | None,
    shop_window: datetime,
    previous_shop: datetime | None,
    failed: Sequence[Failed],
    not_reached: Sequence[Write],
) -> tuple[datetime | None, datetime | None]:
    """Where the ERP and shop cursors go after a run (``rewinding_cursor`` per side).

    A side's cursor holds while writes read from it wait for the next run; a shop product that failed is read
    again by id on the next runs, so it does not hold the shop cursor.
    """
    blocked_erp = any(w.side == "shop" for w in not_reached)
    blocked_shop = any(w.side == "erp" for w in not_reached)
    erp_cursor = rewinding_cursor(erp_window, previous_erp, failed, "erp", blocked=blocked_erp)
    holding = [f for f in failed if not (f.origin == "shop" and failed_shop_id(f.payload))]
    shop_cursor = rewinding_cursor(shop_window, previous_shop, holding, "shop", blocked=blocked_shop)
    return erp_cursor, shop_cursor
