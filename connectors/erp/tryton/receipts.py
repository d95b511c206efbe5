"""Supplier receipts: the supplier shipments done into the given warehouses since a time, with their lines."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from erpsync.connectors.erp.tryton import mapping as tm
from erpsync.connectors.erp.tryton.rpc import to_utc
from erpsync.connectors.erp.tryton.session import TrytonSession
from erpsync.core.models import GoodsReceipt, Page, ReceiptLine, RowError


class Receipts:
    """``iter_goods_receipts`` of the connector."""

    def __init__(self, tryton: TrytonSession) -> None:
        self.tryton = tryton

    def iter_goods_receipts(self, since: datetime, warehouses: Sequence[str]) -> Iterator[Page[GoodsReceipt]]:
        """Supplier shipments done (written) since ``since`` into these warehouses, with their lines."""
        zones = {z.id: z for z in self.tryton.warehouses_of(list(dict.fromkeys(warehouses)))}
        domain: list[Any] = [
            ("state", "=", "done"),
            ("warehouse", "in", sorted(zones)),
            ("last_modified_at", ">=", since),
        ]
        fields = [
            "number",
            "reference",
            "warehouse",
            "supplier.name",
            "incoming_moves",
            "effective_date",
            "last_modified_at",
        ]
        for shipments in self.tryton.keyset_pages("stock.shipment.in", domain, fields):
            move_ids = sorted({m for s in shipments for m in s.get("incoming_moves") or []})
            moves = {
                m["id"]: m
                for m in self.tryton.read(
                    "stock.move", "read", move_ids, ["product.code", "internal_quantity", "state"]
                )
            }
            page = Page[GoodsReceipt]()
            for shipment in shipments:
                lines: list[ReceiptLine] = []
                bad: str | None = None
                for move_id in shipment.get("incoming_moves") or []:
                    move = moves.get(move_id)
                    if move is None or move.get("state") == "cancelled":
                        continue
                    code = (move.get("product.") or {}).get("code")
                    quantity = tm.to_decimal(move.get("internal_quantity"))
                    if not code or quantity is None:
                        bad = f"move {move_id} has no product code or no quantity"
                        break
                    lines.append(ReceiptLine(sku=code, quantity=quantity))
                if bad is not None:
                    page.errors.append(
                        RowError(key=f"shipment.in:{shipment['id']}", error=bad, payload=tm.jsonable(shipment))
                    )
                    continue
                received = to_utc(shipment.get("last_modified_at"))
                assert received is not None
                page.items.append(
                    GoodsReceipt(
                        erp_id=str(shipment["id"]),
                        received_at=received,
                        warehouse=zones[shipment["warehouse"]].code,
                        supplier=(shipment.get("supplier.") or {}).get("name"),
                        reference=shipment.get("reference") or shipment.get("number"),
                        lines=lines,
                    )
                )
            yield page
