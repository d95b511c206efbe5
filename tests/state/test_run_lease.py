"""One run at a time per (flow, store): the lease in the state database, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import pytest

from erpsync.core.state import StateStore
from erpsync.runtime.leases import exclusive_run, holder_id, holder_is_gone


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


def _holder_of(pid: int, *, host: str | None = None, namespace: str | None = None) -> str:
    """A holder id as another process would write it (this machine's host and pid namespace unless told)."""
    own = holder_id().split(":")
    return f"{host or own[0]}:{pid}:deadbeef:{own[3] if namespace is None else namespace}"


def _finished_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_the_lease_of_a_killed_local_run_is_taken_over_at_once(
    state: StateStore, caplog: pytest.LogCaptureFixture
) -> None:
    assert state.try_lock("lease-k", "orders", _holder_of(_finished_pid()), ttl_seconds=3600)
    with exclusive_run(state, "lease-k", "orders", wait_seconds=0) as got:
        assert got is True
    assert "is gone; its lease is taken over" in caplog.text


def test_a_killed_process_not_yet_reaped_counts_as_gone(state: StateStore) -> None:
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert state.try_lock("lease-z", "orders", _holder_of(process.pid), ttl_seconds=3600)
        with exclusive_run(state, "lease-z", "orders", wait_seconds=0) as got:
            assert got is False  # running: waited out
        process.kill()
        time.sleep(0.3)  # a zombie now: killed, not reaped
        with exclusive_run(state, "lease-z", "orders", wait_seconds=0) as got:
            assert got is True
    finally:
        process.kill()
        process.wait()


@pytest.mark.parametrize(
    "holder",
    [
        pytest.param(lambda: _holder_of(_finished_pid(), host="another-machine"), id="another host"),
        pytest.param(lambda: _holder_of(_finished_pid(), namespace="1"), id="another pid namespace"),
        pytest.param(lambda: f"{socket.gethostname()}:{_finished_pid()}:deadbeef", id="older holder format"),
        pytest.param(lambda: _holder_of(os.getpid()), id="this very process"),
    ],
)
def test_a_holder_whose_death_cannot_be_told_is_waited_out(state: StateStore, holder: Callable[[], str]) -> None:
    taken = holder()
    assert not holder_is_gone(taken)
    assert state.try_lock("lease-o", "orders", taken, ttl_seconds=3600)
    with exclusive_run(state, "lease-o", "orders", wait_seconds=0) as got:
        assert got is False
    assert state.lock_holder("lease-o", "orders") == taken
    state.unlock("lease-o", "orders", taken)
