"""One run at a time per (flow, store): two overlapping runs for one store on the real stack — one writes,
the other skips with a clear log line and writes nothing; other stores and other flows are not held up."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from erpsync.app.flowrun import run_flow
from erpsync.core.summary import RunState, RunSummary
from tests.support.stack import Stack, build_stack

pytestmark = pytest.mark.usefixtures("prefect_harness")
RATE = 6.0  # the shop paces at 6 requests/s, so the first run's ~35 product creates take ~6 s: surely overlapping


@pytest.fixture
def paced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tryton_server: Any) -> Iterator[Stack]:
    yield from build_stack(
        tmp_path,
        monkeypatch,
        tryton_server,
        shop_names=("main", "other"),
        stores={
            "main": {"requests_per_second": RATE, "orders": {"reference_prefix": "M-"}},
            "other": {"requests_per_second": RATE, "orders": {"reference_prefix": "O-"}},
        },
        shop_options={"rate_per_second": RATE * 2},
    )


def _products(store: str) -> RunSummary:
    from erpsync.flows.registry import load_flow

    return run_flow(load_flow("products"), "products", store, {})


def test_overlapping_runs_of_one_store_one_writes_the_other_skips(
    paced: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    main = paced.shop("main").sim
    results: dict[str, RunSummary] = {}
    first = threading.Thread(target=lambda: results.__setitem__("first", _products("main")))
    first.start()
    deadline = time.monotonic() + 60
    while main.stats.writes == 0 and time.monotonic() < deadline:  # the first run is writing now
        time.sleep(0.02)
    assert main.stats.writes > 0, "the first run never started writing"
    # Prefect routes erpsync's loggers to its own handlers (not to the root), so listen on the logger itself.
    lease_log = logging.getLogger("erpsync.locks")
    lease_log.addHandler(caplog.handler)
    try:
        results["second"] = _products("main")
        first_still_running = first.is_alive()
        results["other store"] = _products("other")  # another store is never held up by main's lease
    finally:
        lease_log.removeHandler(caplog.handler)
    first.join(timeout=120)
    assert first_still_running, "the runs did not overlap: the test proves nothing"

    assert results["first"].state is RunState.COMPLETED and results["first"].created > 30
    second = results["second"]
    assert second.state is RunState.SKIPPED
    assert (second.shop_writes, second.erp_writes, second.created) == (0, 0, 0)
    assert "products for store main is already running elsewhere; this run skips" in caplog.text
    assert results["other store"].state is RunState.COMPLETED and results["other store"].created > 30
    # Only the first run wrote: every product exactly once, the paced shop never refused a request.
    skus = Counter(p["sku"] for p in main.products.values())
    assert skus and max(skus.values()) == 1
    assert main.stats.writes == results["first"].shop_writes
    assert main.stats.rate_limited == 0


def test_the_lease_is_released_so_the_next_run_goes_ahead(paced: Stack) -> None:
    assert _products("main").state is RunState.COMPLETED
    again = _products("main")
    assert again.state is RunState.COMPLETED and again.shop_writes == 0
