"""Cursors as the state store keeps them: UTC ISO-8601 text, read back as aware datetimes; and where they move.

A cursor captures the end of its read window before the read and never passes a record that failed
(docs/architecture.md, rule 2): ``next_cursor`` holds it back to the oldest failed record read from its side.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Protocol


class Stamped(Protocol):
    """A failed record as a cursor sees it: the side it was read from and when it was last changed."""

    @property
    def origin(self) -> str: ...

    @property
    def modified_at(self) -> datetime | None: ...


def parse_cursor(value: str | None) -> datetime | None:
    """A stored cursor as an aware datetime (a value without offset is UTC), or None when there is none."""
    if not value:
        return None
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def format_cursor(moment: datetime) -> str:
    """A cursor as the state store keeps it: ISO-8601 in UTC (an aware datetime; a naive one is local time)."""
    return moment.astimezone(UTC).isoformat()


def next_cursor(
    window: datetime, previous: datetime | None, failed: Iterable[Stamped], origin: str, *, blocked: bool = False
) -> datetime | None:
    """Where a side's cursor goes: the window, held back to the oldest failed record read from that side
    (held where it was when a failed record has no time, or when writes were left for the next run)."""
    stamps = [f.modified_at for f in failed if f.origin == origin]
    if blocked or any(s is None for s in stamps):
        return previous
    oldest = min((s for s in stamps if s is not None), default=None)
    return window if oldest is None else min(window, oldest)
