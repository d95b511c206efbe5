"""Stock at each warehouse's storage zone: on hand, and reserved by the open moves planned out of it.

On hand = ``quantity`` read with the storage location as context; reserved = what moves planned out of the
storage zone (draft or assigned, i.e. confirmed sales not yet picked) will take.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from erpsync.connectors.erp.tryton import mapping as tm
from erpsync.connectors.erp.tryton.session import STORABLE_TYPES, TrytonSession
from erpsync.core.models import Page, RowError, StockLevel

OPEN_MOVE_STATES = ["draft", "assigned"]


class Stock:
    """``iter_stock`` of the connector."""

    def __init__(self, tryton: TrytonSession) -> None:
        self.tryton = tryton

    def iter_stock(
        self,
        warehouses: Sequence[str],
        *,
        skus: Sequence[str] | None = None,
        changed_since: datetime | None = None,
    ) -> Iterator[Page[StockLevel]]:
        """Stock at each warehouse's storage zone, ``page_size`` products a page.

        Calls per page: one ``search_read`` of products with ``quantity`` (first warehouse), one ``read`` of
        ``quantity`` per further warehouse, one ``search_read`` of the open moves leaving the storage zones.
        """
        if not warehouses:
            raise ValueError("iter_stock needs at least one warehouse")
        zones = self.tryton.warehouses_of(list(dict.fromkeys(warehouses)))
        base: list[Any] = [("type", "in", STORABLE_TYPES)]
        fields = ["code", "quantity"]
        first = {"locations": [zones[0].storage]}
        if changed_since is not None:
            moved = self._moved_products(changed_since, zones)
            if skus is not None:
                base.append(("code", "in", list(skus)))
            for chunk in tm.chunks(moved, self.tryton.page_size):
                rows = self.tryton.search_read(
                    "product.product", [*base, ("id", "in", chunk)], fields, order=[("id", "ASC")], context=first
                )
                yield self._stock_page(rows, zones)
        elif skus is not None:
            for chunk in tm.chunks(list(dict.fromkeys(skus)), self.tryton.page_size):
                rows = self.tryton.search_read(
                    "product.product", [*base, ("code", "in", chunk)], fields, order=[("id", "ASC")], context=first
                )
                yield self._stock_page(rows, zones)
        else:
            for rows in self.tryton.keyset_pages("product.product", base, fields, context=first):
                yield self._stock_page(rows, zones)

    def _moved_products(self, since: datetime, zones: Sequence[tm.Warehouse]) -> list[int]:
        """Products with a stock move into or out of these storage zones written since ``since``."""
        locations = sorted(set().union(*(z.tree for z in zones)))
        domain: list[Any] = [
            ("last_modified_at", ">=", since),
            ["OR", ("from_location", "in", locations), ("to_location", "in", locations)],
        ]
        products: dict[int, None] = {}
        for rows in self.tryton.keyset_pages("stock.move", domain, ["product"]):
            products.update((int(r["product"]), None) for r in rows if r.get("product"))
        return sorted(products)

    def _stock_page(self, rows: list[dict[str, Any]], zones: Sequence[tm.Warehouse]) -> Page[StockLevel]:
        page = Page[StockLevel]()
        if not rows:
            return page
        ids = [r["id"] for r in rows]
        quantities = {zones[0].code: {r["id"]: r.get("quantity") for r in rows}}
        for zone in zones[1:]:
            more = self.tryton.read("product.product", "read", ids, ["quantity"], context={"locations": [zone.storage]})
            quantities[zone.code] = {r["id"]: r.get("quantity") for r in more}
        reserved = self._reserved(ids, zones)
        for row in rows:
            code = row.get("code")
            if not isinstance(code, str) or not code.strip():
                page.errors.append(
                    RowError(
                        key=f"product:{row['id']}", error="a product without a code (SKU)", payload=tm.jsonable(row)
                    )
                )
                continue
            levels: list[StockLevel] = []
            for zone in zones:
                on_hand = tm.to_decimal(quantities[zone.code].get(row["id"]))
                if on_hand is None:
                    page.errors.append(
                        RowError(
                            key=code,
                            error=f"quantity {quantities[zone.code].get(row['id'])!r} in {zone.code} is not a number",
                            payload=tm.jsonable(row),
                        )
                    )
                    levels = []
                    break
                levels.append(
                    StockLevel(
                        sku=code,
                        warehouse=zone.code,
                        on_hand=on_hand,
                        reserved=reserved.get((zone.code, row["id"]), Decimal(0)),
                    )
                )
            page.items.extend(levels)
        return page

    def _reserved(self, product_ids: list[int], zones: Sequence[tm.Warehouse]) -> dict[tuple[str, int], Decimal]:
        """What open moves (draft or assigned) will take out of each storage zone, per product: one call.

        Moves into a zone (supplier receipts) are not subtracted, so a planned receipt never hides a reservation.
        """
        clauses: list[Any] = [
            [("from_location", "in", sorted(z.tree)), ("to_location", "not in", sorted(z.tree))] for z in zones
        ]
        domain: list[Any] = [
            ("product", "in", product_ids),
            ("state", "in", OPEN_MOVE_STATES),
            ["OR", *clauses] if len(clauses) > 1 else clauses[0],
        ]
        moves = self.tryton.search_read(
            "stock.move", domain, ["product", "from_location", "to_location", "internal_quantity"]
        )
        reserved: dict[tuple[str, int], Decimal] = defaultdict(Decimal)
        for move in moves:
            quantity = tm.to_decimal(move.get("internal_quantity")) or Decimal(0)
            for zone in zones:
                if move["from_location"] in zone.tree and move["to_location"] not in zone.tree:
                    reserved[(zone.code, move["product"])] += quantity
        return dict(reserved)
