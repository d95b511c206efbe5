"""Customers: shop customer accounts -> linked ERP parties, per store, on a schedule and by hand.

Orchestration only: capture the window end, read the accounts changed since the cursor (one task), apply them in
batches (``tasks/customers.py``), record what failed, move the cursor — never past an account that waits for a
transient error. See docs/customers.md.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from prefect import flow
from prefect.states import State

from erpsync.core.cursors import parse_cursor
from erpsync.core.summary import RunState, RunSummary
from erpsync.runtime.artifacts import artifact_key, publish_summary, publish_table
from erpsync.runtime.leases import exclusive_run
from erpsync.runtime.run_context import run_name
from erpsync.runtime.states import final_state
from erpsync.runtime.store_runtime import StoreRuntime, open_runtime
from erpsync.tasks.customers import CURSOR, AccountsOutcome, apply_accounts, batches, read_customers, record_read_errors

FLOW = "customers"
SHOWN = 20


@flow(name="customers", flow_run_name=run_name)
def customer_sync(store: str, full: bool = False) -> State[Any]:
    """Shop customer accounts changed since the last run become linked ERP parties; ``full``: every account.

    Args:
        store: The store (a `[[stores]]` name); a deployment fixes it to its own store.
        full: Read every shop account, not only those changed since the last run.
    """
    with open_runtime(store) as runtime, exclusive_run(runtime.state, store, FLOW) as mine:
        if not mine:
            summary = runtime.summary(
                FLOW, state=RunState.SKIPPED, message=f"another customers run for store {store} holds the lease"
            )
        else:
            summary = _sync(runtime, full)
    publish_summary(summary)
    return final_state(summary)


def _sync(runtime: StoreRuntime, full: bool) -> RunSummary:
    if not runtime.store.customers.enabled:
        return runtime.summary(FLOW, state=RunState.SKIPPED, message="[stores.customers] enabled = false")
    caps = runtime.erp.capabilities
    if not (caps.customers_find or caps.customers_create):
        return runtime.summary(
            FLOW,
            state=RunState.SKIPPED,
            message=f"{runtime.erp.system} keeps no customer parties: buyers travel inside each order",
        )
    window_end = datetime.now(UTC)
    since = None if full else parse_cursor(runtime.state.get_cursor(runtime.name, CURSOR))
    read = read_customers(runtime, since)
    record_read_errors(runtime, read.errors)
    out = AccountsOutcome()
    for batch in batches(read.accounts):
        out.merge(apply_accounts(runtime, batch))
    stamps = [a.modified_at for a in out.waiting if a.modified_at is not None]
    cursor = min([window_end, *stamps])
    runtime.state.set_cursor(runtime.name, CURSOR, cursor.astimezone(UTC).isoformat())
    rows = [{"account": sid, "reason": reason} for sid, reason in out.failed.items()]
    rows += [{"account": e.key, "reason": e.error} for e in read.errors]
    publish_table(
        artifact_key(FLOW, runtime.name, "failures"),
        rows,
        f"Customer accounts of store {runtime.name} that did not become parties (failures table, entity 'customer')",
    )
    parts = [f"{len(read.accounts)} account(s) read" + (f" since {since.date().isoformat()}" if since else "")]
    if out.closed:
        parts.append(f"{len(out.closed)} link(s) closed (account deleted or anonymised; the party is kept)")
    if out.waiting:
        parts.append(f"{len(out.waiting)} left for the next run (the ERP did not answer)")
    return runtime.summary(
        FLOW,
        created=len(out.created),
        updated=len(out.updated),
        unchanged=out.unchanged + len([s for s in out.linked if s not in out.updated]),
        failed=len(out.failed) + len(read.errors),
        skipped=len(out.waiting),
        message="; ".join(parts),
        details={
            "since": since.isoformat() if since else None,
            "pages": read.pages,
            "batches": len(batches(read.accounts)),
            "created": out.created[:SHOWN],
            "linked": out.linked[:SHOWN],
            "updated": out.updated[:SHOWN],
            "closed": out.closed[:SHOWN],
            "failed": dict(list(out.failed.items())[:SHOWN]),
            "cursor": cursor.isoformat(),
        },
    )
