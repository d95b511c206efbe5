"""The guarded reconciliation: drift corrected exactly; a snapshot the guard refuses applies nothing (each
case); an operator's one-time acceptance; dry runs; SKUs unknown to the ERP; end to end with real Tryton."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bench._shop import task_runs
from erpsync.core.summary import RunState, RunSummary
from erpsync.tasks.reconcile import PREVIOUS, SNAPSHOT_KIND
from erpsync.tasks.stock import STOCK
from tests.flows.run_helpers import artifact
from tests.flows.stock_fixtures import STORE, FakeStack, add_basic, add_multi, build_fake_stack
from tests.support.stack import Stack
from tests.tryton_fixture import create_stocked_product, unique_code

pytestmark = pytest.mark.prefect
N = 40


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_harness: None) -> Iterator[FakeStack]:
    yield from build_fake_stack(tmp_path, monkeypatch)


def _reconcile(**params: Any) -> tuple[Any, Any]:
    from erpsync.flows.reconcile import reconcile

    state: Any = reconcile(store=STORE, return_state=True, **params)
    return state, state.result(raise_on_failure=False)


def _summary(**params: Any) -> RunSummary:
    from erpsync.runtime.states import is_partial

    state, summary = _reconcile(**params)
    assert state.is_completed() or is_partial(state), summary  # partially failed: a FAILED type, summary kept
    assert isinstance(summary, RunSummary)
    return summary


def _catalogue(fake: FakeStack, n: int = N) -> list[str]:
    """``n`` SKUs in both systems, the shop already right: on hand 10 + i, reserved 1 → 9 + i."""
    skus = []
    for i in range(n):
        sku = f"S{i:03d}"
        fake.erp.data.set(sku, "WH", 10 + i, 1)
        add_basic(fake.shop, sku, 9 + i)
        skus.append(sku)
    return skus


def _shop_writes(fake: FakeStack) -> int:
    return int(fake.shop.sim.stats.writes)


# --------------------------------------------------------------------------------------------- in-memory ERP


def test_drift_is_corrected_exactly_and_listed(fake: FakeStack) -> None:
    _catalogue(fake, 10)
    add_multi(fake.shop, "TS", {"TS-S": 1, "TS-M": 2})
    fake.erp.data.set("TS-S", "WH", 1)
    fake.erp.data.set("TS-M", "WH", 2)
    baseline = _summary()
    assert (baseline.updated, baseline.unchanged, baseline.shop_writes) == (0, 12, 0)
    for sku, drifted in (("S001", 999), ("S004", 0), ("TS-M", 50)):
        fake.shop.sim.set_stock_out_of_band(sku, drifted)
    fake.shop.sim.stats.reset()
    summary = _summary()
    assert (summary.updated, summary.unchanged, summary.failed) == (3, 9, 0)
    assert summary.shop_writes == 3 == _shop_writes(fake)  # writes = drifted SKUs exactly
    assert [fake.shop_stock(s) for s in ("S001", "S004", "TS-M")] == [10, 13, 2]
    table = artifact("reconcile-main-corrections")
    assert table is not None
    rows = sorted(json.loads(table.data), key=lambda r: r["sku"])
    assert rows == [
        {"sku": "S001", "shop_sku": "S001", "shop": 999.0, "erp": 10.0, "corrected": "yes"},
        {"sku": "S004", "shop_sku": "S004", "shop": 0.0, "erp": 13.0, "corrected": "yes"},
        {"sku": "TS-M", "shop_sku": "TS-M", "shop": 50.0, "erp": 2.0, "corrected": "yes"},
    ]
    state = fake.state()
    snapshot = state.last_snapshot(STORE, SNAPSHOT_KIND)
    assert snapshot is not None and snapshot.row_count == 12 and snapshot.metrics["accepted_by"] == "guard"
    assert state.get_pushed(STORE, PREVIOUS)["S001"].quantity == Decimal(11)  # on hand, for the next check
    assert state.get_pushed(STORE, STOCK)["S001"].quantity == Decimal(10)  # what the shop now holds
    again = _summary()
    assert again.updated == 0 and again.shop_writes == 0


def _break(fake: FakeStack, case: str, skus: list[str]) -> str:
    data = fake.erp.data
    if case == "empty":
        data.stock.clear()
        return "row_count_in_band"
    if case == "forty_percent_zero":
        for sku in skus[: int(len(skus) * 0.4)]:
            data.set(sku, "WH", 0)
        return "zero_share"
    if case == "duplicates":
        data.duplicates += [(skus[0], "WH"), (skus[1], "WH")]
        return "sku_unique"
    if case == "negative":
        data.set(skus[2], "WH", -4)
        return "quantity_not_negative"
    if case == "halved":
        for sku in skus[: len(skus) // 2]:
            del data.stock[(sku, "WH")]
        return "row_count_in_band"
    raise AssertionError(case)


@pytest.mark.parametrize("case", ["empty", "forty_percent_zero", "duplicates", "negative", "halved"])
def test_a_refused_snapshot_applies_nothing(fake: FakeStack, case: str) -> None:
    skus = _catalogue(fake)
    _summary()  # the accepted baseline the next snapshot is compared with
    accepted = fake.state().last_snapshot(STORE, SNAPSHOT_KIND)
    fake.shop.sim.set_stock_out_of_band(skus[-1], 777)  # drift that a passing run would correct
    expected = _break(fake, case, skus)
    fake.shop.sim.stats.reset()
    state, error = _reconcile()
    assert state.is_failed() and isinstance(error, Exception)
    assert expected in str(error) and "nothing written" in str(error) and "accept_snapshot=true" in str(error)
    assert _shop_writes(fake) == 0 and fake.shop_stock(skus[-1]) == 777  # not even the real drift
    last = fake.state().last_snapshot(STORE, SNAPSHOT_KIND)
    assert last is not None and accepted is not None and last.id == accepted.id  # nothing accepted
    guard = artifact("reconcile-main-guard")
    assert guard is not None and guard.flow_run_id == state.state_details.flow_run_id
    assert expected in (guard.description or "")
    rows = json.loads(guard.data)
    assert rows and {r["expectation"] for r in rows} >= {expected}
    if case != "empty" and case != "halved":
        assert any(r.get("sku") for r in rows if r["expectation"] == expected)  # sample offending rows


def test_an_operator_accepts_a_refused_snapshot_once(fake: FakeStack) -> None:
    skus = _catalogue(fake)
    _summary()
    _break(fake, "forty_percent_zero", skus)
    state, _ = _reconcile()
    assert state.is_failed()
    accepted = _summary(accept_snapshot=True)
    assert accepted.updated == 16 and accepted.details["overridden"] == ["zero_share"]
    assert fake.shop_stock(skus[0]) == 0  # applied
    snapshot = fake.state().last_snapshot(STORE, SNAPSHOT_KIND)
    assert snapshot is not None and snapshot.metrics["accepted_by"] == "operator"
    assert _summary().updated == 0  # compared with the accepted snapshot now: passes, nothing to do


def test_dry_run_reports_without_writing_or_accepting(fake: FakeStack) -> None:
    skus = _catalogue(fake, 10)
    fake.shop.sim.set_stock_out_of_band(skus[3], 1)
    summary = _summary(dry_run=True)
    assert summary.shop_writes == 0 and summary.updated == 0 and summary.details["corrections"] == 1
    assert fake.shop_stock(skus[3]) == 1
    assert fake.state().last_snapshot(STORE, SNAPSHOT_KIND) is None  # a dry run remembers nothing
    table = artifact("reconcile-main-corrections")
    assert table is not None and json.loads(table.data)[0]["corrected"] == "no (dry run)"


def test_skus_unknown_to_the_erp_are_reported_not_zeroed(fake: FakeStack) -> None:
    _catalogue(fake, 30)
    add_basic(fake.shop, "SHOP-ONLY", 4)
    summary = _summary()
    assert summary.details["unknown_to_erp"] == ["SHOP-ONLY"] and fake.shop_stock("SHOP-ONLY") == 4
    table = artifact("reconcile-main-unknown")
    assert table is not None
    assert json.loads(table.data) == [{"shop_sku": "SHOP-ONLY", "shop": 4.0, "action": "reported"}]


def test_zero_unknown_zeroes_them_but_never_an_unreadable_sku(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_harness: None
) -> None:
    started = build_fake_stack(tmp_path, monkeypatch, store={"reconcile": {"zero_unknown": True}})
    fake = next(started)
    try:
        skus = _catalogue(fake, 30)
        add_basic(fake.shop, "SHOP-ONLY", 4)
        fake.erp.data.unreadable_skus.add(skus[0])
        fake.shop.sim.set_stock_out_of_band(skus[0], 55)
        summary = _summary()
        assert fake.shop_stock("SHOP-ONLY") == 0 and summary.details["zeroed_unknown"] == 1
        assert fake.shop_stock(skus[0]) == 55  # unreadable in the ERP: unknown, not zero, not "missing"
        assert summary.state is RunState.PARTIAL and fake.state().failure(STORE, STOCK, skus[0]) is not None
    finally:
        started.close()


def test_corrections_go_in_batches_with_few_task_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_harness: None
) -> None:
    started = build_fake_stack(tmp_path, monkeypatch, store={"reconcile": {"batch_size": 2}})
    fake = next(started)
    try:
        skus = _catalogue(fake, 12)
        for sku in skus[:5]:
            fake.shop.sim.set_stock_out_of_band(sku, 500)
        state, summary = _reconcile()
        assert isinstance(summary, RunSummary) and summary.updated == 5
        names = [run.name.rsplit("-", 1)[0] for run in task_runs(state.state_details.flow_run_id)]
        assert names.count("write-stock") == 3  # 5 corrections, 2 per batch
        assert len(names) == 9  # 2 reads, guard, plan, 3 batches, accept, units: per batch, never per SKU
    finally:
        started.close()


# --------------------------------------------------------------------------------------------- real Tryton


@pytest.mark.tryton
def test_tryton_drift_injected_in_the_shop_is_corrected(stack: Stack, prefect_harness: None) -> None:
    from erpsync.connectors.erp.tryton import TrytonConnector
    from erpsync.core.models import Address, Customer, Order, OrderLine

    assert stack.tryton is not None
    server, shop = stack.tryton, stack.shop()
    sku = unique_code("E2E-REC")
    with server.session() as session:
        create_stocked_product(session, server.manifest, sku, {"WH": 20})
    customer = Customer(email=f"{sku.lower()}@example.com", name="Reconciliere Test")
    address = Address(name="Reconciliere Test", street="Str. Morii 3", city="Sibiu", postal_code="550001")
    order = Order(
        shop_id=unique_code("SHOP"),
        public_code="#" + uuid.uuid4().hex[:6],
        customer=customer,
        billing=address,
        shipping=address,
        lines=[
            OrderLine(
                sku=sku, name="Produs", quantity=Decimal(4), unit_price_gross=Decimal("11.90"), vat_rate=Decimal(19)
            )
        ],
    )
    with TrytonConnector(server.url, server.database, server.username, server.password) as erp:
        erp.create_order(order, customer)  # 4 reserved by a confirmed sale
    add_basic(shop, sku, 999)  # drift: what someone typed in the shop's admin

    summary = _summary()
    assert summary.state is RunState.COMPLETED and summary.details["accepted_by"] == "guard"
    assert summary.updated == 1 and summary.shop_writes == 1
    product = next(p for p in shop.sim.products.values() if p["sku"] == sku)
    assert product["stock"] == 16  # 20 on hand − 4 reserved, not the 999 typed in the shop
    assert summary.details["erp_rows"] >= 30  # the whole Tryton catalogue was read and checked
    again = _summary()
    assert again.updated == 0 and again.shop_writes == 0
