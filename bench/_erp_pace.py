"""What ``bench/smartbill.py`` and ``bench/oblio.py`` share: a stock sync of K SKUs then an orders import of N
orders through the real erpsync flows (``erpsync.app.flowrun.run_flow``, an ``erpsync.toml`` whose ``[erp] type``
is the ERP's), against the ERP's simulator served on loopback with its real rate limit and 10-minute lock, and
the simulated MerchantPro shop of ``erpsync.dev.stack`` (no pacing), under a temporary Prefect API.

Figures: ERP calls in total and per route, the most calls in any sliding window of the ERP's limit (computed
from the simulator's own log of accepted calls), 429s and locks (must be none), wall time, the efficiency
``wall / (calls / allowed rate)`` (must be <= ``MAX_EFFICIENCY``: the pacing wastes at most 10 %), shop calls,
Prefect task runs, peak RSS. Exit code 1 when a limit was exceeded, a lock or 429 was hit, a run failed, an
order did not end with exactly one invoice, or the orders phase's efficiency is above ``MAX_EFFICIENCY``.

Which efficiency is checked: the orders phase's, the one whose time the ERP's limit sets (one or more calls per
order). The stock phase makes 1 call (SmartBill's ``/stocks``) or ⌈N/250⌉ + 1 (Oblio's pages) while writing
~1,700 changed quantities to the (unpaced) shop, so its wall ÷ (calls ÷ rate) measures the shop's writes, not
the ERP's pacing; it and the figure over both phases are printed beside it.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench._shop import peak_rss_mb, prefect_environment

MAX_EFFICIENCY = 1.10
STORE = "main"
WAREHOUSE = "Depozit"
CIF = "RO12345678"
VAT_21 = 5  # the simulated shop's "TVA 21%" (both simulators know 21, 11 and 0, not the shop's default 19)


@dataclass
class ErpSide:
    """One ERP's simulator as the bench needs it (built by ``bench/smartbill.py`` / ``bench/oblio.py``)."""

    name: str
    erp_section: dict[str, Any]  # the [erp] table (url filled in from the running server)
    sim: Any
    limit: int  # calls allowed per window
    window: float  # seconds
    stop: Callable[[], None]
    stats: Callable[[], dict[str, Any]]  # calls, by_route, call_times, rate_limited, locks
    invoices_of: Callable[[str], int]  # reference -> count of its (non-storno, positive) invoices

    @property
    def rate(self) -> float:
        return self.limit / self.window


def _buyers(count: int, rng: random.Random) -> list[dict[str, Any]]:
    from bench.orders import _ro_vat

    buyers = []
    for n in range(count):
        buyer: dict[str, Any] = {
            "customer_email": f"client{n}@bench.example.ro",
            "billing_name": f"Client {n}",
            "billing_address": f"Str. Bench {n}",
            "billing_city": "Bucuresti",
            "billing_postal_code": "010101",
            "billing_country_code": "RO",
            "billing_phone": f"07220{n:05d}",
            "shipping_as_billing": True,
            "billing_type": "individual",
        }
        if n % 4 == 0:
            buyer.update(billing_type="company", billing_company=f"Firma {n} SRL", billing_fiscal_code=_ro_vat(rng))
        buyers.append(buyer)
    return buyers


