"""The movement trail, pure parts and the state store: causes per SKU, ERP documents, record, list, prune."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import update

from erpsync.core.models import Customer, Order, OrderLine
from erpsync.core.state import MOVEMENTS, NewMovement, StateStore
from erpsync.core.trail import Trail, join_refs, order_trail


def _order(sid: str, *skus: str) -> Order:
    lines = [OrderLine(sku=s, quantity=Decimal(1), unit_price_gross=Decimal(10)) for s in skus]
    return Order(shop_id=sid, customer=Customer(email="a@b.ro"), lines=lines)


def test_order_trail_names_sales_and_returns_with_their_documents() -> None:
    orders = [_order("100", "P-A", "P-B"), _order("101", "P-B"), _order("102", "P-C")]
    events = [{"order": "102", "what": "return", "ERP document": "CN-7", "detail": ""}]
    trail = order_trail(orders, {"100": "55", "101": "56"}, events, prefix="P-")
    assert trail.cause_of("A") == "sale" and trail.cause_of("C") == "return"
    assert trail.ref_of("B") == "sale 55 (order 100), sale 56 (order 101)"
    assert trail.ref_of("C") == "return CN-7 (order 102)"
    assert join_refs([("x", "d"), ("x", "d"), ("y", "")]) == {"x": "d"}
    with pytest.raises(ValueError, match="unknown stock movement cause 'typo'"):
        Trail("typo")


def test_movements_are_recorded_listed_newest_first_and_pruned(tmp_path: Path) -> None:
    state = StateStore.open(f"sqlite:///{tmp_path / 's.db'}")
    state.record_movements("main", [NewMovement("A", Decimal(5), None, "sale", "sale 1")], run_id="r1")
    state.record_movements("main", [NewMovement("A", Decimal(9), Decimal(5), "receipt", "NIR 2")])
    state.record_movements("outlet", [NewMovement("A", Decimal(1), None, "manual")])
    with pytest.raises(ValueError, match="A: unknown movement cause"):
        state.record_movements("main", [NewMovement("A", Decimal(1), None, "oops")])
    assert [m.cause for m in state.movements("A", store="main")] == ["receipt", "sale"]
    assert {m.store for m in state.movements("A")} == {"main", "outlet"}
    with state.engine.begin() as conn:
        conn.execute(update(MOVEMENTS).where(MOVEMENTS.c.cause == "sale").values(at=datetime.now(UTC) - timedelta(9)))
    assert state.prune_movements(datetime.now(UTC) - timedelta(days=5), store="main") == 1
    assert [m.cause for m in state.movements("A", store="main")] == ["receipt"]
    state.close()
