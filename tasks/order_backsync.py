"""Tasks of the ERP -> shop side of the order stream (``direction = "both"``).

- **Statuses**: the ERP status of every linked order that is not final in the shop (and not older than
  ``STATUS_HORIZON_DAYS``) is read in batches; what changed since it was last applied becomes the shop's status
  shortcut, AWB and an invoice tag — checked against a fresh read of those shop orders, so nothing is written
  that the shop already has and an order never moves backwards.
- **Orders of other channels**: ERP orders changed since the ERP cursor whose channel is configured are created
  in the shop (``POST /orders``, never retried blindly), then linked and journalled as already in the ERP, so the
  shop -> ERP import never echoes them back. Before the POST a marker (pushed state ``erp_order_push``) is
  written; a marker left without a link (the reply was lost, or the process died) is settled at the start of the
  next run by looking for the ERP marker in the ``meta_fields`` of the shop's recent orders.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from prefect import task
from prefect.cache_policies import NO_CACHE

from erpsync.connectors.errors import RecordError, RetriableError
from erpsync.connectors.merchantpro.client import API, OrderStatusShortcut, local_date_since
from erpsync.core.models import ErpOrderStatus, Order
from erpsync.core.order_rules import (
    INVOICE_META,
    TRANSIENT_PREFIX,
    StatusPlan,
    counted_attempts,
    erp_marker,
    needs_status_check,
    plan_status,
    to_shop_order,
    wants_erp_order,
)
from erpsync.core.state import JournalEntry, LinkConflict
from erpsync.runtime.failures import describe, record_failure, record_row_errors
from erpsync.runtime.logs import run_logger
from erpsync.runtime.states import retriable_only
from erpsync.runtime.store_runtime import StoreRuntime
from erpsync.tasks.orders import ORDER

log = logging.getLogger("erpsync.orders")

ERP_ORDER = "erp_order"  # failures: an ERP order that could not be created in the shop (key: ERP id)
ORDER_STATUS = "order_status"  # failures: a status write the shop refused (key: shop order id)
PUSH = "erp_order_push"  # pushed state: ERP orders being created in the shop (hash "pending" / gone when done)
ERP_CURSOR = "orders:erp"
STATUS_BATCH = 100
STATUS_HORIZON_DAYS = 60
ERP_CLOCK_MARGIN = timedelta(minutes=5)  # the ERP's clock and ours may differ a little


def _logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    return run_logger(log)


def _chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


# ------------------------------------------------------------------------------------------- statuses


@dataclass
class StatusOutcome:
    checked: int = 0
    updated: list[str] = field(default_factory=list)  # shop orders that got at least one write
    writes: int = 0
    unchanged: int = 0
    failed: list[str] = field(default_factory=list)
    problems: list[dict[str, str]] = field(default_factory=list)
    incomplete: str = ""  # why not every batch was read (the ERP did not answer)
    invoices: list[dict[str, str]] = field(default_factory=list)  # ERP invoices written onto shop orders


def _status_candidates(runtime: StoreRuntime, now: datetime) -> list[JournalEntry]:
    entries = runtime.state.journal_entries(runtime.name, states=["created"])
    return [
        e
        for e in entries
        if e.erp_order_id and needs_status_check(e.shop_status, e.created_at, now, STATUS_HORIZON_DAYS)
    ]


def sync_status_batch(runtime: StoreRuntime, entries: Sequence[JournalEntry], out: StatusOutcome) -> None:
    """One batch: ERP statuses, then a fresh read of the shop orders that need a write, then the writes."""
    statuses: dict[str, ErpOrderStatus] = {
        s.erp_id: s for s in runtime.erp.order_statuses([e.erp_order_id or "" for e in entries])
    }
    out.checked += len(entries)
    plans: dict[str, tuple[JournalEntry, ErpOrderStatus, StatusPlan]] = {}
    for entry in entries:
        status = statuses.get(entry.erp_order_id or "")
        plan = (
            None if status is None else plan_status(status, shop_status=entry.shop_status, last_record=entry.erp_status)
        )
        if status is None or plan is None:
            out.unchanged += 1
        else:
            plans[entry.shop_order_id] = (entry, status, plan)
    needs_read = [sid for sid, (_, _, plan) in plans.items() if plan.writes]
    current: dict[str, Order] = {}
    if needs_read:
        for page in runtime.shop.iter_orders_by_id(needs_read):
            current.update((o.shop_id or "", o) for o in page.items)
    for sid, (entry, status, plan) in plans.items():
        shop_order = current.get(sid)
        if shop_order is not None:  # plan again on what the shop has now
            plan = plan_status(status, shop_status=shop_order.shipping_status.value, last_record=entry.erp_status)
            if plan is None:
                out.unchanged += 1
                continue
        awb = plan.awb if plan.awb and (shop_order is None or shop_order.awb != plan.awb) else None
        # Meta fields replace the order's whole object: merged onto what the fresh read shows, never blind.
        meta = (
            {**shop_order.meta, **plan.meta}
            if plan.meta and shop_order is not None and any(shop_order.meta.get(k) != v for k, v in plan.meta.items())
            else None
        )
        try:
            if plan.shortcut:
                runtime.shop.set_order_status(sid, cast(OrderStatusShortcut, plan.shortcut))
            if awb:
                runtime.shop.set_awb(sid, awb)
            if plan.invoice_tag:
                runtime.shop.add_order_tag(sid, plan.invoice_tag)
            if meta is not None:
                runtime.shop.set_order_meta(sid, meta)
            for tag in plan.tags:
                runtime.shop.add_order_tag(sid, tag)
        except (RecordError, RetriableError) as error:
            reason = describe(error)
            record_failure(
                runtime.state,
                runtime.name,
                ORDER_STATUS,
                sid,
                reason,
                {"erp_status": status.model_dump(mode="json"), "shop_status": entry.shop_status},
            )
            out.failed.append(sid)
            out.problems.append({"order": sid, "reason": reason})
            continue
        writes = sum(1 for value in (plan.shortcut, awb, plan.invoice_tag, meta) if value) + len(plan.tags)
        if meta is not None and INVOICE_META["number"] in plan.meta:
            out.invoices.append(
                {
                    "order": sid,
                    "invoice": plan.meta[INVOICE_META["number"]],
                    "link": plan.meta.get(INVOICE_META["url"], ""),
                }
            )
        runtime.state.journal_update(runtime.name, sid, erp_status=plan.record, shop_status=plan.shop_status)
        runtime.state.resolve_failure(runtime.name, ORDER_STATUS, sid)
        out.writes += writes
        if writes:
            out.updated.append(sid)
        else:
            out.unchanged += 1


def sync_statuses_now(runtime: StoreRuntime, only: Sequence[str] | None = None) -> StatusOutcome:
    """The status back-sync (plain function): every linked, unfinished order, or ``only`` these shop ids."""
    out = StatusOutcome()
    if not runtime.erp.capabilities.orders_read_status:
        return out
    entries = _status_candidates(runtime, datetime.now(UTC))
    if only is not None:
        wanted = set(only)
        entries = [e for e in entries if e.shop_order_id in wanted]
    for batch in _chunks(entries, STATUS_BATCH):
        try:
            sync_status_batch(runtime, batch, out)
        except RetriableError as error:
            out.incomplete = describe(error)  # the next run asks again
            break
    return out


@task(name="orders-status-back", cache_policy=NO_CACHE)
def sync_statuses(runtime: StoreRuntime, only: list[str] | None = None) -> StatusOutcome:
    """ERP status (invoiced, shipped + AWB, delivered, cancelled) to the shop, written only on change."""
    out = sync_statuses_now(runtime, only)
    _logger().info(
        "statuses: %d checked, %d orders updated (%d writes), %d failed%s",
        out.checked,
        len(out.updated),
        out.writes,
        len(out.failed),
        f"; stopped: {out.incomplete}" if out.incomplete else "",
    )
    return out


# ------------------------------------------------------------------------------------------- ERP orders -> shop


@dataclass
class PullOutcome:
    created: list[str] = field(default_factory=list)  # ERP ids created in the shop
    recovered: list[str] = field(default_factory=list)  # in-doubt pushes found in the shop and linked
    failed: list[str] = field(default_factory=list)
    held: list[str] = field(default_factory=list)
    pinned: list[datetime | None] = field(default_factory=list)
    skus: set[str] = field(default_factory=set)
    problems: list[dict[str, str]] = field(default_factory=list)


def _record_pushed(runtime: StoreRuntime, erp_id: str, shop_id: str, order: Order) -> None:
    """Link the shop's new order to the ERP order and journal it as already in the ERP (never echoed back)."""
    state, name = runtime.state, runtime.name
    state.link(name, ORDER, shop_id=shop_id, erp_id=erp_id)
    entry = state.journal_claim(name, shop_id, None)
    if not entry.erp_order_id:
        state.journal_update(
            name, shop_id, state="created", erp_order_id=erp_id, shop_status=order.shipping_status.value
        )
    state.delete_pushed(name, PUSH, [erp_id])
    state.resolve_failure(name, ERP_ORDER, erp_id)


