"""Failures: one row per (store, entity, key) that could not be synced, reopened when it fails again.

A failure is closed one of three ways, and the row keeps how, by whom and why (``closed_how``, ``closed_by``,
``close_reason``): it ``went through`` on a later attempt, a person ``resolved`` it (dealt with it elsewhere) or
``dismissed`` it (nothing to do: a mistyped id, a test order). A lasting reason (an unknown SKU) is never replaced
by a transient one (the ERP did not answer): the transient error goes to ``last_error`` and uses up no attempt.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from sqlalchemy import and_, case, false, func, select, update
from sqlalchemy.engine import Connection, Row

from erpsync.core.state.base import StateBase
from erpsync.core.state.common import dumps, loads, require_str, utcnow
from erpsync.core.state.schema import FAILURES


@dataclasses.dataclass(frozen=True, slots=True)
class Failure:
    id: int
    store: str
    entity: str
    key: str
    error: str
    payload: Any
    attempts: int
    first_seen: dt.datetime
    last_seen: dt.datetime
    resolved: bool
    resolved_at: dt.datetime | None
    transient: bool = False
    last_error: str | None = None
    closed_how: str | None = None
    closed_by: str | None = None
    close_reason: str | None = None


def _failure(row: Row[Any]) -> Failure:
    values = {f.name: getattr(row, f.name) for f in dataclasses.fields(Failure)}
    values["payload"] = loads(row.payload)
    values["resolved"] = bool(row.resolved)
    values["transient"] = bool(row.transient)
    return Failure(**values)


class FailuresMixin(StateBase):
    """Failures of every store (``StateStore`` methods)."""

    def _failure_row(self, conn: Connection, store: str, entity: str, key: str) -> Row[Any] | None:
        return conn.execute(
            select(FAILURES).where(FAILURES.c.store == store, FAILURES.c.entity == entity, FAILURES.c.key == key)
        ).first()

    def record_failure(
        self,
        store: str,
        entity: str,
        key: str,
        error: str,
        payload: object | None = None,
        *,
        transient: bool = False,
    ) -> Failure:
        """Record a per-record failure; again for the same key: attempts + 1, last_seen now, reopened.

        A ``transient`` error on an open failure whose reason is lasting keeps that reason and its attempts: the
        error goes to ``last_error`` only (the ERP being down says nothing about the unknown SKU)."""
        require_str("key", key)
        now = utcnow()
        stmt = self._insert(FAILURES).values(
            store=store,
            entity=entity,
            key=key,
            error=error,
            payload=dumps(payload, lenient=True),
            attempts=1,
            first_seen=now,
            last_seen=now,
            resolved=False,
            resolved_at=None,
            transient=transient,
            last_error=None,
        )
        keep = and_(
            stmt.excluded.transient.is_(True),
            FAILURES.c.resolved.is_(False),
            func.coalesce(FAILURES.c.transient, false()).is_(False),
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[FAILURES.c.store, FAILURES.c.entity, FAILURES.c.key],
            set_={
                "error": case((keep, FAILURES.c.error), else_=stmt.excluded.error),
                "transient": case((keep, FAILURES.c.transient), else_=stmt.excluded.transient),
                "last_error": case((keep, stmt.excluded.error), else_=None),
                "payload": stmt.excluded.payload,
                "attempts": case((keep, FAILURES.c.attempts), else_=FAILURES.c.attempts + 1),
                "last_seen": stmt.excluded.last_seen,
                "resolved": False,
                "resolved_at": None,
                "closed_how": None,
                "closed_by": None,
                "close_reason": None,
            },
        )
        with self._write() as conn:
            conn.execute(stmt)
            row = self._failure_row(conn, store, entity, key)
        assert row is not None
        return _failure(row)

    def resolve_failure(
        self, store: str, entity: str, key: str, *, how: str = "went through", by: str | None = None, reason: str = ""
    ) -> bool:
        """Close an open failure (``how``: went through, resolved, dismissed; ``by`` whom, and why); True if there
        was one. The row stays, closed: nothing is deleted."""
        with self._write() as conn:
            result = conn.execute(
                update(FAILURES)
                .where(
                    FAILURES.c.store == store,
                    FAILURES.c.entity == entity,
                    FAILURES.c.key == key,
                    FAILURES.c.resolved.is_(False),
                )
                .values(resolved=True, resolved_at=utcnow(), closed_how=how, closed_by=by, close_reason=reason or None)
            )
            return result.rowcount > 0

    def closed_failures(self, store: str | None = None, how: str | None = None) -> list[Failure]:
        """Closed failures (optionally of one store, closed one way), most recently closed first."""
        order = (FAILURES.c.resolved_at.desc(), FAILURES.c.id)
        return self._failures(True, order, store=store, closed_how=how)

    def open_failures(self, store: str | None = None, entity: str | None = None) -> list[Failure]:
        """Unresolved failures, optionally of one store and/or entity, oldest first."""
        return self._failures(False, (FAILURES.c.first_seen, FAILURES.c.id), store=store, entity=entity)

    def _failures(self, resolved: bool, order: tuple[Any, ...], **equal: str | None) -> list[Failure]:
        """Failures open or closed, where each column of ``equal`` given (not None) has that value."""
        query = select(FAILURES).where(FAILURES.c.resolved.is_(resolved))
        for column, value in equal.items():
            if value is not None:
                query = query.where(FAILURES.c[column] == value)
        with self._read() as conn:
            return [_failure(r) for r in conn.execute(query.order_by(*order))]

    def failure(self, store: str, entity: str, key: str) -> Failure | None:
        """The failure recorded for a key (open or resolved), or None."""
        with self._read() as conn:
            row = self._failure_row(conn, store, entity, key)
        return None if row is None else _failure(row)
