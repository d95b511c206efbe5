"""Cursors read back from the state store: aware UTC datetimes, whatever way they were written; where a first run
starts; where they move (products: ``rewinding_cursor``, orders: ``forward_cursor``)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

from erpsync.core.cursors import format_cursor, forward_cursor, initial_since, parse_cursor, rewinding_cursor
from erpsync.core.product_plan import Failed

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def test_no_cursor_is_none() -> None:
    assert parse_cursor(None) is None and parse_cursor("") is None


def test_a_cursor_keeps_its_offset_and_a_naive_one_is_utc() -> None:
    assert parse_cursor("2026-11-20T08:30:00+00:00") == datetime(2026, 11, 20, 8, 30, tzinfo=UTC)
    bucharest = parse_cursor("2026-11-20T10:30:00+02:00")
    assert bucharest is not None and bucharest.utcoffset() == timedelta(hours=2)
    assert bucharest == datetime(2026, 11, 20, 8, 30, tzinfo=UTC)
    naive = parse_cursor("2026-11-20T08:30:00")
    assert naive is not None and naive.tzinfo is UTC and naive == datetime(2026, 11, 20, 8, 30, tzinfo=UTC)


def test_a_cursor_is_stored_as_utc_text_and_reads_back_equal() -> None:
    bucharest = datetime(2026, 11, 20, 10, 30, tzinfo=timezone(timedelta(hours=2)))
    assert format_cursor(bucharest) == "2026-11-20T08:30:00+00:00"
    assert parse_cursor(format_cursor(bucharest)) == bucharest


def test_rewinding_cursor_never_passes_a_failed_record() -> None:
    window, previous = T0 + timedelta(hours=2), T0 - timedelta(days=1)
    assert rewinding_cursor(window, previous, [], "erp") == window
    failed = [Failed("A", "shop", "x", "erp", T0), Failed("B", "erp", "y", "shop", T0 - timedelta(days=9))]
    assert rewinding_cursor(window, previous, failed, "erp") == T0
    assert rewinding_cursor(window, previous, [Failed("A", "shop", "x", "erp", None)], "erp") == previous
    assert rewinding_cursor(window, previous, [], "erp", blocked=True) == previous


def test_first_run_starts_at_local_midnight_of_start_date_or_today() -> None:
    since = initial_since(None, date(2026, 11, 20), "Europe/Bucharest")
    assert since.astimezone(UTC) == datetime(2026, 11, 19, 22, tzinfo=UTC)
    assert initial_since(date(2026, 7, 1), date(2026, 11, 20), "Europe/Bucharest").astimezone(UTC) == datetime(
        2026, 6, 30, 21, tzinfo=UTC
    )


def test_forward_cursor_never_passes_an_order_still_to_retry() -> None:
    since = datetime(2026, 11, 20, 8, tzinfo=UTC)
    end = since + timedelta(hours=2)
    assert forward_cursor(end, since, []) == end
    failed = since + timedelta(minutes=30)
    assert forward_cursor(end, since, [failed, since + timedelta(hours=1)]) == failed
    assert forward_cursor(end, since, [None]) == since  # no timestamp: stay where we were
    assert forward_cursor(end, since, [since - timedelta(days=1)]) == since  # never moves backwards
