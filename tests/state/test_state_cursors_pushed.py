"""Cursors round-trip, timestamps in UTC on both engines, and the pushed state's bulk upsert."""

from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal

from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from erpsync.core.state import LINKS, StateStore

BULK = 100_000


def test_cursor_round_trip(state: StateStore, store: str) -> None:
    assert state.get_cursor(store, "orders") is None
    first = dt.datetime(2025, 3, 30, 0, 59, 59, 123456, tzinfo=dt.UTC).isoformat()
    state.set_cursor(store, "orders", first)
    assert state.get_cursor(store, "orders") == first
    later = "2025-03-30T01:00:00+00:00"
    state.set_cursor(store, "orders", later)
    assert state.get_cursor(store, "orders") == later
    assert dt.datetime.fromisoformat(later).utcoffset() == dt.timedelta(0)
    state.set_cursor(store + "-b", "orders", first)
    assert state.get_cursor(store, "orders") == later  # stores keep their own cursors
    assert state.get_cursor(store, "stock") is None


def test_timestamps_are_stored_and_returned_in_utc(state_url: str, engine_name: str, store: str) -> None:
    url = state_url
    if engine_name == "postgresql":  # a session in another zone must change nothing
        url = make_url(url).update_query_dict({"options": "-c timezone=Asia/Tokyo"}).render_as_string(False)
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    with StateStore.open(url) as state:
        link = state.link(store, "product", shop_id="1", erp_id="A")
        assert link.created_at.tzinfo == dt.UTC and link.created_at.utcoffset() == dt.timedelta(0)
        assert before <= link.created_at <= dt.datetime.now(dt.UTC)
        with state.engine.connect() as conn:
            if engine_name == "sqlite":
                raw = conn.execute(text("SELECT created_at FROM links WHERE id = :id"), {"id": link.id}).scalar()
                assert raw == link.created_at.replace(tzinfo=None).isoformat(sep=" ")
            else:
                assert conn.execute(text("SHOW timezone")).scalar() == "Asia/Tokyo"
                raw = conn.execute(select(LINKS.c.created_at).where(LINKS.c.id == link.id)).scalar_one()
                assert raw == link.created_at and raw.tzinfo == dt.UTC
        entry = state.journal_claim(store, "1001", None)
        assert entry.created_at.tzinfo == dt.UTC


def test_pushed_bulk_upsert_of_100k_rows(state: StateStore, store: str, engine_name: str) -> None:
    rows = [(f"SKU-{i:06d}", f"h{i}", Decimal(i % 1000) / 4) for i in range(BULK)]
    started = time.perf_counter()
    assert state.set_pushed(store, "stock", rows) == BULK
    inserted = time.perf_counter() - started

    changed = [(f"SKU-{i:06d}", f"g{i}", None if i % 20 else Decimal("7.125")) for i in range(0, BULK, 10)]
    started = time.perf_counter()
    assert state.set_pushed(store, "stock", changed) == len(changed)
    updated = time.perf_counter() - started

    started = time.perf_counter()
    pushed = state.get_pushed(store, "stock")
    read = time.perf_counter() - started
    print(
        f"\n[{engine_name}] pushed: insert {BULK:,} rows {inserted:.2f}s, "
        f"upsert {len(changed):,} {updated:.2f}s, read all {read:.2f}s"
    )
    assert len(pushed) == BULK
    assert pushed["SKU-000003"].hash == "h3" and pushed["SKU-000003"].quantity == Decimal("0.75")
    assert pushed["SKU-000999"].quantity == Decimal("249.75")
    assert pushed["SKU-000010"].hash == "g10" and pushed["SKU-000010"].quantity is None  # None is stored
    assert pushed["SKU-000020"].hash == "g20" and pushed["SKU-000020"].quantity == Decimal("7.125")
    assert pushed["SKU-000020"].pushed_at >= pushed["SKU-000003"].pushed_at
    assert pushed["SKU-000003"].pushed_at.tzinfo == dt.UTC
    assert sum(1 for p in pushed.values() if p.hash and p.hash.startswith("g")) == len(changed)
    assert inserted < 30, "bulk upsert far slower than expected"


def test_pushed_keys_filter_delete_and_last_row_wins(state: StateStore, store: str) -> None:
    assert state.set_pushed(store, "price", []) == 0
    written = state.set_pushed(
        store, "price", [("A", "1", Decimal("1")), ("B", "2", Decimal("2")), ("A", "3", Decimal("3"))]
    )
    assert written == 2
    state.set_pushed(store, "stock", [("A", "s", Decimal("9"))])
    got = state.get_pushed(store, "price", ["A", "missing"])
    assert set(got) == {"A"} and got["A"].hash == "3" and got["A"].quantity == Decimal("3")
    assert state.get_pushed(store, "price", []) == {}
    many = [f"K{i}" for i in range(20_000)]  # over the IN-list threshold: the scan-and-filter path
    assert set(state.get_pushed(store, "price", [*many, "B"])) == {"B"}
    assert state.delete_pushed(store, "price", ["A", "zzz"]) == 1
    assert set(state.get_pushed(store, "price")) == {"B"}
    assert set(state.get_pushed(store, "stock")) == {"A"}  # other entity untouched
