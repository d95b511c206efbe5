"""The movement trail: every stock quantity erpsync wrote to a shop, with its cause and ERP document."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.engine import Row

from erpsync.core.state.base import StateBase
from erpsync.core.state.common import chunks, require_str, utcnow
from erpsync.core.state.schema import MOVEMENTS
from erpsync.core.trail import CAUSES

MOVEMENT_CHUNK = 2_000


@dataclasses.dataclass(frozen=True, slots=True)
class Movement:
    store: str
    sku: str
    quantity: Decimal
    previous: Decimal | None
    cause: str
    erp_ref: str | None
    run_id: str | None
    at: dt.datetime


@dataclasses.dataclass(frozen=True, slots=True)
class NewMovement:
    """A movement to record: ``sku`` (ERP SKU), the absolute quantity written and the one before (if known)."""

    sku: str
    quantity: Decimal
    previous: Decimal | None
    cause: str
    erp_ref: str | None = None


def _movement(row: Row[Any]) -> Movement:
    return Movement(row.store, row.sku, row.quantity, row.previous, row.cause, row.erp_ref, row.run_id, row.at)


class MovementsMixin(StateBase):
    """The stock movement trail of every store (``StateStore`` methods)."""

    def record_movements(self, store: str, movements: Iterable[NewMovement], *, run_id: str | None = None) -> int:
        """Append movements, stamped now; the number recorded. An unknown cause is a ``ValueError``."""
        now = utcnow()
        rows = []
        for m in movements:
            if m.cause not in CAUSES:
                raise ValueError(f"{m.sku}: unknown movement cause {m.cause!r}; one of {', '.join(CAUSES)}")
            rows.append(
                {
                    "store": store,
                    "sku": require_str("sku", m.sku),
                    "quantity": m.quantity,
                    "previous": m.previous,
                    "cause": m.cause,
                    "erp_ref": m.erp_ref,
                    "run_id": run_id,
                    "at": now,
                }
            )
        for chunk in chunks(rows, MOVEMENT_CHUNK):
            with self._write() as conn:
                conn.execute(MOVEMENTS.insert(), list(chunk))
        return len(rows)

    def movements(
        self, sku: str, *, store: str | None = None, since: dt.datetime | None = None, limit: int = 200
    ) -> list[Movement]:
        """The latest movements of a SKU (every store, or one), newest first."""
        query = select(MOVEMENTS).where(MOVEMENTS.c.sku == sku)
        if store is not None:
            query = query.where(MOVEMENTS.c.store == store)
        if since is not None:
            query = query.where(MOVEMENTS.c.at >= since)
        query = query.order_by(MOVEMENTS.c.at.desc(), MOVEMENTS.c.id.desc()).limit(limit)
        with self._read() as conn:
            return [_movement(r) for r in conn.execute(query)]

    def prune_movements(self, before: dt.datetime, *, store: str | None = None) -> int:
        """Delete movements recorded before ``before`` (every store, or one); the number deleted."""
        stmt = delete(MOVEMENTS).where(MOVEMENTS.c.at < before)
        if store is not None:
            stmt = stmt.where(MOVEMENTS.c.store == store)
        with self._write() as conn:
            return int(conn.execute(stmt).rowcount or 0)
