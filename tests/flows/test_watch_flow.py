"""The store watcher, one long run over a simulated shop and the in-memory ERP (whose moves carry their time):
ERP stock changes reach the shop in one batch and one write each, an idle watcher makes no shop call, it waits
for a stock run that holds the lease, a second watcher of the store exits, and a new watcher resumes from the
cursor in the state store."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from erpsync.core.summary import RunState, RunSummary
from erpsync.runtime.leases import exclusive_run
from erpsync.runtime.watch_steps import HEARTBEAT, STOCK_CURSOR
from tests.flows.stock_fixtures import STORE, FakeStack, add_basic, build_fake_stack

PATCH = "PATCH /products/{id}"


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_harness: None) -> Iterator[FakeStack]:
    yield from build_fake_stack(tmp_path, monkeypatch)


class Running:
    """A watcher run in a thread (as a worker would run it), stopped through the state store."""

    def __init__(self, fake: FakeStack, **params: Any) -> None:
        from erpsync.flows.watch import store_watch

        self.fake = fake
        self.result: list[Any] = []
        options = {"minutes": 2.0, "poll_seconds": 0.3, "batch_seconds": 0.3, "heartbeat_seconds": 1.0, **params}
        self.thread = threading.Thread(
            target=lambda: self.result.append(store_watch(store=STORE, return_state=True, **options)), daemon=True
        )
        self.thread.start()

    def stop(self) -> RunSummary:
        from erpsync.flows.watch import request_stop

        request_stop(self.fake.state(), STORE)
        self.thread.join(60)
        assert not self.thread.is_alive(), "the watcher did not stop"
        summary = self.result[0].result()
        assert isinstance(summary, RunSummary)
        return summary


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_watcher_syncs_changes_in_batches_idles_for_free_respects_leases_and_resumes(
    fake: FakeStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from erpsync.flows.stock import stock_sync
    from erpsync.flows.watch import store_watch

    monkeypatch.setattr("erpsync.flows.watch.LEASE_WAIT_SECONDS", 0.5)  # the second watcher below gives up soon

    long_ago = datetime.now(UTC) - timedelta(days=1)  # before the watcher's overlap, whatever the machine's load
    for i in range(4):
        fake.erp.data.set(f"W{i}", "WH", 10, 0, moved=long_ago)
        add_basic(fake.shop, f"W{i}", 10)
    assert stock_sync(store=STORE, return_state=True).is_completed()  # units linked, nothing to write
    sim, state = fake.shop.sim, fake.state()

    watcher = Running(fake)
    wait_for(lambda: state.get_cursor(STORE, STOCK_CURSOR), "the watcher's first poll")
    beat = json.loads(state.get_cursor(STORE, HEARTBEAT) or "{}")  # written at start, then every heartbeat
    assert (beat["state"], beat["stock"], beat["every"]) == ("running", True, 1.0)

    sim.stats.reset()
    time.sleep(2.0)  # idle: the ERP is polled ~6 times, the shop never
    assert sim.stats.requests == 0

    fake.erp.data.set("W1", "WH", 30, 0)
    fake.erp.data.set("W2", "WH", 40, 5)
    wait_for(lambda: (fake.shop_stock("W1"), fake.shop_stock("W2")) == (30, 35), "the changes in the shop")
    assert (sim.stats.count(PATCH), sim.stats.reads) == (2, 0)  # one write per change, no read

    # A stock run holds the lease (a scheduled one, say): the watcher waits for it, then syncs.
    with exclusive_run(state, STORE, "stock", wait_seconds=20, poll_seconds=0.05) as held:  # once its flush ends
        assert held
        fake.erp.data.set("W3", "WH", 7, 0)
        time.sleep(1.5)
        assert fake.shop_stock("W3") == 10
    wait_for(lambda: fake.shop_stock("W3") == 7, "W3 after the lease was released")

    second = store_watch(store=STORE, minutes=0.1, return_state=True).result()  # one watcher per store
    assert isinstance(second, RunSummary) and second.state is RunState.SKIPPED

    first = watcher.stop()
    beat = json.loads(state.get_cursor(STORE, HEARTBEAT) or "{}")
    assert (beat["state"], beat["stock_written"], beat["batches"]) == ("finished", 3, 2)
    details = first.details
    assert first.state is RunState.COMPLETED and first.updated == 3 and first.shop_writes == 3
    assert details["changes_seen"] == 3 and details["batches"] == 2 and details["busy_skips"] >= 1
    assert details["erp_polls"] >= 5 and details["shop_reads"] == 0
    print(f"\nwatcher: {first.line()}; {details}")

    # While no watcher runs, W0 changes; the next watcher starts from the stored cursor and finds it.
    fake.erp.data.set("W0", "WH", 3, 0)
    sim.stats.reset()
    resumed = Running(fake)
    wait_for(lambda: fake.shop_stock("W0") == 3, "W0 after the restart")
    summary = resumed.stop()
    assert summary.updated == 1 and sim.stats.count(PATCH) == 1  # the overlap's SKUs re-read, not re-written


def test_a_watcher_with_nothing_to_watch_gives_its_process_back(fake: FakeStack) -> None:
    from erpsync.connectors.erp.base import Capabilities
    from erpsync.flows.watch import store_watch

    fake.erp.capabilities = Capabilities(stock_read=True)  # no "changed since": stock cannot be watched cheaply
    started = time.monotonic()
    summary = store_watch(store=STORE, minutes=5, return_state=True).result()
    assert isinstance(summary, RunSummary) and summary.state is RunState.SKIPPED
    assert "nothing to watch" in summary.message
    assert time.monotonic() - started < 60  # not the 5 minutes asked for
