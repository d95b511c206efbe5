"""The stock sync and the goods-receipt trigger: with the in-memory ERP (every branch), then end to end with
the real Tryton and the simulated shop (an order lowers the shop's stock by what it reserves, a receipt raises
it)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from erpsync.core.summary import RunState, RunSummary
from erpsync.core.units import ENTITY as UNIT_ENTITY
from erpsync.tasks.stock import STOCK, UNITS_CURSOR, Planned, batches
from tests.flows.run_helpers import artifact
from tests.flows.stock_fixtures import STORE, FakeStack, add_basic, add_multi, build_fake_stack
from tests.support.stack import Stack
from tests.tryton_fixture import create_stocked_product, create_supplier_shipment, unique_code

pytestmark = pytest.mark.prefect


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_harness: None) -> Iterator[FakeStack]:
    yield from build_fake_stack(tmp_path, monkeypatch)


def _sync(**params: Any) -> tuple[RunSummary, Any]:
    from erpsync.flows.stock import stock_sync
    from erpsync.runtime.states import summary_of

    state = stock_sync(store=STORE, return_state=True, **params)
    summary = summary_of(state)
    assert isinstance(summary, RunSummary)
    return summary, state


def _receipts() -> RunSummary:
    from erpsync.flows.stock import goods_receipts

    summary = goods_receipts(store=STORE, return_state=True).result()
    assert isinstance(summary, RunSummary)
    return summary


def _catalogue(fake: FakeStack, n: int = 5) -> None:
    for i in range(n):
        fake.erp.data.set(f"A{i}", "WH", 10 + i, 2)
        add_basic(fake.shop, f"A{i}", 0)


# --------------------------------------------------------------------------------------------- in-memory ERP


def test_first_run_writes_changes_then_nothing_changes_nothing_is_written(fake: FakeStack) -> None:
    _catalogue(fake)
    fake.shop.sim.set_stock_out_of_band("A3", 11)  # already right in the shop: no write for it
    first, state = _sync()
    assert state.is_completed() and first.state is RunState.COMPLETED
    assert [fake.shop_stock(f"A{i}") for i in range(5)] == [8, 9, 10, 11, 12]  # on hand − reserved
    assert (first.updated, first.unchanged, first.shop_writes) == (4, 1, 4)
    assert first.details["mode"] == "full" and first.details["shop_read"] is True
    second, _ = _sync()
    assert second.details["mode"] == "incremental" and second.details["cursor_advanced"] is True
    assert (second.updated, second.unchanged, second.shop_writes, second.shop_reads) == (0, 5, 0, 0)


def test_only_changed_skus_are_written_as_absolute_quantities(fake: FakeStack) -> None:
    _catalogue(fake)
    _sync()
    fake.shop.sim.stats.reset()
    fake.erp.data.set("A2", "WH", 30, 5)  # a receipt and a new order in the ERP
    summary, _ = _sync()
    assert (summary.updated, summary.shop_writes) == (1, 1)
    assert fake.shop_stock("A2") == 25 and fake.shop.sim.stats.count("PATCH /products/{id}") == 1
    pushed = fake.state().get_pushed(STORE, STOCK)
    assert pushed["A2"].quantity == Decimal(25) and pushed["A0"].quantity == Decimal(8)


def test_multi_variant_stock_goes_on_the_variants_in_one_patch(fake: FakeStack) -> None:
    add_multi(fake.shop, "TS", {"TS-S": 0, "TS-M": 0, "TS-L": 7})
    add_basic(fake.shop, "B1", 0)
    for sku, qty in (("TS-S", 3), ("TS-M", 4), ("TS-L", 7), ("B1", 2)):
        fake.erp.data.set(sku, "WH", qty)
    summary, _ = _sync()
    assert [fake.shop_stock(s) for s in ("TS-S", "TS-M", "TS-L", "B1")] == [3, 4, 7, 2]
    assert summary.updated == 3 and summary.shop_writes == 2  # one PATCH for the parent's changed variants


def test_buffer_warehouses_and_clamping(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_harness: None) -> None:
    store = {"warehouses": ["WH", "WH2"], "stock": {"safety_buffer": 1}}
    started = build_fake_stack(tmp_path, monkeypatch, store=store)
    stack = next(started)
    try:
        for sku in ("A", "B", "C"):
            add_basic(stack.shop, sku, 5)
        stack.erp.data.set("A", "WH", 6, 1)
        stack.erp.data.set("A", "WH2", 4, 2)
        stack.erp.data.set("A", "WH3", 100)  # another store's warehouse
        stack.erp.data.set("B", "WH", 2, 3)  # oversold: clamped at 0, with a warning
        stack.erp.data.set("C", "WH2", 1)  # the buffer eats it: 0
        summary, _ = _sync()
        assert [stack.shop_stock(s) for s in ("A", "B", "C")] == [6, 0, 0]  # 6 + 4 − 1 − 2 − 1
        assert [row["sku"] for row in summary.details["clamped"]] == ["B"]  # C is exactly 0: not clamped
        clamped = artifact("stock-main-clamped")
        assert clamped is not None and '"computed": -2.0' in clamped.data
    finally:
        started.close()


def test_targeted_run_reads_and_writes_only_those_skus(fake: FakeStack) -> None:
    _catalogue(fake)
    _sync()
    for i in range(5):
        fake.erp.data.set(f"A{i}", "WH", 50)
    summary, _ = _sync(skus=["A1", " A1 ", "A4", "NOPE"])
    assert summary.details["mode"] == "skus" and summary.details["erp_skus"] == 2
    assert (summary.updated, summary.erp_reads) == (2, 1)
    assert [fake.shop_stock(f"A{i}") for i in range(5)] == [8, 50, 10, 11, 50]
    assert summary.details["unknown_to_erp"] == ["NOPE"] and summary.skipped == 1
    empty, _ = _sync(skus=[])
    assert (empty.erp_reads, empty.shop_reads, empty.shop_writes) == (0, 0, 0)


def test_a_refused_write_is_a_failure_not_pushed_and_is_retried(fake: FakeStack) -> None:
    _catalogue(fake, 3)
    _sync()
    gone = fake.state().find_link(STORE, UNIT_ENTITY, erp_id="A1")
    assert gone is not None
    fake.shop.sim.products.pop(int(gone.shop_id))  # deleted in the shop behind erpsync's back
    fake.shop.sim._version += 1
    fake.erp.data.set("A1", "WH", 40)
    fake.erp.data.set("A2", "WH", 41)
    summary, state = _sync()
    assert state.is_failed() and state.message.startswith("Partially failed:") and summary.state is RunState.PARTIAL
    assert (summary.updated, summary.failed) == (1, 1) and fake.shop_stock("A2") == 41
    failure = fake.state().failure(STORE, STOCK, "A1")
    assert failure is not None and not failure.resolved and "404" in failure.error
    assert fake.state().get_pushed(STORE, STOCK)["A1"].quantity == Decimal(9)  # the old value: not pushed
    assert summary.details["cursor_advanced"] is False  # never past a record that failed
    assert fake.state().find_link(STORE, UNIT_ENTITY, erp_id="A1") is None  # looked for again next time


def test_unreadable_and_ambiguous_erp_rows_are_failures_and_never_zeroed(fake: FakeStack) -> None:
    _catalogue(fake, 3)
    _sync()
    fake.erp.data.unreadable_skus.add("A0")
    fake.erp.data.duplicates.append(("A1", "WH"))
    fake.erp.data.set("A2", "WH", 20)
    summary, _ = _sync()
    assert summary.state is RunState.PARTIAL and summary.failed == 2
    assert [fake.shop_stock(f"A{i}") for i in range(3)] == [8, 9, 20]  # A0 and A1 untouched, not zeroed
    state = fake.state()
    assert state.failure(STORE, STOCK, "A0") is not None and state.failure(STORE, STOCK, "A1") is not None
    assert summary.details["duplicates"] == ["A1"] and summary.details["cursor_advanced"] is False


def test_skus_not_in_the_shop_are_skipped_and_the_shop_is_read_at_most_hourly(fake: FakeStack) -> None:
    _catalogue(fake, 2)
    fake.erp.data.set("ERP-ONLY", "WH", 3)
    first, _ = _sync()
    assert first.details["not_in_shop"] == ["ERP-ONLY"] and first.updated == 2
    assert fake.state().get_cursor(STORE, UNITS_CURSOR) is not None
    fake.erp.data.set("ERP-ONLY", "WH", 4)
    second, _ = _sync()
    assert second.shop_reads == 0 and second.details["deferred"] == ["ERP-ONLY"]  # no new full read yet
    assert second.details["cursor_advanced"] is False  # ... and the window is read again after that look


def test_a_shop_read_replaces_blind_writes_when_cheaper(fake: FakeStack) -> None:
    from erpsync.core.units import UnitRef, save_units

    refs = []
    for i in range(6):
        sku = f"K{i:03d}"
        fake.erp.data.set(sku, "WH", 3)
        refs.append(UnitRef(sku, sku, add_basic(fake.shop, sku, 3 if i else 1), None))
    save_units(fake.state(), STORE, refs, {})  # linked by the product sync, stock never pushed
    summary, _ = _sync()
    assert summary.details["shop_read"] is True and summary.shop_reads == 1  # one page instead of 6 writes
    assert (summary.shop_writes, summary.updated, summary.unchanged) == (1, 1, 5)
    assert _sync()[0].shop_writes == 0  # what the shop already held was recorded as pushed


def test_a_run_while_another_holds_the_lease_skips(fake: FakeStack) -> None:
    state = fake.state()
    assert state.try_lock(STORE, "stock", "someone-else", 60)
    try:
        summary, run = _sync()
    finally:
        state.unlock(STORE, "stock", "someone-else")
    assert summary.state is RunState.SKIPPED and run.message.startswith("Skipped: ") and summary.erp_reads == 0


def test_goods_receipt_triggers_a_sync_of_just_its_skus(fake: FakeStack) -> None:
    _catalogue(fake, 3)
    _sync()
    fake.erp.data.receive("NIR-1", "WH", {"A1": 12})
    fake.erp.data.set("A2", "WH", 99)  # changed, but not received: not this flow's business
    summary = _receipts()
    assert summary.updated == 1 and summary.details["skus"] == ["A1"]
    assert summary.details["receipts"] == ["NIR-1"]
    assert fake.shop_stock("A1") == 21 and fake.shop_stock("A2") == 10
    again = _receipts()
    assert again.details["skus"] == [] and again.shop_writes == 0  # the receipt was handled once


def test_batches_keep_a_products_variants_together_and_cap_the_task_runs() -> None:
    from erpsync.connectors.merchantpro import StockWrite

    def planned(product: str, variant: str | None) -> Planned:
        return Planned(f"{product}{variant}", StockWrite(f"{product}{variant}", product, variant, Decimal(1)))

    writes = [planned("1", "a"), planned("2", None), planned("1", "b"), planned("3", None)]
    writes.append(planned("4", None))
    out = batches(writes, size=2)
    assert [[p.erp_sku for p in b] for b in out] == [["1a", "1b"], ["2None", "3None"], ["4None"]]
    many = [planned(str(i), None) for i in range(10_000)]
    assert len(batches(many, size=100, max_batches=40)) == 40


# --------------------------------------------------------------------------------------------- real Tryton


def _order(sku: str, quantity: int) -> tuple[Any, Any]:
    from erpsync.core.models import Address, Customer, Order, OrderLine

    customer = Customer(email=f"{sku.lower()}@example.com", name="Stoc Test")
    address = Address(name="Stoc Test", street="Str. Testului 7", city="Brașov", postal_code="500001")
    order = Order(
        shop_id=unique_code("SHOP"),
        public_code="#" + uuid.uuid4().hex[:6],
        customer=customer,
        billing=address,
        shipping=address,
        lines=[
            OrderLine(
                sku=sku,
                name="Produs",
                quantity=Decimal(quantity),
                unit_price_gross=Decimal("23.80"),
                vat_rate=Decimal(19),
            )
        ],
    )
    return order, customer


def receive_goods(stack: Stack, product: int, quantity: int) -> int:
    """A supplier shipment of ``quantity`` into WH, received and done (docs/tryton.md)."""
    assert stack.tryton is not None
    manifest = stack.tryton.manifest
    with stack.tryton.session() as session:
        shipment = create_supplier_shipment(session, manifest, product, quantity)
        session.call_accepting_warnings("model.stock.shipment.in.receive", [shipment], session.context)
        session.call_accepting_warnings("model.stock.shipment.in.do", [shipment], session.context)
    return shipment


@pytest.mark.tryton
def test_tryton_order_lowers_and_receipt_raises_the_shop_stock(stack: Stack, prefect_harness: None) -> None:
    from erpsync.connectors.erp.tryton import TrytonConnector

    assert stack.tryton is not None
    shop = stack.shop()
    sku = unique_code("E2E-STK")
    with stack.tryton.session() as session:
        product = create_stocked_product(session, stack.tryton.manifest, sku, {"WH": 20})
    add_basic(shop, sku, 0)

    first, _ = _sync()  # the first scheduled run: a full read of Tryton, only this SKU is in the shop
    assert first.details["mode"] == "full" and first.updated == 1 and sku not in first.details["not_in_shop"]
    assert _stock(shop, sku) == 20

    server = stack.tryton
    with TrytonConnector(server.url, server.database, server.username, server.password) as erp:
        order, customer = _order(sku, 3)
        erp.create_order(order, customer)  # what the order flow does; the sale is confirmed in Tryton
    targeted, _ = _sync(skus=[sku])  # the order flow's sub-flow call
    assert targeted.updated == 1 and targeted.details["erp_skus"] == 1
    assert _stock(shop, sku) == 17  # 20 on hand − 3 reserved by the confirmed sale

    with TrytonConnector(server.url, server.database, server.username, server.password) as erp:
        order, customer = _order(sku, 2)
        erp.create_order(order, customer)
    incremental, _ = _sync()  # the schedule catches what moved since its cursor
    assert incremental.details["mode"] == "incremental" and incremental.updated == 1
    assert _stock(shop, sku) == 15

    receive_goods(stack, product, 12)
    received = _receipts()
    assert sku in received.details["skus"] and received.updated == 1
    assert _stock(shop, sku) == 27  # 32 on hand − 5 reserved

    quiet, _ = _sync()
    assert quiet.shop_writes == 0 and quiet.updated == 0


def _ids(shop: Any, sku: str) -> list[str]:
    return [str(pid) for pid, product in shop.sim.products.items() if product.get("sku") == sku]


def _stock(shop: Any, sku: str) -> Any:
    return shop.sim.products[int(_ids(shop, sku)[0])]["stock"]
