"""Prefect tasks of the guarded reconciliation: the full ERP snapshot, the Great Expectations guard, the
corrections, and remembering an accepted snapshot for the next comparison.

The last accepted snapshot is kept in two places: its row count and metrics in ``snapshots`` (kind
``erp_stock``), and its quantity per SKU in ``pushed`` under the entity ``erp_stock_snapshot`` (only the rows
that changed are rewritten), which is what the "dropped to zero" share is measured against.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from erpsync.connectors.errors import RunStopped
from erpsync.connectors.merchantpro import StockWrite
from erpsync.core.availability import Availability, compute_availability
from erpsync.core.diff import changed, corrections, quantities, to_decimal, unknown_to_erp
from erpsync.core.snapshot import (
    COVERAGE_SUITE,
    ERP_SUITE,
    GuardBounds,
    coverage_frame,
    erp_snapshot,
    guard_bounds,
    guard_frame,
    previous_to_keep,
    snapshot_metrics,
)
from erpsync.core.state import Snapshot
from erpsync.expectations import runner
from erpsync.expectations.runner import Validation
from erpsync.runtime.failures import resolve_failures
from erpsync.runtime.states import retriable_only
from erpsync.runtime.store_runtime import StoreRuntime
from erpsync.tasks.stock import STOCK, ErpStock, Planned, ShopInventory, collect_levels, log_read

SNAPSHOT_KIND = "erp_stock"
PREVIOUS = "erp_stock_snapshot"


class SnapshotRejected(RunStopped):
    """The guard refused the ERP snapshot: nothing was written (the message names the failed expectations)."""


def prepare_guard() -> None:
    """Start importing Great Expectations in the background, so that it overlaps the snapshot reads."""
    runner.prepare(ERP_SUITE, COVERAGE_SUITE)


@task(
    name="read-erp-snapshot",
    cache_policy=NO_CACHE,
    retries=2,
    retry_delay_seconds=10,
    retry_condition_fn=retriable_only,
)
def read_erp_snapshot(runtime: StoreRuntime) -> ErpStock:
    """Every SKU's stock in the store's warehouses, every page."""
    return log_read("ERP snapshot", collect_levels(runtime.erp.iter_stock(runtime.store.warehouses)))


@dataclass
class Guard:
    """The guard's verdict on one ERP snapshot, with the frames it checked and the metrics to remember."""

    validations: list[Validation]
    bounds: GuardBounds
    frame: pd.DataFrame
    coverage: pd.DataFrame
    previous: pd.Series
    metrics: dict[str, Any]
    seconds: float

    @property
    def passed(self) -> bool:
        return all(v.success for v in self.validations)

    @property
    def failed_names(self) -> list[str]:
        return [name for v in self.validations for name in v.names]

    def describe(self) -> str:
        """The failed expectations with what was observed (or that every one held)."""
        return "; ".join(v.describe() for v in self.validations if not v.success) or "every expectation held"

    def table(self) -> list[dict[str, Any]]:
        """One row per offending sample row (or per failed expectation that has no rows), for an artifact."""
        rows: list[dict[str, Any]] = []
        for validation in self.validations:
            for failed in validation.failed:
                head = {"suite": validation.suite, "expectation": failed.name, "observed": failed.detail}
                rows += [{**head, **sample} for sample in failed.sample] or [head]
        keys = list(dict.fromkeys(k for row in rows for k in row))
        return [{k: row.get(k) for k in keys} for row in rows]


@task(name="check-snapshot", cache_policy=NO_CACHE)
def check_snapshot(runtime: StoreRuntime, erp: ErpStock, shop: ShopInventory) -> Guard:
    """Validate the ERP snapshot (and the shop's coverage by it) against the suites in ``expectations/``."""
    last = runtime.state.last_snapshot(runtime.name, SNAPSHOT_KIND)
    stored = runtime.state.get_pushed(runtime.name, PREVIOUS)
    previous = quantities({key: row.quantity for key, row in stored.items()})
    started = time.perf_counter()
    snapshot = erp_snapshot(erp.levels, runtime.store.warehouses)
    frame = guard_frame(snapshot, previous, sold=shop.frame["sku"].dropna())
    coverage = coverage_frame(shop.frame, frame["sku"].dropna(), erp.unreadable)
    bounds = guard_bounds(runtime.store.reconcile, last.row_count if last else None)
    validations = [
        runner.validate(ERP_SUITE, frame, bounds.parameters()),
        runner.validate(COVERAGE_SUITE, coverage, bounds.parameters()),
    ]
    guard = Guard(
        validations,
        bounds,
        frame,
        coverage,
        previous,
        snapshot_metrics(frame, coverage),
        round(time.perf_counter() - started, 3),
    )
    log = get_run_logger()
    if guard.passed:
        log.info("guard: the ERP snapshot passed (%d rows; %.2f s)", len(frame), guard.seconds)
    else:
        log.error("guard: the ERP snapshot failed: %s", guard.describe())
    return guard


