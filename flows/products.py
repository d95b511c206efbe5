"""The product sync: ERP -> shop (default), shop -> ERP, or both ways with field ownership (docs/products.md).

Orchestration only: read what changed on each side, look up what that needs from the other side, plan
(pure), record the links found, write in batches, then record failures and move the cursors.
"""

from __future__ import annotations

from typing import Any, TypeVar, cast

from prefect import flow
from prefect.states import State
from prefect.utilities.annotations import quote

from erpsync.core.product_run import chunks
from erpsync.core.summary import RunState, RunSummary
from erpsync.runtime.artifacts import artifact_key, publish_summary, publish_table
from erpsync.runtime.changes import publish_changes
from erpsync.runtime.leases import exclusive_run
from erpsync.runtime.run_context import run_name
from erpsync.runtime.states import final_state
from erpsync.runtime.store_runtime import StoreRuntime, open_runtime
from erpsync.tasks.product_reads import read_erp_products, read_shop_products, resolve_products
from erpsync.tasks.product_writes import WriteOutcome, write_batch
from erpsync.tasks.products import FLOW, finish_run, plan_products, prepare_run, record_links

T = TypeVar("T")


def _as_is(value: T) -> T:
    """A large task argument that Prefect must not walk through looking for futures (``quote``), typed as itself."""
    return cast(T, quote(value))


def _sync(runtime: StoreRuntime, full: bool) -> RunSummary:
    setup = prepare_run(runtime, full)
    if not runtime.erp.capabilities.products_read:
        return runtime.summary(
            FLOW,
            state=RunState.SKIPPED,
            message=(
                f"{runtime.erp.system} cannot list products (capability products_read is off): there is nothing "
                "for the product sync to compare"
            ),
        )
    erp = read_erp_products(runtime, setup.erp_since)
    shop = read_shop_products(
        runtime,
        setup.shop_since,
        setup.include_images,
        setup.record_shop_errors,
        setup.retry_shop_ids,
        setup.taxes.by_id,
    )
    subjects = list(dict.fromkeys([*erp.products, *shop.products]))
    resolved = resolve_products(runtime, _as_is(setup), _as_is(erp), _as_is(shop), _as_is(subjects))
    plan = plan_products(_as_is(subjects), _as_is(resolved.known), _as_is(setup.memory), setup.policy)
    recorded = record_links(runtime, _as_is(plan))
    outcome = WriteOutcome()
    for batch in [*chunks(plan.shop_writes()), *chunks(plan.erp_writes())]:
        outcome.merge(write_batch(runtime, _as_is(setup), _as_is(batch)))
    failed = [*erp.failed, *shop.failed, *resolved.failed, *plan.failed, *recorded.failed, *outcome.failed]
    left = {w.sku for w in outcome.not_reached} | set(plan.skipped) | {f.sku for f in failed}
    succeeded = [sku for sku in subjects if sku not in left]
    catalogue = set(resolved.known.erp) if resolved.known.erp_complete else None
    done = finish_run(
        runtime, _as_is(setup), _as_is(failed), _as_is(succeeded), _as_is(outcome.not_reached), _as_is(catalogue)
    )
    publish_table(
        artifact_key(FLOW, runtime.name, "failures"),
        done.failures,
        f"Products of store {runtime.name} that could not be synced in this run (failures table, entity 'product')",
    )
    publish_changes(
        FLOW,
        runtime.name,
        [{"sku": sku, "what": "created"} for sku in outcome.created]
        + [{"sku": sku, "what": "updated"} for sku in outcome.updated],
        f"Products of store {runtime.name} written ({runtime.store.products.direction})",
    )
    message = "; ".join(setup.notes)
    if outcome.not_reached:
        message = "; ".join(filter(None, [message, f"{len(outcome.not_reached)} writes left for the next run"]))
    return runtime.summary(
        FLOW,
        created=len(outcome.created),
        updated=len(outcome.updated),
        unchanged=plan.unchanged + outcome.unchanged,
        failed=len(done.failures),
        skipped=len(plan.skipped) + len(outcome.not_reached),
        message=message,
        details={
            "direction": runtime.store.products.direction,
            "fields": setup.policy.own.describe(),
            "erp_read": "changed since " + setup.erp_since.isoformat() if setup.erp_since else "whole catalogue",
            "shop_read": "modified since " + setup.shop_since.isoformat() if setup.shop_since else "whole shop",
            "erp_products_read": len(erp.products),
            "shop_products_read": len(shop.products),
            "shop_lookups": resolved.shop_lookups,
            "erp_catalogue_read_to_compare": resolved.erp_catalogue_read,
            "linked": recorded.linked,
            "write_calls": outcome.calls,
            "resolved_failures": done.resolved,
            "skipped": dict(list(plan.skipped.items())[:20]),
        },
    )


@flow(name="products", flow_run_name=run_name)
def product_sync(store: str, full: bool = False) -> State[Any]:
    """Sync products between the ERP and one shop: link by SKU, create what is missing, write what changed.

    Args:
        store: The store (a `[[stores]]` name); a deployment fixes it to its own store.
        full: Compare the whole catalogue on both sides, not only what changed since the last run.
    """
    with open_runtime(store) as runtime, exclusive_run(runtime.state, store, FLOW) as mine:
        if mine:
            summary = _sync(runtime, full)
        else:
            summary = runtime.summary(
                FLOW, state=RunState.SKIPPED, message=f"another products run for store {store} holds the lease"
            )
    publish_summary(summary)
    return final_state(summary)
