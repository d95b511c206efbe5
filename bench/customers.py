"""Benchmark of the customers flow: ``python -m bench customers [--customers N] [--change F]``.

Shop: the MerchantPro simulator on loopback HTTP (in this process, unpaced) holding N customer accounts created
ten days ago (a quarter companies with a valid CUI). ERP: the in-memory ERP (``erpsync.testing.memory_erp``:
finds parties by CUI / e-mail, creates them, adds addresses). Runs of ``flows.customers.customer_sync`` under a
temporary Prefect API:

1. the first run: every account read (⌈N/100⌉ pages) and made a party;
2. incremental, nothing changed: one read of the cursor's day, nothing written;
3. incremental after ``change`` of the accounts changed an address today: reads ≈ ⌈changed/100⌉, one ERP
   update per changed account, no new party.

Figures: wall seconds, shop reads and their ratio to ⌈changed/100⌉, ERP calls, task runs per flow run (never one
per customer), peak RSS.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench._shop import KEY, SECRET, peak_rss_mb, prefect_environment, task_runs, write_bench_config


def _ro_vat(rng: random.Random) -> str:
    body = str(rng.randrange(10**7, 2 * 10**7))
    check = sum(int(d) * int(k) for d, k in zip(body.rjust(9, "0"), "753217532", strict=True)) * 10 % 11 % 10
    return f"RO{body}{check}"


def _seed(sim: Any, count: int, rng: random.Random) -> list[int]:
    created = (datetime.now(UTC) - timedelta(days=10)).isoformat()
    ids = []
    for n in range(count):
        account: dict[str, Any] = {
            "email": f"client{n}@bench.example.ro",
            "first_name": "Client",
            "last_name": str(n),
            "phone": f"07{n:08d}",
            "address": f"Str. Bench {n}",
            "city": "Bucuresti",
            "postal_code": "010101",
            "date_created": created,
        }
        if n % 4 == 0:
            account.update(type="company", company_name=f"Firma {n} SRL", fiscal_code=_ro_vat(rng))
        ids.append(int(sim.add_customer(account)["id"]))
    return ids


def _run(label: str, sim: Any, erp: Any) -> dict[str, Any]:
    from erpsync.flows.customers import customer_sync
    from erpsync.runtime.states import summary_of

    sim.stats.reset()
    calls_before = (erp.data_calls["read"], erp.data_calls["write"])
    started = time.perf_counter()
    state: Any = customer_sync(store="main", return_state=True)
    wall = time.perf_counter() - started
    summary = summary_of(state)  # a partially failed run (FAILED type) keeps its summary
    return {
        "label": label,
        "wall": round(wall, 2),
        "summary": summary,
        "shop_reads": sim.stats.reads,
        "erp_reads": erp.data_calls["read"] - calls_before[0],
        "erp_writes": erp.data_calls["write"] - calls_before[1],
        "task_runs": len(task_runs(state.state_details.flow_run_id)),
    }


class _CountingErp:
    """The in-memory ERP, counting the calls of every session the flows open on it."""

    def __init__(self, capabilities: Any) -> None:
        from erpsync.testing.memory_erp import MemoryErp, MemoryErpData

        self.data = MemoryErpData()
        self.root = MemoryErp(self.data, capabilities=capabilities, page_size=500)
        self.data_calls = {"read": 0, "write": 0}

    def session(self) -> Any:
        erp = self.root.session()
        calls = self.data_calls
        original = erp._call

        def counted(kind: str) -> None:
            calls[kind] = calls.get(kind, 0) + 1
            original(kind)

        erp._call = counted  # type: ignore[method-assign]
        return erp


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench customers")
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument("--change", type=float, default=0.01)
    args = parser.parse_args(argv)
    prefect_environment()
    from prefect.testing.utilities import prefect_test_harness

    from erpsync.connectors.erp.base import Capabilities
    from erpsync.dev.stack import start_shop
    from erpsync.runtime import store_runtime

    rng = random.Random(15)
    shop = start_shop("main", api_key=KEY, api_secret=SECRET)
    workdir = Path(tempfile.mkdtemp(prefix="bench-customers-"))
    try:
        started = time.perf_counter()
        ids = _seed(shop.sim, args.customers, rng)
        seeded = time.perf_counter() - started
        erp = _CountingErp(Capabilities(customers_find=True, customers_create=True, customers_update=True))
        config = write_bench_config(workdir / "erpsync.toml", shop.url, f"sqlite:///{workdir / 'state.db'}", {})
        os.environ["ERPSYNC_CONFIG"] = str(config)
        store_runtime.make_erp = lambda _settings, **_options: erp.session()
        store_runtime.overrides.unpaced = True
        runs = []
        with prefect_test_harness(server_startup_timeout=90):
            runs.append(_run(f"first run: {len(ids)} accounts", shop.sim, erp))
            runs.append(_run("incremental, nothing changed", shop.sim, erp))
            changed = rng.sample(ids, max(1, round(len(ids) * args.change)))
            for cid in changed:
                shop.sim.change_customer(cid, {"address": f"Str. Mutata {cid}", "postal_code": "020202"})
            runs.append(_run(f"incremental, {len(changed)} accounts moved", shop.sim, erp))
    finally:
        shop.stop()
    print(f"customers bench: {len(ids)} accounts seeded in {seeded:.1f} s; in-memory ERP, simulator unpaced")
    status = 0
    for run, expected in zip(runs, (len(ids), 0, len(changed)), strict=True):
        s = run["summary"]
        pages = max(1, math.ceil(expected / 100))
        reads = f"shop reads {run['shop_reads']} (÷ ⌈{expected}/100⌉ = {run['shop_reads'] / pages:.2f})"
        print(
            f"  {run['label']}: {run['wall']} s; created {s.created}, updated {s.updated}, "
            f"unchanged {s.unchanged}, failed {s.failed}; {reads}; "
            f"ERP {run['erp_reads']}r/{run['erp_writes']}w; task runs {run['task_runs']}"
        )
        if run["task_runs"] > 2 + math.ceil(max(expected, 1) / 500):
            status = 1
    ratio = runs[2]["shop_reads"] / max(1, math.ceil(len(changed) / 100))
    print(f"  incremental reads ÷ ⌈changed/100⌉ = {ratio:.2f}; peak RSS {peak_rss_mb():.0f} MB")
    if runs[2]["summary"].created or runs[2]["summary"].updated != len(changed):
        status = 1
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
