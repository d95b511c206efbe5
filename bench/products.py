"""Benchmark of the product sync: `python -m bench products [--products N] [--changed-share S] [--tracemalloc]`.

The shop side is the real MerchantPro simulator on loopback (no pacing), seeded with N products (10 %
multi-variant). The ERP side is ``MemoryProductErp``, an in-memory ERP implementing the ``ErpConnector`` protocol
(seeding the real Tryton with 20,000 products would take long), holding the same catalogue. Three runs of
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
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench._shop import peak_rss_mb, prefect_environment, task_runs
from erpsync.connectors.erp.base import Capabilities, NotSupported
from erpsync.connectors.http import Counters
from erpsync.core.models import (
    Customer,
    ErpOrderStatus,
    GoodsReceipt,
    Order,
    Page,
    Product,
    RowError,
    StockLevel,
    Supplier,
    gross_from_net,
)

SYSTEM = "memory-erp"


class MemoryProductErp:
    """An in-memory ERP for products (benchmarks and tests): the ``ErpConnector`` protocol, products only.

    Records are kept by ERP id; every change stamps ``modified_at`` from ``clock`` so ``changed_since`` works.
    Each page read counts one read, each create or update one write, as a remote ERP would.
    """

    system = SYSTEM
    capabilities = Capabilities(
        products_read=True, products_changed_since=True, products_create=True, products_update=True
    )

    def __init__(self, products: Iterable[Product] = (), *, page_size: int = 500) -> None:
        self.counters = Counters()
        self.page_size = page_size
        self.products: dict[str, Product] = {}
        self.unreadable: list[RowError] = []  # rows every full read reports as unreadable (tests)
        self._next = 1
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        for product in products:
            self.put(product)

    # -- test and benchmark helpers ---------------------------------------------------------------------

    def put(self, product: Product) -> Product:
        """Store a product as the ERP's own (ids given when missing, stamped now); returns the stored copy."""
        stored = product.model_copy(deep=True)
        if not stored.erp_id:
            stored.erp_id = str(self._next)
            self._next += 1
        for variant in stored.variants:
            if not variant.erp_id:
                variant.erp_id = f"{stored.erp_id}.{variant.sku}"
        stored.shop_id = None
        stored.modified_at = self.clock()
        self.products[stored.erp_id] = stored
        return stored

    def fresh(self) -> MemoryProductErp:
        """This ERP with its counters at zero (what a new connection of a flow run would count)."""
        self.counters = Counters()
        return self

    def by_sku(self, sku: str) -> Product | None:
        return next((p for p in self.products.values() if p.sku == sku), None)

    def edit(self, sku: str, **changes: Any) -> Product:
        """Change fields of the product with this SKU (stamped now)."""
        product = self.by_sku(sku)
        if product is None:
            raise KeyError(sku)
        updated = product.model_copy(update={**changes, "modified_at": self.clock()}, deep=True)
        self.products[updated.erp_id or ""] = updated
        return updated

    # -- the protocol -----------------------------------------------------------------------------------

    def check(self) -> str:
        return f"in-memory ERP with {len(self.products)} products"

    def close(self) -> None:
        return None

    def iter_products(self, *, changed_since: datetime | None = None) -> Iterator[Page[Product]]:
        chosen = [
            p
            for p in self.products.values()
            if changed_since is None or (p.modified_at is not None and p.modified_at >= changed_since)
        ]
        for start in range(0, max(len(chosen), 1), self.page_size):
            self.counters.count("read")
            errors = list(self.unreadable) if start == 0 and changed_since is None else []
            yield Page[Product](items=[_copy(p) for p in chosen[start : start + self.page_size]], errors=errors)

    def create_product(self, product: Product) -> Product:
        self.counters.count("write")
        existing = self.by_sku(product.sku)
        if existing is not None:
            return product.model_copy(update={"erp_id": existing.erp_id})
        stored = self.put(product.model_copy(update={"erp_id": None}))
        return product.model_copy(
            update={"erp_id": stored.erp_id, "variants": [v.model_copy() for v in stored.variants]}
        )

    def update_product(self, product: Product, changed: set[str]) -> None:
        self.counters.count("write")
        current = self.products.get(product.erp_id or "") or self.by_sku(product.sku)
        if current is None:
            from erpsync.connectors.errors import record_error

            raise record_error(SYSTEM, product.sku, "no such product")
        values: dict[str, Any] = {}
        for name in ("name", "description", "ean", "weight", "status", "images", "attributes"):
            if name in changed:
                values[name] = getattr(product, name)
        if changed & {"price", "price_net", "price_gross"}:
            values.update(price_net=product.price_net, price_gross=product.price_gross)
        if changed & {"old_price", "old_price_net", "old_price_gross"}:
            values.update(old_price_net=product.old_price_net, old_price_gross=product.old_price_gross)
        if changed & {"vat", "vat_rate"}:
            values["vat_rate"] = product.vat_rate
        if product.variants and changed & {"price", "old_price", "ean", "weight", "attributes", "price_net"}:
            wanted = {v.sku: v for v in product.variants}
            variants = []
            for variant in current.variants:
                new = wanted.get(variant.sku)
                variants.append(variant if new is None else new.model_copy(update={"erp_id": variant.erp_id}))
            values["variants"] = variants
        self.products[current.erp_id or ""] = current.model_copy(update={**values, "modified_at": self.clock()})

    def iter_stock(
        self, warehouses: Sequence[str], *, skus: Sequence[str] | None = None, changed_since: datetime | None = None
    ) -> Iterator[Page[StockLevel]]:
        raise NotSupported(SYSTEM, "stock is not simulated")

    def find_customer(self, customer: Customer) -> Customer | None:
        raise NotSupported(SYSTEM, "customers are not simulated")

    def create_customer(self, customer: Customer) -> Customer:
        raise NotSupported(SYSTEM, "customers are not simulated")

    def find_order(self, reference: str) -> str | None:
        raise NotSupported(SYSTEM, "orders are not simulated")

    def create_order(self, order: Order, customer: Customer) -> str:
        raise NotSupported(SYSTEM, "orders are not simulated")

    def cancel_order(self, erp_id: str) -> None:
        raise NotSupported(SYSTEM, "orders are not simulated")

    def order_statuses(self, erp_ids: Sequence[str]) -> list[ErpOrderStatus]:
        raise NotSupported(SYSTEM, "orders are not simulated")

    def iter_orders(self, *, changed_since: datetime | None = None) -> Iterator[Page[Order]]:
        raise NotSupported(SYSTEM, "orders are not simulated")

    def iter_goods_receipts(self, since: datetime, warehouses: Sequence[str]) -> Iterator[Page[GoodsReceipt]]:
        raise NotSupported(SYSTEM, "receipts are not simulated")

    def iter_suppliers(self) -> Iterator[Page[Supplier]]:
        raise NotSupported(SYSTEM, "suppliers are not simulated")


