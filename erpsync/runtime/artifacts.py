"""Prefect artifacts that show a run's outcome in the UI: a summary and tables of failures or corrections."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from erpsync.core.redact import redact
from erpsync.core.summary import RunSummary

MAX_ROWS = 500


def artifact_key(*parts: str) -> str:
    """A Prefect artifact key (lowercase letters, digits and dashes) built from ``parts``."""
    return re.sub(r"[^a-z0-9-]+", "-", "-".join(parts).lower()).strip("-")


def publish_table(key: str, rows: Sequence[Mapping[str, Any]], description: str) -> None:
    """A table artifact (at most MAX_ROWS rows, secrets masked); nothing when there are no rows."""
    if not rows:
        return
    from prefect.artifacts import create_table_artifact

    shown = [{k: redact(str(v)) if isinstance(v, str) else v for k, v in row.items()} for row in rows[:MAX_ROWS]]
    more = f" (first {MAX_ROWS} of {len(rows)})" if len(rows) > MAX_ROWS else ""
    create_table_artifact(key=key, table=shown, description=redact(description + more))


STATE_LABELS = {
    "completed": "Completed",
    "partially_failed": "Partially failed",
    "failed": "Failed",
    "skipped": "Skipped",
}


def publish_summary(summary: RunSummary) -> None:
    """A markdown artifact with the run's counts, keyed per flow and store; first the store's open-failures
    artifact is updated and the summary notes them (``RunSummary.open_failures``: "N held ...")."""
    from prefect.artifacts import create_markdown_artifact

    from erpsync.runtime.open_failures import report_open_failures

    summary.finish()
    report = report_open_failures(summary.store)
    if report is not None:
        summary.open_failures = report.note()
    label = STATE_LABELS.get(summary.state.value, summary.state.value)
    lines = [
        f"### {summary.flow} — store `{summary.store}`: **{label}**",
        "",
        "| created | updated | unchanged | failed | skipped "
        "| shop reads | shop writes | ERP reads | ERP writes | seconds |",
        "|---|---|---|---|---|---|---|---|---|---|",
        f"| {summary.created} | {summary.updated} | {summary.unchanged} | {summary.failed} | {summary.skipped} "
        f"| {summary.shop_reads} | {summary.shop_writes} | {summary.erp_reads} | {summary.erp_writes} "
        f"| {summary.seconds:.1f} |",
    ]
    if summary.message:
        lines += ["", redact(summary.message)]
    if summary.open_failures:
        lines += ["", f"Open failures of store `{summary.store}`: {redact(summary.open_failures)}"]
    create_markdown_artifact(
        key=artifact_key(summary.flow, summary.store, "summary"),
        markdown="\n".join(lines),
        description=summary.line(),
    )
