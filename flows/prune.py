"""Prune: delete the stock movements of one store older than ``[state] movement_days`` (scheduled nightly)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.states import State

from erpsync.core.summary import RunSummary
from erpsync.runtime.artifacts import publish_summary
from erpsync.runtime.run_context import run_name
from erpsync.runtime.states import final_state
from erpsync.runtime.store_runtime import StoreRuntime, open_runtime

FLOW = "prune"


@task(name="prune-movements", cache_policy=NO_CACHE)
def prune_movements(runtime: StoreRuntime, before: datetime) -> int:
    """Delete the store's movements recorded before ``before``; how many."""
    return runtime.state.prune_movements(before, store=runtime.name)


@flow(name="prune", flow_run_name=run_name)
def prune_trail(store: str, days: int | None = None) -> State[Any]:
    """Delete the store's stock movements older than ``days`` (default: ``[state] movement_days``).

    Args:
        store: The store (a `[[stores]]` name); a deployment fixes it to its own store.
        days: Keep this many days of movements (empty: `[state] movement_days` of the configuration).
    """
    with open_runtime(store) as runtime:
        summary = _prune(runtime, days or runtime.settings.state.movement_days)
    publish_summary(summary)
    return final_state(summary)


def _prune(runtime: StoreRuntime, days: int) -> RunSummary:
    before = datetime.now(UTC) - timedelta(days=days)
    removed = prune_movements(runtime, before)
    return runtime.summary(
        FLOW,
        message=f"{removed} stock movement(s) older than {days} day(s) deleted",
        details={"before": before.isoformat(), "deleted": removed, "days": days},
    )
