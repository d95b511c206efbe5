"""Order events: what happened to an imported order since — its baseline, edits, cancellations and returns."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.engine import Row

from erpsync.core.state.base import StateBase
from erpsync.core.state.common import StateError, require_str, utcnow
from erpsync.core.state.schema import ORDER_EVENTS

EVENT_KINDS = frozenset({"baseline", "edit", "cancel", "return", "payment"})
EVENT_STATES = frozenset({"pending", "done", "held"})
EVENT_FIELDS = frozenset({"state", "erp_id", "detail", "payload", "lines"})


@dataclasses.dataclass(frozen=True, slots=True)
class OrderEvent:
    id: int
    store: str
    shop_order_id: str
    seq: int
    kind: str
    state: str
    reference: str | None
    lines: str | None  # JSON {ERP SKU: quantity} of a cancel or return
    payload: str | None  # JSON: the order's content as booked (baseline, edit)
    erp_id: str | None
    detail: str | None
    created_at: dt.datetime
    updated_at: dt.datetime


def _event(row: Row[Any]) -> OrderEvent:
    return OrderEvent(**{f.name: getattr(row, f.name) for f in dataclasses.fields(OrderEvent)})


class EventsMixin(StateBase):
    """The order events of every store (``StateStore`` methods)."""

    def order_events(self, store: str, shop_order_id: str) -> list[OrderEvent]:
        """An order's events, oldest first."""
        query = (
            select(ORDER_EVENTS)
            .where(ORDER_EVENTS.c.store == store, ORDER_EVENTS.c.shop_order_id == require_str("id", shop_order_id))
            .order_by(ORDER_EVENTS.c.seq)
        )
        with self._read() as conn:
            return [_event(r) for r in conn.execute(query)]

    def add_order_event(
        self,
        store: str,
        shop_order_id: str,
        kind: str,
        *,
        state: str = "pending",
        reference: str | None = None,
        lines: str | None = None,
        payload: str | None = None,
        erp_id: str | None = None,
        detail: str | None = None,
    ) -> OrderEvent:
        """Append an event (its ``seq`` the order's next); two writers at once cannot get the same ``seq``."""
        require_str("shop_order_id", shop_order_id)
        if kind not in EVENT_KINDS:
            raise ValueError(f"event kind must be one of {sorted(EVENT_KINDS)}, got {kind!r}")
        if state not in EVENT_STATES:
            raise ValueError(f"event state must be one of {sorted(EVENT_STATES)}, got {state!r}")
        now = utcnow()
        with self._write() as conn:
            last = conn.execute(
                select(func.max(ORDER_EVENTS.c.seq)).where(
                    ORDER_EVENTS.c.store == store, ORDER_EVENTS.c.shop_order_id == shop_order_id
                )
            ).scalar()
            seq = int(last or 0) + 1
            conn.execute(
                ORDER_EVENTS.insert().values(
                    store=store,
                    shop_order_id=shop_order_id,
                    seq=seq,
                    kind=kind,
                    state=state,
                    reference=reference,
                    lines=lines,
                    payload=payload,
                    erp_id=erp_id,
                    detail=detail,
                    created_at=now,
                    updated_at=now,
                )
            )
            row = conn.execute(
                select(ORDER_EVENTS).where(
                    ORDER_EVENTS.c.store == store,
                    ORDER_EVENTS.c.shop_order_id == shop_order_id,
                    ORDER_EVENTS.c.seq == seq,
                )
            ).one()
        return _event(row)

    def update_order_event(self, store: str, shop_order_id: str, seq: int, **fields: Any) -> OrderEvent:
        """Change an event's state, ERP id, detail, payload or lines."""
        unknown = set(fields) - EVENT_FIELDS
        if unknown:
            raise ValueError(f"unknown order event field(s): {', '.join(sorted(unknown))}")
        if "state" in fields and fields["state"] not in EVENT_STATES:
            raise ValueError(f"event state must be one of {sorted(EVENT_STATES)}, got {fields['state']!r}")
        where = (
            ORDER_EVENTS.c.store == store,
            ORDER_EVENTS.c.shop_order_id == shop_order_id,
            ORDER_EVENTS.c.seq == seq,
        )
        with self._write() as conn:
            if conn.execute(update(ORDER_EVENTS).where(*where).values(**fields, updated_at=utcnow())).rowcount == 0:
                raise StateError(f"no event {seq} of order {shop_order_id!r} in store {store!r}")
            row = conn.execute(select(ORDER_EVENTS).where(*where)).one()
        return _event(row)

    def order_events_since(self, store: str, since: dt.datetime) -> list[OrderEvent]:
        """A store's events written since a time (for reports), oldest first."""
        query = (
            select(ORDER_EVENTS)
            .where(ORDER_EVENTS.c.store == store, ORDER_EVENTS.c.updated_at >= since)
            .order_by(ORDER_EVENTS.c.updated_at, ORDER_EVENTS.c.id)
        )
        with self._read() as conn:
            return [_event(r) for r in conn.execute(query)]
