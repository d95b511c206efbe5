"""An in-memory ERP behind the ``ErpConnector`` protocol: stock with reservations, moves since a moment, goods
receipts. For benchmarks at 100,000 SKUs and flow tests that need an ERP to misbehave on purpose (duplicates,
negative stock, unreadable rows); the real Tryton is what the end-to-end tests use.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from erpsync.connectors.erp.base import Capabilities, NotSupported
from erpsync.connectors.http import Counters
from erpsync.core.models import GoodsReceipt, Page, ReceiptLine, RowError, StockLevel

CAPABILITIES = Capabilities(
    stock_read=True, stock_changed_since=True, stock_reservations=True, goods_receipts_read=True
)


@dataclass
class _Row:
    on_hand: Decimal
    reserved: Decimal
    moved: datetime


@dataclass
class MemoryStock:
    """Shared by every session of a ``MemoryErp``: levels per (SKU, warehouse), receipts, injected faults."""

    rows: dict[tuple[str, str], _Row] = field(default_factory=dict)
    receipts: list[GoodsReceipt] = field(default_factory=list)
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # (sku, warehouse) read twice
    unreadable: set[str] = field(default_factory=set)  # SKUs whose row comes back as a RowError
    lock: threading.Lock = field(default_factory=threading.Lock)

    def set(
        self,
        sku: str,
        warehouse: str,
        on_hand: float | Decimal,
        reserved: float | Decimal = 0,
        moved: datetime | None = None,
    ) -> None:
        """Set a level and mark the SKU as moved (now, unless ``moved`` says when)."""
        with self.lock:
            row = _Row(Decimal(str(on_hand)), Decimal(str(reserved)), moved or datetime.now(UTC))
            self.rows[(sku, warehouse)] = row

    def receive(self, reference: str, warehouse: str, lines: dict[str, int]) -> GoodsReceipt:
        """Goods received: on hand rises and a receipt appears."""
        for sku, quantity in lines.items():
            row = self.rows.get((sku, warehouse))
            self.set(sku, warehouse, (row.on_hand if row else 0) + quantity, row.reserved if row else 0)
        receipt = GoodsReceipt(
            erp_id=str(len(self.receipts) + 1),
            received_at=datetime.now(UTC),
            warehouse=warehouse,
            reference=reference,
            lines=[ReceiptLine(sku=s, quantity=Decimal(q)) for s, q in lines.items()],
        )
        self.receipts.append(receipt)
        return receipt


class MemoryErp:
    """One session over a ``MemoryStock`` (its own call counters), paged like a real connector."""

    system = "memory-erp"
    capabilities = CAPABILITIES

    def __init__(self, data: MemoryStock | None = None, *, page_size: int = 500) -> None:
        self.data = data if data is not None else MemoryStock()
        self.page_size = page_size
        self.counters = Counters()

    def session(self, **_options: Any) -> MemoryErp:
        """A new connector on the same data (what ``tasks.runtime.make_erp`` returns in tests)."""
        return MemoryErp(self.data, page_size=self.page_size)

    def check(self) -> str:
        return f"in-memory ERP with {len(self.data.rows)} stock levels"

    def close(self) -> None:
        return None

    def iter_stock(
        self,
        warehouses: Sequence[str],
        *,
        skus: Sequence[str] | None = None,
        changed_since: datetime | None = None,
    ) -> Iterator[Page[StockLevel]]:
        """Levels of these warehouses (only ``skus``, or SKUs moved since ``changed_since``), page by page."""
        wanted_wh = set(warehouses)
        with self.data.lock:
            rows = sorted((key, row) for key, row in self.data.rows.items() if key[1] in wanted_wh)
        if skus is not None:
            wanted = set(skus)
            rows = [(key, row) for key, row in rows if key[0] in wanted]
        if changed_since is not None:
            moved = {key[0] for key, row in rows if row.moved >= changed_since}
            rows = [(key, row) for key, row in rows if key[0] in moved]
        extra = [(key, self.data.rows[key]) for key in self.data.duplicates if key in self.data.rows]
        rows += [(key, row) for key, row in extra if key[1] in wanted_wh]
        for start in range(0, len(rows), self.page_size):
            self.counters.count("read")
            page = Page[StockLevel]()
            for (sku, warehouse), row in rows[start : start + self.page_size]:
                if sku in self.data.unreadable:
                    error = RowError(key=sku, error="quantity is not a number", payload={"sku": sku})
                    page.errors.append(error)
                    continue
                page.items.append(StockLevel(sku=sku, warehouse=warehouse, on_hand=row.on_hand, reserved=row.reserved))
            yield page
        if not rows:
            self.counters.count("read")

    def iter_goods_receipts(self, since: datetime, warehouses: Sequence[str]) -> Iterator[Page[GoodsReceipt]]:
        """Receipts into these warehouses since ``since``, one page."""
        self.counters.count("read")
        wanted = set(warehouses)
        yield Page[GoodsReceipt](
            items=[r for r in self.data.receipts if r.received_at >= since and r.warehouse in wanted]
        )

    def __getattr__(self, name: str) -> Any:
        if name.startswith(("iter_", "create_", "update_", "find_", "cancel_", "order_")):

            def refuse(*_args: Any, **_kwargs: Any) -> Any:
                raise NotSupported(self.system, f"{name} is not part of the in-memory ERP")

            return refuse
        raise AttributeError(name)
