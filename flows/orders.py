"""The order flow: shop orders into the ERP exactly once; with ``direction = "both"`` ERP statuses and the ERP
orders of other channels come back to the shop. Then the stock of the SKUs involved is refreshed.

Run order (one run at a time per store, run lease ``orders``): settle pushes left in doubt -> read the shop's
orders since the cursor (date-only filter, overlapped) and the failed ones to retry, by id -> import them in
batches -> statuses back -> ERP orders of other channels into the shop -> stock sync of the SKUs -> cursors.
"""

from __future__ import annotations

from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from prefect import flow, get_run_logger
from prefect.states import State

from erpsync.core.cursors import forward_cursor, initial_since, parse_cursor
from erpsync.core.summary import RunState, RunSummary
from erpsync.core.trail import Trail, order_trail
from erpsync.runtime.artifacts import artifact_key, publish_summary, publish_table
from erpsync.runtime.changes import publish_changes
from erpsync.runtime.leases import exclusive_run
from erpsync.runtime.run_context import run_name
from erpsync.runtime.states import final_state, is_partial
from erpsync.runtime.store_runtime import StoreRuntime, open_runtime
from erpsync.tasks.order_backsync import (
    ERP_CURSOR,
    PullOutcome,
    StatusOutcome,
    pull_erp_orders,
    recover_pushes,
    sync_statuses,
)
from erpsync.tasks.order_import import ImportOutcome, import_orders, triage_orders
from erpsync.tasks.orders import BATCH_SIZE, SHOP_CURSOR, open_order_failures, read_shop_orders, record_unreadable

FLOW = "orders"


def shop_since(runtime: StoreRuntime) -> datetime:
    """Where the shop read starts: the cursor, else local midnight of ``start_date`` (default today)."""
    cursor = parse_cursor(runtime.state.get_cursor(runtime.name, SHOP_CURSOR))
    if cursor is not None:
        return cursor
    today = datetime.now(runtime.store.zone).date()
    return initial_since(runtime.store.orders.start_date, today, runtime.store.timezone).astimezone(UTC)


def import_in_batches(
    runtime: StoreRuntime,
    orders: list[Any],
    failures: dict[str, int],
    *,
    forced: bool = False,
    pin: bool = True,
) -> ImportOutcome:
    """Settle what needs no ERP call in one task, import the rest in task-sized batches (the breaker may stop
    them: the rest waits for the next run)."""
    if not orders:
        return ImportOutcome()
    triage = triage_orders(runtime, orders, failures, forced)
    outcome, orders = triage.settled, triage.work
    for start in range(0, len(orders), BATCH_SIZE):
        batch = orders[start : start + BATCH_SIZE]
        if outcome.breaker_open:
            outcome.not_reached += [o.shop_id or "?" for o in batch]
            if pin:
                outcome.pinned += [o.modified_at or o.created_at for o in batch]
            continue
        outcome.merge(import_orders(runtime, batch, failures, forced, pin))
    return outcome


_TRAIL: ContextVar[Trail | None] = ContextVar("order_run_trail", default=None)


def refresh_stock(store: str, skus: set[str]) -> str:
    """Run the stock sync for these ERP SKUs as a sub-flow; a short note of what happened. The movement trail
    names the run's sales and returns (``_TRAIL``, set by ``run_orders``), else every SKU is a ``sale``."""
    if not skus:
        return ""
    from erpsync.flows.stock import stock_sync  # imported when needed: it brings pandas

    why = _TRAIL.get() or Trail("sale")
    state = stock_sync(
        store=store, skus=sorted(skus), cause=why.cause, causes=dict(why.causes), refs=dict(why.refs), return_state=True
    )
    if is_partial(state):
        get_run_logger().warning("the stock sync after the orders left SKUs failed: %s", state.message)
        return f"stock sync for {len(skus)} SKUs: partially failed"
    if not state.is_completed():
        get_run_logger().warning("the stock sync after the orders did not complete: %s", state.message)
    return f"stock sync for {len(skus)} SKUs: {state.name}"


