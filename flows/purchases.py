"""Purchases -> the shop's promise: goods on the way make an out-of-stock product orderable with the expected
date, and the promise is withdrawn once the goods arrive (the receipts flow also withdraws it at once for the
SKUs it received). Per store: ``[stores.purchases] enabled`` and ``max_lead_days``. See docs/customers.md.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import flow
from prefect.states import State

from erpsync.core.promises import OnTheWay, PromisePlan
from erpsync.core.summary import RunState, RunSummary
from erpsync.runtime.artifacts import artifact_key, publish_summary, publish_table
from erpsync.runtime.leases import exclusive_run
from erpsync.runtime.run_context import run_name
from erpsync.runtime.states import final_state
from erpsync.runtime.store_runtime import StoreRuntime, open_runtime
from erpsync.tasks.purchases import (
    BATCH,
    PromiseOutcome,
    changes,
    plan_store_promises,
    read_incoming,
    record_read_errors,
    write_promises,
)

FLOW = "purchases"


@flow(name="purchases", flow_run_name=run_name)
def purchase_sync(store: str) -> State[Any]:
    """Show goods on the way in the shop: out-of-stock SKUs orderable with the expected date, or back to normal.

    Args:
        store: The store (a `[[stores]]` name); a deployment fixes it to its own store.
    """
    with open_runtime(store) as runtime, exclusive_run(runtime.state, store, FLOW) as mine:
        if not mine:
            summary = runtime.summary(FLOW, state=RunState.SKIPPED, message=f"another purchases run for {store}")
        else:
            summary = _sync(runtime)
    publish_summary(summary)
    return final_state(summary)


def _sync(runtime: StoreRuntime) -> RunSummary:
    if not runtime.store.purchases.enabled:
        return runtime.summary(FLOW, state=RunState.SKIPPED, message="[stores.purchases] enabled = false")
    if not runtime.erp.capabilities.purchases_read:
        return runtime.summary(
            FLOW,
            state=RunState.SKIPPED,
            message=f"{runtime.erp.system} cannot tell what is on the way (capability purchases_read is off)",
        )
    today = datetime.now(runtime.store.zone).date()
    incoming = read_incoming(runtime)
    record_read_errors(runtime, incoming.errors)
    plan = plan_store_promises(runtime, incoming.goods, today)
    fresh, withdraw, unchanged = changes(runtime, plan)
    out = PromiseOutcome()
    for start in range(0, max(len(fresh), len(withdraw)), BATCH):
        out.merge(write_promises(runtime, fresh[start : start + BATCH], withdraw[start : start + BATCH]))
    _publish(runtime, incoming.goods, plan, out)
    return runtime.summary(
        FLOW,
        created=len(out.promised),
        updated=len(out.withdrawn),
        unchanged=unchanged,
        failed=len(out.failed) + len(incoming.errors),
        skipped=len(out.not_in_shop),
        message=(
            f"{len(incoming.goods)} SKU(s) on the way, {len(plan.promises)} promised in the shop "
            f"({len(out.promised)} written), {len(out.withdrawn)} promise(s) withdrawn"
        ),
        details={
            "promised": out.promised[:20],
            "withdrawn": out.withdrawn[:20],
            "not_in_shop": out.not_in_shop[:20],
            "not_promised": dict(list(plan.not_promised.items())[:20]),
            "failed": dict(list(out.failed.items())[:20]),
        },
    )


def _publish(runtime: StoreRuntime, goods: dict[str, OnTheWay], plan: PromisePlan, out: PromiseOutcome) -> None:
    """The purchase view: per SKU on the way, the quantity, date, supplier and purchase, and the shop's promise."""
    rows = []
    for sku, way in sorted(goods.items())[:500]:
        promise = plan.promises.get(sku)
        rows.append(
            {
                "sku": sku,
                "quantity": f"{way.quantity.normalize():f}",
                "expected": way.expected.isoformat() if way.expected else "",
                "supplier": ", ".join(way.suppliers),
                "purchase": ", ".join(way.purchases),
                "shop": promise.text if promise else f"not promised: {plan.not_promised.get(sku, '')}",
            }
        )
    publish_table(artifact_key(FLOW, runtime.name, "on-the-way"), rows, f"Goods on the way for store {runtime.name}")
