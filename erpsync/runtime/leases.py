"""One run at a time per (flow, store): a lease in the state database, renewed while the run lives.

The lease works wherever the state store is shared (one SQLite file on one machine, PostgreSQL across many),
with or without a Prefect server. A run that finds the lease taken waits up to ``wait_seconds`` and then
skips with a clear log line; a crashed holder's lease expires after ``ttl_seconds`` without renewal.
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

from erpsync.core.state import StateStore

log = logging.getLogger("erpsync.locks")

DEFAULT_TTL_SECONDS = 120.0


def holder_id() -> str:
    """Who holds a lease: host, process and a random part (two runs in one process differ)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


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
    while not state.try_lock(store, flow, holder, ttl_seconds):
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
