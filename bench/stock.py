"""Benchmark of the stock sync: ``python -m bench stock [--skus N] [--change F] [--paced-skus M] [--rate R]
[--only unpaced|paced]``.

Shop: the MerchantPro simulator on loopback in a child process. ERP: the in-memory ERP
(``erpsync.testing.memory_erp``) in this process (moves dated, so "changed since" works). Runs, under a
temporary Prefect API: the first full sync (nothing pushed or linked yet: one shop inventory read instead of
blind writes), an incremental run with nothing moved (zero shop calls), an incremental run after ``change`` of
the SKUs moved in the ERP (writes = those SKUs), a targeted run (``skus=``, as the order flow calls it) and the
goods-receipt trigger.
"""

from __future__ import annotations

import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench._shop import (
    ShopProcess,
    one_per_product,
    peak_rss_mb,
    run_paced_and_unpaced,
    task_runs,
    task_seconds,
    write_bench_config,
)
from erpsync.testing.memory_erp import STOCK, MemoryErp, MemoryErpData

MAX_TASK_RUNS = 50
PACING_SLACK = 1.15


def _run(label: str, flow: str = "stock", **params: Any) -> dict[str, Any]:
    from erpsync.flows.stock import goods_receipts, stock_sync
    from erpsync.runtime.states import summary_of

    started = time.perf_counter()
    function: Any = goods_receipts if flow == "receipts" else stock_sync
    state: Any = function(store="main", return_state=True, **params)
    wall = time.perf_counter() - started
    runs = task_runs(state.state_details.flow_run_id)
    return {
        "label": label,
        "wall": round(wall, 2),
        "summary": summary_of(state),  # a partially failed run (FAILED type) keeps its summary
        "task_runs": len(runs),
        "tasks": task_seconds(runs),
    }


def scenario(units_target: int, change: float, *, rate: float | None, workdir: Path) -> dict[str, Any]:
    """Shop + ERP with ``units_target`` SKUs in sync; then the five runs."""
    from erpsync.runtime import store_runtime

    multis = units_target // 20
    shop = ShopProcess(basics=units_target - 2 * multis, multis=multis, variants=2, rate=rate)
    try:
        units = shop.units()
        data = MemoryErpData()
        long_ago = datetime.now(UTC) - timedelta(days=1)
        for index, unit in enumerate(units):
            data.set(unit.sku, "WH", unit.stock + index % 3, index % 3, moved=long_ago)
        erp = MemoryErp(data, capabilities=STOCK, page_size=500)
        config = write_bench_config(
            workdir / "erpsync.toml",
            shop.url,
            f"sqlite:///{workdir / 'state.db'}",
            {"requests_per_second": rate or 50},
        )
        os.environ["ERPSYNC_CONFIG"] = str(config)
        store_runtime.make_erp = lambda _settings, **_options: erp.session()
        store_runtime.overrides.unpaced = rate is None
        runs = []
        shop.reset()
        runs.append((_run("first full sync (nothing pushed or linked yet)"), shop.stats()))
        shop.reset()
        runs.append((_run("incremental, nothing moved"), shop.stats()))
        changed = one_per_product(units, max(1, round(len(units) * change)))
        for unit in changed:
            data.set(unit.sku, "WH", unit.stock + 25, 0)
        shop.reset()
        runs.append((_run(f"incremental, {len(changed)} SKUs moved in the ERP"), shop.stats()))
        targeted = one_per_product(units[1::7], 5)
        for unit in targeted:
            data.set(unit.sku, "WH", unit.stock + 40, 1)
        shop.reset()
        runs.append((_run("targeted, skus=[5] (the order flow's call)", skus=[u.sku for u in targeted]), shop.stats()))
        received = one_per_product(units[3::11], 3)
        data.receive("NIR-BENCH", "WH", {u.sku: 12 for u in received})
        shop.reset()
        runs.append((_run("goods receipt of 3 SKUs", flow="receipts"), shop.stats()))
        return {"skus": len(units), "changed": len(changed), "runs": runs, "rss_peak": peak_rss_mb()}
    finally:
        shop.stop()


def _report(name: str, result: dict[str, Any], rate: float | None) -> list[str]:
    failed: list[str] = []
    print(
        f"\n== stock sync, {name}: {result['skus']} SKUs (shop: simulator on loopback in a child process; "
        f"ERP: the in-memory ERP of erpsync.testing in this process)"
    )
    expected_writes = [None, 0, result["changed"], 5, 3]
    for (run, served), writes in zip(result["runs"], expected_writes, strict=True):
        s = run["summary"]
        print(
            f"  {run['label']}: wall {run['wall']:.2f} s, flow body {s.seconds:.2f} s, task runs "
            f"{run['task_runs']}, shop {served['reads']}r/{served['writes']}w, ERP {s.erp_reads}r, "
            f"updated {s.updated}, unchanged {s.unchanged}"
        )
        print(f"    task seconds: {run['tasks']}")
        if writes is not None and served["writes"] != writes:
            failed.append(f"{run['label']}: {served['writes']} writes, expected {writes}")
        if run["task_runs"] > MAX_TASK_RUNS:
            failed.append(f"{run['label']}: {run['task_runs']} task runs > {MAX_TASK_RUNS}")
        if rate is not None and served["reads"] + served["writes"] >= 8:
            bound = PACING_SLACK * (served["reads"] + served["writes"]) / rate
            print(f"    pacing: bound {bound:.2f} s, flow body {s.seconds:.2f} s, 429s {served['rate_limited']}")
            if s.seconds > bound:
                failed.append(f"{run['label']}: flow body {s.seconds:.2f} s > {bound:.2f} s")
    quiet = result["runs"][1][1]
    if quiet["reads"] + quiet["writes"]:
        failed.append(f"an incremental run with nothing moved made {quiet['reads'] + quiet['writes']} shop calls")
    print(f"  peak memory {result['rss_peak']:.0f} MB")
    print("  checks: " + ("all passed" if not failed else "; ".join(failed)))
    return failed


def main(argv: list[str]) -> int:
    return run_paced_and_unpaced("stock", __doc__.split("\n\n")[0], argv, scenario, _report, change_flag="change")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
