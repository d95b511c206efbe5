"""The order journal: one row per (store, shop order id), claimed before the ERP order is created."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection, Row

from erpsync.core.state.base import StateBase
from erpsync.core.state.common import StateError, require_str, utcnow
from erpsync.core.state.schema import JOURNAL

JOURNAL_STATES = frozenset({"pending", "created", "failed", "skipped", "cancelled", "dismissed"})
JOURNAL_FIELDS = frozenset({"erp_order_id", "state", "digest", "shop_status", "erp_status", "attempts", "last_error"})


@dataclasses.dataclass(frozen=True, slots=True)
class JournalEntry:
    id: int
    store: str
    shop_order_id: str
    erp_order_id: str | None
    state: str
    digest: str | None
    shop_status: str | None
    erp_status: str | None
    attempts: int
    last_error: str | None
    created_at: dt.datetime
    updated_at: dt.datetime


def _journal(row: Row[Any]) -> JournalEntry:
    return JournalEntry(**{f.name: getattr(row, f.name) for f in dataclasses.fields(JournalEntry)})


class JournalMixin(StateBase):
    """The order journal of every store (``StateStore`` methods)."""

    def _journal_row(self, conn: Connection, store: str, shop_order_id: str) -> Row[Any] | None:
        return conn.execute(
            select(JOURNAL).where(JOURNAL.c.store == store, JOURNAL.c.shop_order_id == shop_order_id)
        ).first()

    def journal_get(self, store: str, shop_order_id: str) -> JournalEntry | None:
        """The journal entry of a shop order, or None."""
        with self._read() as conn:
            row = self._journal_row(conn, store, require_str("shop_order_id", shop_order_id))
        return None if row is None else _journal(row)

    def journal_claim(self, store: str, shop_order_id: str, digest: str | None) -> JournalEntry:
        """Insert a pending entry for the order unless one exists; return the entry that is there."""
        require_str("shop_order_id", shop_order_id)
        now = utcnow()
        with self._write() as conn:
            conn.execute(
                self._insert(JOURNAL)
                .values(
                    store=store,
                    shop_order_id=shop_order_id,
                    state="pending",
                    digest=digest,
                    attempts=0,
                    created_at=now,
                    updated_at=now,
                )
                .on_conflict_do_nothing(index_elements=[JOURNAL.c.store, JOURNAL.c.shop_order_id])
            )
            row = self._journal_row(conn, store, shop_order_id)
        if row is None:  # only if deleted between the two statements, which nothing in erpsync does
            raise StateError(f"journal entry for order {shop_order_id!r} vanished while claiming it")
        return _journal(row)

    def journal_update(self, store: str, shop_order_id: str, **fields: Any) -> JournalEntry:
        """Change fields of an existing entry (erp_order_id, state, digest, statuses, attempts, last_error)."""
        require_str("shop_order_id", shop_order_id)
        unknown = set(fields) - JOURNAL_FIELDS
        if unknown:
            raise ValueError(f"unknown journal field(s): {', '.join(sorted(unknown))}")
        if "state" in fields and fields["state"] not in JOURNAL_STATES:
            raise ValueError(f"journal state must be one of {sorted(JOURNAL_STATES)}, got {fields['state']!r}")
        if "attempts" in fields and (not isinstance(fields["attempts"], int) or fields["attempts"] < 0):
            raise ValueError(f"attempts must be a non-negative int, got {fields['attempts']!r}")
        with self._write() as conn:
            result = conn.execute(
                update(JOURNAL)
                .where(JOURNAL.c.store == store, JOURNAL.c.shop_order_id == shop_order_id)
                .values(**fields, updated_at=utcnow())
            )
            if result.rowcount == 0:
                raise StateError(f"no journal entry for order {shop_order_id!r} in store {store!r}")
            row = self._journal_row(conn, store, shop_order_id)
        assert row is not None
        return _journal(row)

    def journal_entries(self, store: str, states: Iterable[str] | None = None) -> list[JournalEntry]:
        """The journal of a store (optionally only some states), oldest first."""
        query = select(JOURNAL).where(JOURNAL.c.store == store).order_by(JOURNAL.c.id)
        if states is not None:
            query = query.where(JOURNAL.c.state.in_(list(states)))
        with self._read() as conn:
            return [_journal(r) for r in conn.execute(query)]
