"""Failures: one row per (store, entity, key) that could not be synced, reopened when it fails again."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from sqlalchemy import select, update
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


def _failure(row: Row[Any]) -> Failure:
    values = {f.name: getattr(row, f.name) for f in dataclasses.fields(Failure)}
    values["payload"] = loads(row.payload)
    values["resolved"] = bool(row.resolved)
    return Failure(**values)


class FailuresMixin(StateBase):
    """Failures of every store (``StateStore`` methods)."""

    def _failure_row(self, conn: Connection, store: str, entity: str, key: str) -> Row[Any] | None:
        return conn.execute(
            select(FAILURES).where(FAILURES.c.store == store, FAILURES.c.entity == entity, FAILURES.c.key == key)
        ).first()

    def record_failure(self, store: str, entity: str, key: str, error: str, payload: object | None = None) -> Failure:
        """Record a per-record failure; again for the same key: attempts + 1, last_seen now, reopened."""
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
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[FAILURES.c.store, FAILURES.c.entity, FAILURES.c.key],
            set_={
                "error": stmt.excluded.error,
                "payload": stmt.excluded.payload,
                "attempts": FAILURES.c.attempts + 1,
                "last_seen": stmt.excluded.last_seen,
                "resolved": False,
                "resolved_at": None,
            },
        )
        with self._write() as conn:
            conn.execute(stmt)
            row = self._failure_row(conn, store, entity, key)
        assert row is not None
        return _failure(row)

    def resolve_failure(self, store: str, entity: str, key: str) -> bool:
        """Mark an open failure resolved; True if there was one."""
        with self._write() as conn:
            result = conn.execute(
                update(FAILURES)
                .where(
                    FAILURES.c.store == store,
                    FAILURES.c.entity == entity,
                    FAILURES.c.key == key,
                    FAILURES.c.resolved.is_(False),
                )
                .values(resolved=True, resolved_at=utcnow())
            )
            return result.rowcount > 0

    def open_failures(self, store: str | None = None, entity: str | None = None) -> list[Failure]:
        """Unresolved failures, optionally of one store and/or entity, oldest first."""
        query = select(FAILURES).where(FAILURES.c.resolved.is_(False))
        if store is not None:
            query = query.where(FAILURES.c.store == store)
        if entity is not None:
            query = query.where(FAILURES.c.entity == entity)
        with self._read() as conn:
            return [_failure(r) for r in conn.execute(query.order_by(FAILURES.c.first_seen, FAILURES.c.id))]

    def failure(self, store: str, entity: str, key: str) -> Failure | None:
        """The failure recorded for a key (open or resolved), or None."""
        with self._read() as conn:
            row = self._failure_row(conn, store, entity, key)
        return None if row is None else _failure(row)
