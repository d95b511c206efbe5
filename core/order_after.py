"""Pure rules of an order's life after its import: what the shop says came back, what the ERP still has to take
back (a cancel or a return, each an event of its own with its own ERP reference), and what a person edited.

No I/O: ``erpsync/runtime/order_after.py`` feeds these functions with the shop order and the order's events
(``core.state.OrderEvent``: the rows are read through the ``EventLike`` protocol) and carries out the plan.

- **Returns.** An order cancelled or returned/refused in the shop wants every product line back; otherwise a
  line the shop marked returned wants its ``returned_quantity`` back. What earlier events took back (done or
  still pending) is subtracted; what is left is the next event: ``cancel`` for the whole order when nothing was
  taken back yet (the ERP cancels it when nothing left the warehouse, else books a return of everything), else
  ``return`` for the lines left. A pending event is always resumed as it was written, never re-planned: its
  reference is the ERP's idempotency key.
- **Edits.** The order's *content* — product and charge lines, shipping, total, buyer and addresses; not its
  statuses nor returns — is kept as the baseline when it is imported (``content``). A later read whose content
  differs is an edit; ``content_diff`` says what changed, for the person who decides when the ERP order can no
  longer be rewritten.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from erpsync.core.models import Order, ReturnLine, ShippingStatus
from erpsync.core.skus import erp_sku

WHOLE_ORDER_STATUSES = frozenset({ShippingStatus.CANCELLED.value, ShippingStatus.RETURNED.value})
UNDO_KINDS = frozenset({"cancel", "return"})
CONTENT_KINDS = frozenset({"baseline", "edit"})


class EventLike(Protocol):
    """What the rules read of an order event (``core.state.OrderEvent`` fits)."""

    @property
    def seq(self) -> int: ...
    @property
    def kind(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def reference(self) -> str | None: ...
    @property
    def lines(self) -> str | None: ...
    @property
    def payload(self) -> str | None: ...


# ----------------------------------------------------------------------------------------- returns


def dump_lines(lines: dict[str, Decimal]) -> str:
    """The JSON an event keeps its lines in: {ERP SKU: quantity}, sorted."""
    return json.dumps({sku: str(qty) for sku, qty in sorted(lines.items())}, separators=(",", ":"))


def load_lines(text: str | None) -> dict[str, Decimal]:
    if not text:
        return {}
    return {str(sku): Decimal(str(qty)) for sku, qty in json.loads(text).items()}


def sold(order: Order, sku_prefix: str = "") -> dict[str, Decimal]:
    """ERP SKU -> quantity of the order's product lines."""
    out: dict[str, Decimal] = {}
    for line in order.lines:
        if line.kind == "product":
            sku = erp_sku(sku_prefix, line.sku) or line.sku
            out[sku] = out.get(sku, Decimal(0)) + line.quantity
    return out


def wanted_back(order: Order, sku_prefix: str = "") -> dict[str, Decimal]:
    """ERP SKU -> quantity the shop says came back: everything of a cancelled or returned order, else the
    ``returned_quantity`` of each line (never more than the line's quantity)."""
    if order.shipping_status.value in WHOLE_ORDER_STATUSES:
        return sold(order, sku_prefix)
    out: dict[str, Decimal] = {}
    for line in order.lines:
        if line.kind == "product" and line.returned_quantity > 0:
            sku = erp_sku(sku_prefix, line.sku) or line.sku
            out[sku] = out.get(sku, Decimal(0)) + min(line.returned_quantity, line.quantity)
    return out


def taken_back(events: Iterable[EventLike], order: Order, sku_prefix: str = "") -> dict[str, Decimal]:
    """What the order's cancel and return events took back (or are taking: pending counts too); a cancel event
    without lines stands for the whole order."""
    out: dict[str, Decimal] = {}
    for event in events:
        if event.kind not in UNDO_KINDS or event.state == "held":
            continue
        lines = load_lines(event.lines) or (sold(order, sku_prefix) if event.kind == "cancel" else {})
        for sku, qty in lines.items():
            out[sku] = out.get(sku, Decimal(0)) + qty
    return out


@dataclass(frozen=True, slots=True)
class UndoPlan:
    """The next cancel or return of an order: a new event to write (``seq`` None) or a pending one to resume."""

    kind: str  # "cancel" | "return"
    reference: str
    lines: dict[str, Decimal]
    seq: int | None = None  # the pending event resumed

    def return_lines(self) -> list[ReturnLine]:
        return [ReturnLine(sku=sku, quantity=qty) for sku, qty in sorted(self.lines.items())]


