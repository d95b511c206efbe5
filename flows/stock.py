"""Stock: ERP → shop, as absolute quantities of what each SKU can be sold, changed SKUs only.

``stock_sync(store)`` runs on a schedule: incremental where the ERP can tell what moved since a cursor, else a
full read diffed locally. ``stock_sync(store, skus=[...])`` syncs just those SKUs: the order flow calls it as
a sub-flow after importing orders, and ``goods_receipts(store)`` calls it for the SKUs of new goods receipts.
See docs/stock.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from prefect import flow, get_run_logger
from prefect.states import State

from erpsync.connectors.erp.base import NotSupported
from erpsync.core.cursors import parse_cursor
from erpsync.core.summary import RunState, RunSummary
from erpsync.core.trail import Trail, join_refs
from erpsync.runtime.artifacts import artifact_key, publish_summary, publish_table
from erpsync.runtime.changes import publish_changes
from erpsync.runtime.leases import exclusive_run
from erpsync.runtime.run_context import run_name
from erpsync.runtime.states import final_state, summary_of
from erpsync.runtime.store_runtime import StoreRuntime, open_runtime
from erpsync.runtime.trail import publish_movements
from erpsync.tasks.stock import (
    OVERLAP,
    RECEIPTS,
    RECEIPTS_CURSOR,
    RECEIPTS_FIRST_LOOK,
    SHOP_ROWS,
    STOCK,
    WriteOutcome,
    batches,
    log_clamped,
    mark_receipts_handled,
    plan_stock,
    read_erp_stock,
    read_goods_receipts,
    read_shop_inventory,
    record_duplicates,
    record_in_sync,
    record_read_errors,
    refresh_allowed,
    remember_units,
    utcnow,
    write_stock,
)

FLOW = "stock"
RECEIPTS_FLOW = "receipts"
TARGETED_WAIT_SECONDS = 60.0  # a targeted run waits for a running sync (its SKUs must not be lost) ...
SCHEDULED_WAIT_SECONDS = 0.0  # ... a scheduled one just skips: the next one comes soon
SHOWN = 20


def _skipped(runtime: StoreRuntime, flow: str, message: str) -> State[Any]:
    get_run_logger().warning(message)
    summary = runtime.summary(flow, state=RunState.SKIPPED, message=message)
    publish_summary(summary)
    return final_state(summary)


@flow(name="stock-sync", flow_run_name=run_name)
def stock_sync(
    store: str,
    skus: list[str] | None = None,
    cause: str | None = None,
    causes: dict[str, str] | None = None,
    refs: dict[str, str] | None = None,
) -> State[Any]:
    """Push what can be sold (on hand − reserved − buffer) of changed SKUs; ``skus``: just those.

    Args:
        store: The store (a `[[stores]]` name); a deployment fixes it to its own store.
        skus: Only these ERP SKUs (empty: the changed ones, read from the ERP since the last run).
        cause: Why, in the movement trail (default: inventory for a scheduled run, manual for given SKUs).
        causes: A cause per ERP SKU, overriding `cause` (set by the order flow).
        refs: The ERP document behind each ERP SKU's change, for the movement trail.
    """
    wanted = None if skus is None else sorted({s.strip() for s in skus if s and s.strip()})
    trail = Trail(cause or ("inventory" if skus is None else "manual"), causes or {}, refs or {})
    with open_runtime(store) as runtime:
        wait = TARGETED_WAIT_SECONDS if wanted is not None else SCHEDULED_WAIT_SECONDS
        with exclusive_run(runtime.state, store, FLOW, wait_seconds=wait) as acquired:
            if not acquired:
                return _skipped(runtime, FLOW, f"stock sync for store {store} already running; skipped")
            summary = _sync(runtime, wanted, trail)
    publish_summary(summary)
    return final_state(summary)


def sync_skus(runtime: StoreRuntime, skus: list[str], trail: Trail | None = None) -> RunSummary:
    """The targeted sync's work inside another run that holds the stock lease (the store watcher); the trail's
    cause defaults to ``inventory`` (a change found in the ERP)."""
    return _sync(runtime, sorted(set(skus)), trail or Trail("inventory"))


def _sync(runtime: StoreRuntime, skus: list[str] | None, trail: Trail) -> RunSummary:
    logger = get_run_logger()
    capabilities = runtime.erp.capabilities
    if not capabilities.stock_read:
        raise NotSupported(runtime.erp.system, "this ERP cannot read stock: there is nothing to sync")
    if skus == []:
        return runtime.summary(FLOW, message="no SKUs given: nothing to do", details={"mode": "skus"})
    window_end = utcnow()
    since: datetime | None = None
    if skus is None and capabilities.stock_changed_since:
        cursor = parse_cursor(runtime.state.get_cursor(runtime.name, STOCK))
        since = cursor - OVERLAP if cursor is not None else None
    mode = "skus" if skus is not None else ("incremental" if since is not None else "full")
    logger.info(
        "stock sync [%s] mode %s%s over warehouses %s",
        runtime.name,
        mode,
        f" since {since.isoformat()}" if since else "",
        ", ".join(runtime.store.warehouses),
    )

    erp = read_erp_stock(runtime, skus=skus, since=since)
    plan = plan_stock(runtime, erp)
    deferred: list[str] = []
    units_learned = shop_errors = 0
    if (plan.unknown_units and refresh_allowed(runtime, window_end)) or plan.shop_read_pays():
        shop = read_shop_inventory(runtime)
        units_learned = remember_units(runtime, shop.frame)
        record_read_errors(runtime, SHOP_ROWS, shop.errors)
        shop_errors = len(shop.errors)
        plan = plan_stock(runtime, erp, shop)
        record_in_sync(runtime, plan)
    elif plan.unknown_units:
        deferred = plan.unknown_units  # not linked yet and a shop read ran less than an hour ago: next time
    log_clamped(runtime, plan.availability)

    outcome = WriteOutcome()
    for batch in batches(plan.writes):
        done = write_stock(runtime, batch, trail)
        outcome.written += done.written
        outcome.failed.update(done.failed)
    record_read_errors(runtime, STOCK, erp.errors)
    record_duplicates(runtime, plan.availability.duplicates)

    stuck = len(outcome.failed) + len(erp.errors) + len(plan.availability.duplicates)  # ERP SKUs not synced
    failed = stuck + shop_errors  # shop rows that could not be read are failures too, but no ERP SKU waits
    not_in_shop = [] if deferred else plan.unknown_units
    advanced = False
    if mode != "skus" and capabilities.stock_changed_since and stuck == 0 and not deferred:
        runtime.state.set_cursor(runtime.name, STOCK, window_end.isoformat())  # never past a failed record
        advanced = True
    missing_in_erp = sorted(set(skus) - set(plan.expected.index)) if skus is not None else []
    _publish_details(runtime, outcome, erp.errors, plan.availability.clamped_rows())
    written = [p for p in plan.writes if p.erp_sku in set(outcome.written)]
    publish_movements(FLOW, runtime.name, written, trail)
    publish_changes(FLOW, runtime.name, stock_changes(written), f"Stock of {runtime.name} written to the shop")
    return runtime.summary(
        FLOW,
        updated=len(outcome.written),
        unchanged=plan.unchanged,
        failed=failed,
        skipped=len(not_in_shop) + len(deferred) + len(missing_in_erp),
        message=_message(mode, plan.expected.size, not_in_shop, deferred, missing_in_erp, advanced),
        details={
            "mode": mode,
            "since": since.isoformat() if since else None,
            "cursor_advanced": advanced,
            "warehouses": list(runtime.store.warehouses),
            "reservations": capabilities.stock_reservations,
            "erp_skus": int(plan.expected.size),
            "shop_read": plan.shop_read,
            "units_learned": units_learned,
            "clamped": plan.availability.clamped_rows()[:SHOWN],
            "duplicates": plan.availability.duplicates[:SHOWN],
            "not_in_shop": not_in_shop[:SHOWN],
            "deferred": deferred[:SHOWN],
            "unknown_to_erp": missing_in_erp[:SHOWN],
            "refused": dict(list(outcome.failed.items())[:SHOWN]),
        },
    )


def stock_changes(written: Sequence[Any]) -> list[dict[str, object]]:
    """One row per SKU written: ``old → new`` (old: the shop's value read this run, else the last push; ``?``)."""
    return [
        {
            "sku": p.erp_sku,
            "shop sku": p.write.sku,
            "change": f"{'?' if p.before is None else _number(p.before)} → {_number(p.write.quantity)}",
        }
        for p in written
    ]


def _number(value: Any) -> str:
    return format(value.normalize(), "f") if hasattr(value, "normalize") else str(value)


def _message(
    mode: str,
    read: int,
    not_in_shop: Sequence[str],
    deferred: Sequence[str],
    missing: Sequence[str],
    advanced: bool,
) -> str:
    parts = [f"{mode}: {read} SKU(s) read from the ERP"]
    if not_in_shop:
        parts.append(f"{len(not_in_shop)} not in the shop")
    if deferred:
        parts.append(f"{len(deferred)} not linked to a shop unit yet (looked for at the next inventory read)")
    if missing:
        parts.append(f"{len(missing)} unknown to the ERP: {', '.join(missing[:5])}")
    if mode != "skus" and not advanced:
        parts.append("cursor kept: the next run reads this window again")
    return "; ".join(parts)


def _publish_details(
    runtime: StoreRuntime, outcome: WriteOutcome, errors: Sequence[Any], clamped: list[dict[str, object]]
) -> None:
    refused = [{"sku": sku, "reason": reason} for sku, reason in outcome.failed.items()]
    refused += [{"sku": e.key, "reason": e.error} for e in errors]
    publish_table(
        artifact_key(FLOW, runtime.name, "failures"),
        refused,
        f"Stock sync of {runtime.name}: SKUs that were not written",
    )
    if clamped and runtime.store.stock.clamp_warning:
        publish_table(
            artifact_key(FLOW, runtime.name, "clamped"),
            clamped,
            f"Stock sync of {runtime.name}: on hand − reserved − buffer below zero, written as 0",
        )


@flow(name="goods-receipts", flow_run_name=run_name)
def goods_receipts(store: str) -> State[Any]:
    """Sync right away the stock of SKUs received into the store's warehouses (polls the ERP's receipts).

    Args:
        store: The store (a `[[stores]]` name); a deployment fixes it to its own store.
    """
    with open_runtime(store) as runtime, exclusive_run(runtime.state, store, RECEIPTS_FLOW) as acquired:
        if not acquired:
            return _skipped(runtime, RECEIPTS_FLOW, f"receipts of store {store} already being read; skipped")
        if not runtime.erp.capabilities.goods_receipts_read:
            return _skipped(runtime, RECEIPTS_FLOW, "this ERP cannot read goods receipts: nothing to watch")
        summary = _receipts(runtime)
    publish_summary(summary)
    return final_state(summary)


def _settle_promises(runtime: StoreRuntime, skus: list[str]) -> None:
    """The goods came: the shop's "orderable, delivered from ..." promise of these SKUs is withdrawn at once."""
    if not (skus and runtime.store.purchases.enabled):
        return
    from erpsync.tasks.purchases import promised_among, write_promises

    promised = promised_among(runtime, skus)
    if promised:
        write_promises(runtime, [], promised)


def _receipts(runtime: StoreRuntime) -> RunSummary:
    window_end = utcnow()
    cursor = parse_cursor(runtime.state.get_cursor(runtime.name, RECEIPTS_CURSOR))
    since = cursor - OVERLAP if cursor is not None else window_end - RECEIPTS_FIRST_LOOK
    read = read_goods_receipts(runtime, since)
    record_read_errors(runtime, RECEIPTS, read.errors)
    sub: RunSummary | None = None
    if read.skus:
        refs = join_refs((line.sku, f"receipt {r.reference or r.erp_id}") for r in read.fresh for line in r.lines)
        state = stock_sync(store=runtime.name, skus=read.skus, cause="receipt", refs=refs, return_state=True)
        sub = summary_of(state)  # a partially failed sync has one too; one that failed outright raises
    handled = sub is None or sub.state is not RunState.SKIPPED
    if handled:
        mark_receipts_handled(runtime, read.fresh)
        _settle_promises(runtime, read.skus)
    advanced = handled and not read.errors
    if advanced:
        runtime.state.set_cursor(runtime.name, RECEIPTS_CURSOR, window_end.isoformat())
    summary = runtime.summary(
        RECEIPTS_FLOW,
        updated=sub.updated if sub else 0,
        unchanged=sub.unchanged if sub else 0,
        failed=len(read.errors) + (sub.failed if sub else 0),
        skipped=sub.skipped if sub else 0,
        message=(
            f"{len(read.fresh)} new goods receipt(s), {len(read.skus)} SKU(s) synced"
            + ("" if handled else "; the stock sync was busy: these receipts are read again next time")
        ),
        details={
            "since": since.isoformat(),
            "receipts": [r.reference or r.erp_id for r in read.fresh][:SHOWN],
            "skus": read.skus[:SHOWN],
            "stock_sync": sub.line() if sub else None,
            "cursor_advanced": advanced,
        },
    )
    if sub is not None:  # the sub-flow's own API calls, so that this summary tells the whole cost
        summary.shop_reads += sub.shop_reads
        summary.shop_writes += sub.shop_writes
        summary.erp_reads += sub.erp_reads
    return summary