def _copy(product: Product) -> Product:
    """A copy sharing no mutable container with the stored record (cheaper than a deep copy)."""
    variants = [v.model_copy(update={"options": dict(v.options)}) for v in product.variants]
    return product.model_copy(
        update={"variants": variants, "attributes": dict(product.attributes), "images": list(product.images)}
    )


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

    if trace:
        tracemalloc.start()
    started = time.perf_counter()
    state = product_sync(store=store, return_state=True)
    seconds = time.perf_counter() - started
    heap = tracemalloc.get_traced_memory()[1] / 2**20 if trace else None
    if trace:
        tracemalloc.stop()
    summary = state.result()
    tasks = len(task_runs(state.state_details.flow_run_id))
    return {
        "state": state.name,
        "summary": summary,
        "seconds": seconds,
        "tasks": tasks,
        "heap_mb": heap,
        "rss_mb": peak_rss_mb(),
    }


def _change_prices(erp: MemoryProductErp, share: float) -> int:
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
        "ERP side: MemoryProductErp, an in-memory ERP implementing the ErpConnector protocol (not the real Tryton); "
        "shop side: the MerchantPro simulator over loopback HTTP, no pacing"
    )
    shop = start_shop("main")
    try:
        seeded = time.perf_counter()
        shop.sim.seed_catalogue(args.products, multi_variant_share=args.multi_variant_share, seed=0)
        erp = MemoryProductErp()
        yesterday = datetime.now(UTC) - timedelta(days=1)
        erp.clock = lambda: yesterday  # the catalogue was last changed before the runs
        for product in erp_copy_of_shop(shop.sim.products.values()):
            erp.put(product)
        erp.clock = lambda: datetime.now(UTC)
        units = sum(len(p.variants) or 1 for p in erp.products.values())
        print(
            f"seeded {len(erp.products)} products / {units} inventory units in {time.perf_counter() - seeded:.1f} s; "
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
                changed = _change_prices(erp, args.changed_share)
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
