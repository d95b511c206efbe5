"""Manual flows: re-send one order, retry failures. Run from the Prefect UI (typed parameters: a form), from
``erpsync resync-order --store S ORDER_ID`` / ``erpsync failures retry``, or by the webhook receiver.

Both take the order flow's run lease (waiting up to ``MANUAL_WAIT_SECONDS`` for a scheduled run to finish), so a
manual re-send never overlaps an automatic one; the journal and the per-order claim hold even if it did.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from prefect import flow, get_run_logger
from prefect.states import State
from pydantic import ValidationError

from erpsync.core.models import Order
from erpsync.core.redact import redact
from erpsync.core.summary import RunState, RunSummary
from erpsync.flows.orders import FLOW as ORDERS_LEASE
from erpsync.flows.orders import import_in_batches, refresh_stock
from erpsync.flows.registry import UnknownFlow, load_flow
from erpsync.runtime.artifacts import artifact_key, publish_summary, publish_table
from erpsync.runtime.leases import exclusive_run
from erpsync.runtime.order_after import ORDER_EDIT, ORDER_PAYMENT
from erpsync.runtime.run_context import run_name
from erpsync.runtime.states import final_state, is_partial
from erpsync.runtime.store_runtime import StoreRuntime, open_runtime
from erpsync.tasks.order_backsync import (
    ERP_ORDER,
    ORDER_STATUS,
    PullOutcome,
    StatusOutcome,
    retry_erp_orders,
    sync_statuses,
)
from erpsync.tasks.order_import import ImportOutcome
from erpsync.tasks.orders import ORDER, ShopOrders, open_order_failures, read_shop_orders, record_unreadable

RESYNC_FLOW = "resync-order"
RETRY_FLOW = "retry-failures"
MANUAL_WAIT_SECONDS = 60.0
ORDER_ENTITIES = (ORDER, ERP_ORDER, ORDER_STATUS, ORDER_EDIT, ORDER_PAYMENT)
# Every kind of failure the streams record (a dropdown in the UI's form; tests/flows check it against the streams).
FailureEntity = Literal[
    "order",
    "erp_order",
    "order_status",
    "order_edit",
    "order_payment",
    "stock",
    "goods_receipt",
    "shop_inventory",
    "product",
    "customer",
    "promise",
    "incoming",
]
# Failures of other streams are retried by running their flow for the failed keys: entity -> (flow, keys param).
ENTITY_FLOWS: dict[str, tuple[str, str | None]] = {"stock": ("stock", "skus")}

log = logging.getLogger("erpsync.orders")


def _busy(runtime: StoreRuntime, flow_name: str) -> RunSummary:
    return runtime.summary(
        flow_name,
        state=RunState.SKIPPED,
        message=f"an order run for store {runtime.name} is still in progress after "
        f"{MANUAL_WAIT_SECONDS:.0f} s; try again",
    )


def _no_such_order(runtime: StoreRuntime, order_id: str) -> RunSummary:
    """A re-send of an order the shop does not have (a mistyped id): a clear failure, nothing recorded."""
    known = runtime.state.failure(runtime.name, ORDER, order_id)
    hint = (
        f"; its open failure closes with `erpsync failures dismiss --store {runtime.name} {order_id} --reason ...`"
        if known is not None and not known.resolved
        else "; nothing was recorded"
    )
    return runtime.summary(
        RESYNC_FLOW,
        state=RunState.FAILED,
        message=redact(
            f"MerchantPro at {runtime.store.url} has no order {order_id!r} in store {runtime.name}: check the id "
            f"(the shop's order number, e.g. 95750870.3){hint}"
        ),
        details={"order_id": order_id, "found": False},
    )


def _resend(
    runtime: StoreRuntime, order_ids: list[str], *, forced: bool, read: ShopOrders | None = None
) -> tuple[ImportOutcome, list[dict[str, str]], int]:
    """Read these shop orders by id (unless ``read`` already) and import them (forced: holds lifted);
    (outcome, problem rows, unreadable)."""
    read = read or read_shop_orders(runtime, None, order_ids)
    problems = record_unreadable(runtime, read)
    outcome = import_in_batches(runtime, read.orders, open_order_failures(runtime), forced=forced, pin=False)
    return outcome, problems + outcome.problems, len(read.errors) + len(read.missing)


@flow(name=RESYNC_FLOW, flow_run_name=run_name)
def resync_order(store: str, order_id: str, force: bool = False, also: list[str] | None = None) -> State[Any]:
    """Send one shop order to the ERP now, then its status and stock; force: also when held or in doubt.

    Args:
        store: The store (a `[[stores]]` name); a deployment fixes it to its own store.
        order_id: The shop's order id (the number in the shop's admin, not the ERP sale).
        force: Re-send also when the order is held for a person or its import is in doubt.
        also: More shop order ids sent in the same run (the webhook receiver merges the orders waiting at once);
            empty for one order.
    """
    with (
        open_runtime(store) as runtime,
        exclusive_run(runtime.state, store, ORDERS_LEASE, wait_seconds=MANUAL_WAIT_SECONDS) as acquired,
    ):
        ids = list(dict.fromkeys([order_id, *(also or [])]))
        read = read_shop_orders(runtime, None, ids) if acquired else None
        if read is None:
            summary = _busy(runtime, RESYNC_FLOW)
        elif len(ids) == 1 and order_id in read.missing:
            summary = _no_such_order(runtime, order_id)
        else:
            outcome, problems, unreadable = _resend(runtime, ids, forced=force, read=read)
            statuses = StatusOutcome()
            if runtime.store.orders.direction == "both":
                statuses = sync_statuses(runtime, ids)
            stock_note = refresh_stock(store, outcome.skus)
            summary = runtime.summary(
                RESYNC_FLOW,
                created=len(outcome.created),
                updated=len(outcome.after) + len(statuses.updated),
                unchanged=outcome.unchanged,
                failed=len(outcome.failed) + unreadable + len(statuses.failed),
                skipped=outcome.skipped + len(outcome.held) + len(outcome.busy),
                message="; ".join(
                    n
                    for n in (
                        f"order {', '.join(outcome.held)} held (force=true re-sends it): "
                        f"{problems[-1]['reason'] if problems else 'failed too often'}"
                        if outcome.held
                        else "",
                        f"order {', '.join(outcome.busy)} is being worked on by another run" if outcome.busy else "",
                        stock_note,
                    )
                    if n
                ),
                details={
                    "order_id": order_id,
                    "order_ids": ids,
                    "imported": outcome.created,
                    "cancelled_in_erp": outcome.cancelled,
                    "after_import": outcome.after,
                    "edits_held": outcome.edits_held,
                    "status_writes": statuses.writes,
                },
            )
            publish_table(
                artifact_key(RESYNC_FLOW, store, "failures"),
                problems + statuses.problems,
                f"Order {', '.join(ids)} of store {store}: what failed",
            )
    publish_summary(summary)
    return final_state(summary)


def _retry_orders(runtime: StoreRuntime, entity: str | None, keys: list[str] | None) -> RunSummary:
    """Retry the open failures of the order entities (all of them, or ``keys``), holds lifted."""
    state, name = runtime.state, runtime.name
    chosen = {
        e: [f for f in state.open_failures(name, e) if keys is None or f.key in keys]
        for e in ORDER_ENTITIES
        if entity in (None, e)
    }
    outcome, unreadable = ImportOutcome(), 0
    problems: list[dict[str, str]] = []
    order_keys = list(dict.fromkeys(f.key for e in (ORDER, ORDER_EDIT, ORDER_PAYMENT) for f in chosen.get(e, [])))
    if order_keys:
        outcome, problems, unreadable = _resend(runtime, order_keys, forced=True)
    pulled = PullOutcome()
    erp_orders: list[Order] = []
    for failure in chosen.get(ERP_ORDER, []):
        try:
            erp_orders.append(Order.model_validate(failure.payload))
        except ValidationError:
            problems.append(
                {
                    "order": f"ERP {failure.key}",
                    "reason": "no usable ERP order in the failure's payload: re-run the order flow",
                }
            )
    if erp_orders:
        pulled = retry_erp_orders(runtime, erp_orders)
        problems += pulled.problems
    statuses = StatusOutcome()
    status_keys = [f.key for f in chosen.get(ORDER_STATUS, [])]
    if status_keys:
        statuses = sync_statuses(runtime, status_keys)
        problems += statuses.problems
    stock_note = refresh_stock(name, outcome.skus | pulled.skus)
    tried = sum(len(v) for v in chosen.values())
    publish_table(
        artifact_key(RETRY_FLOW, name, "failures"),
        problems,
        f"Failures of store {name} retried by hand that failed again",
    )
    return runtime.summary(
        RETRY_FLOW,
        created=len(outcome.created) + len(pulled.created),
        updated=len(outcome.after) + len(statuses.updated),
        unchanged=outcome.unchanged + statuses.unchanged,
        failed=len(outcome.failed) + unreadable + len(pulled.failed) + len(statuses.failed),
        skipped=outcome.skipped + len(outcome.held) + len(outcome.busy),
        message="; ".join(n for n in (f"{tried} order failures retried", stock_note) if n),
        details={"retried": {e: [f.key for f in v] for e, v in chosen.items()}},
    )


def _retry_other(store: str, entity: str, keys: list[str]) -> str:
    """Failures of another stream: run its flow for the failed keys; a note of what happened."""
    target = ENTITY_FLOWS.get(entity)
    if target is None:
        return f"{entity}: {len(keys)} failures left open (its flow retries them on its next run)"
    flow_name, keys_param = target
    try:
        flow_object = load_flow(flow_name)
    except UnknownFlow as error:
        return f"{entity}: {error}"
    params = {keys_param: keys} if keys_param else {}
    state = flow_object(store=store, **params, return_state=True)
    return f"{entity}: {flow_name} for {len(keys)} keys: {'partially failed' if is_partial(state) else state.name}"


@flow(name=RETRY_FLOW, flow_run_name=run_name)
def retry_failures(store: str, entity: FailureEntity | None = None, keys: list[str] | None = None) -> State[Any]:
    """Retry open failures now (all, one entity, or some keys): held and in-doubt orders are re-sent.

    Args:
        store: The store (a `[[stores]]` name); a deployment fixes it to its own store.
        entity: Only the failures of this kind (empty: all); `erpsync failures list` shows each one's kind.
        keys: Only these keys (shop order ids, ERP SKUs, ...); empty: every open failure of the kind.
    """
    with open_runtime(store) as runtime:
        others: dict[str, list[str]] = {}
        for failure in runtime.state.open_failures(store, entity):
            if failure.entity not in ORDER_ENTITIES and (keys is None or failure.key in keys):
                others.setdefault(failure.entity, []).append(failure.key)
        if entity is not None and entity not in ORDER_ENTITIES:
            summary = runtime.summary(RETRY_FLOW)
        else:
            with exclusive_run(runtime.state, store, ORDERS_LEASE, wait_seconds=MANUAL_WAIT_SECONDS) as acquired:
                summary = _retry_orders(runtime, entity, keys) if acquired else _busy(runtime, RETRY_FLOW)
    notes = [_retry_other(store, name, entity_keys) for name, entity_keys in sorted(others.items())]
    if notes:
        summary.message = "; ".join(n for n in (summary.message, *notes) if n)
        get_run_logger().info("other streams: %s", "; ".join(notes))
    publish_summary(summary)
    return final_state(summary)