def _task_runs() -> tuple[int, int]:
    """Every task run and flow run the temporary Prefect API holds (a fresh database per bench)."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        tasks, offset = 0, 0
        while True:
            page = client.read_task_runs(limit=200, offset=offset)
            tasks += len(page)
            offset += len(page)
            if len(page) < 200:
                break
        flows = client.count_flow_runs()
    return tasks, flows


def _window_peak(times: Sequence[float], period: float) -> int:
    """The most calls in any window [t, t + period) over the call times."""
    ordered = sorted(times)
    best, start = 0, 0
    for end, moment in enumerate(ordered):
        while ordered[start] <= moment - period:
            start += 1
        best = max(best, end - start + 1)
    return best


def _run(flow: str) -> tuple[Any, float]:
    from erpsync.app.flowrun import run_flow
    from erpsync.flows.registry import load_flow

    started = time.perf_counter()
    summary = run_flow(load_flow(flow), flow, STORE, {})
    return summary, time.perf_counter() - started


def run_bench(name: str, description: str, argv: Sequence[str], make_erp: Callable[[list[str], int], ErpSide]) -> int:
    """The command line of one ERP's bench: ``make_erp(skus, stock)`` starts its simulator holding ``skus``."""
    parser = argparse.ArgumentParser(prog=f"python -m bench {name}", description=description)
    parser.add_argument("--skus", type=int, default=2_000)
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--buyers", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(list(argv))
    prefect_environment()

    from prefect.testing.utilities import prefect_test_harness

    from erpsync.connectors.http import reset_shared_limiters
    from erpsync.dev.stack import start_shop, write_config
    from erpsync.runtime import store_runtime

    rng = random.Random(args.seed)
    skus = [f"SKU-{n:05d}" for n in range(args.skus)]
    reset_shared_limiters()
    erp = make_erp(skus, 1_000)
    shop = start_shop(STORE, lockout_after=0)
    try:
        prepared = time.perf_counter()
        for index, sku in enumerate(skus):  # the shop's stock differs from the ERP's on 6 SKUs of 7
            shop.sim.add_product(
                {"name": f"Produs {sku}", "sku": sku, "price_gross": 121, "tax_id": VAT_21, "stock": 1_000 - index % 7}
            )
        buyers = _buyers(args.buyers, rng)
        order_ids = []
        for n in range(args.orders):
            lines = [{"product_sku": s, "quantity": rng.randint(1, 3)} for s in rng.sample(skus, rng.randint(1, 3))]
            order = shop.sim.add_order(
                {
                    **buyers[n % len(buyers)],
                    "payment_status": "paid" if n % 2 else "awaiting",
                    "payment_method_code": "wire" if n % 2 else "cash_delivery",
                    "shipping_status": "awaiting",
                    "shipping_amount": 15,
                    "line_items": lines,
                },
                adjust_stock=False,
            )
            order_id = str(order["id"])
            # the shipping VAT is the shop's setting (read-only in its API); the simulator's 19 % is gone since 2025
            shop.sim.orders[order_id] = {**shop.sim.orders[order_id], "shipping_tax_percent": 21}
            order_ids.append(order_id)
        print(
            f"\n== {erp.name}: {args.skus} SKUs stock sync, then {args.orders} orders (1-3 lines, {args.buyers} "
            f"buyers, a quarter companies) through the real flows; ERP simulator on loopback at {erp.limit} calls "
            f"per {erp.window:g} s with its 10-minute lock; shop simulator on loopback, no pacing "
            f"(prepared in {time.perf_counter() - prepared:.1f} s)"
        )
        with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp:
            config = write_config(
                Path(tmp) / "erpsync.toml",
                erp=erp.erp_section,
                shops=[shop],
                state_url=f"sqlite:///{Path(tmp) / 'state.db'}",
                stores={STORE: {"warehouses": [WAREHOUSE]}},
            )
            os.environ["ERPSYNC_CONFIG"] = str(config)
            store_runtime.overrides.unpaced = True  # the shop's pacing only; the ERP's limiter is always on
            with prefect_test_harness(server_startup_timeout=90):
                phases = []
                for flow in ("stock", "orders"):
                    before_erp = erp.stats()
                    shop.sim.stats.reset()
                    tasks_before = _task_runs()
                    summary, wall = _run(flow)
                    tasks_after = _task_runs()
                    after_erp = erp.stats()
                    phases.append(
                        {
                            "flow": flow,
                            "summary": summary,
                            "wall": wall,
                            "calls": after_erp["calls"] - before_erp["calls"],
                            "shop": (shop.sim.stats.reads, shop.sim.stats.writes),
                            "tasks": tasks_after[0] - tasks_before[0],
                            "flow_runs": tasks_after[1] - tasks_before[1],
                        }
                    )
                invoices = {order_id: erp.invoices_of(order_id) for order_id in order_ids}
        return _report(erp, phases, erp.stats(), invoices)
    finally:
        shop.stop()
        erp.stop()
        reset_shared_limiters()


