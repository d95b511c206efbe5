"""What runs keep besides sync data: the last accepted snapshot per kind, and run locks (leases)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.engine import Row

from erpsync.core.state.base import StateBase
from erpsync.core.state.common import dumps, loads, utcnow
from erpsync.core.state.schema import RUN_LOCKS, SNAPSHOTS


@dataclasses.dataclass(frozen=True, slots=True)
class Snapshot:
    id: int
    store: str
    kind: str
    accepted_at: dt.datetime
    row_count: int
    metrics: dict[str, Any]


def _snapshot(row: Row[Any]) -> Snapshot:
    return Snapshot(
        id=row.id,
        store=row.store,
        kind=row.kind,
        accepted_at=row.accepted_at,
        row_count=row.row_count,
        metrics=loads(row.metrics) or {},
    )


class RunsMixin(StateBase):
    """Snapshots and run locks of every store (``StateStore`` methods)."""

    # -- snapshots ------------------------------------------------------------------------------------------

    def last_snapshot(self, store: str, kind: str) -> Snapshot | None:
        """The most recently accepted snapshot of a kind, or None."""
        with self._read() as conn:
            row = conn.execute(
                select(SNAPSHOTS)
                .where(SNAPSHOTS.c.store == store, SNAPSHOTS.c.kind == kind)
                .order_by(SNAPSHOTS.c.accepted_at.desc(), SNAPSHOTS.c.id.desc())
                .limit(1)
            ).first()
        return None if row is None else _snapshot(row)

    def save_snapshot(self, store: str, kind: str, row_count: int, metrics: dict[str, Any]) -> Snapshot:
        """Record an accepted snapshot (its row count and metrics), accepted now."""
        with self._write() as conn:
            row = conn.execute(
                SNAPSHOTS.insert()
                .values(store=store, kind=kind, accepted_at=utcnow(), row_count=row_count, metrics=dumps(metrics))
                .returning(*SNAPSHOTS.c)
            ).one()
        return _snapshot(row)

    # -- run locks ------------------------------------------------------------------------------------------

    def try_lock(self, store: str, flow: str, holder: str, ttl_seconds: float) -> bool:
        """Take the (store, flow) lock if it is free, expired or already ours (then extend it)."""
        if ttl_seconds <= 0:
            raise ValueError("ttl_seconds must be positive")
        now = utcnow()
        expires = now + dt.timedelta(seconds=ttl_seconds)
        stmt = self._insert(RUN_LOCKS).values(
            store=store, flow=flow, holder=holder, acquired_at=now, expires_at=expires
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[RUN_LOCKS.c.store, RUN_LOCKS.c.flow],
            set_={"holder": holder, "acquired_at": now, "expires_at": expires},
            where=or_(RUN_LOCKS.c.expires_at <= now, RUN_LOCKS.c.holder == holder),
        )
        with self._write() as conn:
            conn.execute(stmt)
            current = conn.execute(
                select(RUN_LOCKS.c.holder).where(RUN_LOCKS.c.store == store, RUN_LOCKS.c.flow == flow)
            ).scalar_one_or_none()
        return current == holder

    def lock_holder(self, store: str, flow: str) -> str | None:
        """Who holds the (store, flow) lock now (expired or not), or None."""
        with self._read() as conn:
            return conn.execute(
                select(RUN_LOCKS.c.holder).where(RUN_LOCKS.c.store == store, RUN_LOCKS.c.flow == flow)
            ).scalar_one_or_none()

    def unlock(self, store: str, flow: str, holder: str) -> None:
        """Release the lock if this holder has it (someone else's lock is left alone)."""
        with self._write() as conn:
            conn.execute(
                delete(RUN_LOCKS).where(
                    RUN_LOCKS.c.store == store, RUN_LOCKS.c.flow == flow, RUN_LOCKS.c.holder == holder
                )
            )
