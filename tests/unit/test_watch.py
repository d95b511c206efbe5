"""The store watcher's pure parts: real changes only, batching windows, counters."""

from __future__ import annotations

from decimal import Decimal

from erpsync.core.models import StockLevel
from erpsync.core.watch import ChangeBatcher, WatchCounters, changed_skus


def level(sku: str, on_hand: int, reserved: int = 0, warehouse: str = "WH") -> StockLevel:
    return StockLevel(sku=sku, warehouse=warehouse, on_hand=Decimal(on_hand), reserved=Decimal(reserved))


def test_only_real_changes_count_and_a_reread_overlap_triggers_nothing() -> None:
    seen: dict[str, object] = {}
    assert changed_skus(seen, [level("A", 5), level("B", 1), level("B", 2, warehouse="WH2")]) == ["A", "B"]
    assert changed_skus(seen, [level("A", 5), level("B", 2, warehouse="WH2"), level("B", 1)]) == []  # same levels
    assert changed_skus(seen, [level("A", 5, reserved=1), level("B", 1), level("B", 2, warehouse="WH2")]) == ["A"]
    assert changed_skus(seen, [level("B", 1)]) == ["B"]  # a warehouse row gone is a change too


def test_a_batch_is_due_after_its_window_or_when_full() -> None:
    batcher = ChangeBatcher(batch_seconds=1.0, max_skus=3)
    assert not batcher.due(0.0) and batcher.oldest() is None
    batcher.add(["B", "A"], now=10.0)
    batcher.add(["A"], now=10.6)  # already waiting: keeps its first time
    assert batcher.oldest() == 10.0
    assert not batcher.due(10.9)
    assert batcher.due(11.0)
    assert batcher.take() == ["A", "B"] and not batcher.pending
    batcher.add(["C", "D", "E"], now=20.0)
    assert batcher.due(20.0)  # full: at once


def test_counters_read_as_one_line() -> None:
    counters = WatchCounters(erp_polls=3, batches=1, longest_batch_delay=1.23456)
    assert counters.as_dict()["longest_batch_delay"] == 1.235
    assert counters.line().startswith("erp_polls 3, order_polls 0,")