def _report(erp: ErpSide, phases: list[dict[str, Any]], stats: Mapping[str, Any], invoices: dict[str, int]) -> int:
    failed: list[str] = []
    for phase in phases:
        s = phase["summary"]
        efficiency = phase["wall"] / (phase["calls"] / erp.rate) if phase["calls"] else float("nan")
        print(
            f"  {phase['flow']:<6} {s.state.value:<10} wall {phase['wall']:6.1f} s; ERP calls {phase['calls']:4d} "
            f"(summary {s.erp_reads}r/{s.erp_writes}w), efficiency {efficiency:.3f}; created {s.created}, updated "
            f"{s.updated}, unchanged {s.unchanged}, failed {s.failed}; shop {phase['shop'][0]}r/{phase['shop'][1]}w; "
            f"task runs {phase['tasks']} in {phase['flow_runs']} flow runs"
        )
        if s.state.value != "completed":
            failed.append(f"the {phase['flow']} run ended {s.state.value}: {s.message}")
    wall = sum(p["wall"] for p in phases)
    calls = int(stats["calls"])
    peak = _window_peak(stats["call_times"], erp.window)
    ideal = calls / erp.rate
    efficiency = wall / ideal if calls else float("nan")
    routes = ", ".join(f"{route} {count}" for route, count in sorted(stats["by_route"].items(), key=lambda i: -i[1]))
    extra = f"; besides, {stats['tokens']} token requests (not counted by the ERP)" if stats.get("tokens") else ""
    print(f"  ERP calls: {calls} ({routes}){extra}")
    print(
        f"  most calls in any sliding {erp.window:g} s window: {peak} (limit {erp.limit}); 429s "
        f"{stats['rate_limited']}, locks {stats['locks']}"
    )
    print(
        f"  wall {wall:.1f} s (both runs); calls / allowed rate = {calls} / {erp.rate:g} per s = {ideal:.1f} s; "
        f"efficiency over both phases {efficiency:.3f}"
    )
    shop_reads = sum(p["shop"][0] for p in phases)
    shop_writes = sum(p["shop"][1] for p in phases)
    print(
        f"  shop calls {shop_reads + shop_writes} ({shop_reads}r/{shop_writes}w); task runs "
        f"{sum(p['tasks'] for p in phases)} in {sum(p['flow_runs'] for p in phases)} flow runs; "
        f"peak RSS {peak_rss_mb():.0f} MB"
    )
    if peak > erp.limit:
        failed.append(f"{peak} calls in one {erp.window:g} s window > {erp.limit}")
    if stats["rate_limited"] or stats["locks"]:
        failed.append(f"{stats['rate_limited']} 429s, {stats['locks']} locks")
    orders = next(p for p in phases if p["flow"] == "orders")
    paced = orders["wall"] / (orders["calls"] / erp.rate) if orders["calls"] else float("nan")
    print(f"  orders phase (set by the ERP's limit): efficiency {paced:.3f} (limit {MAX_EFFICIENCY})")
    if not paced <= MAX_EFFICIENCY:
        failed.append(f"orders phase efficiency {paced:.3f} > {MAX_EFFICIENCY}")
    wrong = {order_id: count for order_id, count in invoices.items() if count != 1}
    if wrong:
        sample = ", ".join(f"{order_id}: {count}" for order_id, count in list(wrong.items())[:5])
        failed.append(f"{len(wrong)} of {len(invoices)} orders without exactly one invoice ({sample})")
    else:
        print(f"  every one of the {len(invoices)} orders has exactly one invoice")
    print("  checks: " + ("all passed" if not failed else "; ".join(failed)))
    return 1 if failed else 0


def positive(products: Sequence[Mapping[str, Any]]) -> bool:
    """Whether a document is an invoice, not a return (no negative quantity)."""
    return not any(Decimal(str(line.get("quantity") or 0)) < 0 for line in products)