@dataclass
class Corrections:
    """What a reconciliation writes (or would write) and what it only reports."""

    availability: Availability
    rows: pd.DataFrame  # shop units whose stock differs from the expected quantity (+ ``expected``)
    unknown: pd.DataFrame  # shop units whose SKU the ERP snapshot does not have
    zeroed: pd.DataFrame  # unknown units set to zero (``zero_unknown``)
    in_sync: list[str] = field(default_factory=list)
    untracked: int = 0
    seconds: float = 0.0

    def writes(self) -> list[Planned]:
        """The absolute writes: corrected quantities, then the zeroed unknown SKUs."""
        planned = [
            Planned(sku, StockWrite(shop_sku, product_id, variant, to_decimal(quantity)))
            for sku, shop_sku, product_id, variant, quantity in self.rows[
                ["sku", "shop_sku", "product_id", "variant_id", "expected"]
            ].itertuples(index=False, name=None)
        ]
        planned += [
            Planned(sku, StockWrite(shop_sku, product_id, variant, to_decimal(0)))
            for sku, shop_sku, product_id, variant in self.zeroed[
                ["sku", "shop_sku", "product_id", "variant_id"]
            ].itertuples(index=False, name=None)
        ]
        return [_no_nan_variant(p) for p in planned]


def _no_nan_variant(planned: Planned) -> Planned:
    variant = planned.write.variant_id
    if isinstance(variant, str):
        return planned
    write = planned.write
    return Planned(planned.erp_sku, StockWrite(write.sku, write.product_id, None, write.quantity))


@task(name="plan-corrections", cache_policy=NO_CACHE)
def plan_corrections(runtime: StoreRuntime, erp: ErpStock, shop: ShopInventory) -> Corrections:
    """Corrections = shop quantity ≠ expected (available); SKUs unknown to the ERP reported (or zeroed)."""
    started = time.perf_counter()
    settings = runtime.store
    availability = compute_availability(erp.levels, settings.warehouses, settings.stock.safety_buffer)
    expected = availability.available
    rows = corrections(expected, shop.frame)
    unknown = unknown_to_erp(shop.frame, expected.index, [*erp.unreadable, *availability.duplicates])
    zeroed = unknown.iloc[0:0]
    if settings.reconcile.zero_unknown:
        tracked = unknown[unknown["tracked"]]
        zeroed = tracked[tracked["stock"].isna() | (tracked["stock"] != 0)].reset_index(drop=True)
    tracked_known = shop.frame[shop.frame["tracked"] & shop.frame["sku"].isin(expected.index)]
    in_sync = sorted(set(tracked_known["sku"]) - set(rows["sku"]))
    untracked = int((~shop.frame["tracked"]).sum())
    seconds = round(time.perf_counter() - started, 3)
    plan = Corrections(availability, rows, unknown, zeroed, in_sync, untracked, seconds)
    get_run_logger().info(
        "corrections: %d to write, %d in sync, %d unknown to the ERP (%d zeroed); %.2f s",
        len(rows),
        len(in_sync),
        len(unknown),
        len(zeroed),
        plan.seconds,
    )
    return plan


@task(name="accept-snapshot", cache_policy=NO_CACHE)
def accept_snapshot(
    runtime: StoreRuntime, guard: Guard, plan: Corrections, refused: Iterable[str], overridden: Sequence[str]
) -> Snapshot:
    """Remember the accepted snapshot (metrics and per-SKU quantities) and what the shop now holds."""
    state, store = runtime.state, runtime.name
    metrics = {
        **guard.metrics,
        "accepted_by": "operator" if overridden else "guard",
        "overridden": list(overridden),
        "warehouses": list(runtime.store.warehouses),
    }
    snapshot = state.save_snapshot(store, SNAPSHOT_KIND, len(guard.frame), metrics)
    keep = previous_to_keep(guard.frame)
    moved = changed(keep, guard.previous)
    state.set_pushed(store, PREVIOUS, ((str(k), None, to_decimal(v)) for k, v in moved.items()))
    gone = guard.previous.index.difference(keep.index)
    if len(gone):
        state.delete_pushed(store, PREVIOUS, [str(k) for k in gone])
    # SKUs already in sync are recorded as pushed too, so the next stock sync diffs against the truth.
    in_sync = pd.Index(plan.in_sync, dtype="str").difference(pd.Index(list(refused), dtype="str"))
    expected = plan.availability.available.reindex(in_sync)
    pushed = state.get_pushed(store, STOCK, keys=None if len(in_sync) > 10_000 else list(in_sync))
    stale = changed(expected, quantities({key: row.quantity for key, row in pushed.items()}))
    state.set_pushed(store, STOCK, ((str(k), None, to_decimal(v)) for k, v in stale.items()))
    resolve_failures(state, store, STOCK, [str(s) for s in in_sync])
    get_run_logger().info(
        "snapshot accepted (%s): %d rows, %d per-SKU quantities kept, %d pushed refreshed",
        metrics["accepted_by"],
        len(guard.frame),
        len(moved) + len(gone),
        len(stale),
    )
    return snapshot
