"""Links: idempotent, unique both ways (enforced by the database), and safe under concurrent inserts."""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from collections.abc import Callable

import pytest
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from erpsync.core.state import LINKS, Link, LinkConflict, StateStore

THREADS = 8
ATTEMPTS = 50


def _race(work: Callable[[int], None]) -> list[BaseException]:
    """Run ``work(thread_number)`` on THREADS threads released together; return what they raised."""
    barrier = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def run(number: int) -> None:
        barrier.wait()
        try:
            work(number)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a racing thread hung"
    return errors


def test_link_is_idempotent(state: StateStore, store: str) -> None:
    first = state.link(store, "product", shop_id="101", erp_id="P-1", sku="SKU-1", extra={"a": 1})
    again = state.link(store, "product", shop_id="101", erp_id="P-1")
    assert again == first
    assert isinstance(first, Link)
    assert (first.shop_id, first.erp_id, first.sku, first.extra) == ("101", "P-1", "SKU-1", {"a": 1})
    assert first.created_at.tzinfo == dt.UTC
    assert state.links(store, "product") == [first]


def test_link_updates_sku_and_extra_of_an_existing_pair(state: StateStore, store: str) -> None:
    first = state.link(store, "variant", shop_id="7", erp_id="V7", sku="OLD")
    changed = state.link(store, "variant", shop_id="7", erp_id="V7", sku="NEW", extra={"size": "M"})
    assert changed.id == first.id
    assert (changed.sku, changed.extra) == ("NEW", {"size": "M"})
    assert changed.updated_at >= first.updated_at
    assert state.find_link(store, "variant", sku="NEW") == changed
    assert state.find_link(store, "variant", sku="OLD") is None


def test_both_ids_are_unique_per_store_and_entity(state: StateStore, store: str) -> None:
    state.link(store, "product", shop_id="1", erp_id="A")
    with pytest.raises(LinkConflict) as shop_taken:
        state.link(store, "product", shop_id="1", erp_id="B")
    assert "shop_id '1' is already linked to erp_id 'A'" in str(shop_taken.value)
    with pytest.raises(LinkConflict) as erp_taken:
        state.link(store, "product", shop_id="2", erp_id="A")
    assert "erp_id 'A' is already linked to shop_id '1'" in str(erp_taken.value)

    state.link(store, "product", shop_id="2", erp_id="B")
    with pytest.raises(LinkConflict) as both:
        state.link(store, "product", shop_id="1", erp_id="B")
    assert "erp_id 'A'" in str(both.value) and "shop_id '2'" in str(both.value)
    assert {(x.shop_id, x.erp_id) for x in both.value.existing} == {("1", "A"), ("2", "B")}

    # The same ids in another entity or another store are independent.
    state.link(store, "customer", shop_id="1", erp_id="B")
    state.link(store + "-other", "product", shop_id="1", erp_id="B")
    assert [(x.shop_id, x.erp_id) for x in state.links(store, "product")] == [("1", "A"), ("2", "B")]


@pytest.mark.parametrize("column", ["shop_id", "erp_id"])
def test_uniqueness_is_enforced_by_the_database(state: StateStore, store: str, column: str) -> None:
    now = dt.datetime.now(dt.UTC)
    row = {"store": store, "entity": "product", "shop_id": "1", "erp_id": "A", "created_at": now, "updated_at": now}
    with state.engine.begin() as conn:
        conn.execute(insert(LINKS).values(**row))
    clash = {**row, "shop_id": "2", "erp_id": "B", column: row[column]}
    with pytest.raises(IntegrityError), state.engine.begin() as conn:
        conn.execute(insert(LINKS).values(**clash))


def test_find_link_and_unlink(state: StateStore, store: str) -> None:
    link = state.link(store, "order", shop_id="95750870.3", erp_id="SO-9", sku=None)
    assert state.find_link(store, "order", shop_id="95750870.3") == link
    assert state.find_link(store, "order", erp_id="SO-9") == link
    assert state.find_link(store, "order", shop_id="95750870.3", erp_id="other") is None
    assert state.find_link(store, "order", shop_id="95750870") is None
    with pytest.raises(ValueError):
        state.find_link(store, "order")
    assert state.unlink(store, "order", erp_id="SO-9") is True
    assert state.unlink(store, "order", erp_id="SO-9") is False
    assert state.find_link(store, "order", shop_id="95750870.3") is None
    # After unlinking, both ids are free for new partners.
    assert state.link(store, "order", shop_id="95750870.3", erp_id="SO-10").erp_id == "SO-10"


def test_ids_must_be_strings(state: StateStore, store: str) -> None:
    with pytest.raises(TypeError, match="shop_id must be a non-empty str"):
        state.link(store, "order", shop_id=95750870.3, erp_id="X")  # type: ignore[arg-type]
    assert state.links(store, "order") == []


def test_concurrent_same_pairs_make_one_row_each(state: StateStore, store: str) -> None:
    seen: dict[int, list[Link]] = {}

    def work(number: int) -> None:
        for i in range(ATTEMPTS):
            key = (i + number) % ATTEMPTS  # every thread links every pair, in a different order
            seen.setdefault(key, []).append(state.link(store, "product", shop_id=f"s{key}", erp_id=f"e{key}"))

    assert _race(work) == []
    rows = state.links(store, "product")
    assert len(rows) == ATTEMPTS
    for key, results in seen.items():
        assert len(results) == THREADS
        assert {r.id for r in results} == {next(r.id for r in rows if r.shop_id == f"s{key}")}


def test_concurrent_conflicting_pairs_keep_both_ids_unique(state: StateStore, store: str) -> None:
    won: list[tuple[str, str]] = []
    lost: list[tuple[str, str, LinkConflict]] = []

    def work(number: int) -> None:
        for i in range(ATTEMPTS):
            key = i % 10
            shop_id, erp_id = [
                (f"s{key}", f"e{key}"),
                (f"s{key}", f"e{key}-t{number}"),  # the shop id wants another ERP partner
                (f"s{key}-t{number}", f"e{key}"),  # the ERP id wants another shop partner
            ][(i + number) % 3]
            try:
                link = state.link(store, "product", shop_id=shop_id, erp_id=erp_id)
            except LinkConflict as exc:
                lost.append((shop_id, erp_id, exc))
            else:
                assert (link.shop_id, link.erp_id) == (shop_id, erp_id)
                won.append((shop_id, erp_id))

    assert _race(work) == []
    assert len(won) + len(lost) == THREADS * ATTEMPTS
    assert lost, "conflicting pairs must have produced LinkConflict"
    rows = state.links(store, "product")
    shop_counts = Counter(r.shop_id for r in rows)
    erp_counts = Counter(r.erp_id for r in rows)
    assert max(shop_counts.values()) == 1 and max(erp_counts.values()) == 1
    pairs = {(r.shop_id, r.erp_id) for r in rows}
    assert set(won) == pairs  # every winner is in the table, and nothing else is
    for shop_id, erp_id, exc in lost:
        holders = {(x.shop_id, x.erp_id) for x in exc.existing}
        assert holders and holders <= pairs and (shop_id, erp_id) not in pairs
        assert all(x.shop_id == shop_id or x.erp_id == erp_id for x in exc.existing)
