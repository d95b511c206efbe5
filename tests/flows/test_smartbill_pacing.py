"""A whole ``orders`` run of many orders plus its stock sub-flow on SmartBill, at SmartBill's real limit (30 calls
per 10 s per token, 10-minute lock-out) and in real time: every SmartBill client of the token in the process
shares one sliding window (``connectors/http.py`` ``shared_limiter``), so the run never exceeds 30 calls in any
10 s window (measured from the simulator's log of accepted calls) and never trips the lock."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.flows.smartbill_stack import WAREHOUSE, SmartBillStack, sb_stack_factory

pytestmark = [pytest.mark.prefect, pytest.mark.slow]

ORDERS = 40


@pytest.fixture
def make_sb_stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_harness: None
) -> Iterator[Callable[..., SmartBillStack]]:
    yield from sb_stack_factory(tmp_path, monkeypatch)


def max_in_sliding_window(times: list[float], period: float) -> int:
    """The most calls in any window [t, t + period) over the sorted call times."""
    times = sorted(times)
    best, start = 0, 0
    for end, moment in enumerate(times):
        while times[start] <= moment - period:
            start += 1
        best = max(best, end - start + 1)
    return best


def test_forty_orders_and_their_stock_sync_stay_under_30_calls_per_10_s(
    make_sb_stack: Callable[..., SmartBillStack],
) -> None:
    stack = make_sb_stack(stock={WAREHOUSE: {"SKU-A": 100, "SKU-B": 100}}, record_stock=False)
    for i in range(ORDERS):
        stack.order({"SKU-A" if i % 2 else "SKU-B": 1})
    started = time.monotonic()
    summary = stack.run()
    elapsed = time.monotonic() - started
    assert (summary.created, summary.failed) == (ORDERS, 0), summary.message

    stats = stack.sb.stats
    assert stats.by_route == {"tax": 1, "invoice": ORDERS, "stocks": 1}  # the sub-flow's one /stocks included
    assert stats.calls == ORDERS + 2 and stats.rate_limited == 0 and stats.lockouts == 0
    peak = max_in_sliding_window(stats.call_times, 10.0)
    assert peak <= 30 and peak == stats.max_in_window(10.0)
    assert max_in_sliding_window(stats.call_times, 11.0) <= 30  # the 1 s margin: 30 per 11 s
    assert elapsed >= 11.0  # 42 calls cannot go out in one window: the pacing waited
    # the stock sub-flow ran on the real connector: the shop follows SmartBill's stock after the invoices
    assert (stack.shop_stock("SKU-A"), stack.shop_stock("SKU-B")) == (80, 80)
    print(f"SmartBill pacing: {stats.calls} calls in {elapsed:.1f} s, at most {peak} in any 10 s window")
