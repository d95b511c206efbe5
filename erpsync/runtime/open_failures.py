"""The store's standing "open failures" artifact (``open-failures-<store>``), updated by every run of the store:
each open failure, held for a person or retrying by itself, with its attempts, reason, first and last seen, and
the exact command that retries it. Also the "N held" note every run's state message carries while any are held.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from erpsync.core.order_rules import failure_held
from erpsync.core.redact import redact
from erpsync.core.state import Failure, StateStore

log = logging.getLogger("erpsync.failures")

MAX_ROWS = 200
# Entities whose failures `erpsync failures retry` sends again now; the others wait for their flow's next run.
RETRIED_BY_COMMAND = ("order", "order_payment", "erp_order", "order_status", "stock")
# The flow (as `erpsync run` names it) that retries the failures of the other entities.
FLOW_OF_ENTITY = {
    "product": "products",
    "customer": "customers",
    "promise": "purchases",
    "incoming": "purchases",
    "goods_receipt": "receipts",
    "shop_inventory": "stock",
}


def artifact_key_for(store: str) -> str:
    """The stable key of a store's open-failures artifact (``open-failures-<store>``, as ``artifact_key`` makes
    keys: lowercase letters, digits and dashes)."""
    return re.sub(r"[^a-z0-9-]+", "-", f"open-failures-{store}".lower()).strip("-")


def retry_command(failure: Failure) -> str:
    """The exact command that retries (or closes) this failure."""
    store, entity, key = failure.store, failure.entity, failure.key
    if entity == "order_edit":
        return f"erpsync failures resolve --store {store} --entity order_edit {key}  (once the ERP order is right)"
    if entity == "order":
        return f"erpsync resync-order --store {store} {key}"
    if entity in RETRIED_BY_COMMAND:
        return f"erpsync failures retry --store {store} --entity {entity} {key}"
    flow = FLOW_OF_ENTITY.get(entity)
    if flow:
        return f"erpsync run {flow} --store {store}  (its next run retries it too)"
    return f"retried by its flow's next run; erpsync failures dismiss --store {store} --entity {entity} {key}"


@dataclass
class OpenFailures:
    """The open failures of one store, as the artifact shows them."""

    store: str
    rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def held(self) -> int:
        return sum(1 for r in self.rows if r["status"] == "held")

    @property
    def retrying(self) -> int:
        return len(self.rows) - self.held

    def note(self) -> str:
        """ "2 held for a person, 1 retrying: `erpsync failures list --store main` (artifact open-failures-main)"."""
        if not self.rows:
            return ""
        parts = [
            f"{self.held} held for a person" if self.held else "",
            f"{self.retrying} retrying" if self.retrying else "",
        ]
        return (
            f"{', '.join(p for p in parts if p)}: `erpsync failures list --store {self.store}` "
            f"(artifact {artifact_key_for(self.store)})"
        )


def open_failures_of(state: StateStore, store: str, max_attempts: int) -> OpenFailures:
    """The open failures of ``store`` as artifact rows, held ones first, then oldest first."""
    rows = []
    for failure in state.open_failures(store):
        held = failure_held(failure.entity, failure.error, failure.attempts, max_attempts)
        reason = failure.error + (f" (last attempt: {failure.last_error})" if failure.last_error else "")
        rows.append(
            {
                "status": "held" if held else "retrying",
                "entity": failure.entity,
                "key": failure.key,
                "attempts": failure.attempts,
                "reason": redact(reason),
                "first seen (UTC)": failure.first_seen.isoformat(timespec="seconds")[:19].replace("T", " "),
                "last seen (UTC)": failure.last_seen.isoformat(timespec="seconds")[:19].replace("T", " "),
                "retry": retry_command(failure),
            }
        )
    rows.sort(key=lambda r: r["status"] != "held")  # stable: oldest first within each group
    return OpenFailures(store, rows)


def publish_open_failures(report: OpenFailures) -> None:
    """Publish (a new version of) the store's open-failures table; an empty table when none is open."""
    from prefect.artifacts import create_table_artifact

    shown: Sequence[dict[str, Any]] = report.rows[:MAX_ROWS]
    more = f" (first {MAX_ROWS} of {len(report.rows)})" if len(report.rows) > MAX_ROWS else ""
    if report.rows:
        description = (
            f"Open failures of store {report.store}: {report.held} held for a person, "
            f"{report.retrying} retrying{more}. "
            f"Retry with the command shown (or the retry-failures / resync-order deployment of the store); "
            f"`erpsync failures dismiss --store {report.store} KEY --reason ...` closes one that needs nothing."
        )
    else:
        description = f"Open failures of store {report.store}: none."
    create_table_artifact(key=artifact_key_for(report.store), table=list(shown), description=redact(description))


def report_open_failures(store: str) -> OpenFailures | None:
    """Read the store's open failures, publish the artifact, and return them; None (logged) when that is not
    possible: the report never fails a run."""
    try:
        from erpsync.runtime.process import settings_for, state_store

        settings = settings_for(store)
        report = open_failures_of(
            state_store(settings.state.url.get()), store, settings.store(store).orders.max_attempts
        )
        publish_open_failures(report)
        if report.held:  # the "records held" alert ([alerts]; runtime.alerts)
            from erpsync.runtime.alerts import emit_records_held

            emit_records_held(store, report.held, report.note())
        return report
    except Exception as error:  # a report, not the run's work: it never fails the run
        log.warning("could not publish the open failures of store %s: %s", store, redact(str(error)))
        return None
