"""The guarded reconciliation: the ERP's full stock snapshot is validated before anything is corrected.

A snapshot the Great Expectations guard refuses changes nothing: the run fails, naming the failed
expectations, with sample offending rows as an artifact; ``accept_snapshot=True`` applies it once after a
person has looked. A snapshot that passes: shop units whose stock differs from the expected quantity are
corrected in batches at the store's pace; SKUs the ERP does not know are reported (zeroed only with
``zero_unknown``). See docs/stock.md.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.states import State

from erpsync.connectors.erp.base import NotSupported
from erpsync.core.summary import RunState, RunSummary
from erpsync.core.trail import Trail
from erpsync.runtime.alerts import emit_guard_refused
from erpsync.runtime.artifacts import artifact_key, publish_summary, publish_table
from erpsync.runtime.leases import exclusive_run
from erpsync.runtime.run_context import run_name
from erpsync.runtime.states import final_state
from erpsync.runtime.store_runtime import StoreRuntime, open_runtime
from erpsync.tasks.reconcile import (
    Corrections,
    Guard,
    SnapshotRejected,
    check_snapshot,
    plan_corrections,
    prepare_guard,
    read_erp_snapshot,
)
from erpsync.tasks.reconcile import (
    accept_snapshot as remember_snapshot,
)
from erpsync.tasks.stock import (
    SHOP_ROWS,
    STOCK,
    WriteOutcome,
    batches,
    log_clamped,
    read_shop_inventory,
    record_duplicates,
    record_read_errors,
    remember_units,
    write_stock,
)

FLOW = "reconcile"
STOCK_FLOW = "stock"  # the stock sync's lease: both write stock, never at the same time
STOCK_WAIT_SECONDS = 120.0
SHOWN = 20


@flow(name="reconcile", flow_run_name=run_name)
def reconcile(store: str, dry_run: bool = False, accept_snapshot: bool = False) -> State[Any]:
    """Validate the ERP's full stock snapshot, then correct the shop where it differs (dry run: report).

    Args:
        store: The store (a `[[stores]]` name); a deployment fixes it to its own store.
        dry_run: Only report what would be corrected; write nothing.
        accept_snapshot: Apply a snapshot the guard refused, once, after a person has checked it.
    """
    with open_runtime(store) as runtime, exclusive_run(runtime.state, store, FLOW) as mine:
        if not mine:
            return _skipped(runtime, f"reconcile for store {store} is already running; this run skips")
        with exclusive_run(runtime.state, store, STOCK_FLOW, wait_seconds=STOCK_WAIT_SECONDS) as free:
            if not free:
                return _skipped(runtime, f"a stock sync of store {store} is still running; this run skips")
            summary = _reconcile(runtime, dry_run=dry_run, accept=accept_snapshot)
    publish_summary(summary)
    return final_state(summary)


def _skipped(runtime: StoreRuntime, message: str) -> State[Any]:
    get_run_logger().warning(message)
    summary = runtime.summary(FLOW, state=RunState.SKIPPED, message=message)
    publish_summary(summary)
    return final_state(summary)


def _reconcile(runtime: StoreRuntime, *, dry_run: bool, accept: bool) -> RunSummary:
    logger = get_run_logger()
    if not runtime.erp.capabilities.stock_read:
        raise NotSupported(runtime.erp.system, "this ERP cannot read stock: there is nothing to reconcile")
    prepare_guard()  # Great Expectations imports in the background while both snapshots are read
    erp_read = read_erp_snapshot.submit(runtime)
    shop_read = read_shop_inventory.submit(runtime)
    erp, shop = erp_read.result(), shop_read.result()

    guard = check_snapshot(runtime, erp, shop)
    overridden: list[str] = []
    if not guard.passed:
        _publish_guard(runtime, guard)
        if not accept:
            message = (
                f"ERP snapshot refused by the guard, nothing written: {guard.describe()}. Sample rows: "
                f"artifact {artifact_key(FLOW, runtime.name, 'guard')}; to apply this snapshot once after "
                "checking it, run reconcile with accept_snapshot=true"
            )
            refused = runtime.summary(
                FLOW,
                state=RunState.FAILED,
                message=message,
                details={"guard": guard.failed_names, "metrics": guard.metrics},
            )
            publish_summary(refused)
            emit_guard_refused(runtime.name, message)  # the "guard refused" alert ([alerts])
            raise SnapshotRejected(message)
        overridden = guard.failed_names
        logger.warning("the operator accepted a snapshot the guard refused (%s)", guard.describe())

    plan = plan_corrections(runtime, erp, shop)
    log_clamped(runtime, plan.availability)
    outcome = WriteOutcome()
    if not dry_run:
        shown = [*zip(plan.rows["sku"], plan.rows["stock"], strict=True)]
        shown += [*zip(plan.zeroed["sku"], plan.zeroed["stock"], strict=True)]
        trail = Trail("reconciliation", seen={str(sku): float(stock) for sku, stock in shown})
        for batch in batches(plan.writes(), runtime.store.reconcile.batch_size):
            done = write_stock(runtime, batch, trail)
            outcome.written += done.written
            outcome.failed.update(done.failed)
    _publish_corrections(runtime, plan, outcome, dry_run)
    record_read_errors(runtime, STOCK, erp.errors)
    record_read_errors(runtime, SHOP_ROWS, shop.errors)
    record_duplicates(runtime, plan.availability.duplicates)
    if not dry_run:
        remember_snapshot(runtime, guard, plan, list(outcome.failed), overridden)
        remember_units(runtime, shop.frame, refreshed=True)

    failed = len(outcome.failed) + len(erp.errors) + len(shop.errors) + len(plan.availability.duplicates)
    reported = len(plan.unknown) - len(plan.zeroed)
    return runtime.summary(
        FLOW,
        updated=len(outcome.written),
        unchanged=len(plan.in_sync),
        failed=failed,
        skipped=reported + plan.untracked,
        message=_message(plan, outcome, dry_run, overridden),
        details={
            "dry_run": dry_run,
            "accepted_by": None if dry_run else ("operator" if overridden else "guard"),
            "overridden": overridden,
            "erp_rows": len(guard.frame),
            "shop_units": len(shop.frame),
            "corrections": len(plan.rows),
            "zeroed_unknown": len(plan.zeroed),
            "unknown_to_erp": plan.unknown["shop_sku"].head(SHOWN).tolist(),
            "untracked_units": plan.untracked,
            "guard_seconds": guard.seconds,
            "diff_seconds": plan.seconds,
            "bounds": guard.bounds.parameters(),
            "metrics": guard.metrics,
            "refused": dict(list(outcome.failed.items())[:SHOWN]),
        },
    )


def _message(plan: Corrections, outcome: WriteOutcome, dry_run: bool, overridden: list[str]) -> str:
    if dry_run:
        text = f"dry run: {len(plan.rows)} correction(s) and {len(plan.zeroed)} zeroing(s) would be written"
    else:
        text = f"{len(outcome.written)} SKU(s) corrected, {len(outcome.failed)} refused"
    text += f"; {len(plan.unknown)} shop SKU(s) unknown to the ERP"
    if overridden:
        text += f"; snapshot accepted by the operator despite {', '.join(overridden)}"
    return text


def _publish_guard(runtime: StoreRuntime, guard: Guard) -> None:
    publish_table(
        artifact_key(FLOW, runtime.name, "guard"),
        guard.table(),
        f"Reconcile of {runtime.name}: the guard refused the ERP snapshot: {guard.describe()}",
    )


def _publish_corrections(runtime: StoreRuntime, plan: Corrections, outcome: WriteOutcome, dry_run: bool) -> None:
    written = set(outcome.written)

    def corrected(sku: str) -> str:
        if dry_run:
            return "no (dry run)"
        if sku in written:
            return "yes"
        return f"no: {outcome.failed.get(sku, 'not written')}"

    rows = [
        {
            "sku": sku,
            "shop_sku": shop_sku,
            "shop": None if stock != stock else stock,
            "erp": expected,
            "corrected": corrected(sku),
        }
        for sku, shop_sku, stock, expected in plan.rows[["sku", "shop_sku", "stock", "expected"]].itertuples(
            index=False, name=None
        )
    ]
    publish_table(
        artifact_key(FLOW, runtime.name, "corrections"),
        rows,
        f"Reconcile of {runtime.name}: shop stock that differed from the ERP (erp = available)",
    )
    zeroed = set(plan.zeroed["sku"])

    def action(sku: str) -> str:
        if sku not in zeroed:
            return "reported"
        if dry_run:
            return "would be zeroed"
        return "zeroed" if sku in written else f"not zeroed: {outcome.failed.get(sku, 'not written')}"

    columns = plan.unknown[["sku", "shop_sku", "stock"]]
    unknown = [
        {"shop_sku": shop_sku, "shop": None if stock != stock else stock, "action": action(sku)}
        for sku, shop_sku, stock in columns.itertuples(index=False, name=None)
    ]
    publish_table(
        artifact_key(FLOW, runtime.name, "unknown"),
        unknown,
        f"Reconcile of {runtime.name}: shop SKUs the ERP snapshot does not have",
    )
