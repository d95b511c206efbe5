"""Benchmark of the guarded reconciliation: ``python -m bench reconcile [--skus N] [--drift F]
[--paced-skus M] [--rate R] [--only unpaced|paced]``.

Shop: the MerchantPro simulator on loopback in a child process. ERP: the in-memory ERP
(``erpsync.testing.memory_erp``) in this process — at 100,000 SKUs a real ERP would only add its own read time.
Drift is injected in the shop on ``drift`` of the SKUs (one per product), under a temporary Prefect API.

- paced (runs first, so Great Expectations is imported cold, as in a worker's fresh process): a first
  reconcile with drift and no earlier snapshot, then new drift and a second (warm) one; check: the warm flow
  run's wall time <= 1.15 x (shop reads + writes) / rate. The cold run is reported beside it: its ~6 s import
  overlaps the reads (~5 s at 2,000 SKUs), so what is left of it shows.
- unpaced: a baseline reconcile that accepts the first snapshot, drift, the measured run; figures:
  validation + diff time, peak memory.
Both check writes = drifted SKUs exactly and task runs per flow run <= 50.
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
    Unit,
    flow_run_seconds,
    one_per_product,
    peak_rss_mb,
    run_paced_and_unpaced,
    task_runs,
    task_seconds,
    write_bench_config,
)
from erpsync.testing.memory_erp import STOCK, MemoryErp, MemoryErpData

MAX_TASK_RUNS = 50
MAX_PEAK_MB = 600  # the whole process at 100,000 SKUs (issue 18)
PACING_SLACK = 1.15


def _drifted(units: list[Unit], share: float, offset: int = 0) -> list[Unit]:
    """About ``share`` of the units, one per product (one PATCH each), spread over the catalogue; only units
    whose inventory is tracked (the others are not the stock stream's business)."""
    return one_per_product(units, max(1, round(len(units) * share)), offset=offset, tracked_only=True)


def _run(label: str) -> dict[str, Any]:
    from erpsync.flows.reconcile import reconcile
    from erpsync.runtime.states import summary_of

    started = time.perf_counter()
    state: Any = reconcile(store="main", return_state=True)
    wall = time.perf_counter() - started
    summary = summary_of(state)  # a partially failed run (FAILED type) keeps its summary
    runs = task_runs(state.state_details.flow_run_id)
    return {
        "label": label,
        "call": round(wall, 2),
        "wall": flow_run_seconds(state.state_details.flow_run_id),
        "summary": summary,
        "task_runs": len(runs),
        "tasks": task_seconds(runs),
    }


def scenario(units_target: int, drift: float, *, rate: float | None, workdir: Path) -> dict[str, Any]:
    """Build shop + ERP with ``units_target`` SKUs, run the baseline, inject drift, run and measure again."""
    from erpsync.runtime import store_runtime

    multis = units_target // 20  # 10 % of the SKUs are variants (2 per product), the rest basic products
    shop = ShopProcess(basics=units_target - 2 * multis, multis=multis, variants=2, rate=rate)
    try:
        units = shop.units()
        data = MemoryErpData()
        long_ago = datetime.now(UTC) - timedelta(days=1)
        for index, unit in enumerate(units):
            reserved = index % 3
            data.set(unit.sku, "WH", unit.stock + reserved, reserved, moved=long_ago)
        erp = MemoryErp(data, capabilities=STOCK, page_size=500)
        store: dict[str, Any] = {"requests_per_second": rate or 50}
        config = write_bench_config(workdir / "erpsync.toml", shop.url, f"sqlite:///{workdir / 'state.db'}", store)
        os.environ["ERPSYNC_CONFIG"] = str(config)
        store_runtime.make_erp = lambda _settings, **_options: erp.session()
        store_runtime.overrides.unpaced = rate is None
        rss_before = peak_rss_mb()
        first_drift = _drifted(units, drift) if rate is not None else []
        shop.drift([(u.sku, u.stock + 7) for u in first_drift])
        shop.reset()
        cold = "GX imported cold" if "great_expectations" not in sys.modules else "GX already imported"
        if rate is not None:
            baseline = _run(f"first run, {len(first_drift)} drifted, no earlier snapshot ({cold})")
            baseline["served"] = shop.stats()
            baseline["drifted"] = len(first_drift)
        else:
            baseline = _run(f"baseline, accepts the first snapshot ({cold})")
        drifted = _drifted(units, drift, offset=max(1, len(units) // max(1, round(len(units) * drift)) // 2))
        shop.drift([(u.sku, u.stock + 9) for u in drifted])
        shop.reset()
        measured = _run(f"measured ({len(drifted)} drifted SKUs)")
        served = shop.stats()
        return {
            "skus": len(units),
            "drifted": len(drifted),
            "baseline": baseline,
            "measured": measured,
            "served": served,
            "rss_before": rss_before,
            "rss_peak": peak_rss_mb(),
            "shop_start": shop.start_seconds,
        }
    finally:
        shop.stop()


def _report(name: str, result: dict[str, Any], rate: float | None) -> list[str]:
    """Print one scenario's figures; return the failed checks."""
    failed: list[str] = []
    measured, baseline, served = result["measured"], result["baseline"], result["served"]
    summary = measured["summary"]
    print(
        f"\n== reconcile, {name}: {result['skus']} SKUs, {result['drifted']} drifted "
        f"(shop: simulator on loopback in a child process; ERP: the in-memory ERP of erpsync.testing in this process)"
    )
    for run in (baseline, measured):
        s = run["summary"]
        details = getattr(s, "details", {})
        print(
            f"  {run['label']}: flow run {run['wall']:.2f} s (caller: {run['call']:.2f} s), "
            f"flow body {getattr(s, 'seconds', 0):.2f} s, "
            f"task runs {run['task_runs']}, shop {s.shop_reads}r/{s.shop_writes}w,"
            f" ERP {getattr(s, 'erp_reads', '?')}r; guard (frames + GX) {details.get('guard_seconds')} s, "
            f"diff {details.get('diff_seconds')} s"
        )
        print(f"    task seconds: {run['tasks']}")
    print(f"  shop served in the measured run: {served}")
    print(
        f"  memory: RSS before the runs {result['rss_before']:.0f} MB (in-memory ERP and Prefect client "
        f"included), peak {result['rss_peak']:.0f} MB"
    )
    if served["writes"] != result["drifted"] or getattr(summary, "updated", -1) != result["drifted"]:
        failed.append(
            f"writes {served['writes']} / updated {getattr(summary, 'updated', '?')} != drifted {result['drifted']}"
        )
    if measured["task_runs"] > MAX_TASK_RUNS:
        failed.append(f"{measured['task_runs']} task runs > {MAX_TASK_RUNS}")
    if rate is None:
        local = (summary.details.get("guard_seconds") or 0) + (summary.details.get("diff_seconds") or 0)
        peak = result["rss_peak"]
        print(f"  validation + diff: {local:.2f} s; peak memory {peak:.0f} MB (at most {MAX_PEAK_MB} MB)")
        if result["rss_peak"] > MAX_PEAK_MB:
            failed.append(f"peak memory {result['rss_peak']:.0f} MB > {MAX_PEAK_MB} MB")
    else:
        for run, calls_served in ((baseline, baseline["served"]), (measured, served)):
            calls = calls_served["reads"] + calls_served["writes"]
            bound = PACING_SLACK * calls / rate
            body = float(getattr(run["summary"], "seconds", 0.0))
            print(
                f"  pacing, {run['label']}: {calls} shop calls at {rate:g}/s -> bound {bound:.2f} s; "
                f"flow run {run['wall']:.2f} s (body {body:.2f} s; the caller waited {run['call']:.2f} s, "
                f"with Prefect's set-up of the run); 429 replies {calls_served['rate_limited']}"
            )
            if run is measured and run["wall"] > bound:
                failed.append(f"{run['label']}: flow run {run['wall']:.2f} s > {bound:.2f} s")
        if baseline["served"]["writes"] != baseline["drifted"]:
            failed.append(f"first run wrote {baseline['served']['writes']}, drifted {baseline['drifted']}")
    print("  checks: " + ("all passed" if not failed else "; ".join(failed)))
    return failed


def main(argv: list[str]) -> int:
    return run_paced_and_unpaced(
        "reconcile",
        __doc__.split("\n\n")[0],
        argv,
        scenario,
        _report,
        change_flag="drift",
        order=("paced", "unpaced"),
        paced_title="paced at {rate:g} requests/s (client and simulator)",
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
