"""Failures (upsert, resolve, reopen), accepted snapshots, and the per-(store, flow) run lock."""

from __future__ import annotations

import datetime as dt
import threading
import time
from decimal import Decimal

from pydantic import BaseModel

from erpsync.core.state import StateStore


class _Line(BaseModel):
    sku: str
    price: Decimal


def test_failure_upsert_bumps_and_reopens(state: StateStore, store: str) -> None:
    payload = {
        "id": "95750870.3",
        "total": Decimal("10.50"),
        "at": dt.datetime(2025, 1, 2, tzinfo=dt.UTC),
        "day": dt.date(2025, 1, 2),
        "line": _Line(sku="A", price=Decimal("1.5")),
    }
    first = state.record_failure(store, "order", "95750870.3", "customer missing", payload)
    assert (first.attempts, first.resolved, first.resolved_at) == (1, False, None)
    assert first.payload == {
        "id": "95750870.3",
        "total": "10.50",
        "at": "2025-01-02T00:00:00+00:00",
        "day": "2025-01-02",
        "line": {"sku": "A", "price": "1.5"},
    }
    assert first.first_seen.tzinfo == dt.UTC

    second = state.record_failure(store, "order", "95750870.3", "ERP timeout", {"try": 2})
    assert (second.id, second.attempts, second.error, second.payload) == (first.id, 2, "ERP timeout", {"try": 2})
    assert second.first_seen == first.first_seen and second.last_seen >= first.last_seen

    assert [f.key for f in state.open_failures(store)] == ["95750870.3"]
    assert state.resolve_failure(store, "order", "95750870.3") is True
    assert state.resolve_failure(store, "order", "95750870.3") is False
    resolved = state.failure(store, "order", "95750870.3")
    assert resolved is not None and resolved.resolved and resolved.resolved_at is not None
    assert state.open_failures(store) == []

    again = state.record_failure(store, "order", "95750870.3", "still failing")
    assert (again.attempts, again.resolved, again.resolved_at, again.payload) == (3, False, None, None)
    assert [f.error for f in state.open_failures(store, "order")] == ["still failing"]


def test_a_transient_error_never_replaces_a_lasting_reason_nor_uses_an_attempt(state: StateStore, store: str) -> None:
    state.record_failure(store, "order", "7", "unknown SKU 'X': create it in the ERP")
    down = state.record_failure(store, "order", "7", "transient: tryton refused the connection", transient=True)
    assert (down.error, down.attempts, down.transient) == ("unknown SKU 'X': create it in the ERP", 1, False)
    assert down.last_error == "transient: tryton refused the connection"
    lasting = state.record_failure(store, "order", "7", "unknown SKU 'Y'")  # a lasting reason replaces it
    assert (lasting.error, lasting.attempts, lasting.last_error) == ("unknown SKU 'Y'", 2, None)
    only = state.record_failure(store, "order", "8", "transient: timeout", transient=True)
    again = state.record_failure(store, "order", "8", "transient: reset", transient=True)
    assert (only.attempts, again.attempts, again.error, again.transient) == (1, 2, "transient: reset", True)


def test_dismissed_and_resolved_failures_are_kept_with_who_and_why(state: StateStore, store: str) -> None:
    state.record_failure(store, "order", "9999", "the shop no longer has this order")
    state.record_failure(store, "order_edit", "10", "edited after confirmation")
    assert state.resolve_failure(store, "order", "9999", how="dismissed", by="ana@ops", reason="mistyped id")
    assert state.resolve_failure(store, "order_edit", "10", how="resolved", by="ana@ops") is True
    assert state.open_failures(store) == []
    dismissed = state.failure(store, "order", "9999")
    assert dismissed is not None and dismissed.resolved and dismissed.resolved_at is not None
    assert (dismissed.closed_how, dismissed.closed_by, dismissed.close_reason) == (
        "dismissed",
        "ana@ops",
        "mistyped id",
    )
    assert [f.key for f in state.closed_failures(store, "dismissed")] == ["9999"]
    assert {f.key for f in state.closed_failures(store)} == {"9999", "10"}
    reopened = state.record_failure(store, "order", "9999", "failed again")  # reopened: the closing is cleared
    assert (reopened.resolved, reopened.closed_how, reopened.closed_by, reopened.close_reason) == (
        False,
        None,
        None,
        None,
    )


def test_open_failures_filters(state: StateStore, store: str) -> None:
    state.record_failure(store, "product", "SKU-1", "bad price")
    state.record_failure(store, "order", "1", "bad customer")
    state.record_failure(store + "-b", "product", "SKU-1", "other store")
    assert {(f.entity, f.key) for f in state.open_failures(store)} == {("product", "SKU-1"), ("order", "1")}
    assert [f.key for f in state.open_failures(store, "product")] == ["SKU-1"]
    everywhere = {(f.store, f.key) for f in state.open_failures(entity="product")}
    assert {(store, "SKU-1"), (store + "-b", "SKU-1")} <= everywhere
    assert state.failure(store, "product", "SKU-2") is None


def test_snapshots_keep_the_last_accepted(state: StateStore, store: str) -> None:
    assert state.last_snapshot(store, "erp_stock") is None
    first = state.save_snapshot(store, "erp_stock", 1200, {"rows": 1200, "zero_share": 0.05})
    second = state.save_snapshot(store, "erp_stock", 1180, {"rows": 1180, "zero_share": Decimal("0.06")})
    state.save_snapshot(store, "catalogue", 10, {"rows": 10})
    state.save_snapshot(store + "-b", "erp_stock", 5, {"rows": 5})
    last = state.last_snapshot(store, "erp_stock")
    assert last == second and last.id != first.id
    assert (last.row_count, last.metrics) == (1180, {"rows": 1180, "zero_share": "0.06"})
    assert last.accepted_at.tzinfo == dt.UTC and last.accepted_at >= first.accepted_at


def test_lock_refuses_a_second_holder_until_unlock(state: StateStore, store: str) -> None:
    assert state.try_lock(store, "stock", "run-a", 60) is True
    assert state.try_lock(store, "stock", "run-b", 60) is False
    assert state.try_lock(store, "stock", "run-a", 60) is True  # the holder may extend its lock
    assert state.try_lock(store, "orders", "run-b", 60) is True  # another flow is independent
    assert state.try_lock(store + "-b", "stock", "run-b", 60) is True  # so is another store
    state.unlock(store, "stock", "run-b")  # not the holder: nothing happens
    assert state.try_lock(store, "stock", "run-b", 60) is False
    state.unlock(store, "stock", "run-a")
    assert state.try_lock(store, "stock", "run-b", 60) is True


def test_lock_expires(state: StateStore, store: str) -> None:
    assert state.try_lock(store, "reconcile", "run-a", 0.3) is True
    assert state.try_lock(store, "reconcile", "run-b", 60) is False
    time.sleep(0.4)
    assert state.try_lock(store, "reconcile", "run-b", 60) is True
    assert state.try_lock(store, "reconcile", "run-a", 60) is False


def test_racing_lock_has_one_winner(state: StateStore, store: str) -> None:
    barrier = threading.Barrier(8)
    winners: list[str] = []
    errors: list[BaseException] = []

    def take(number: int) -> None:
        barrier.wait()
        try:
            if state.try_lock(store, "products", f"run-{number}", 60):
                winners.append(f"run-{number}")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=take, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(winners) == 1
