"""Pure parts of the store watcher (``flows/watch.py``): which SKUs really changed, when a batch is due, and the
run's counters. No Prefect, no I/O: unit-tested on their own."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from decimal import Decimal

from erpsync.core.models import StockLevel

Fingerprint = tuple[tuple[str, Decimal, Decimal], ...]


def fingerprints(levels: Iterable[StockLevel]) -> dict[str, Fingerprint]:
    """Per SKU, its (warehouse, on hand, reserved) triples in a stable order."""
    grouped: dict[str, list[tuple[str, Decimal, Decimal]]] = {}
    for level in levels:
        grouped.setdefault(level.sku, []).append((level.warehouse, level.on_hand, level.reserved))
    return {sku: tuple(sorted(rows)) for sku, rows in grouped.items()}


def changed_skus(seen: dict[str, Fingerprint], levels: Iterable[StockLevel]) -> list[str]:
    """The SKUs whose levels differ from what this watcher saw last (all of them the first time); ``seen`` is
    updated. A re-read of the cursor's overlap therefore triggers nothing."""
    changed = []
    for sku, print_ in fingerprints(levels).items():
        if seen.get(sku) != print_:
            seen[sku] = print_
            changed.append(sku)
    return sorted(changed)


@dataclass
class ChangeBatcher:
    """Changed SKUs wait here for a short window so that a burst costs one targeted sync, not one per SKU.

    A batch is due ``batch_seconds`` after its first SKU arrived, or at once when ``max_skus`` are waiting.
    """

    batch_seconds: float
    max_skus: int = 500
    pending: dict[str, float] = field(default_factory=dict)  # SKU -> when it was first seen

    def add(self, skus: Iterable[str], now: float) -> None:
        for sku in skus:
            self.pending.setdefault(sku, now)

    def due(self, now: float) -> bool:
        if not self.pending:
            return False
        return len(self.pending) >= self.max_skus or now - min(self.pending.values()) >= self.batch_seconds

    def oldest(self) -> float | None:
        return min(self.pending.values()) if self.pending else None

    def take(self) -> list[str]:
        skus = sorted(self.pending)
        self.pending.clear()
        return skus


@dataclass
class WatchCounters:
    """What one watcher run did so far (shown in its heartbeat, its artifact and its final summary)."""

    erp_polls: int = 0
    order_polls: int = 0
    changes_seen: int = 0
    batches: int = 0
    skus_synced: int = 0
    stock_written: int = 0
    sync_failures: int = 0
    busy_skips: int = 0
    orders_imported: int = 0
    shop_reads: int = 0
    shop_writes: int = 0
    longest_batch_delay: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return {key: round(value, 3) if isinstance(value, float) else value for key, value in asdict(self).items()}

    def line(self) -> str:
        return ", ".join(f"{key} {value}" for key, value in self.as_dict().items())
