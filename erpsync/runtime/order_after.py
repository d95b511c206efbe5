"""An imported order's life after the import, carried out for the order import (``tasks/order_import.py``):
cancellations, refused parcels and returns into the ERP, and edits made in the shop.

Each cancel or return is an **order event** (``core.state`` ``order_events``) written *before* the ERP is called,
with its own ERP reference (the order's reference + ``/R<n>``, ``core.order_after.plan_undo``); the connector is
idempotent on it, and a pending event is resumed as written — so a retry, a crash or a second run never books a
second cancellation or return for the same event. The order's content as booked is its baseline event; an edit
is applied to an ERP order that is still a draft or quotation (``update_order``), else held for a person with
the diff (failures entity ``order_edit``).

The rules are pure (``core.order_after``); the caller holds the order's claim, so nothing else writes its
journal or events meanwhile. Errors propagate to the caller's per-order isolation (``error_scope``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from erpsync.connectors.erp.base import NeedsReturn
from erpsync.connectors.errors import RecordError, RetriableError, record_error
from erpsync.core.models import AfterSale, Customer, Order, PaymentStatus
from erpsync.core.order_after import (
    WHOLE_ORDER_STATUSES,
    UndoPlan,
    baseline,
    content,
    content_diff,
    dump_content,
    dump_lines,
    plan_undo,
    sold,
    taken_back,
)
from erpsync.core.order_rules import erp_reference, order_digest, to_erp_order
from erpsync.core.state import OrderEvent, StateStore
from erpsync.runtime.failures import describe, record_failure
from erpsync.runtime.logs import run_logger
from erpsync.runtime.store_runtime import StoreRuntime

log = logging.getLogger("erpsync.orders")

ORDER_EDIT = "order_edit"  # failures: an edit made in the shop that the ERP order can no longer take (key: shop id)
ORDER_PAYMENT = "order_payment"  # failures: a collected payment the ERP refused to book (key: shop id)
CANCELLED_TAG = "Anulata in ERP"
RETURN_TAG_PREFIX = "Retur ERP "


@dataclass
class AfterOutcome:
    """What the after-import step did to one order (merged into the batch's ``ImportOutcome``)."""

    cancelled: bool = False  # the whole order is undone in the ERP
    events: list[dict[str, str]] = field(default_factory=list)  # rows for the run's "after the import" table
    edits_held: list[str] = field(default_factory=list)
    skus: set[str] = field(default_factory=set)  # ERP SKUs whose stock changed


def record_baseline(runtime: StoreRuntime, order: Order) -> None:
    """The order's content as the ERP booked it (called when it is imported): later reads are compared to it."""
    runtime.state.add_order_event(
        runtime.name, order.shop_id or "", "baseline", state="done", payload=dump_content(order)
    )


def _row(order: Order, what: str, document: str, detail: str) -> dict[str, str]:
    return {"order": order.shop_id or "", "what": what, "ERP document": document, "detail": detail}


def _tell_shop(runtime: StoreRuntime, order: Order, tag: str) -> None:
    """A tag on the shop order saying what the ERP did; the ERP work stands if the shop refuses it."""
    try:
        runtime.shop.add_order_tag(order.shop_id or "", tag)
    except (RecordError, RetriableError) as error:
        run_logger(log).warning("order %s: the tag %r was not written: %s", order.shop_id, tag, describe(error))


def _undo(runtime: StoreRuntime, order: Order, erp_id: str, plan: UndoPlan, out: AfterOutcome) -> None:
    """Write the event (write-ahead), book the cancel or return in the ERP, mark the event done, tell the shop."""
    state, name, sid = runtime.state, runtime.name, order.shop_id or ""
    caps = runtime.erp.capabilities
    seq = plan.seq
    if seq is None:
        seq = state.add_order_event(name, sid, plan.kind, reference=plan.reference, lines=dump_lines(plan.lines)).seq
    result: AfterSale
    if plan.kind == "cancel" and caps.orders_cancel:
        try:
            result = runtime.erp.cancel_order(erp_id, reference=plan.reference)
        except NeedsReturn:
            result = _return(runtime, erp_id, plan)
    else:
        result = _return(runtime, erp_id, plan)
    document = result.credit_note or result.erp_id or ""
    detail = result.detail or (
        "cancelled: nothing had left the warehouse"
        if result.kind == "cancelled"
        else ", ".join(f"{sku} x {qty.normalize():f}" for sku, qty in sorted(plan.lines.items()))
    )
    state.update_order_event(name, sid, seq, state="done", erp_id=result.erp_id, detail=f"{result.kind}: {detail}")
    out.skus |= set(plan.lines)
    what = {"cancelled": "cancelled", "return": "return", "storno": "storno"}[result.kind]
    out.events.append(_row(order, what, document, detail))
    _tell_shop(
        runtime, order, CANCELLED_TAG if result.kind == "cancelled" else f"{RETURN_TAG_PREFIX}{document}".strip()
    )
    run_logger(log).info("order %s: %s in the ERP (%s) %s", sid, what, plan.reference, document)


def _return(runtime: StoreRuntime, erp_id: str, plan: UndoPlan) -> AfterSale:
    if not runtime.erp.capabilities.orders_return:
        raise record_error(
            runtime.erp.system,
            plan.reference,
            f"goods of ERP order {erp_id} came back ({', '.join(sorted(plan.lines))}), but this ERP cannot book "
            f"returns through its API: book the return in the ERP by hand, then resolve this failure",
        )
    return runtime.erp.return_order(erp_id, plan.return_lines(), reference=plan.reference)


def _edit(
    runtime: StoreRuntime,
    order: Order,
    erp_id: str,
    events: list[OrderEvent],
    customer_of: Callable[[Order], Customer],
    out: AfterOutcome,
) -> None:
    """Apply an edit made in the shop while the ERP order can take it; else hold it for a person with the diff."""
    state, name, sid = runtime.state, runtime.name, order.shop_id or ""
    old = baseline(events)
    new = content(order)
    if old is None:  # imported before order events existed: what the shop shows now is the baseline
        record_baseline(runtime, order)
        return
    if old == new:
        return
    diff = content_diff(old, new)
    settings = runtime.store.orders
    applied = False
    if runtime.erp.capabilities.orders_update:
        erp_order = to_erp_order(
            order,
            sku_prefix=runtime.store.sku_prefix,
            payment_methods=settings.payment_methods,
            reference_prefix=settings.reference_prefix,
        )
        applied = runtime.erp.update_order(erp_id, erp_order, customer_of(order))
    if applied:
        state.add_order_event(name, sid, "edit", state="done", payload=dump_content(order), detail="; ".join(diff))
        state.resolve_failure(name, ORDER_EDIT, sid)
        out.skus |= {line["sku"] for line in (*old["lines"], *new["lines"]) if line.get("kind") == "product"}
        out.events.append(_row(order, "edit applied", erp_id, "; ".join(diff)))
        return
    why = (
        "this ERP cannot change orders through its API"
        if not runtime.erp.capabilities.orders_update
        else f"ERP order {erp_id} is no longer a draft or quotation"
    )
    reason = (
        f"edited in the shop after import, but {why}: {'; '.join(diff)} — change the ERP order by hand, then "
        f"`erpsync failures resolve --store {name} --entity {ORDER_EDIT} {sid}` (accepts the shop's version), or "
        f"put the ERP order back to draft and `erpsync failures retry --store {name} {sid}`"
    )
    record_failure(state, name, ORDER_EDIT, sid, reason, {"content": new, "diff": diff})
    out.edits_held.append(sid)
    out.events.append(_row(order, "edit held", erp_id, "; ".join(diff)))
    run_logger(log).warning("order %s: edit held for a person: %s", sid, "; ".join(diff))


def after_import(
    runtime: StoreRuntime, order: Order, erp_id: str, customer_of: Callable[[Order], Customer]
) -> AfterOutcome:
    """An imported order read again: book what came back (cancel or return), apply or hold an edit, update the
    journal. ``customer_of`` gives the buyer as the ERP knows it (the import's customer linking)."""
    state, name, sid = runtime.state, runtime.name, order.shop_id or ""
    out = AfterOutcome()
    prefix = runtime.store.sku_prefix
    events = state.order_events(name, sid)
    plan = plan_undo(
        order, events, erp_reference=erp_reference(runtime.store.orders.reference_prefix, sid), sku_prefix=prefix
    )
    if plan is not None:
        _undo(runtime, order, erp_id, plan, out)
        events = state.order_events(name, sid)
    whole = order.shipping_status.value in WHOLE_ORDER_STATUSES
    if not whole:
        _edit(runtime, order, erp_id, events, customer_of, out)
        settle_payment(runtime, order, erp_id, out, events)
    everything_back = whole and not {
        sku: qty for sku, qty in sold(order, prefix).items() if taken_back(events, order, prefix).get(sku, 0) < qty
    }
    fields: dict[str, object] = {
        "digest": order_digest(order),
        "shop_status": order.shipping_status.value,
        "last_error": None,
    }
    if everything_back:
        fields["state"] = "cancelled"
        out.cancelled = True
    state.journal_update(name, sid, **fields)
    return out


def settle_payment(
    runtime: StoreRuntime, order: Order, erp_id: str, out: AfterOutcome, events: list[OrderEvent] | None = None
) -> None:
    """A paid shop order's payment booked in the ERP once (capability ``payments_record``): a pending event with
    the reference ``<order ref>/P1`` first, then the ERP. A refusal is a failure of its own (``order_payment``),
    never the order's: it is tried again when the order next changes, or by ``erpsync failures retry``."""
    if order.payment_status != PaymentStatus.PAID or not runtime.erp.capabilities.payments_record:
        return
    state, name, sid = runtime.state, runtime.name, order.shop_id or ""
    events = state.order_events(name, sid) if events is None else events
    payments = [e for e in events if e.kind == "payment"]
    if any(e.state == "done" for e in payments):
        return
    pending = next((e for e in payments if e.state == "pending"), None)
    reference = pending.reference if pending and pending.reference else None
    if reference is None:
        reference = f"{erp_reference(runtime.store.orders.reference_prefix, sid)}/P1"
    seq = pending.seq if pending else state.add_order_event(name, sid, "payment", reference=reference).seq
    try:
        document = runtime.erp.record_payment(erp_id, order, reference=reference)
    except RecordError as error:
        record_failure(state, name, ORDER_PAYMENT, sid, describe(error), {"erp_id": erp_id, "reference": reference})
        out.events.append(_row(order, "payment refused", erp_id, describe(error)))
        return
    detail = (
        f"{order.payment_method or 'payment'} {order.total or ''}".strip() if document else "no payment type mapped"
    )
    state.update_order_event(name, sid, seq, state="done", erp_id=document or None, detail=detail)
    state.resolve_failure(name, ORDER_PAYMENT, sid)
    if document:
        out.events.append(_row(order, "payment", document, detail))


def accept_edit(state: StateStore, store: str, shop_order_id: str, payload: Mapping[str, Any]) -> bool:
    """A person resolved a held edit: the shop's version (the failure's payload) becomes the order's baseline."""
    new = payload.get("content")
    if not isinstance(new, dict):
        return False
    diff = payload.get("diff")
    state.add_order_event(
        store,
        shop_order_id,
        "edit",
        state="done",
        payload=json.dumps(new, sort_keys=True, separators=(",", ":"), ensure_ascii=False),
        detail="accepted by a person: " + "; ".join(str(d) for d in diff if d) if isinstance(diff, list) else "",
    )
    return True