def run_orders(runtime: StoreRuntime) -> RunSummary:
    """The work of one order run for one store (the caller holds the run lease)."""
    logger = get_run_logger()
    settings = runtime.store.orders
    both = settings.direction == "both"
    window_end = datetime.now(UTC)  # captured before anything is read
    since = shop_since(runtime)

    if both:
        recover_pushes(runtime)
    failures = open_order_failures(runtime)
    retry_ids = [key for key, attempts in failures.items() if attempts < settings.max_attempts]
    read = read_shop_orders(runtime, since, retry_ids)
    problems = record_unreadable(runtime, read)
    window_ids = {o.shop_id for o in read.window}
    window = [o for o in read.orders if o.shop_id in window_ids]
    retries = [o for o in read.orders if o.shop_id not in window_ids]
    outcome = import_in_batches(runtime, window, failures)
    outcome.merge(import_in_batches(runtime, retries, failures, pin=False))
    problems += outcome.problems

    statuses, pulled = StatusOutcome(), PullOutcome()
    if both:
        statuses = sync_statuses(runtime)
        problems += statuses.problems
        erp_window_end = datetime.now(UTC)
        erp_since = parse_cursor(runtime.state.get_cursor(runtime.name, ERP_CURSOR)) or since
        pulled = pull_erp_orders(runtime, erp_since)
        problems += pulled.problems
        runtime.state.set_cursor(
            runtime.name, ERP_CURSOR, forward_cursor(erp_window_end, erp_since, pulled.pinned).isoformat()
        )

    runtime.state.set_cursor(runtime.name, SHOP_CURSOR, forward_cursor(window_end, since, outcome.pinned).isoformat())
    booked = {sid: e.erp_order_id for sid in outcome.created if (e := runtime.state.journal_get(runtime.name, sid))}
    trail = order_trail(read.orders, {k: v for k, v in booked.items() if v}, outcome.after, runtime.store.sku_prefix)
    token = _TRAIL.set(trail)
    try:
        stock_note = refresh_stock(runtime.name, outcome.skus | pulled.skus)
    finally:
        _TRAIL.reset(token)

    held = len(outcome.held) + len(pulled.held) + len(outcome.edits_held)
    failed = len(outcome.failed) + len(read.errors) + len(read.missing) + len(statuses.failed) + len(pulled.failed)
    notes = [
        f"{held} held for a person (erpsync failures list)" if held else "",
        after_note(outcome, statuses),
        f"{len(outcome.busy)} busy in another run" if outcome.busy else "",
        f"{len(outcome.not_reached)} left for the next run (ERP not answering)" if outcome.not_reached else "",
        f"statuses incomplete: {statuses.incomplete}" if statuses.incomplete else "",
        stock_note,
    ]
    summary = runtime.summary(
        FLOW,
        created=len(outcome.created) + len(pulled.created),
        updated=len(outcome.after) + len(statuses.updated),
        unchanged=outcome.unchanged + statuses.unchanged,
        failed=failed,
        skipped=outcome.skipped + held + len(outcome.busy) + len(outcome.not_reached),
        message="; ".join(n for n in notes if n),
        details={
            "imported": outcome.created,
            "cancelled_in_erp": outcome.cancelled,
            "after_import": outcome.after,
            "edits_held": outcome.edits_held,
            "invoices_to_shop": statuses.invoices,
            "held": outcome.held + pulled.held,
            "busy": outcome.busy,
            "status_writes": statuses.writes,
            "statuses_checked": statuses.checked,
            "erp_orders_to_shop": pulled.created,
            "stock_skus": sorted(outcome.skus | pulled.skus),
            "since": since.isoformat(),
        },
    )
    publish_table(
        artifact_key(FLOW, runtime.name, "failures"),
        problems,
        f"Orders of store {runtime.name} that failed or are held in this run",
    )
    publish_after(runtime.name, FLOW, outcome, statuses)
    publish_changes(FLOW, runtime.name, order_changes(booked, pulled.created), f"Orders of store {runtime.name}")
    logger.info(summary.line())
    return summary


def order_changes(booked: dict[str, str | None], erp_to_shop: list[str]) -> list[dict[str, str]]:
    """Shop order → ERP sale for each order imported; ERP orders of other channels created in the shop."""
    rows = [{"shop order": sid, "ERP sale": erp or "?", "direction": "shop → ERP"} for sid, erp in booked.items()]
    rows += [{"shop order": "(new in the shop)", "ERP sale": erp, "direction": "ERP → shop"} for erp in erp_to_shop]
    return rows


def after_note(outcome: ImportOutcome, statuses: StatusOutcome) -> str:
    """ "after import: 1 cancelled, 2 returned, 1 edit held, 3 invoices to the shop" (empty when nothing)."""
    kinds = [row["what"] for row in outcome.after]
    counts = [
        (kinds.count("cancelled"), "cancelled"),
        (kinds.count("return") + kinds.count("storno"), "returned"),
        (kinds.count("edit applied"), "edits applied"),
        (len(outcome.edits_held), "edits held"),
        (len(statuses.invoices), "invoices to the shop"),
    ]
    parts = [f"{n} {label}" for n, label in counts if n]
    return f"after import: {', '.join(parts)}" if parts else ""


def publish_after(store: str, flow_name: str, outcome: ImportOutcome, statuses: StatusOutcome) -> None:
    """The run's table of what happened after import: cancellations, returns, edits, invoices sent to the shop."""
    rows = list(outcome.after) + [
        {"order": row["order"], "what": "invoice to the shop", "ERP document": row["invoice"], "detail": row["link"]}
        for row in statuses.invoices
    ]
    if rows:
        publish_table(
            artifact_key(flow_name, store, "after-import"),
            rows,
            f"Orders of store {store} after their import: cancellations, returns, edits, invoices",
        )


@flow(name=FLOW, flow_run_name=run_name)
def order_sync(store: str) -> State[Any]:
    """Shop orders into the ERP exactly once; with direction "both", ERP statuses and other channels' orders back.

    Args:
        store: The store (a `[[stores]]` name); a deployment fixes it to its own store.
    """
    with open_runtime(store) as runtime, exclusive_run(runtime.state, store, FLOW) as acquired:
        if acquired:
            summary = run_orders(runtime)
        else:
            summary = runtime.summary(
                FLOW, state=RunState.SKIPPED, message=f"another order run for store {store} is in progress; skipped"
            )
    publish_summary(summary)
    return final_state(summary)
