"""Benchmark of the product sync: `python -m bench products [--products N] [--changed-share S] [--tracemalloc]`.

The shop side is the real MerchantPro simulator on loopback (no pacing), seeded with N products (10 %
multi-variant). The ERP side is the in-memory ERP of ``erpsync.testing.memory_erp`` (it passes the ERP contract
suite; seeding the real Tryton with 20,000 products would take long), holding the same catalogue. Three runs of
``flows.products.product_sync`` through Prefect (a temporary API):

1. first run: every product is linked by SKU; nothing differs, so no shop write;
2. after S (2 %) of the ERP's products changed price: shop writes must equal the changed products exactly;
3. a re-run with no change: no shop write.

Figures: seconds, shop reads/writes, ERP reads, task runs per flow run (target <= N/100 + 10), peak RSS of
the process (which also hosts the simulator) and, with ``--tracemalloc``, the Python heap peak of each run.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench._shop import peak_rss_mb, prefect_environment, task_runs
from erpsync.core.models import Product, gross_from_net
from erpsync.testing.memory_erp import PRODUCTS, MemoryErp, MemoryErpData


def erp_copy_of_shop(rows: Iterable[dict[str, Any]]) -> list[Product]:
    """The ERP's side of a seeded shop catalogue: the same products, as an ERP would hold them."""
    from erpsync.connectors.merchantpro.mapping import product_from_shop

    products = []
    for row in rows:
        product = product_from_shop(row)
        product.shop_id = None
        product.stock = None
        for variant in product.variants:
            variant.shop_id = None
            variant.stock = None
        products.append(product)
    return products


# --------------------------------------------------------------------------------------------- the benchmark


def _run(store: str, *, trace: bool) -> dict[str, Any]:
    from erpsync.flows.products import product_sync
    from erpsync.runtime.states import summary_of

    if trace:
        tracemalloc.start()
    started = time.perf_counter()
    state = product_sync(store=store, return_state=True)
    seconds = time.perf_counter() - started
    heap = tracemalloc.get_traced_memory()[1] / 2**20 if trace else None
    if trace:
        tracemalloc.stop()
    summary = summary_of(state)  # a partially failed run (FAILED type) keeps its summary
    tasks = len(task_runs(state.state_details.flow_run_id))
    return {
        "state": state.name,
        "summary": summary,
        "seconds": seconds,
        "tasks": tasks,
        "heap_mb": heap,
        "rss_mb": peak_rss_mb(),
    }


def _change_prices(erp: MemoryErpData, share: float) -> int:
    """Raise the price of every n-th ERP product (its variants' for a multi-variant one) by 1 %."""
    products = sorted(erp.products.values(), key=lambda p: p.sku)
    step = max(1, round(1 / share))
    changed = 0
    for product in products[::step]:
        vat = product.vat_rate or Decimal(0)
        if product.variants:
            variants = []
            for variant in product.variants:
                net = ((variant.price_net or Decimal(1)) * Decimal("1.01")).quantize(Decimal("0.01"))
                variants.append(variant.model_copy(update={"price_net": net, "price_gross": gross_from_net(net, vat)}))
            erp.edit(product.sku, variants=variants)
        else:
            net = ((product.price_net or Decimal(1)) * Decimal("1.01")).quantize(Decimal("0.01"))
            erp.edit(product.sku, price_net=net, price_gross=gross_from_net(net, vat))
        changed += 1
    return changed


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench products", description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=20_000)
    parser.add_argument("--changed-share", type=float, default=0.02)
    parser.add_argument("--multi-variant-share", type=float, default=0.1)
    parser.add_argument("--tracemalloc", action="store_true", help="also measure the Python heap peak (slower)")
    args = parser.parse_args(argv)

    prefect_environment()

    from prefect.testing.utilities import prefect_test_harness

    from erpsync.dev.stack import start_shop, write_config
    from erpsync.runtime import store_runtime

    print(
        f"products benchmark: {args.products} products ({args.multi_variant_share:.0%} multi-variant), "
        f"{args.changed_share:.0%} changed in the ERP"
    )
    print(
        "ERP side: erpsync.testing.memory_erp, an in-memory ERP passing the ERP contract suite (not the real Tryton); "
        "shop side: the MerchantPro simulator over loopback HTTP, no pacing"
    )
    shop = start_shop("main")
    try:
        seeded = time.perf_counter()
        shop.sim.seed_catalogue(args.products, multi_variant_share=args.multi_variant_share, seed=0)
        erp = MemoryErp(capabilities=PRODUCTS)
        books = erp.data
        yesterday = datetime.now(UTC) - timedelta(days=1)
        books.clock = lambda: yesterday  # the catalogue was last changed before the runs
        for product in erp_copy_of_shop(shop.sim.products.values()):
            books.put(product)
        books.clock = lambda: datetime.now(UTC)
        units = sum(len(p.variants) or 1 for p in books.products.values())
        print(
            f"seeded {len(books.products)} products / {units} inventory units in {time.perf_counter() - seeded:.1f} s; "
            f"process RSS so far (simulator + ERP data): {peak_rss_mb():.0f} MB"
        )
        with tempfile.TemporaryDirectory(prefix="bench-products-") as tmp:
            config = write_config(
                Path(tmp) / "erpsync.toml",
                erp={"type": "tryton", "url": "http://127.0.0.1:9", "database": "unused", "password": "literal:x"},
                shops=[shop],
                state_url=f"sqlite:///{tmp}/state.db",
            )
            os.environ["ERPSYNC_CONFIG"] = str(config)
            store_runtime.overrides.unpaced = True
            store_runtime.make_erp = lambda settings, **options: erp.fresh()
            with prefect_test_harness(server_startup_timeout=90):
                rows = []
                shop.sim.stats.reset()
                rows.append(("first run (link by SKU)", 0, _run("main", trace=args.tracemalloc)))
                changed = _change_prices(books, args.changed_share)
                rows.append((f"{changed} changed in the ERP", changed, _run("main", trace=args.tracemalloc)))
                rows.append(("re-run, no change", 0, _run("main", trace=args.tracemalloc)))
        return _report(rows, args.products)
    finally:
        shop.stop()


def _report(rows: list[tuple[str, int, dict[str, Any]]], products: int) -> int:
    budget = products // 100 + 10
    print(
        f"{'run':<28} {'state':<18} {'seconds':>8} {'shop r/w':>11} {'ERP r/w':>9} {'created':>8} "
        f"{'updated':>8} {'unchanged':>10} {'tasks':>6} {'heap MB':>8} {'peak RSS MB':>12}"
    )
    ok = True
    for label, expected_writes, run in rows:
        s = run["summary"]
        heap = f"{run['heap_mb']:.0f}" if run["heap_mb"] is not None else "-"
        print(
            f"{label:<28} {run['state']:<18} {run['seconds']:>8.1f} {s.shop_reads:>5}/{s.shop_writes:<5} "
            f"{s.erp_reads:>4}/{s.erp_writes:<4} {s.created:>8} {s.updated:>8} {s.unchanged:>10} "
            f"{run['tasks']:>6} {heap:>8} {run['rss_mb']:>12.0f}"
        )
        if s.shop_writes != expected_writes:
            print(f"  FAIL: {s.shop_writes} shop writes, expected exactly {expected_writes}")
            ok = False
        if run["tasks"] > budget:
            print(f"  FAIL: {run['tasks']} task runs, budget {budget}")
            ok = False
    print(
        f"targets: shop writes = changed products exactly; task runs <= {budget} per flow run: "
        f"{'met' if ok else 'NOT met'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