def recover_pushes_now(runtime: StoreRuntime) -> list[str]:
    """Settle pushes left in doubt: linked when the shop has the order (by its ERP marker), else forgotten."""
    state, name = runtime.state, runtime.name
    pending = state.get_pushed(name, PUSH)
    if not pending:
        return []
    settled: list[str] = []
    open_ids = []
    for erp_id in pending:
        if state.find_link(name, ORDER, erp_id=erp_id) is not None:
            state.delete_pushed(name, PUSH, [erp_id])
        else:
            open_ids.append(erp_id)
    if not open_ids:
        return []
    markers = {erp_marker(runtime.erp.system, erp_id): erp_id for erp_id in open_ids}
    oldest = min(pending[erp_id].pushed_at for erp_id in open_ids)
    day = local_date_since(oldest, timezone=runtime.shop.timezone, overlap_days=1)
    found: dict[str, str] = {}
    for rows in runtime.shop.iter_pages(
        f"{API}/orders", {"created[gte]": day.isoformat(), "fields": "id,shipping_status,meta_fields"}
    ):
        for row in rows:
            marker = ((row.get("meta_fields") or {}) if isinstance(row.get("meta_fields"), dict) else {}).get(
                "erp_reference"
            )
            if marker in markers and row.get("id") is not None:
                found[markers[marker]] = str(row["id"])
    for erp_id in open_ids:
        shop_id = found.get(erp_id)
        if shop_id is None:
            state.delete_pushed(name, PUSH, [erp_id])  # not in the shop: the pull sends it again
            continue
        state.link(name, ORDER, shop_id=shop_id, erp_id=erp_id)
        entry = state.journal_claim(name, shop_id, None)
        if not entry.erp_order_id:
            state.journal_update(name, shop_id, state="created", erp_order_id=erp_id)
        state.delete_pushed(name, PUSH, [erp_id])
        state.resolve_failure(name, ERP_ORDER, erp_id)
        settled.append(erp_id)
    return settled


