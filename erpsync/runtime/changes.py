"""The "what changed" table of a run (stock: SKU old → new; orders: shop order → ERP sale; products: SKUs created
or updated): at most ``CHANGES_SHOWN`` rows in the UI, then one row that counts the rest."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from erpsync.runtime.artifacts import artifact_key, publish_table

CHANGES_SHOWN = 50


def capped(rows: Sequence[Mapping[str, Any]], limit: int = CHANGES_SHOWN) -> list[dict[str, Any]]:
    """The first ``limit`` rows, then "… and N more" in the first column when there are more."""
    shown = [dict(row) for row in rows[:limit]]
    rest = len(rows) - limit
    if rest > 0:
        columns = list(rows[0])
        shown.append({column: (f"… and {rest} more" if i == 0 else "") for i, column in enumerate(columns)})
    return shown


def publish_changes(flow: str, store: str, rows: Sequence[Mapping[str, Any]], what: str) -> None:
    """The table artifact ``<flow>-<store>-changes`` (nothing when nothing changed)."""
    if not rows:
        return
    more = f", the first {CHANGES_SHOWN} shown" if len(rows) > CHANGES_SHOWN else ""
    publish_table(artifact_key(flow, store, "changes"), capped(rows), f"{what}: {len(rows)} in this run{more}")
