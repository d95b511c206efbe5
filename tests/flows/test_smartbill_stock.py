"""SmartBill stock through the real ``stock`` and ``reconcile`` flows (``[erp] type = "smartbill"``, the simulator
on loopback): the store's ``warehouses`` are SmartBill warehouse names; each run is ONE ``GET /stocks`` (every
warehouse, today's date). SmartBill cannot list changes (``stock_changed_since``) nor reservations
(``stock_reservations``): the sync reads the whole reply and diffs it against what it pushed last; reserved = 0."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from erpsync.core.summary import RunState
from tests.flows.smartbill_stack import WAREHOUSE, SmartBillStack, sb_stack_factory

pytestmark = pytest.mark.prefect

CODES = [f"P{i:02d}" for i in range(10)]


@pytest.fixture
def make_sb_stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_harness: None
) -> Iterator[Callable[..., SmartBillStack]]:
    yield from sb_stack_factory(tmp_path, monkeypatch)


def _stack(make: Callable[..., SmartBillStack], shop_stock: float = 0, **options: object) -> SmartBillStack:
    """SmartBill: P00..P09 at 5 + i in ``Depozit`` (and 100 each in ``Magazin``, not the store's); the shop has
    every code at ``shop_stock``."""
    return make(
        stock={WAREHOUSE: {c: 5 + i for i, c in enumerate(CODES)}, "Magazin": dict.fromkeys(CODES, 100)},
        shop_products=dict.fromkeys(CODES, shop_stock),
        **options,
    )


def _set(stack: SmartBillStack, code: str, quantity: int, warehouse: str = WAREHOUSE) -> None:
    stack.sb.warehouses[warehouse][code].quantity = Decimal(quantity)


def test_the_shop_stock_follows_smartbill_where_it_changed(make_sb_stack: Callable[..., SmartBillStack]) -> None:
    stack = _stack(make_sb_stack)
    first = stack.run("stock")
    assert first.details["mode"] == "full" and first.details["reservations"] is False
    assert first.updated == 10 and first.failed == 0, first.message
    assert [stack.shop_stock(c) for c in CODES] == [5 + i for i in range(10)]  # Depozit only, Magazin ignored
    assert stack.sb.stats.by_route == {"stocks": 1} and first.erp_reads == 1
    assert stack.sb.stats.last_params["stocks"].keys() == {"cif", "date"}  # no warehouseName: filtered locally

    _set(stack, "P03", 0)
    _set(stack, "P07", 40)
    _set(stack, "P01", 99, warehouse="Magazin")  # not the store's warehouse: no write
    stack.sim.stats.reset()
    stack.sb.stats.by_route.clear()
    second = stack.run("stock")
    assert (second.updated, second.unchanged, second.failed) == (2, 8, 0), second.message
    assert stack.sim.stats.writes == second.shop_writes and second.shop_writes >= 1
    assert (stack.shop_stock("P03"), stack.shop_stock("P07")) == (0, 40)
    assert stack.sb.stats.by_route == {"stocks": 1}

    stack.sim.stats.reset()
    quiet = stack.run("stock")
    assert quiet.updated == 0 and stack.sim.stats.writes == 0  # nothing moved: nothing written

    _set(stack, "P05", 1)
    targeted = stack.run("stock", skus=["P05", "P06"])  # what the order flow's sub-flow does
    assert targeted.details["mode"] == "skus" and targeted.updated == 1 and stack.shop_stock("P05") == 1


def test_a_warehouse_name_of_another_case_is_a_failure_never_zero(make_sb_stack: Callable[..., SmartBillStack]) -> None:
    stack = _stack(make_sb_stack, shop_stock=3, store={"warehouses": ["depozit"]})
    summary = stack.run("stock", ok=False)
    assert summary.state is not RunState.COMPLETED and summary.updated == 0 and summary.failed == 1
    assert [stack.shop_stock(c) for c in CODES] == [3] * 10  # never pushed as 0
    (failure,) = stack.state.open_failures("main")
    assert "did you mean 'Depozit'" in failure.error


def test_the_reconciliation_applies_a_good_snapshot_and_refuses_a_bad_one(
    make_sb_stack: Callable[..., SmartBillStack],
) -> None:
    stack = _stack(make_sb_stack)
    for code in CODES:
        stack.sim.set_stock_out_of_band(code, 5 + CODES.index(code))
    stack.sim.set_stock_out_of_band("P02", 999)  # drift in the shop
    stack.sim.set_stock_out_of_band("P08", 0)
    stack.sim.stats.reset()
    good = stack.run("reconcile")
    assert (good.updated, good.unchanged, good.failed) == (2, 8, 0), good.message
    assert good.details["accepted_by"] == "guard" and stack.sim.stats.writes == good.shop_writes
    assert (stack.shop_stock("P02"), stack.shop_stock("P08")) == (7, 13)
    assert stack.sb.stats.by_route == {"stocks": 1}

    for code in CODES[:8]:  # SmartBill suddenly answers zero for most codes
        _set(stack, code, 0)
    stack.sim.stats.reset()
    bad = stack.run("reconcile", ok=False)
    assert bad.state is RunState.FAILED and "refused by the guard" in bad.message and "zero_share" in bad.message
    assert stack.sim.stats.writes == 0
    assert [stack.shop_stock(c) for c in CODES] == [5 + i for i in range(10)]  # nothing applied

    accepted = stack.run("reconcile", accept_snapshot=True)  # a person looked: SmartBill was right
    assert accepted.updated == 8 and accepted.details["accepted_by"] == "operator"
    assert [stack.shop_stock(c) for c in CODES[:8]] == [0] * 8


def test_the_receipts_flow_is_not_applicable_and_says_so(make_sb_stack: Callable[..., SmartBillStack]) -> None:
    stack = _stack(make_sb_stack)
    summary = stack.run("receipts", ok=False)  # SmartBill has no goods-receipt (NIR) endpoint
    assert summary.state is RunState.SKIPPED, summary.message
    assert stack.sb.stats.calls == 0
