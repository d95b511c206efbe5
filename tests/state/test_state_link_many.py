"""Bulk links (``StateStore.link_many``): the rules of ``link`` for many pairs at once, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import uuid

from erpsync.core.state import StateStore


def _store() -> str:
    return f"s-{uuid.uuid4().hex[:8]}"


def test_link_many_inserts_keeps_updates_and_reports_conflicts(state: StateStore) -> None:
    store = _store()
    state.link(store, "product", shop_id="1", erp_id="a", sku="A")
    state.link(store, "product", shop_id="2", erp_id="b", sku="B")
    conflicts = state.link_many(
        store,
        "product",
        [
            ("1", "a", "A"),  # already there: kept
            ("2", "b", "B2"),  # already there: its sku is replaced
            ("3", "c", None),  # new
            ("1", "x", "X"),  # shop id 1 has another partner
            ("9", "b", "Y"),  # ERP id b has another partner
        ],
    )
    assert set(conflicts) == {("1", "x"), ("9", "b")}
    assert "shop_id '1' is already linked to erp_id 'a'" in str(conflicts[("1", "x")])
    assert [link.erp_id for link in conflicts[("9", "b")].existing] == ["b"]
    links = {(link.shop_id, link.erp_id): link.sku for link in state.links(store, "product")}
    assert links == {("1", "a"): "A", ("2", "b"): "B2", ("3", "c"): None}


def test_link_many_in_chunks_and_concurrently(state: StateStore) -> None:
    store = _store()
    pairs = [(str(n), f"e{n}", f"S{n}") for n in range(1_200)]  # more than one IN chunk
    errors: list[BaseException] = []
    results: list[dict[tuple[str, str], object]] = []

    def work() -> None:
        try:
            results.append(dict(state.link_many(store, "unit", pairs)))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == [] and results == [{}, {}, {}]
    assert len(state.links(store, "unit")) == 1_200
