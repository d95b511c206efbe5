"""One run at a time per (flow, store): the lease in the state database, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time

from erpsync.core.state import StateStore
from erpsync.runtime.leases import exclusive_run


def test_second_run_skips_while_the_first_holds_the_lease(state: StateStore) -> None:
    with exclusive_run(state, "lease-a", "stock") as first:
        assert first is True
        with exclusive_run(state, "lease-a", "stock", wait_seconds=0) as second:
            assert second is False
        with exclusive_run(state, "lease-a", "orders") as other_flow:
            assert other_flow is True  # another flow of the same store is not blocked
        with exclusive_run(state, "lease-b", "stock") as other_store:
            assert other_store is True
    with exclusive_run(state, "lease-a", "stock") as after:
        assert after is True  # released on exit


def test_a_waiting_run_gets_the_lease_when_the_first_ends(state: StateStore) -> None:
    order: list[str] = []
    started = threading.Event()

    def first() -> None:
        with exclusive_run(state, "lease-w", "stock") as got:
            assert got
            order.append("first-start")
            started.set()
            time.sleep(0.6)
            order.append("first-end")

    thread = threading.Thread(target=first)
    thread.start()
    started.wait(5)
    with exclusive_run(state, "lease-w", "stock", wait_seconds=10, poll_seconds=0.05) as got:
        order.append("second-start" if got else "second-skipped")
    thread.join()
    assert order == ["first-start", "first-end", "second-start"]


def test_concurrent_runs_never_overlap(state: StateStore) -> None:
    inside = 0
    peak = 0
    ran = 0
    lock = threading.Lock()

    def run() -> None:
        nonlocal inside, peak, ran
        with exclusive_run(state, "lease-c", "reconcile", wait_seconds=0) as got:
            if not got:
                return
            with lock:
                inside += 1
                ran += 1
                peak = max(peak, inside)
            time.sleep(0.2)
            with lock:
                inside -= 1

    threads = [threading.Thread(target=run) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert peak == 1 and ran >= 1


def test_an_expired_lease_of_a_crashed_run_is_taken_over(state: StateStore) -> None:
    assert state.try_lock("lease-x", "stock", "crashed-holder", ttl_seconds=0.3)
    with exclusive_run(state, "lease-x", "stock", wait_seconds=0) as got:
        assert got is False
    time.sleep(0.4)
    with exclusive_run(state, "lease-x", "stock", wait_seconds=0) as got:
        assert got is True
