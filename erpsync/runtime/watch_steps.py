"""The store watcher's steps: the cheap polls, the heartbeat, and its progress artifact.

The polls are plain calls, not Prefect tasks, on purpose: a watcher polls every few seconds, and a task run per
poll would cost the Prefect server ~60 ms of CPU each (1,800 task runs an hour per store) and bury the run's
useful task runs. The work a poll finds (a targeted stock sync, an order import) runs as the usual tasks.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

from erpsync.core.models import StockLevel
from erpsync.core.watch import WatchCounters
from erpsync.runtime.artifacts import artifact_key
from erpsync.runtime.store_runtime import StoreRuntime

log = logging.getLogger("erpsync.watch")

WATCH = "watch"
STOCK_CURSOR = "watch-stock"  # where the next ERP poll starts (minus the overlap)
HEARTBEAT = "watch-heartbeat"  # the last heartbeat: time and counters, JSON


def poll_erp_stock(runtime: StoreRuntime, since: datetime) -> list[StockLevel]:
    """Stock levels of the SKUs moved in the store's warehouses since ``since`` (ERP calls only, no shop call)."""
    levels: list[StockLevel] = []
    for page in runtime.erp.iter_stock(runtime.store.warehouses, changed_since=since):
        levels.extend(page.items)
    return levels


def record_heartbeat(
    runtime: StoreRuntime, at: datetime, counters: WatchCounters, *, state: str, stock: bool, every: float
) -> None:
    """Store the heartbeat in the state database (``erpsync`` tooling and other processes can read it)."""
    beat = {"at": at.isoformat(), "state": state, "stock": stock, "every": every, **counters.as_dict()}
    runtime.state.set_cursor(runtime.name, HEARTBEAT, json.dumps(beat))


def read_heartbeat(runtime: StoreRuntime) -> dict[str, Any] | None:
    """The last heartbeat a watcher of this store stored, or None."""
    value = runtime.state.get_cursor(runtime.name, HEARTBEAT)
    return json.loads(value) if value else None


def publish_progress(store: str, at: datetime, counters: WatchCounters, state: str) -> None:
    """The watcher's counters as one markdown artifact (a new version of the same key each time)."""
    from prefect.artifacts import create_markdown_artifact

    rows = "\n".join(f"| {key} | {value} |" for key, value in counters.as_dict().items())
    create_markdown_artifact(
        key=artifact_key(WATCH, store),
        markdown=f"### Watcher of {store}: {state}\n\nheartbeat {at.isoformat()}\n\n| counter | value |\n|---|---|\n"
        + rows,
        description=f"store watcher of {store}: heartbeat and counters",
    )
