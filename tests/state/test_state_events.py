"""Order events: appended in sequence per order, updated by (order, seq), listed since a time."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from erpsync.core.state import StateError, StateStore


def test_events_append_in_sequence_per_order(state: StateStore, store: str) -> None:
    first = state.add_order_event(store, "95750870.3", "baseline", state="done", payload='{"total": "10.00"}')
    second = state.add_order_event(store, "95750870.3", "return", reference="B-95750870.3/R1", lines='{"A": "1"}')
    other = state.add_order_event(store, "95750870", "cancel", reference="B-95750870/R1")
    assert (first.seq, second.seq, other.seq) == (1, 2, 1)
    assert second.state == "pending" and second.reference == "B-95750870.3/R1"
    done = state.update_order_event(store, "95750870.3", 2, state="done", erp_id="77", detail="return sale 77")
    assert (done.id, done.state, done.erp_id) == (second.id, "done", "77")
    events = state.order_events(store, "95750870.3")
    assert [(e.seq, e.kind, e.state) for e in events] == [(1, "baseline", "done"), (2, "return", "done")]
    assert state.order_events(store, "nope") == []
    since = state.order_events_since(store, datetime.now(UTC) - timedelta(minutes=1))
    assert {e.shop_order_id for e in since} == {"95750870.3", "95750870"}


def test_events_validate(state: StateStore, store: str) -> None:
    with pytest.raises(ValueError, match="kind"):
        state.add_order_event(store, "1", "refund")
    with pytest.raises(ValueError, match="state"):
        state.add_order_event(store, "1", "return", state="maybe")
    with pytest.raises(StateError, match="no event"):
        state.update_order_event(store, "1", 9, state="done")
    with pytest.raises(ValueError, match="unknown"):
        state.update_order_event(store, "1", 1, kind="edit")
    with pytest.raises(TypeError):
        state.add_order_event(store, 1, "return")  # type: ignore[arg-type]


def test_concurrent_appends_never_share_a_seq(state: StateStore, store: str) -> None:
    errors: list[BaseException] = []

    def append() -> None:
        for _ in range(5):
            try:
                state.add_order_event(store, "42", "edit", state="done")
            except Exception as exc:  # a unique-constraint loss is acceptable; a duplicate seq is not
                errors.append(exc)

    threads = [threading.Thread(target=append) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seqs = [e.seq for e in state.order_events(store, "42")]
    assert len(seqs) == len(set(seqs)) == 15 - len(errors)
    assert seqs == sorted(seqs)
