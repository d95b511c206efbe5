"""The demo's real-time step: a store watcher runs while a sale is confirmed in Tryton, and the demo prints how
long the sale took to lower the shop's stock."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from erpsync.core.summary import RunSummary
from erpsync.runtime.states import summary_of

SOLD = 2
WAIT_SECONDS = 60.0


def _shop_stock(sim: Any, sku: str) -> Decimal | None:
    for product in list(sim.products.values()):
        if product.get("sku") == sku:
            return Decimal(str(product.get("stock")))
    return None


def _confirm_sale(tryton: Any, sku: str, quantity: int) -> None:
    """A sale of ``quantity`` × ``sku`` from the WH warehouse, quoted and confirmed as a clerk would in Tryton."""
    session, manifest = tryton.session(), tryton.manifest
    ctx = session.context
    product = session.call("model.product.product.search", [("code", "=", sku)], 0, 1, None, ctx)[0]
    party = manifest["parties"]["client_person"]
    address = session.call("model.party.address.search", [("party", "=", party)], 0, 1, None, ctx)[0]
    line = {
        "type": "line",
        "product": product,
        "quantity": float(quantity),
        "unit": manifest["unit"],
        "unit_price": Decimal("25.00"),
        "taxes": [["add", [manifest["taxes"]["customer_19"]]]],
    }
    sale = session.call(
        "model.sale.sale.create",
        [
            {
                "party": party,
                "reference": f"DEMO-{int(time.time())}",
                "invoice_address": address,
                "shipment_address": address,
                "warehouse": manifest["warehouses"]["WH"]["warehouse"],
                "lines": [["create", [line]]],
            }
        ],
        ctx,
    )
    session.call("model.sale.sale.quote", sale, ctx)
    session.call("model.sale.sale.confirm", sale, ctx)


def sale_reaches_the_shop(tryton: Any, shop: Any, store: str, say: Callable[[str], None]) -> RunSummary | None:
    """Watch ``store``, confirm a sale in Tryton, print the delay until the shop shows the lower stock."""
    from prefect import tags

    from erpsync.core.config import load_config
    from erpsync.flows.watch import request_stop, store_watch
    from erpsync.runtime.run_context import store_tags
    from erpsync.runtime.store_runtime import state_store
    from erpsync.runtime.watch_steps import STOCK_CURSOR

    state = state_store(load_config().state.url.get())
    candidates = [
        str(p["sku"])
        for p in shop.sim.products.values()
        if p.get("type") == "basic" and p.get("sku") and Decimal(str(p.get("stock") or 0)) > SOLD + 2
    ]
    if not candidates:
        say("  no basic product with stock in the shop: the real-time step is skipped")
        return None
    sku = candidates[0]
    result: list[Any] = []

    def watch() -> None:
        with tags(*store_tags("watch", store)):  # tagged like every other run of the store
            result.append(store_watch(store=store, minutes=3, poll_seconds=1.0, batch_seconds=0.5, return_state=True))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    deadline = time.monotonic() + WAIT_SECONDS
    while state.get_cursor(store, STOCK_CURSOR) is None and time.monotonic() < deadline:
        time.sleep(0.1)
    before = _shop_stock(shop.sim, sku)
    _confirm_sale(tryton, sku, SOLD)
    sold_at = time.monotonic()
    say(f"  a sale of {SOLD} × {sku} confirmed in Tryton (the shop shows {before}); the watcher polls every 1 s")
    after = before
    while after == before and time.monotonic() < sold_at + WAIT_SECONDS:
        time.sleep(0.05)
        after = _shop_stock(shop.sim, sku)
    delay = time.monotonic() - sold_at
    if after != before:
        say(f"  the sale reached the shop in {delay:.1f} s: {sku} stock {before} → {after}")
    else:
        say(f"  the sale did NOT reach the shop within {WAIT_SECONDS:.0f} s")
    request_stop(state, store)
    watcher.join(60)
    return summary_of(result[0]) if result else None  # a partially failed watch is a Failed state with its summary
