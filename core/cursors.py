"""Cursors as the state store keeps them: UTC ISO-8601 text, read back as aware datetimes."""

from __future__ import annotations

from datetime import UTC, datetime


def parse_cursor(value: str | None) -> datetime | None:
    """A stored cursor as an aware datetime (a value without offset is UTC), or None when there is none."""
    if not value:
        return None
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
