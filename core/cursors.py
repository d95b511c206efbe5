"""Cursors as the state store keeps them: UTC ISO-8601 text, read back as aware datetimes; where a first run
starts; and where they move.

A cursor captures the end of its read window before the read and never passes a record that failed
(docs/architecture.md, rule 2). The two streams hold it back differently, because they come back to a failed
record differently:

- ``rewinding_cursor`` (products): the failed records it is given are read again only through the cursor (a
  product that failed in the shop with a known id is read again by id and is not given to it), and one may come
  from a read outside the window (the whole ERP catalogue, read to compare), so the cursor goes back to the
  oldest of them, even behind where it was;
- ``forward_cursor`` (orders): the order reads reach behind their cursor on their own (the shop's date filter
  by ``overlap_days``, the ERP's by a clock margin) and failed shop orders are read again by id, so the cursor
  only stops short of the orders still to retry and never moves behind where it was.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time
from typing import Protocol
from zoneinfo import ZoneInfo


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


def initial_since(start_date: date | None, today: date, timezone: str) -> datetime:
    """Where the first run starts: local midnight of ``start_date`` (default: today) in the shop's zone."""
    return datetime.combine(start_date or today, time(0), tzinfo=ZoneInfo(timezone))


def rewinding_cursor(
    window: datetime, previous: datetime | None, failed: Iterable[Stamped], origin: str, *, blocked: bool = False
) -> datetime | None:
    """Where a side's cursor goes: the window, held back to the oldest failed record read from that side
    (held where it was when a failed record has no time, or when writes were left for the next run).

    It may go back behind ``previous`` (see the module's docstring; ``forward_cursor`` never does).
    """
    stamps = [f.modified_at for f in failed if f.origin == origin]
    if blocked or any(s is None for s in stamps):
        return previous
    oldest = min((s for s in stamps if s is not None), default=None)
    return window if oldest is None else min(window, oldest)


def forward_cursor(window_end: datetime, since: datetime, pinned: Iterable[datetime | None]) -> datetime:
    """The cursor after a run: the window end, held back to the oldest order still to retry (never past it).

    An order without a timestamp holds the cursor where it was. It never moves behind ``since`` (see the
    module's docstring; ``rewinding_cursor`` may).
    """
    cursor = window_end
    for stamp in pinned:
        cursor = min(cursor, since if stamp is None else stamp)
    return max(cursor, since)