def return_reference(erp_reference: str, events: Sequence[EventLike]) -> str:
    """The ERP reference of an order's next cancel or return: its own reference + ``/R<n>``."""
    count = sum(1 for e in events if e.kind in UNDO_KINDS)
    return f"{erp_reference}/R{count + 1}"


def plan_undo(
    order: Order, events: Sequence[EventLike], *, erp_reference: str, sku_prefix: str = ""
) -> UndoPlan | None:
    """The cancel or return an order needs now, or None (nothing came back beyond what the ERP took back)."""
    for event in events:
        if event.kind in UNDO_KINDS and event.state == "pending":
            return UndoPlan(event.kind, event.reference or "", load_lines(event.lines), seq=event.seq)
    wanted = wanted_back(order, sku_prefix)
    done = taken_back(events, order, sku_prefix)
    left = {sku: qty - done.get(sku, Decimal(0)) for sku, qty in wanted.items()}
    left = {sku: qty for sku, qty in left.items() if qty > 0}
    if not left:
        return None
    reference = return_reference(erp_reference, events)
    whole = order.shipping_status.value in WHOLE_ORDER_STATUSES
    if whole and not any(e.kind in UNDO_KINDS and e.state != "held" for e in events):
        return UndoPlan("cancel", reference, left)
    return UndoPlan("return", reference, left)


# ----------------------------------------------------------------------------------------- edits


def content(order: Order) -> dict[str, Any]:
    """What an edit can change and the ERP booked: lines, shipping, total, buyer and addresses (JSON-ready)."""
    lines = [
        {
            "sku": line.sku,
            "kind": line.kind,
            "name": line.name,
            "quantity": str(line.quantity),
            "gross": None if line.unit_price_gross is None else str(line.unit_price_gross),
            "net": None if line.unit_price_net is None else str(line.unit_price_net),
        }
        for line in order.lines
    ]
    customer = order.customer.model_dump(mode="json", include={"email", "name", "phone", "company_name", "vat_code"})
    return {
        "lines": lines,
        "shipping_amount": str(order.shipping_amount),
        "discount_amount": str(order.discount_amount),
        "total": None if order.total is None else str(order.total),
        "customer": customer,
        "billing": None if order.billing is None else order.billing.model_dump(mode="json"),
        "shipping": None if order.shipping is None else order.shipping.model_dump(mode="json"),
    }


def dump_content(order: Order) -> str:
    return json.dumps(content(order), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def baseline(events: Iterable[EventLike]) -> dict[str, Any] | None:
    """The order's content as the ERP has it: its last baseline or applied (or accepted) edit, if any."""
    last: dict[str, Any] | None = None
    for event in events:
        if event.kind in CONTENT_KINDS and event.state == "done" and event.payload:
            last = json.loads(event.payload)
    return last


def content_diff(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What changed between two contents, one line each: "SKU A quantity 1 -> 2", "total 100.00 -> 150.00"."""
    changes: list[str] = []

    def key(line: dict[str, Any]) -> str:
        return f"SKU {line['sku']}" if line.get("kind") == "product" else f"{line.get('kind')} {line.get('name')!r}"

    before = {key(line): line for line in old.get("lines") or []}
    after = {key(line): line for line in new.get("lines") or []}
    for name, line in after.items():
        if name not in before:
            changes.append(f"{name} added (quantity {line['quantity']})")
            continue
        for field in ("quantity", "gross", "net"):
            if before[name].get(field) != line.get(field):
                changes.append(f"{name} {field} {before[name].get(field)} -> {line.get(field)}")
    changes += [f"{name} removed" for name in before if name not in after]
    for field in ("shipping_amount", "discount_amount", "total"):
        if old.get(field) != new.get(field):
            changes.append(f"{field.replace('_', ' ')} {old.get(field)} -> {new.get(field)}")
    for part in ("customer", "billing", "shipping"):
        was, now = old.get(part) or {}, new.get(part) or {}
        for field in sorted(set(was) | set(now)):
            if was.get(field) != now.get(field):
                label = "buyer" if part == "customer" else f"{part} address"
                changes.append(f"{label} {field}: {was.get(field)!r} -> {now.get(field)!r}")
    return changes
