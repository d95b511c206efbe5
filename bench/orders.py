"""Benchmark of the order flow: `python -m bench orders [--orders N] [--skus K] [--buyers B] [--batch S]`.

The ERP is the real Tryton 8.2 (the dev server on a private copy of its cached, seeded database); the shop is
the MerchantPro simulator on loopback HTTP without pacing, holding N orders (1-3 lines over K products created
for the run, B buyers, a quarter of them companies with a VAT code). Two runs of ``flows.orders.order_sync``
through Prefect (a temporary API):

1. the import: every order becomes one confirmed Tryton sale (checked by counting sales by reference), then the
   stock sync sub-flow refreshes the K SKUs;
2. a re-run with nothing new: no ERP call at all;
3. the ERP's own rate for the same orders: each one created, quoted and confirmed straight through Tryton's
   JSON-RPC (a party created with its address the first time a buyer is seen, its address ids read once; then
   ``sale.sale.create`` with the lines, ``quote``, ``confirm``), as the simplest correct client would, on the same
   server in the same run. The ratio erpsync / direct is the issue's goal (>= 0.8).

Figures: seconds and orders per second, ERP and shop calls per order, the share of the time spent waiting for
Tryton's answers (measured by timing ``TrytonRpc.call``), task runs per flow run (the order flow's own, and with
the stock sub-flow's), peak RSS of the process (which also hosts the shop simulator).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import sys
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench._shop import peak_rss_mb, prefect_environment


def _ro_vat(rng: random.Random) -> str:
    """A valid Romanian VAT code (RO + CUI with its check digit)."""
    body = str(rng.randrange(10**7, 2 * 10**7))
    padded = body.rjust(9, "0")
    check = sum(int(d) * int(k) for d, k in zip(padded, "753217532", strict=True)) * 10 % 11 % 10
    return f"RO{body}{check}"


def _create_products(session: Any, manifest: dict[str, Any], count: int, tag: str) -> list[str]:
    """``count`` salable goods products (VAT 19 %) with plenty of stock in WH, created in two calls each."""
    ctx = session.context
    skus = [f"BENCH-{tag}-{n:04d}" for n in range(count)]
    templates = session.call(
        "model.product.template.create",
        [
            {
                "name": f"Produs {sku}",
                "code": sku,
                "type": "goods",
                "salable": True,
                "purchasable": True,
                "default_uom": manifest["unit"],
                "sale_uom": manifest["unit"],
                "purchase_uom": manifest["unit"],
                "list_price": Decimal("25.00"),
                "account_category": manifest["account_categories"]["19"],
                "products": [["create", [{"cost_price": Decimal("12.50")}]]],
            }
            for sku in skus
        ],
        ctx,
    )
    products = session.call("model.product.product.search", [("template", "in", templates)], 0, None, None, ctx)
    inventory = session.call(
        "model.stock.inventory.create",
        [
            {
                "location": manifest["warehouses"]["WH"]["storage"],
                "lines": [["create", [{"product": p, "quantity": 100_000.0} for p in products]]],
            }
        ],
        ctx,
    )[0]
    session.call("model.stock.inventory.confirm", [inventory], ctx)
    return skus


def _buyers(count: int, rng: random.Random) -> list[dict[str, Any]]:
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


def _place_orders(
    sim: Any, skus: list[str], buyers: list[dict[str, Any]], count: int, rng: random.Random, max_lines: int = 3
) -> tuple[list[str], list[dict[str, Any]]]:
    """The shop orders (their ids), and each one's buyer and lines for the direct run."""
    ids, specs = [], []
    for n in range(count):
        chosen = rng.sample(skus, rng.randint(1, max_lines))
        lines = [{"product_sku": sku, "quantity": rng.randint(1, 3)} for sku in chosen]
        order = sim.add_order(
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
        ids.append(str(order["id"]))
        specs.append({"buyer": buyers[n % len(buyers)], "lines": lines})
    return ids, specs


def _direct(session: Any, manifest: dict[str, Any], specs: list[dict[str, Any]], tag: str) -> dict[str, Any]:
    """The same orders created, quoted and confirmed straight through Tryton's JSON-RPC (module docstring, 3)."""
    ctx = session.context
    product_ids = {
        row["code"]: row["id"]
        for row in session.call(
            "model.product.product.search_read",
            [("code", "in", sorted({line["product_sku"] for spec in specs for line in spec["lines"]}))],
            0,
            None,
            None,
            ["code"],
            ctx,
        )
    }
    taxes = [manifest["taxes"]["customer_19"]]
    unit, shipping = manifest["unit"], manifest["shipping_product"]
    warehouse, currency = manifest["warehouses"]["WH"]["warehouse"], manifest["currency"]
    parties: dict[str, tuple[int, int]] = {}  # e-mail -> (party, address)
    calls = 0
    started = time.perf_counter()
    for n, spec in enumerate(specs):
        buyer = spec["buyer"]
        email = buyer["customer_email"]
        if email not in parties:
            values: dict[str, Any] = {
                "name": buyer.get("billing_company") or buyer["billing_name"],
                "contact_mechanisms": [
                    ["create", [{"type": "email", "value": email}, {"type": "phone", "value": buyer["billing_phone"]}]]
                ],
                "addresses": [
                    [
                        "create",
                        [
                            {
                                "street": buyer["billing_address"],
                                "city": buyer["billing_city"],
                                "postal_code": buyer["billing_postal_code"],
                                "country": manifest["country"],
                            }
                        ],
                    ]
                ],
            }
            if buyer.get("billing_fiscal_code"):
                values["identifiers"] = [["create", [{"type": "eu_vat", "code": buyer["billing_fiscal_code"]}]]]
            (party,) = session.call("model.party.party.create", [values], ctx)
            (address,) = session.call("model.party.address.search", [("party", "=", party)], 0, 1, None, ctx)
            parties[email] = (party, address)
            calls += 2
        party, address = parties[email]
        lines = [
            {
                "type": "line",
                "product": product_ids[line["product_sku"]],
                "quantity": float(line["quantity"]),
                "unit": unit,
                "unit_price": Decimal("25.0000"),
                "taxes": [["add", taxes]],
            }
            for line in spec["lines"]
        ]
        lines.append(
            {
                "type": "line",
                "product": shipping,
                "quantity": 1.0,
                "unit": unit,
                "unit_price": Decimal("12.6050"),
                "taxes": [["add", taxes]],
            }
        )
        (sale,) = session.call(
            "model.sale.sale.create",
            [
                {
                    "party": party,
                    "reference": f"DIRECT-{tag}-{n}",
                    "invoice_address": address,
                    "shipment_address": address,
                    "warehouse": warehouse,
                    "currency": currency,
                    "lines": [["create", lines]],
                }
            ],
            ctx,
        )
        session.call("model.sale.sale.quote", [sale], ctx)
        session.call("model.sale.sale.confirm", [sale], ctx)
        calls += 3
    seconds = time.perf_counter() - started
    confirmed = session.call(
        "model.sale.sale.search_count",
        [("reference", "like", f"DIRECT-{tag}-%"), ("state", "in", ["confirmed", "processing"])],
        ctx,
    )
    return {"seconds": seconds, "calls": calls, "confirmed": confirmed}


async def _task_runs(flow_run_id: Any) -> tuple[int, int]:
    """Task runs of a flow run: its own, and with those of its sub-flow runs."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, FlowRunFilterParentFlowRunId

    async with get_client() as client:
        own = await client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
        children = await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[flow_run_id]))
        )
        nested = 0
        if children:
            nested = len(
                await client.read_task_runs(
                    flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[c.id for c in children]))
                )
            )
    return len(own), len(own) + nested


class _ErpClock:
    """Seconds spent inside Tryton JSON-RPC calls (the ERP's own time plus loopback), by method."""

    def __init__(self) -> None:
        from erpsync.connectors.erp.tryton.rpc import TrytonRpc

        self.seconds = 0.0
        self.by_method: dict[str, tuple[int, float]] = {}
        original = TrytonRpc.call
        clock = self

        def timed(rpc: Any, method: str, *params: Any, **options: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(rpc, method, *params, **options)
            finally:
                spent = time.perf_counter() - started
                clock.seconds += spent
                name = method.removeprefix("model.")
                calls, seconds = clock.by_method.get(name, (0, 0.0))
                clock.by_method[name] = (calls + 1, seconds + spent)

        TrytonRpc.call = timed  # type: ignore[method-assign,assignment]

    def take(self) -> tuple[float, dict[str, tuple[int, float]]]:
        seconds, methods = self.seconds, self.by_method
        self.seconds, self.by_method = 0.0, {}
        return seconds, methods


def _run(store: str, clock: _ErpClock) -> dict[str, Any]:
    from erpsync.flows.orders import order_sync
    from erpsync.runtime.states import summary_of

    started = time.perf_counter()
    state = order_sync(store=store, return_state=True)
    seconds = time.perf_counter() - started
    erp_seconds, methods = clock.take()
    summary = summary_of(state)  # a partially failed run (FAILED type) keeps its summary
    own, total = asyncio.run(_task_runs(state.state_details.flow_run_id))
    return {
        "state": state.name,
        "summary": summary,
        "seconds": seconds,
        "tasks": own,
        "tasks_all": total,
        "rss_mb": peak_rss_mb(),
        "erp_seconds": erp_seconds,
        "methods": methods,
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench orders", description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--skus", type=int, default=50)
    parser.add_argument("--buyers", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-lines", type=int, default=3, help="product lines per order: 1 to this")
    args = parser.parse_args(argv)

    prefect_environment()

    from prefect.testing.utilities import prefect_test_harness

    from erpsync.dev.stack import start_shop, tryton_erp, write_config
    from erpsync.dev.tryton import start_tryton
    from erpsync.runtime import store_runtime

    rng = random.Random(args.seed)
    print(
        f"orders benchmark: {args.orders} shop orders (1-{args.max_lines} lines over {args.skus} SKUs, "
        f"{args.buyers} buyers, a quarter companies) into the real Tryton 8.2; "
        "shop: the MerchantPro simulator on loopback, no pacing"
    )
    workdir = Path(tempfile.mkdtemp(prefix="bench-orders-"))
    tryton = start_tryton(workdir / "tryton")
    shop = start_shop("main", lockout_after=0)
    try:
        prepared = time.perf_counter()
        with tryton.session() as session:
            skus = _create_products(session, tryton.manifest, args.skus, uuid.uuid4().hex[:6].upper())
        for sku in skus:
            shop.sim.add_product(
                {"name": f"Produs {sku}", "sku": sku, "price_gross": 29.75, "tax_id": 1, "stock": 100_000}
            )
        ids, specs = _place_orders(shop.sim, skus, _buyers(args.buyers, rng), args.orders, rng, args.max_lines)
        print(
            f"Tryton ready in {tryton.start_seconds:.1f} s; {args.skus} products and {args.orders} orders "
            f"prepared in {time.perf_counter() - prepared:.1f} s"
        )
        config = write_config(
            workdir / "erpsync.toml",
            erp=tryton_erp(tryton),
            shops=[shop],
            state_url=f"sqlite:///{workdir / 'state.db'}",
        )
        os.environ["ERPSYNC_CONFIG"] = str(config)
        store_runtime.overrides.unpaced = True
        clock = _ErpClock()
        with prefect_test_harness(server_startup_timeout=90):
            shop.sim.stats.reset()
            first = _run("main", clock)
            with tryton.session() as session:
                sales = session.call("model.sale.sale.search_count", [("reference", "in", ids)], session.context)
            clock.take()  # that check went through TrytonRpc.call too: not the re-run's time
            second = _run("main", clock)
        with tryton.session() as session:
            clock.take()  # the session's login
            direct = _direct(session, tryton.manifest, specs, uuid.uuid4().hex[:6].upper())
        direct["erp_seconds"], direct["methods"] = clock.take()
        return _report(args.orders, first, second, sales, direct)
    finally:
        shop.stop()
        tryton.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def _report(orders: int, first: dict[str, Any], second: dict[str, Any], sales: int, direct: dict[str, Any]) -> int:
    print(
        f"{'run':<22} {'state':<12} {'seconds':>8} {'orders/s':>9} {'created':>8} {'failed':>7} "
        f"{'ERP r/w':>13} {'shop r/w':>9} {'tasks':>6} {'+stock':>7} {'peak RSS MB':>12}"
    )
    for label, run in (("import", first), ("re-run, nothing new", second)):
        s = run["summary"]
        rate = orders / run["seconds"] if label == "import" else 0.0
        print(
            f"{label:<22} {run['state']:<12} {run['seconds']:>8.1f} {rate:>9.2f} {s.created:>8} {s.failed:>7} "
            f"{s.erp_reads:>6}/{s.erp_writes:<6} {s.shop_reads:>4}/{s.shop_writes:<4} {run['tasks']:>6} "
            f"{run['tasks_all']:>7} {run['rss_mb']:>12.0f}"
        )
    s = first["summary"]
    print(
        f"per order (import): {s.erp_reads / orders:.2f} ERP reads, {s.erp_writes / orders:.2f} ERP writes, "
        f"{(s.shop_reads + s.shop_writes) / orders:.3f} shop calls; {first['seconds'] / orders * 1000:.0f} ms, "
        f"of which {first['erp_seconds'] / orders * 1000:.0f} ms waiting for Tryton "
        f"({first['erp_seconds'] / first['seconds']:.0%}; the stock sub-flow's calls included)"
    )
    slowest = sorted(first["methods"].items(), key=lambda item: -item[1][1])[:6]
    print(
        "Tryton calls and time by method: "
        + ", ".join(f"{name} {calls}x {seconds:.1f} s" for name, (calls, seconds) in slowest)
    )
    slowest = sorted(direct["methods"].items(), key=lambda item: -item[1][1])[:6]
    print(
        "direct, Tryton calls and time by method: "
        + ", ".join(f"{name} {calls}x {seconds:.1f} s" for name, (calls, seconds) in slowest)
    )
    ours, theirs = orders / first["seconds"], orders / direct["seconds"]
    print(
        f"the ERP's own rate (direct create + quote + confirm, {direct['calls'] / orders:.2f} calls per order): "
        f"{theirs:.2f} orders/s in {direct['seconds']:.1f} s ({direct['confirmed']} confirmed); erpsync "
        f"{ours:.2f} orders/s ({(s.erp_reads + s.erp_writes) / orders:.2f} calls per order, the stock sync's "
        f"included): ratio {ours / theirs:.2f} (goal >= 0.8)"
    )
    ok = sales == orders and s.created == orders and s.failed == 0 and direct["confirmed"] == orders
    ok = ok and second["summary"].erp_reads + second["summary"].erp_writes == 0 and second["summary"].created == 0
    print(
        f"Tryton sales with these references: {sales} (expected {orders}); re-run ERP calls: "
        f"{second['summary'].erp_reads + second['summary'].erp_writes} (expected 0): {'met' if ok else 'NOT met'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
