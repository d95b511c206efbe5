"""Cursors read back from the state store: aware UTC datetimes, whatever way they were written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from erpsync.core.cursors import parse_cursor


def test_no_cursor_is_none() -> None:
    assert parse_cursor(None) is None and parse_cursor("") is None


def test_a_cursor_keeps_its_offset_and_a_naive_one_is_utc() -> None:
    assert parse_cursor("2026-11-20T08:30:00+00:00") == datetime(2026, 11, 20, 8, 30, tzinfo=UTC)
    bucharest = parse_cursor("2026-11-20T10:30:00+02:00")
    assert bucharest is not None and bucharest.utcoffset() == timedelta(hours=2)
    assert bucharest == datetime(2026, 11, 20, 8, 30, tzinfo=UTC)
    naive = parse_cursor("2026-11-20T08:30:00")
    assert naive is not None and naive.tzinfo is UTC and naive == datetime(2026, 11, 20, 8, 30, tzinfo=UTC)
