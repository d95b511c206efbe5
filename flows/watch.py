"""The store watcher: one long-running flow run per store that keeps the shop fresh within seconds.

It polls what is cheap every few seconds — the ERP's stock moves since a cursor (ERP calls only) and, when
asked, the shop's orders modified since the order cursor — batches the changed SKUs for a short window, and
runs the targeted stock sync (``flows/stock.py``'s work for just those SKUs) or the order import inside its own
run. It holds the run lease of the flow it is doing for as long as that takes, so it never overlaps the
scheduled runs, which stay as the safety net. See docs/architecture.md ("The store watcher").
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from prefect import flow, get_run_logger
from prefect.states import State

from erpsync.connectors.errors import RetriableError
from erpsync.core.cursors import parse_cursor
from erpsync.core.state import StateStore
from erpsync.core.summary import RunState, RunSummary
from erpsync.core.watch import ChangeBatcher, WatchCounters, changed_skus
from erpsync.runtime.artifacts import publish_summary
from erpsync.runtime.leases import exclusive_run
from erpsync.runtime.run_context import run_name
from erpsync.runtime.states import final_state
from erpsync.runtime.store_runtime import StoreRuntime, open_runtime
from erpsync.runtime.watch_steps import (
    STOCK_CURSOR,
    WATCH,
    poll_erp_stock,
    publish_progress,
    record_heartbeat,
)
from erpsync.tasks.stock import utcnow

STOP = "watch-stop"  # an ISO time stored here ends every watcher of the store started before it
OVERLAP = timedelta(seconds=30)  # a move committed late (its time is its transaction's start) is still seen
MAX_BACKOFF_SECONDS = 60.0
LEASE_WAIT_SECONDS = 60.0  # a watcher started by the schedule waits this long for the previous one to finish


@dataclass(frozen=True)
class WatchPlan:
    """How one watcher run polls and batches (the flow's parameters)."""

    seconds: float
    poll_seconds: float
    batch_seconds: float
    orders_poll_seconds: float
    heartbeat_seconds: float


@flow(name="store-watch", flow_run_name=run_name)
def store_watch(
    store: str,
    minutes: float = 30.0,
    poll_seconds: float = 2.0,
    batch_seconds: float = 1.0,
    orders_poll_seconds: float = 0.0,
    heartbeat_seconds: float = 60.0,
) -> State[Any]:
    """Poll the ERP's stock changes (and the shop's orders when orders_poll_seconds > 0) and sync them in seconds.

    Args:
        store: The store (a `[[stores]]` name); a deployment fixes it to its own store.
        minutes: How long this watcher runs before it finishes (the schedule starts the next one).
        poll_seconds: Seconds between two polls of the ERP's stock changes.
        batch_seconds: Seconds changes are gathered before they are written together.
        orders_poll_seconds: Seconds between two polls of the shop's new orders (0: orders are left to the order flow).
        heartbeat_seconds: Seconds between two heartbeats recorded in the state database.
    """
    plan = WatchPlan(minutes * 60, poll_seconds, batch_seconds, orders_poll_seconds, heartbeat_seconds)
    with (
        open_runtime(store) as runtime,
        exclusive_run(runtime.state, store, WATCH, wait_seconds=LEASE_WAIT_SECONDS) as acquired,
    ):
        if not acquired:
            message = f"a watcher of store {store} is already running; this one exits"
            get_run_logger().warning(message)
            summary = runtime.summary(WATCH, state=RunState.SKIPPED, message=message)
        else:
            summary = _watch(runtime, plan)
    publish_summary(summary)
    return final_state(summary)


def request_stop(state: StateStore, store: str) -> None:
    """Ask every watcher of this store running now to finish at its next poll."""
    state.set_cursor(store, STOP, utcnow().isoformat())


class _Watcher:
    def __init__(self, runtime: StoreRuntime, plan: WatchPlan) -> None:
        self.runtime = runtime
        self.plan = plan
        self.logger = get_run_logger()
        self.counters = WatchCounters()
        self.batcher = ChangeBatcher(plan.batch_seconds)
        self.seen: dict[str, Any] = {}
        self.started_at = utcnow()
        stored = parse_cursor(runtime.state.get_cursor(runtime.name, STOCK_CURSOR))
        self.cursor: datetime = stored or self.started_at  # a first watcher: the scheduled syncs cover the past
        self.polled_to: datetime = self.cursor
        self.stock_on = runtime.erp.capabilities.stock_changed_since and runtime.erp.capabilities.stock_read
        self.backoff = 0.0
        self.retry_flush_at = 0.0

    # -- the steps ----------------------------------------------------------------------------------------
    def poll_stock(self, now: float) -> None:
        window_end = utcnow()  # captured before the read
        levels = poll_erp_stock(self.runtime, self.cursor - OVERLAP)
        self.counters.erp_polls += 1
        changed = changed_skus(self.seen, levels)
        if changed:
            self.counters.changes_seen += len(changed)
            self.batcher.add(changed, now)
        self.polled_to = window_end
        if not self.batcher.pending:
            self._advance()

    def _advance(self) -> None:
        """Move the cursor to the end of the last poll: everything seen up to there has been synced."""
        if self.polled_to > self.cursor:
            self.cursor = self.polled_to
            self.runtime.state.set_cursor(self.runtime.name, STOCK_CURSOR, self.cursor.isoformat())

    def flush_stock(self) -> None:
        from erpsync.flows.stock import FLOW as STOCK_FLOW
        from erpsync.flows.stock import sync_skus

        store = self.runtime.name
        with exclusive_run(self.runtime.state, store, STOCK_FLOW) as acquired:
            if not acquired:  # a scheduled or manual stock run is on: keep the SKUs, try again after a poll
                self.counters.busy_skips += 1
                self.retry_flush_at = time.monotonic() + self.plan.poll_seconds
                return
            oldest = self.batcher.oldest() or time.monotonic()
            skus = self.batcher.take()
            writes_before = self.runtime.shop.counters.writes
            summary = sync_skus(self.runtime, skus)
        delay = time.monotonic() - oldest
        self.counters.batches += 1
        self.counters.skus_synced += len(skus)
        self.counters.stock_written += summary.updated
        self.counters.sync_failures += summary.failed
        self.counters.longest_batch_delay = max(self.counters.longest_batch_delay, delay)
        self.logger.info(
            "watch [%s]: %d changed SKU(s) synced in one batch, %d written (%d shop write(s)), %d failed; "
            "%.1f s after the first was seen",
            store,
            len(skus),
            summary.updated,
            self.runtime.shop.counters.writes - writes_before,
            summary.failed,
            delay,
        )
        self._advance()  # failed SKUs are in the failures table; the scheduled sync's own cursor keeps them

    def poll_orders(self) -> None:
        from erpsync.flows.orders import FLOW as ORDERS_FLOW
        from erpsync.flows.orders import run_orders

        self.counters.order_polls += 1
        with exclusive_run(self.runtime.state, self.runtime.name, ORDERS_FLOW) as acquired:
            if not acquired:
                self.counters.busy_skips += 1
                return
            summary = run_orders(self.runtime)
        self.counters.orders_imported += summary.created
        if summary.created:
            self.logger.info("watch [%s]: %s", self.runtime.name, summary.line())

    def heartbeat(self, state: str = "running") -> None:
        shop = self.runtime.shop.counters
        self.counters.shop_reads, self.counters.shop_writes = shop.reads, shop.writes
        at = utcnow()
        every = self.plan.heartbeat_seconds
        record_heartbeat(self.runtime, at, self.counters, state=state, stock=self.stock_on, every=every)
        publish_progress(self.runtime.name, at, self.counters, state)
        self.logger.info("watch [%s] heartbeat: %s", self.runtime.name, self.counters.line())

    def stop_requested(self) -> bool:
        stop = parse_cursor(self.runtime.state.get_cursor(self.runtime.name, STOP))
        return stop is not None and stop >= self.started_at

    # -- the loop -----------------------------------------------------------------------------------------
    def run(self) -> RunSummary:
        plan, runtime = self.plan, self.runtime
        if not self.stock_on:
            message = f"watch [{runtime.name}]: this ERP cannot tell which stock changed since a time"
            if plan.orders_poll_seconds <= 0:  # nothing left to watch: give the worker its process back
                self.logger.warning("%s, and shop orders are not polled: nothing to watch", message)
                return runtime.summary(WATCH, state=RunState.SKIPPED, message=f"{message}: nothing to watch")
            self.logger.warning("%s; only shop orders are watched", message)
        self.logger.info(
            "watch [%s] started: ERP stock every %.1f s (batches of %.1f s), shop orders %s, from %s",
            runtime.name,
            plan.poll_seconds,
            plan.batch_seconds,
            f"every {plan.orders_poll_seconds:.0f} s" if plan.orders_poll_seconds > 0 else "not polled (webhooks)",
            self.cursor.isoformat(),
        )
        self.heartbeat()  # at once: the run shows its counters from the start
        start = time.monotonic()
        end = start + plan.seconds
        next_stock = next_orders = start
        next_beat = start + plan.heartbeat_seconds
        reason = "its time is up"
        while True:
            now = time.monotonic()
            if now >= end:
                break
            try:
                if self.stock_on and now >= next_stock:
                    if self.stop_requested():
                        reason = "asked to stop"
                        break
                    self.poll_stock(now)
                    next_stock = now + plan.poll_seconds
                if self.batcher.due(time.monotonic()) and time.monotonic() >= self.retry_flush_at:
                    self.flush_stock()
                if plan.orders_poll_seconds > 0 and now >= next_orders:
                    self.poll_orders()
                    next_orders = now + plan.orders_poll_seconds
                self.backoff = 0.0
            except RetriableError as error:  # the ERP or the shop is away for a while: keep watching
                self.backoff = min(MAX_BACKOFF_SECONDS, max(plan.poll_seconds, self.backoff * 2))
                self.logger.warning("watch [%s]: %s; next try in %.0f s", runtime.name, error, self.backoff)
                next_stock = next_orders = time.monotonic() + self.backoff
            if time.monotonic() >= next_beat:
                self.heartbeat()
                next_beat = time.monotonic() + plan.heartbeat_seconds
            wake = [next_stock if self.stock_on else end, end, next_beat]
            if plan.orders_poll_seconds > 0:
                wake.append(next_orders)
            oldest = self.batcher.oldest()
            if oldest is not None:
                wake.append(max(oldest + plan.batch_seconds, self.retry_flush_at))
            time.sleep(min(max(0.05, min(wake) - time.monotonic()), 1.0))
        if self.batcher.pending:
            self.flush_stock()
        self.heartbeat("finished")
        counters = self.counters
        return runtime.summary(
            WATCH,
            created=counters.orders_imported,
            updated=counters.stock_written,
            failed=counters.sync_failures,
            message=(
                f"watched {(time.monotonic() - start) / 60:.1f} min, stopped as {reason}: "
                f"{counters.changes_seen} stock change(s) in {counters.batches} batch(es), "
                f"{counters.orders_imported} order(s) imported"
            ),
            details=counters.as_dict(),
        )


def _watch(runtime: StoreRuntime, plan: WatchPlan) -> RunSummary:
    return _Watcher(runtime, plan).run()