@task(
    name="orders-recover-pushes",
    cache_policy=NO_CACHE,
    retries=1,
    retry_delay_seconds=5,
    retry_condition_fn=retriable_only,
)
def recover_pushes(runtime: StoreRuntime) -> list[str]:
    """Settle ERP orders whose creation in the shop was left in doubt by an earlier run."""
    settled = recover_pushes_now(runtime)
    if settled:
        _logger().info("%d ERP orders found in the shop after an interrupted push: linked", len(settled))
    return settled


def push_erp_orders(
    runtime: StoreRuntime,
    orders: Sequence[Order],
    failure_attempts: dict[str, int],
    *,
    forced: bool = False,
) -> PullOutcome:
    """Create ERP orders in the shop, each once: marker, POST, link + journal; refusals go to failures."""
    out = PullOutcome()
    state, name, store = runtime.state, runtime.name, runtime.store
    max_attempts = store.orders.max_attempts
    for order in orders:
        erp_id = order.erp_id or ""
        if state.find_link(name, ORDER, erp_id=erp_id) is not None:
            continue
        if failure_attempts.get(erp_id, 0) >= max_attempts and not forced:
            out.held.append(erp_id)
            continue
        shop_order = to_shop_order(order, marker=erp_marker(runtime.erp.system, erp_id), sku_prefix=store.sku_prefix)
        state.set_pushed(name, PUSH, [(erp_id, "pending", None)])
        try:
            shop_id = runtime.shop.create_order(shop_order)
        except (RecordError, RetriableError) as error:
            in_doubt = isinstance(error, RetriableError) and not error.not_sent
            if not in_doubt:
                state.delete_pushed(name, PUSH, [erp_id])  # refused or never sent: nothing in the shop
            transient = isinstance(error, RetriableError)
            reason = (
                (TRANSIENT_PREFIX if transient else "")
                + describe(error)
                + (" (the shop may have created it: checked on the next run)" if in_doubt else "")
            )
            record_failure(state, name, ERP_ORDER, erp_id, reason, order.model_dump(mode="json"))
            out.failed.append(erp_id)
            out.pinned.append(order.modified_at)
            out.problems.append({"order": f"ERP {erp_id}", "reason": reason})
            continue
        try:
            _record_pushed(runtime, erp_id, shop_id, shop_order)
        except LinkConflict as error:
            reason = describe(error)
            record_failure(state, name, ERP_ORDER, erp_id, reason, order.model_dump(mode="json"))
            out.failed.append(erp_id)
            out.problems.append({"order": f"ERP {erp_id}", "reason": reason})
            continue
        out.created.append(erp_id)
        out.skus.update(line.sku for line in order.lines if line.kind == "product")
    return out


