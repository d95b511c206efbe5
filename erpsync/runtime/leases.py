"""One run at a time per (flow, store): a lease in the state database, renewed while the run lives.

The lease works wherever the state store is shared (one SQLite file on one machine, PostgreSQL across many),
with or without a Prefect server. A run that finds the lease taken waits up to ``wait_seconds`` and then
skips with a clear log line; a crashed holder's lease expires after ``ttl_seconds`` without renewal.

A holder names its host, process id and pid namespace. A lease whose holder is a process of this machine (same
host name and pid namespace) that no longer runs — a worker or run killed mid-run — is taken over at once
instead of after its TTL: the re-run an operator starts right after a crash goes ahead. A holder elsewhere, or
one whose liveness cannot be told, is only ever waited out.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from erpsync.core.state import StateStore

log = logging.getLogger("erpsync.locks")

DEFAULT_TTL_SECONDS = 120.0


def _pid_namespace() -> str:
    """This process's pid namespace (an inode number), "" where /proc does not tell."""
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return ""


def holder_id() -> str:
    """Who holds a lease: host, process, a random part (two runs in one process differ) and the pid namespace."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}:{_pid_namespace()}"


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed process its parent has not reaped yet is a zombie: it runs nothing
        status = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return status not in ("Z", "X")


def holder_is_gone(holder: str) -> bool:
    """True only for a holder that was a process of this machine and pid namespace and no longer runs."""
    parts = holder.split(":")
    if len(parts) != 4:
        return False  # an older holder format, or not one of ours: wait it out
    host, pid, _, namespace = parts
    if host != socket.gethostname() or not namespace or namespace != _pid_namespace() or not pid.isdigit():
        return False
    return int(pid) != os.getpid() and not _running(int(pid))


def take_lock(state: StateStore, store: str, flow: str, holder: str, ttl_seconds: float) -> bool:
    """``state.try_lock``, and when a process of this machine that no longer runs holds it, take it over."""
    if state.try_lock(store, flow, holder, ttl_seconds):
        return True
    current = state.lock_holder(store, flow)
    if current is not None:
        if not holder_is_gone(current):
            return False
        log.warning(
            "%s for store %s: the run that held it (process %s on this machine) is gone; its lease is taken over",
            flow,
            store,
            current.split(":")[1],
        )
        state.unlock(store, flow, current)  # only if that dead holder still has it
    return state.try_lock(store, flow, holder, ttl_seconds)


@contextmanager
def exclusive_run(
    state: StateStore,
    store: str,
    flow: str,
    *,
    wait_seconds: float = 0.0,
    ttl_seconds: float = DEFAULT_TTL_SECONDS,
    poll_seconds: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[bool]:
    """Hold the (store, flow) lease for the block; yields False (and holds nothing) when another run has it."""
    holder = holder_id()
    deadline = clock() + wait_seconds
    while not take_lock(state, store, flow, holder, ttl_seconds):
        if clock() >= deadline:
            log.warning(
                "%s for store %s is already running elsewhere; this run skips (waited %.0f s)",
                flow,
                store,
                wait_seconds,
            )
            yield False
            return
        sleep(min(poll_seconds, max(0.05, deadline - clock())))
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(ttl_seconds / 3):
            try:
                if not state.try_lock(store, flow, holder, ttl_seconds):
                    log.error("%s for store %s: lease lost to another run", flow, store)
                    return
            except Exception:  # a database hiccup must not kill the run; the next renewal retries
                log.exception("%s for store %s: lease renewal failed", flow, store)

    renewer = threading.Thread(target=renew, name=f"lease-{flow}-{store}", daemon=True)
    renewer.start()
    try:
        yield True
    finally:
        stop.set()
        renewer.join(timeout=5)
        state.unlock(store, flow, holder)
