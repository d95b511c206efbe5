"""Freshness benchmark: ``python -m bench freshness [--minutes M] [--changes N] [--orders K] [--rate R]
[--idle-seconds S] [--orders-poll P]``.

The real Tryton (the dev server, seeded database cached in .cache/tryton) and two simulated MerchantPro shops
paced at ``--rate`` requests/s (MerchantPro's ~4/s), state in SQLite, Prefect's temporary API. Two store
watchers run (``flows/watch.py``), one per store:

- ``hooks`` (warehouse WH): orders arrive by webhook (the receiver of ``erpsync webhooks``, in-process, signed
  bodies); its watcher polls only the ERP — so an idle minute must cost it no shop call;
- ``polled`` (warehouse WH2): no webhooks; its watcher also runs the order import every ``--orders-poll`` s.

Over ``--minutes`` the load spreads ``--changes`` stock changes (a confirmed stock count in WH of a product, through
Tryton's JSON-RPC) and ``--orders`` shop orders (half each store) evenly. Measured, per path: the delay from the
change (the move done; the order placed) to its arrival (the shop's stock of that product equal to the ERP's new
available; the order's ERP sale in the journal) — p50/p95/max; shop calls per stock change; the busiest second
and 429s at each shop; then ``--idle-seconds`` with no change: shop calls per minute of each store.

The issue's full size is ``--minutes 5 --changes 200 --orders 100``; the default is scaled to run in ~4 minutes.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import shutil
import statistics
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from bench._shop import prefect_environment

ROOT = Path.cwd()
STORES: dict[str, dict[str, Any]] = {
    "hooks": {"warehouses": ["WH"], "orders": {"reference_prefix": "H-"}, "webhook_secret": "literal:bench-hook-0123"},
    "polled": {"warehouses": ["WH2"], "sku_prefix": "CJ-", "price_list": "Cluj", "orders": {"reference_prefix": "P-"}},
}
TARGETS = {"stock (ERP → shop)": 15.0, "order by webhook → ERP": 10.0, "order, no webhook → ERP": 60.0}
BUYER = {
    "customer_email": "bench@example.ro",
    "billing_type": "individual",
    "billing_name": "Bench Client",
    "billing_address": "Str. Test 1",
    "billing_city": "București",
    "billing_state": "București",
    "billing_postal_code": "010101",
    "billing_phone": "0722000111",
    "payment_status": "paid",
    "payment_method_code": "wire",
    "shipping_status": "awaiting",
    "shipping_as_billing": True,
    "shipping_amount": 15,
}


@dataclass
class Pending:
    """One change on its way: when it was made and what its arrival looks like."""

    kind: str
    key: str
    made: float
    expected: Any = None
    arrived: float | None = None


@dataclass
class Observed:
    items: list[Pending] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, item: Pending) -> None:
        with self.lock:
            self.items.append(item)

    def waiting(self) -> list[Pending]:
        with self.lock:
            return [i for i in self.items if i.arrived is None]


def _say(message: str, started: float) -> None:
    print(f"[{time.monotonic() - started:6.1f} s] {message}", flush=True)


def _percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered) + 0.5) - 1))]


def _sign(body: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


class TrytonStock:
    """Stock moves done in Tryton through JSON-RPC (what a warehouse clerk's receipt or correction does)."""

    def __init__(self, tryton: Any) -> None:
        self.session = tryton.session()
        self.manifest = tryton.manifest
        self.ids: dict[str, int] = {}

    def product_id(self, sku: str) -> int | None:
        if sku not in self.ids:
            found = self.session.call(
                "model.product.product.search", [("code", "=", sku)], 0, 1, None, self.session.context
            )
            if not found:
                return None
            self.ids[sku] = int(found[0])
        return self.ids[sku]

    def count(self, sku: str, quantity: int, warehouse: str = "WH") -> None:
        """A stock count (inventory) of ``quantity`` confirmed in the warehouse's storage: Tryton books the
        difference as a done move, as when a clerk corrects the stock."""
        ctx = self.session.context
        inventory = self.session.call(
            "model.stock.inventory.create",
            [
                {
                    "location": self.manifest["warehouses"][warehouse]["storage"],
                    "lines": [["create", [{"product": self.product_id(sku), "quantity": float(quantity)}]]],
                }
            ],
            ctx,
        )
        self.session.call("model.stock.inventory.confirm", inventory, ctx)


def _erp_available(runtime: Any, sku: str) -> Decimal:
    """What the shop should show for ``sku`` now: the ERP's on hand − reserved in the store's warehouses."""
    total = Decimal(0)
    for page in runtime.erp.iter_stock(runtime.store.warehouses, skus=[sku]):
        total += sum((level.on_hand - level.reserved for level in page.items), Decimal(0))
    return max(total, Decimal(0))


def _shop_stock(sim: Any, sku: str) -> Decimal | None:
    for product in list(sim.products.values()):
        if product.get("sku") == sku:
            return Decimal(str(product.get("stock")))
    return None


def _observe(observed: Observed, shops: dict[str, Any], state: Any, stop: threading.Event) -> None:
    """Mark arrivals: the shop's stock equal to the expected value; an order's ERP sale in the journal."""
    while not stop.is_set():
        for item in observed.waiting():
            if item.kind == "stock":
                if _shop_stock(shops["hooks"].sim, item.key) == item.expected:
                    item.arrived = time.monotonic()
            else:
                store, order_id = item.key.split("/", 1)
                entry = state.journal_get(store, order_id)
                if entry is not None and entry.erp_order_id:
                    item.arrived = time.monotonic()
        stop.wait(0.1)


def _place_order(shop: Any, sku: str) -> str:
    order = shop.sim.add_order({**BUYER, "line_items": [{"product_sku": sku, "quantity": 1}]})
    return str(order["id"])


def _basic_skus(sim: Any) -> list[str]:
    return sorted(str(p["sku"]) for p in sim.products.values() if p.get("type") == "basic" and p.get("sku"))


def _run_flow(name: str, store: str) -> None:
    from erpsync.app.flowrun import run_flow
    from erpsync.flows.registry import load_flow

    summary = run_flow(load_flow(name), name, store, {})
    print(f"    {summary.line()}", flush=True)


def run(args: argparse.Namespace) -> int:
    from erpsync.app.webhooks import Dispatcher, create_app, run_order_trigger, run_orders_trigger
    from erpsync.core.config import load_config
    from erpsync.dev.stack import start_shop, tryton_erp, write_config
    from erpsync.dev.tryton import start_tryton
    from erpsync.runtime.store_runtime import overrides, state_store
    from erpsync.testing.server import serve_in_thread

    started = time.monotonic()
    workdir = ROOT / ".erpsync" / "bench-freshness"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    _say("starting the real Tryton (cached seeded database) and two simulated shops", started)
    tryton = start_tryton(workdir / "tryton")
    shops = {name: start_shop(name) for name in STORES}
    receiver = None
    try:
        stores = {name: {**values, "requests_per_second": args.rate} for name, values in STORES.items()}
        config = write_config(
            workdir / "erpsync.toml",
            erp=tryton_erp(tryton),
            shops=list(shops.values()),
            state_url=f"sqlite:///{workdir / 'state.db'}",
            stores=stores,
        )
        os.environ["ERPSYNC_CONFIG"] = str(config)
        settings = load_config(config)
        state = state_store(settings.state.url.get())
        erp_stock = TrytonStock(tryton)

        _say("set-up, unpaced: products ERP → shop, then stock, for both stores", started)
        overrides.unpaced = True
        for name in STORES:
            _run_flow("products", name)
        hooks_skus = [s for s in _basic_skus(shops["hooks"].sim) if erp_stock.product_id(s)]
        polled_skus = [s for s in _basic_skus(shops["polled"].sim) if erp_stock.product_id(s.removeprefix("CJ-"))]
        half = len(hooks_skus) // 2
        stock_skus, order_skus = hooks_skus[:half], hooks_skus[half:]
        for sku in order_skus:  # orders must never run out
            erp_stock.count(sku, 500, "WH")
        for sku in polled_skus:
            erp_stock.count(sku.removeprefix("CJ-"), 500, "WH2")
        for name in STORES:
            _run_flow("stock", name)
        overrides.unpaced = False
        for shop in shops.values():
            shop.sim.set_rate(args.rate)
        _say(
            f"{len(stock_skus)} SKUs take stock changes, {len(order_skus)} + {len(polled_skus)} take orders; "
            f"shops paced at {args.rate:g} requests/s from now on",
            started,
        )

        trigger_runs: list[tuple[float, int]] = []  # (seconds, orders) of each webhook-triggered run

        def timed_one(store: str, order_id: str) -> None:
            begun = time.monotonic()
            run_order_trigger(store, order_id)
            trigger_runs.append((time.monotonic() - begun, 1))

        def timed_many(store: str, order_ids: list[str]) -> None:
            begun = time.monotonic()
            run_orders_trigger(store, order_ids)
            trigger_runs.append((time.monotonic() - begun, len(order_ids)))

        dispatcher = Dispatcher(timed_one, timed_many)
        receiver = serve_in_thread(create_app(settings, dispatcher))
        hook_url = f"{receiver.url}/webhooks/hooks"
        secret = "bench-hook-0123"

        from erpsync.flows.watch import request_stop, store_watch

        watch_minutes = 24 * 60.0  # stopped through the state store at the end, however long a loaded machine takes
        watchers = [
            threading.Thread(
                target=store_watch,
                kwargs={"store": "hooks", "minutes": watch_minutes, "orders_poll_seconds": 0.0},
                daemon=True,
            ),
            threading.Thread(
                target=store_watch,
                kwargs={"store": "polled", "minutes": watch_minutes, "orders_poll_seconds": args.orders_poll},
                daemon=True,
            ),
        ]
        for watcher in watchers:
            watcher.start()
        time.sleep(8)  # both watchers up (their first poll re-reads the set-up's moves: nothing to write)

        observed, stop = Observed(), threading.Event()
        observer = threading.Thread(target=_observe, args=(observed, shops, state, stop), daemon=True)
        observer.start()
        for shop in shops.values():
            shop.sim.stats.reset()
        load_started = time.monotonic()
        events: list[tuple[float, str, int]] = [
            (args.minutes * 60 * (i + 0.5) / args.changes, "stock", i) for i in range(args.changes)
        ]
        events += [(args.minutes * 60 * (i + 0.25) / args.orders, "order", i) for i in range(args.orders)]
        events.sort()
        _say(f"load: {args.changes} stock changes and {args.orders} orders over {args.minutes:g} min", started)
        from erpsync.runtime.store_runtime import open_runtime

        reader = open_runtime("hooks")  # one ERP session for the expected values (a login per change is slow)
        with reader, httpx.Client(timeout=10) as client:
            for at, kind, index in events:
                time.sleep(max(0.0, load_started + at - time.monotonic()))
                if kind == "stock":
                    sku = stock_skus[index % len(stock_skus)]
                    erp_stock.count(sku, 100 + index)  # a new quantity every time
                    made = time.monotonic()
                    observed.add(Pending("stock", sku, made, _erp_available(reader, sku)))
                elif index % 2 == 0:
                    order_id = _place_order(shops["hooks"], order_skus[index % len(order_skus)])
                    made = time.monotonic()
                    body = json.dumps({"event": "order.created", "id": order_id}).encode()
                    client.post(
                        hook_url,
                        content=body,
                        headers={"Content-Type": "application/json", "X-Webhook-Signature": _sign(body, secret)},
                    )
                    observed.add(Pending("webhook", f"hooks/{order_id}", made))
                else:
                    order_id = _place_order(shops["polled"], polled_skus[index % len(polled_skus)])
                    observed.add(Pending("polled", f"polled/{order_id}", time.monotonic()))
        load_seconds = time.monotonic() - load_started
        deadline = time.monotonic() + max(120.0, args.orders_poll * 3)
        while observed.waiting() and time.monotonic() < deadline:
            time.sleep(0.5)
        busy_stats = {name: shop.sim.stats for name, shop in shops.items()}
        patches = busy_stats["hooks"].count("PATCH /products/{id}")
        load_calls = {
            name: (s.reads, s.writes, s.rate_limited, s.busiest_window(1.0)) for name, s in busy_stats.items()
        }
        _say(f"load done in {load_seconds:.0f} s; idle for {args.idle_seconds:g} s (no change anywhere)", started)
        time.sleep(10)  # the last syncs' tails (stock refreshed after an order) finish first
        for shop in shops.values():
            shop.sim.stats.reset()
        time.sleep(args.idle_seconds)
        idle = {name: shop.sim.stats.requests * 60 / args.idle_seconds for name, shop in shops.items()}
        stop.set()
        request_stop(state, "hooks")
        request_stop(state, "polled")
        for watcher in watchers:
            watcher.join(120)
        dispatcher.stop()

        print()
        print(f"{'path':<28} {'n':>4} {'arrived':>8} {'p50 s':>7} {'p95 s':>7} {'max s':>7}  target p95")
        kinds = dict(zip(("stock", "webhook", "polled"), TARGETS, strict=True))
        status = 0
        for kind, label in kinds.items():
            items = [i for i in observed.items if i.kind == kind]
            delays = [i.arrived - i.made for i in items if i.arrived is not None]
            if not items:
                continue
            if delays:
                p50, p95, worst = statistics.median(delays), _percentile(delays, 0.95), max(delays)
                verdict = "met" if p95 <= TARGETS[label] and len(delays) == len(items) else "MISSED"
                print(
                    f"{label:<28} {len(items):>4} {len(delays):>8} {p50:>7.1f} {p95:>7.1f} {worst:>7.1f}  "
                    f"≤ {TARGETS[label]:g} s: {verdict}"
                )
            else:
                print(f"{label:<28} {len(items):>4} {0:>8}       -       -       -  ≤ {TARGETS[label]:g} s: MISSED")
                verdict = "MISSED"
            status = max(status, 0 if verdict == "met" else 1)
        print()
        print(
            f"shop calls per stock change (hooks shop, PATCH /products): {patches / max(1, args.changes):.2f} "
            f"({patches} PATCHes for {args.changes} changes; orders' own stock refreshes included)"
        )
        for name, (reads, writes, limited, busiest) in load_calls.items():
            print(
                f"{name:<7} during the load: {reads} reads, {writes} writes, 429s {limited}, "
                f"busiest second {busiest} requests (rate {args.rate:g}/s)"
            )
        if trigger_runs:
            seconds = [wall for wall, _ in trigger_runs]
            print(
                f"webhook runs (resync-order, import + its stock refresh): {len(trigger_runs)} for "
                f"{sum(n for _, n in trigger_runs)} orders, p50 {statistics.median(seconds):.1f} s, "
                f"max {max(seconds):.1f} s each"
            )
        for name, per_minute in idle.items():
            mode = "ERP polled only" if name == "hooks" else f"shop orders polled every {args.orders_poll:g} s"
            print(f"{name:<7} idle: {per_minute:.1f} shop calls per minute ({mode})")
        return status
    finally:
        if receiver is not None:
            receiver.stop()
        for shop in shops.values():
            shop.stop()
        tryton.stop()


def main(argv: Sequence[str] = ()) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench freshness", description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--changes", type=int, default=60)
    parser.add_argument("--orders", type=int, default=20)
    parser.add_argument("--rate", type=float, default=4.0)
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument("--orders-poll", type=float, default=30.0)
    args = parser.parse_args(list(argv))
    prefect_environment()
    return run(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
