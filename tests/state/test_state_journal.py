"""The order journal: one row per (store, shop order id), even when claims race."""

from __future__ import annotations

import threading

import pytest

from erpsync.core.state import StateError, StateStore


def test_claim_get_update(state: StateStore, store: str) -> None:
    assert state.journal_get(store, "95750870.3") is None
    entry = state.journal_claim(store, "95750870.3", "digest-1")
    assert (entry.shop_order_id, entry.state, entry.digest, entry.attempts) == ("95750870.3", "pending", "digest-1", 0)
    assert state.journal_claim(store, "95750870.3", "digest-2") == entry  # a claim never overwrites
    updated = state.journal_update(
        store, "95750870.3", state="created", erp_order_id="SO-1", erp_status="confirmed", attempts=1
    )
    assert (updated.id, updated.state, updated.erp_order_id, updated.attempts) == (entry.id, "created", "SO-1", 1)
    assert updated.digest == "digest-1" and updated.updated_at >= entry.updated_at
    assert state.journal_get(store, "95750870.3") == updated
    assert state.journal_get(store, "95750870") is None  # the string id is kept exactly


def test_update_validates(state: StateStore, store: str) -> None:
    state.journal_claim(store, "1", None)
    with pytest.raises(ValueError, match="state"):
        state.journal_update(store, "1", state="done")
    with pytest.raises(ValueError, match="unknown"):
        state.journal_update(store, "1", id=5)
    with pytest.raises(StateError, match="no journal entry"):
        state.journal_update(store, "2", state="failed")
    with pytest.raises(TypeError):
        state.journal_claim(store, 95750870.3, None)  # type: ignore[arg-type]
    entry = state.journal_get(store, "1")
    assert entry is not None and entry.state == "pending"


def test_entries_by_state(state: StateStore, store: str) -> None:
    for order in ("1", "2", "3", "4"):
        state.journal_claim(store, order, None)
    state.journal_update(store, "2", state="failed", last_error="ERP down")
    state.journal_update(store, "3", state="created", erp_order_id="SO-3")
    state.journal_claim(store + "-b", "9", None)
    assert [e.shop_order_id for e in state.journal_entries(store)] == ["1", "2", "3", "4"]
    assert [e.shop_order_id for e in state.journal_entries(store, ["pending", "failed"])] == ["1", "2", "4"]
    failed = state.journal_entries(store, {"failed"})
    assert [(e.shop_order_id, e.last_error) for e in failed] == [("2", "ERP down")]


def test_racing_claims_make_one_row(state: StateStore, store: str) -> None:
    barrier = threading.Barrier(8)
    ids: dict[str, set[int]] = {}
    errors: list[BaseException] = []

    def claim(number: int) -> None:
        barrier.wait()
        try:
            for i in range(20):
                order = f"{1000 + (i + number) % 10}.{i % 2}"
                ids.setdefault(order, set()).add(state.journal_claim(store, order, f"d{number}").id)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    entries = state.journal_entries(store)
    assert len(entries) == len(ids) == 20
    assert all(len(found) == 1 for found in ids.values())
    assert {e.shop_order_id: e.id for e in entries} == {order: found.pop() for order, found in ids.items()}
