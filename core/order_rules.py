"""Pure rules of the order stream: which shop orders to import, skip, cancel or hold; what an in-doubt order
needs once the ERP has been asked; which ERP orders go to the shop; which status shortcut, AWB and invoice tag a
shop order gets from its ERP status (written only on change); the time an order holds its cursor at (where the
cursors start and move: ``core.cursors``, ``initial_since`` and ``forward_cursor``).

No I/O here: the tasks in ``tasks/orders.py`` and ``tasks/order_import.py`` feed these functions with journal
entries, failures and records, and carry out what they decide. See ``docs/orders.md`` for the whole picture.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from erpsync.core.config import percent_key
from erpsync.core.customers import key_of
from erpsync.core.models import ErpOrderStatus, Order, OrderLine, ShippingStatus
from erpsync.core.order_totals import TOTAL_MISMATCH, erp_lines, total_problem
from erpsync.core.skus import erp_sku, shop_sku
from erpsync.core.vat import accepted_rate, legal_note

# Sales erpsync itself created in the ERP carry this channel (connectors/erp/tryton/sales.py): never sent back.
ERPSYNC_CHANNEL = "erpsync"
CANCELLED = ShippingStatus.CANCELLED.value
# The shop's life cycle, in order; a status back-sync only ever moves an order forward along it.
STATUS_RANK = {
    "temporary": 0,
    "awaiting": 1,
    "confirmed": 2,
    "in_process": 3,
    "shipped": 4,
    "delivered": 5,
}
FINAL_SHOP_STATUSES = frozenset({"delivered", "returned", "cancelled"})
INVOICE_TAG_PREFIX = "Factura "


class Action(StrEnum):
    """What to do with one shop order this run."""

    IMPORT = "import"  # never sent to the ERP: send it
    RESUME = "resume"  # sent before, outcome unknown: look it up in the ERP first
    AFTER = "after"  # in the ERP, changed in the shop since: cancel, return or edit it there (runtime.order_after)
    SEEN = "seen"  # the shop copy changed in a way the ERP does not care about (the ERP order is cancelled)
    UNCHANGED = "unchanged"  # nothing new
    SKIP = "skip"  # not to be imported (a configured status, or cancelled before import)
    HOLD = "hold"  # failed too often, or a total mismatch: waits for a person (erpsync failures retry / resync-order)


class JournalLike(Protocol):
    """What the rules read of an order journal entry (``core.state.JournalEntry`` fits)."""

    @property
    def state(self) -> str: ...
    @property
    def erp_order_id(self) -> str | None: ...
    @property
    def digest(self) -> str | None: ...
    @property
    def attempts(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    reason: str = ""


# ----------------------------------------------------------------------------------------- shop -> ERP


def order_digest(order: Order) -> str:
    """The change digest of a shop order (its modification time left out: only content counts)."""
    return order.digest(exclude={"modified_at"})


def dedupe_orders(orders: Iterable[Order]) -> list[Order]:
    """One order per shop id (the last copy read wins), in first-seen order; orders without an id dropped."""
    latest: dict[str, Order] = {}
    for order in orders:
        if order.shop_id:
            latest[order.shop_id] = order
    return list(latest.values())


def decide_import(
    order: Order,
    digest: str,
    entry: JournalLike | None,
    failure_attempts: int,
    *,
    skip_statuses: Collection[str],
    max_attempts: int,
    forced: bool = False,
) -> Decision:
    """What to do with a shop order, given its journal entry and how often it has failed (0: never).

    ``forced`` is a person's manual re-send: it lifts the hold after ``max_attempts`` failures and the
    in-doubt hold (an ERP that cannot look orders up by reference).
    """
    status = order.shipping_status.value
    held = failure_attempts >= max_attempts and not forced
    why_held = (
        "held for a person since its first failure (its totals do not match: see `erpsync failures list`)"
        if failure_attempts >= HELD_AT_ONCE
        else f"failed {failure_attempts} times (max_attempts {max_attempts})"
    )
    if entry is not None and entry.erp_order_id:
        if entry.state == "cancelled":
            return Decision(Action.UNCHANGED if entry.digest == digest else Action.SEEN)
        if entry.digest == digest and status != CANCELLED and not forced:
            return Decision(Action.UNCHANGED)
        if held:
            return Decision(Action.HOLD, f"its change after import failed in the ERP {failure_attempts} times")
        return Decision(Action.AFTER, "changed in the shop after import")
    if entry is not None and entry.state == DISMISSED and entry.digest == digest and not forced:
        return Decision(
            Action.SKIP, "dismissed by a person (erpsync failures dismiss); a change in the shop revives it"
        )
    sent = entry is not None and entry.attempts > 0
    if not sent:
        if status in skip_statuses:
            return Decision(Action.SKIP, f"shipping status {status!r} is not imported (skip_statuses)")
        if status == CANCELLED:
            return Decision(Action.SKIP, "cancelled before it was imported")
    if held:
        return Decision(Action.HOLD, why_held)
    if sent:
        return Decision(Action.RESUME, "sent before without a confirmed outcome: look it up first")
    return Decision(Action.IMPORT)


class ResumeStep(StrEnum):
    """What an order sent before (outcome unknown) needs once the ERP was asked for its reference."""

    CREATE = "create"  # send it (create_order is idempotent on the shop id: a half-done sale is completed)
    AFTER_FOUND = "after_found"  # it is in the ERP and was cancelled in the shop since: undo it there
    MARK_CANCELLED = "mark_cancelled"  # it is not in the ERP and was cancelled in the shop: nothing to do
    HOLD = "hold"  # the ERP cannot say whether it has it: a person checks


def resume_step(
    found: bool, *, shop_cancelled: bool, authoritative: bool, forced: bool, idempotent: bool = False
) -> ResumeStep:
    """The step after looking an in-doubt order up (``authoritative``: the ERP can look orders up by reference;
    ``idempotent``: a re-sent create returns the document of the first send, so re-sending is safe — but an order
    cancelled in the shop meanwhile is not re-sent only to learn whether it exists: it waits for a person)."""
    if found:
        return ResumeStep.AFTER_FOUND if shop_cancelled else ResumeStep.CREATE
    if not (authoritative or forced):
        return ResumeStep.CREATE if idempotent and not shop_cancelled else ResumeStep.HOLD
    return ResumeStep.MARK_CANCELLED if shop_cancelled else ResumeStep.CREATE


DISMISSED = "dismissed"  # journal state of an order whose failure a person dismissed: not retried until it changes
TRANSIENT_PREFIX = "transient: "  # failures whose last error was transient do not count towards the hold
# What ``counted_attempts`` says of a failure that is held from its first occurrence: more than any max_attempts.
HELD_AT_ONCE = 1_000_000


def holds_at_once(error: str) -> bool:
    """Whether a failure waits for a person from the first time: a total mismatch, found before booking
    (``order_problems`` puts it first) or by the ERP (a connector's refusal quoting ``TOTAL_MISMATCH``), which no
    retry can change — booking it would book what the customer did not pay."""
    return TOTAL_MISMATCH in error


def counted_attempts(error: str, attempts: int) -> int:
    """The attempts of a failure that count towards the hold: none while its last error was transient;
    ``HELD_AT_ONCE`` for a failure held at once (``holds_at_once``), so it is held, not retried, everywhere."""
    if holds_at_once(error):
        return HELD_AT_ONCE
    return 0 if error.startswith(TRANSIENT_PREFIX) else attempts


def is_held(error: str, attempts: int, max_attempts: int) -> bool:
    """Whether a failure waits for a person: failed ``max_attempts`` times, in doubt, or a total mismatch."""
    return error.startswith(IN_DOUBT_REASON[:40]) or counted_attempts(error, attempts) >= max_attempts


# Failures whose hold follows [stores.orders] max_attempts, and those that always wait for a person (an edit the
# ERP order cannot take); other streams' failures are retried by their flow's next run.
HOLD_BY_ATTEMPTS = ("order", "erp_order", "order_status")
ALWAYS_HELD = ("order_edit",)


def failure_held(entity: str, error: str, attempts: int, max_attempts: int) -> bool:
    """Whether an open failure of any stream waits for a person (else it is retried by itself)."""
    return entity in ALWAYS_HELD or (entity in HOLD_BY_ATTEMPTS and is_held(error, attempts, max_attempts))


IN_DOUBT_REASON = (
    "in doubt: it was sent to the ERP before and the outcome is unknown, and this ERP cannot look orders up by "
    "reference; check the ERP for the shop order id, then `erpsync resync-order` (re-send) or resolve it"
)


def order_problems(order: Order, *, vat_rates: Collection[str] | None, sku_prefix: str = "") -> list[str]:
    """Why a shop order cannot go to the ERP as it is (empty: it can): its total, lines, SKU scheme, VAT mapping.

    A total that differs from the shop's ``total_amount`` by more than 0.01 (``core.order_totals.total_problem``)
    comes first: the failure is then held at once (``holds_at_once``). The lines checked are the lines as they
    are booked (``erp_lines``: discounts spread per VAT rate).
    """
    problems: list[str] = []
    mismatch = total_problem(order)
    if mismatch:
        problems.append(mismatch)
    if not any(line.kind == "product" for line in order.lines):
        problems.append("the order has no product lines")
    product_rates = {line.vat_rate for line in order.lines if line.kind == "product"}
    for line in erp_lines(order).lines:
        if line.kind == "discount" and line.vat_rate is None:
            problems.append(
                f"discount {line.name!r} has no VAT rate: no product line with a VAT rate to spread it over"
            )
        if line.kind == "product" and erp_sku(sku_prefix, line.sku) is None:
            problems.append(f"SKU {line.sku!r} does not carry this store's prefix {sku_prefix!r}")
        if line.kind != "product" and line.vat_rate in product_rates:
            continue  # a discount or fee at a product line's rate: that rate is checked on the product line
        # a line's own rate, accepted when mapped or legal on the order's date (core.vat.accepted_rate)
        if (
            vat_rates is not None
            and line.vat_rate is not None
            and not accepted_rate(line.vat_rate, order.created_at, vat_rates)
        ):
            problems.append(
                f"VAT rate {percent_key(line.vat_rate)}% of {_label(line)} has no mapping "
                f"([stores.products] vat_taxes has {', '.join(sorted(vat_rates)) or 'none'}"
                f"{legal_note(order.created_at)})"
            )
    rate = order.shipping_vat_rate
    if (
        vat_rates is not None
        and order.shipping_amount > 0
        and rate is not None
        and not accepted_rate(rate, order.created_at, vat_rates)
    ):
        problems.append(
            f"shipping VAT rate {percent_key(rate)}% has no mapping ([stores.products] vat_taxes"
            f"{legal_note(order.created_at)})"
        )
    return problems


def _label(line: OrderLine) -> str:
    return f"SKU {line.sku!r}" if line.kind == "product" else f"{line.kind} {line.name!r}"


def erp_reference(reference_prefix: str, shop_order_id: str) -> str:
    """The reference a shop order has in the ERP: the store's ``reference_prefix`` + the shop order id.

    Shops sharing one ERP have distinct prefixes (``core.config`` checks it), so two shops' orders with the same
    id are two ERP orders, and a look-up by reference never finds the other shop's.
    """
    return f"{reference_prefix}{shop_order_id}"


def to_erp_order(
    order: Order,
    *,
    sku_prefix: str = "",
    payment_methods: dict[str, str] | None = None,
    reference_prefix: str = "",
) -> Order:
    """The order as the ERP gets it: its lines as booked (``core.order_totals.erp_lines``: discounts as one line
    per VAT rate, ``discount_amount`` 0), ERP SKUs on the product lines (the store's prefix taken off), the payment
    method mapped, and ``reference`` = the ERP reference (``erp_reference``), which the connectors create and look
    it up by."""
    order = erp_lines(order)
    lines = [
        line.model_copy(update={"sku": erp_sku(sku_prefix, line.sku) or line.sku}) if line.kind == "product" else line
        for line in order.lines
    ]
    method = order.payment_method
    if method and payment_methods:
        method = payment_methods.get(method, method)
    reference = erp_reference(reference_prefix, order.shop_id) if order.shop_id else order.reference
    return order.model_copy(update={"lines": lines, "payment_method": method, "reference": reference})


def customer_key(order: Order) -> str | None:
    """How a buyer is known across orders: ``vat:<code>`` for a company with one, else ``email:<address>``."""
    return key_of(order.customer)


# ----------------------------------------------------------------------------------------- cursor


def order_stamp(order: Order) -> datetime | None:
    """The time an order was last changed (or created) in the shop."""
    return order.modified_at or order.created_at


# ----------------------------------------------------------------------------------------- ERP -> shop


def wants_erp_order(order: Order, *, channels: Collection[str], linked: bool) -> bool:
    """Whether an ERP order goes to the shop: from a configured channel, not from a shop, not yet there."""
    if linked or order.shop_id or order.channel is None or order.channel == ERPSYNC_CHANNEL:
        return False
    if order.shipping_status.value in (CANCELLED, ShippingStatus.TEMPORARY.value):  # cancelled, or still a draft
        return False
    return order.channel in channels


def erp_marker(system: str, erp_id: str) -> str:
    """The reference an ERP order carries into the shop (``meta_fields.erp_reference``)."""
    return f"{system}:{erp_id}"


def to_shop_order(order: Order, *, marker: str, sku_prefix: str = "") -> Order:
    """The ERP order as the shop gets it: shop SKUs (the store's prefix put on) and the ERP marker."""
    lines = [
        line.model_copy(update={"sku": shop_sku(sku_prefix, line.sku)}) if line.kind == "product" else line
        for line in order.lines
    ]
    return order.model_copy(update={"lines": lines, "reference": marker, "shop_id": None})


# ----------------------------------------------------------------------------------------- ERP status -> shop


@dataclass(frozen=True, slots=True)
class StatusPlan:
    """The shop writes one ERP status calls for, and what to remember once they are done."""

    shortcut: str | None
    awb: str | None
    invoice_tag: str | None
    record: str  # the ERP status as applied, for the journal's erp_status
    shop_status: str | None  # the shop's status once the writes are done
    # meta fields to set on the shop order (the ERP invoice's number, date and link; every shipment's AWB)
    meta: dict[str, str] = field(default_factory=dict)
    tags: tuple[str, ...] = ()  # further tags: the AWBs of shipments after the first

    @property
    def writes(self) -> int:
        return (
            sum(1 for value in (self.shortcut, self.awb, self.invoice_tag) if value) + bool(self.meta) + len(self.tags)
        )


def status_record(status: ErpOrderStatus) -> str:
    """A compact, stable text of what matters in an ERP status (kept in the journal's erp_status)."""
    values = {
        "state": status.state,
        "invoice": status.invoice_number if status.invoiced else None,
        "shipped": status.shipped,
        "delivered": status.delivered,
        "cancelled": status.cancelled,
        "awb": status.awb,
        "invoices": [[i.number, i.url] for i in status.invoices if not i.credit],
        "shipments": [[s.awb, s.carrier] for s in status.shipments if s.shipped and s.awb],
    }
    return json.dumps(values, sort_keys=True, separators=(",", ":"))


# Where the ERP invoice and the shipments go on a shop order (*inference*: meta fields are writable and kept;
# ``connectors.merchantpro.mapping`` reads them back into ``Order.meta``).
INVOICE_META = {"number": "erp_invoice_number", "date": "erp_invoice_date", "url": "erp_invoice_url"}
SHIPMENTS_META = "erp_shipments"
AWB_TAG_PREFIX = "AWB "


def shipment_text(awb: str, carrier: str | None) -> str:
    return f"{awb} ({carrier})" if carrier else awb


def status_meta(status: ErpOrderStatus) -> dict[str, str]:
    """The meta fields an ERP status gives a shop order: the invoice (the first that is not a credit note: its
    number, date and link) and, with more than one shipment or a carrier named, every shipped AWB."""
    meta: dict[str, str] = {}
    invoice = next((i for i in status.invoices if not i.credit), None)
    if invoice is not None:
        meta[INVOICE_META["number"]] = invoice.number
        if invoice.issued is not None:
            meta[INVOICE_META["date"]] = invoice.issued.isoformat()
        if invoice.url:
            meta[INVOICE_META["url"]] = invoice.url
    shipped = [s for s in status.shipments if s.shipped and s.awb]
    if len(shipped) > 1 or any(s.carrier for s in shipped):
        meta[SHIPMENTS_META] = "; ".join(shipment_text(s.awb or "", s.carrier) for s in shipped)
    return meta


def _last(record: str | None) -> dict[str, object]:
    if not record:
        return {}
    try:
        value = json.loads(record)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def target_status(status: ErpOrderStatus) -> str | None:
    """The shop status an ERP status stands for (None: nothing beyond what the shop had)."""
    if status.cancelled:
        return "cancelled"
    if status.delivered:
        return "delivered"
    if status.shipped:
        return "shipped"
    if status.invoiced:
        return "in_process"
    return None


def plan_status(status: ErpOrderStatus, *, shop_status: str | None, last_record: str | None) -> StatusPlan | None:
    """The shop writes an ERP status calls for; None when it is what was applied last time (no call at all).

    The status shortcut only moves the shop's order forward (never out of delivered, returned or cancelled);
    the AWB and the invoice number are written when they differ from what was written before.
    """
    if status.state == "missing":
        return None
    record = status_record(status)
    if record == last_record:
        return None
    last = _last(last_record)
    current = shop_status or "awaiting"
    shortcut: str | None = None
    target = target_status(status)
    forward = target == "cancelled" or STATUS_RANK.get(target or "", -1) > STATUS_RANK.get(current, -1)
    if target is not None and current not in FINAL_SHOP_STATUSES and target != current and forward:
        shortcut = target
    after = shortcut or shop_status
    awb = status.awb if status.awb and status.awb != last.get("awb") and after != "cancelled" else None
    invoice = status.invoice_number if status.invoiced else None
    tag = f"{INVOICE_TAG_PREFIX}{invoice}" if invoice and invoice != last.get("invoice") else None
    meta = status_meta(status)
    before = {(awb, carrier) for awb, carrier in last.get("shipments") or []}  # type: ignore[attr-defined]
    shipped = [s for s in status.shipments if s.shipped and s.awb]
    tags = tuple(
        f"{AWB_TAG_PREFIX}{shipment_text(s.awb or '', s.carrier)}"
        for s in shipped[1:]
        if (s.awb, s.carrier) not in before
    )
    return StatusPlan(
        shortcut=shortcut,
        awb=awb,
        invoice_tag=tag,
        record=record,
        shop_status=after,
        meta=meta,
        tags=tags,
    )


def needs_status_check(shop_status: str | None, created_at: datetime, now: datetime, horizon_days: int) -> bool:
    """Whether a linked order's ERP status is still worth asking for (not final, not older than the horizon)."""
    if shop_status in FINAL_SHOP_STATUSES:
        return False
    return created_at >= now - timedelta(days=horizon_days)
