"""Where each sync got to: cursors (where a read stopped) and pushed state (what a write last sent, per key)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.engine import Row

from erpsync.core.state.base import StateBase
from erpsync.core.state.common import IN_CHUNK, chunks, require_str, utcnow
from erpsync.core.state.schema import CURSORS, PUSHED

PUSHED_CHUNK = 5_000  # rows per write transaction: short enough to let other SQLite writers in between


@dataclasses.dataclass(frozen=True, slots=True)
class Pushed:
    key: str
    hash: str | None
    quantity: Decimal | None
    pushed_at: dt.datetime


class ProgressMixin(StateBase):
    """Cursors and pushed state of every store (``StateStore`` methods)."""

    # -- cursors --------------------------------------------------------------------------------------------

    def get_cursor(self, store: str, name: str) -> str | None:
        """The stored value of a cursor, or None."""
        with self._read() as conn:
            return conn.execute(
                select(CURSORS.c.value).where(CURSORS.c.store == store, CURSORS.c.name == name)
            ).scalar_one_or_none()

    def set_cursor(self, store: str, name: str, value: str) -> None:
        """Store a cursor value (callers store ISO-8601 UTC)."""
        if not isinstance(value, str):
            raise TypeError(f"cursor value must be a str, got {type(value).__name__}")
        stmt = self._insert(CURSORS).values(store=store, name=name, value=value, updated_at=utcnow())
        stmt = stmt.on_conflict_do_update(
            index_elements=[CURSORS.c.store, CURSORS.c.name],
            set_={"value": stmt.excluded.value, "updated_at": stmt.excluded.updated_at},
        )
        with self._write() as conn:
            conn.execute(stmt)

    # -- pushed state ---------------------------------------------------------------------------------------

    def get_pushed(self, store: str, entity: str, keys: Iterable[str] | None = None) -> dict[str, Pushed]:
        """What was last pushed, by key: every key of the entity, or only the given ones."""
        columns = (PUSHED.c.key, PUSHED.c.hash, PUSHED.c.quantity, PUSHED.c.pushed_at)
        base = select(*columns).where(PUSHED.c.store == store, PUSHED.c.entity == entity)
        wanted = None if keys is None else sorted(set(keys))
        rows: list[Row[Any]] = []
        with self._read() as conn:
            if wanted is None or len(wanted) > 20 * IN_CHUNK:
                rows = list(conn.execute(base))  # one scan beats hundreds of IN lists
            else:
                for chunk in chunks(wanted, IN_CHUNK):
                    rows.extend(conn.execute(base.where(PUSHED.c.key.in_(chunk))))
        only = None if wanted is None else set(wanted)
        return {r.key: Pushed(r.key, r.hash, r.quantity, r.pushed_at) for r in rows if only is None or r.key in only}

    def set_pushed(self, store: str, entity: str, rows: Iterable[tuple[str, str | None, Decimal | None]]) -> int:
        """Upsert (key, hash, quantity) rows in chunks, stamped now; the last row of a repeated key wins."""
        latest: dict[str, tuple[str | None, Decimal | None]] = {}
        for key, digest, quantity in rows:
            latest[require_str("key", key)] = (digest, quantity)
        if not latest:
            return 0
        now = utcnow()
        stmt = self._insert(PUSHED)
        stmt = stmt.on_conflict_do_update(
            index_elements=[PUSHED.c.store, PUSHED.c.entity, PUSHED.c.key],
            set_={
                "hash": stmt.excluded.hash,
                "quantity": stmt.excluded.quantity,
                "pushed_at": stmt.excluded.pushed_at,
            },
        )
        # Sorted keys: concurrent upserts on PostgreSQL then lock rows in the same order (no deadlock).
        # The parameter dicts are made one chunk at a time: 100,000 at once held ~60 MB for the whole upsert.
        keys = sorted(latest)
        for start in range(0, len(keys), PUSHED_CHUNK):
            params = [
                {
                    "store": store,
                    "entity": entity,
                    "key": k,
                    "hash": latest[k][0],
                    "quantity": latest[k][1],
                    "pushed_at": now,
                }
                for k in keys[start : start + PUSHED_CHUNK]
            ]
            with self._write() as conn:
                conn.execute(stmt, params)
        return len(keys)

    def delete_pushed(self, store: str, entity: str, keys: Iterable[str]) -> int:
        """Forget the pushed state of the given keys; the number of rows removed."""
        removed = 0
        for chunk in chunks(sorted(set(keys)), IN_CHUNK):
            with self._write() as conn:
                removed += conn.execute(
                    delete(PUSHED).where(PUSHED.c.store == store, PUSHED.c.entity == entity, PUSHED.c.key.in_(chunk))
                ).rowcount
        return removed
