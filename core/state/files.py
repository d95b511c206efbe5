"""The file ERP's journal (``StateStore`` methods): what was taken from the inbox and written to the outbox.

A row is claimed with ``INSERT ... ON CONFLICT DO NOTHING`` on ``(direction, kind, key)``: of two processes that
see the same file at once, exactly one takes it (the database decides, not a look-up first).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Row

from erpsync.core.state.base import StateBase
from erpsync.core.state.common import utcnow
from erpsync.core.state.schema import FILE_JOURNAL


@dataclasses.dataclass(frozen=True, slots=True)
class FileEntry:
    direction: str
    kind: str
    key: str
    name: str
    digest: str | None
    state: str
    rows: int
    detail: str | None
    created_at: dt.datetime
    updated_at: dt.datetime


def _entry(row: Row[Any]) -> FileEntry:
    return FileEntry(
        row.direction,
        row.kind,
        row.key,
        row.name,
        row.digest,
        row.state,
        row.rows,
        row.detail,
        row.created_at,
        row.updated_at,
    )


class FileJournalMixin(StateBase):
    """The ``file_journal`` table."""

    def file_claim(
        self,
        direction: str,
        kind: str,
        key: str,
        *,
        name: str,
        state: str,
        digest: str | None = None,
        rows: int = 0,
        detail: str | None = None,
    ) -> bool:
        """Record a file under ``key`` unless one is there already; True when this call recorded it."""
        now = utcnow()
        values = {
            "direction": direction,
            "kind": kind,
            "key": key,
            "name": name,
            "digest": digest,
            "state": state,
            "rows": rows,
            "detail": detail,
            "created_at": now,
            "updated_at": now,
        }
        stmt = (
            self._insert(FILE_JOURNAL)
            .values(**values)
            .on_conflict_do_nothing(index_elements=[FILE_JOURNAL.c.direction, FILE_JOURNAL.c.kind, FILE_JOURNAL.c.key])
        )
        with self._write() as conn:
            return bool(conn.execute(stmt).rowcount)

    def file_update(self, direction: str, kind: str, key: str, **values: Any) -> None:
        """Change a recorded file's ``state``, ``rows``, ``digest``, ``detail`` or ``name``."""
        allowed = {"state", "rows", "digest", "detail", "name"}
        unknown = set(values) - allowed
        if unknown:
            raise ValueError(f"file_update: unknown field(s) {sorted(unknown)}")
        stmt = (
            update(FILE_JOURNAL)
            .where(FILE_JOURNAL.c.direction == direction, FILE_JOURNAL.c.kind == kind, FILE_JOURNAL.c.key == key)
            .values(**values, updated_at=utcnow())
        )
        with self._write() as conn:
            conn.execute(stmt)

    def file_get(self, direction: str, kind: str, key: str) -> FileEntry | None:
        """The recorded file under ``key``, if any."""
        with self._read() as conn:
            row = conn.execute(
                select(FILE_JOURNAL).where(
                    FILE_JOURNAL.c.direction == direction, FILE_JOURNAL.c.kind == kind, FILE_JOURNAL.c.key == key
                )
            ).first()
        return None if row is None else _entry(row)

    def file_latest(self, direction: str, kind: str, state: str) -> FileEntry | None:
        """The most recently recorded file of a kind in this state (e.g. the last accepted stock file)."""
        with self._read() as conn:
            row = conn.execute(
                select(FILE_JOURNAL)
                .where(
                    FILE_JOURNAL.c.direction == direction, FILE_JOURNAL.c.kind == kind, FILE_JOURNAL.c.state == state
                )
                .order_by(FILE_JOURNAL.c.updated_at.desc(), FILE_JOURNAL.c.id.desc())
                .limit(1)
            ).first()
        return None if row is None else _entry(row)

    def file_entries(self, direction: str, kind: str) -> list[FileEntry]:
        """Every recorded file of a kind, oldest first."""
        with self._read() as conn:
            rows = conn.execute(
                select(FILE_JOURNAL)
                .where(FILE_JOURNAL.c.direction == direction, FILE_JOURNAL.c.kind == kind)
                .order_by(FILE_JOURNAL.c.id)
            ).all()
        return [_entry(row) for row in rows]