def pull_erp_orders_now(runtime: StoreRuntime, since: datetime | None) -> PullOutcome:
    """ERP orders of the configured channels changed since ``since`` -> the shop (plain function)."""
    settings = runtime.store.orders
    if not (runtime.erp.capabilities.orders_read and settings.channels):
        return PullOutcome()
    failures = {
        f.key: counted_attempts(f.error, f.attempts) for f in runtime.state.open_failures(runtime.name, ERP_ORDER)
    }
    wanted: list[Order] = []
    changed_since = since - ERP_CLOCK_MARGIN if since is not None else None
    for page in runtime.erp.iter_orders(changed_since=changed_since):
        record_row_errors(runtime.state, runtime.name, ERP_ORDER, page.errors)
        for order in page.items:
            linked = runtime.state.find_link(runtime.name, ORDER, erp_id=order.erp_id or "") is not None
            if order.erp_id and wants_erp_order(order, channels=settings.channels, linked=linked):
                wanted.append(order)
    return push_erp_orders(runtime, wanted, failures)


@task(name="orders-from-erp", cache_policy=NO_CACHE)
def pull_erp_orders(runtime: StoreRuntime, since: datetime | None) -> PullOutcome:
    """Create in the shop the ERP orders of the configured channels (linked, never echoed back)."""
    out = pull_erp_orders_now(runtime, since)
    _logger().info(
        "ERP orders of other channels: %d created in the shop, %d failed, %d held",
        len(out.created),
        len(out.failed),
        len(out.held),
    )
    return out


@task(name="orders-push-erp", cache_policy=NO_CACHE)
def retry_erp_orders(runtime: StoreRuntime, orders: list[Order]) -> PullOutcome:
    """Create again in the shop ERP orders that failed before (a person's retry: lifts the hold)."""
    failures = {
        f.key: counted_attempts(f.error, f.attempts) for f in runtime.state.open_failures(runtime.name, ERP_ORDER)
    }
    return push_erp_orders(runtime, orders, failures, forced=True)
