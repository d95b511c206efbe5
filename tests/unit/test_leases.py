"""The lease's waiting logic on a fake clock (the database side is tested in tests/state/test_run_lease.py)."""

from __future__ import annotations

from typing import Any, cast

import pytest

from erpsync.core.state import StateStore
from erpsync.runtime.leases import exclusive_run
from tests.support.clock import FakeClock


class Leases:
    """A state store's lease calls, answering "taken" until ``free_after`` tries."""

    def __init__(self, free_after: int | None) -> None:
        self.free_after = free_after
        self.tries = 0
        self.unlocked: list[str] = []

    def try_lock(self, store: str, flow: str, holder: str, ttl_seconds: float) -> bool:
        self.tries += 1
        return self.free_after is not None and self.tries > self.free_after

    def lock_holder(self, store: str, flow: str) -> str | None:
        return "another-host:1:0000aaaa:1"  # never taken over: not this machine

    def unlock(self, store: str, flow: str, holder: str) -> None:
        self.unlocked.append(holder)


def _run(leases: Leases, clock: FakeClock, **options: Any) -> bool:
    with exclusive_run(
        cast(StateStore, leases), "main", "stock", clock=clock.now, sleep=clock.sleep, ttl_seconds=3600, **options
    ) as got:
        return got


def test_a_taken_lease_is_waited_for_exactly_wait_seconds_then_skipped(caplog: pytest.LogCaptureFixture) -> None:
    clock, leases = FakeClock(), Leases(free_after=None)
    assert _run(leases, clock, wait_seconds=30, poll_seconds=1) is False
    assert clock.now() - clock.start == pytest.approx(30)
    assert leases.tries == 31  # one try a second, and the one at the start
    assert leases.unlocked == []  # it held nothing, so it releases nothing
    assert "already running elsewhere; this run skips (waited 30 s)" in caplog.text


def test_no_wait_means_one_try_and_no_sleep() -> None:
    clock, leases = FakeClock(), Leases(free_after=None)
    assert _run(leases, clock, wait_seconds=0) is False
    assert (leases.tries, clock.sleeps) == (1, [])


def test_a_lease_freed_while_waiting_is_taken_and_released_after_the_block() -> None:
    clock, leases = FakeClock(), Leases(free_after=4)
    assert _run(leases, clock, wait_seconds=60, poll_seconds=2) is True
    assert clock.sleeps == [2, 2, 2, 2]
    assert len(leases.unlocked) == 1


def test_the_last_poll_stops_at_the_deadline() -> None:
    clock, leases = FakeClock(), Leases(free_after=None)
    assert _run(leases, clock, wait_seconds=5, poll_seconds=2) is False
    assert clock.sleeps == [2, 2, 1]
