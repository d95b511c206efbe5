"""Goods on the way: the incoming moves of confirmed purchases not yet received into the given warehouses.

A confirmed (processed) Tryton purchase makes one draft ``stock.move`` per line, from the supplier into the
warehouse's input zone, dated ``planned_date`` (the line's delivery date). Receiving the supplier shipment
makes them ``done``; so the moves still draft/assigned are what is on the way.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from erpsync.connectors.erp.tryton import mapping as tm
from erpsync.connectors.erp.tryton.session import TrytonSession
from erpsync.core.models import IncomingGoods, Page, RowError

OPEN_PURCHASE = ["confirmed", "processing"]
NOT_RECEIVED = ["draft", "assigned", "staging"]
FIELDS = ["product.code", "internal_quantity", "planned_date", "to_location", "purchase.number", "supplier.name"]


class Purchases:
    """``iter_incoming`` of the connector."""

    def __init__(self, tryton: TrytonSession) -> None:
        self.tryton = tryton

    def iter_incoming(self, warehouses: Sequence[str]) -> Iterator[Page[IncomingGoods]]:
        """Lines of confirmed purchases still to be received into these warehouses (one page per read page)."""
        zones = self.tryton.warehouses_of(list(dict.fromkeys(warehouses)))
        targets = {z.input or z.storage: z.code for z in zones} | {z.storage: z.code for z in zones}
        domain: list[Any] = [
            ("purchase.state", "in", OPEN_PURCHASE),
            ("state", "in", NOT_RECEIVED),
            ("to_location", "in", sorted(targets)),
        ]
        for rows in self.tryton.keyset_pages("stock.move", domain, FIELDS):
            page = Page[IncomingGoods]()
            for row in rows:
                code = (row.get("product.") or {}).get("code")
                quantity = tm.to_decimal(row.get("internal_quantity"))
                if not code or quantity is None:
                    page.errors.append(
                        RowError(key=str(row["id"]), error="incoming move: no product code or quantity", payload=row)
                    )
                    continue
                page.items.append(
                    IncomingGoods(
                        sku=str(code),
                        quantity=quantity,
                        expected=row.get("planned_date"),
                        supplier=(row.get("supplier.") or {}).get("name"),
                        purchase=(row.get("purchase.") or {}).get("number"),
                        warehouse=targets.get(int(row.get("to_location") or 0)),
                    )
                )
            yield page
