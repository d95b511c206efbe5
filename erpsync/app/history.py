"""``erpsync stock-history SKU [--store S]``: the movement trail of one SKU, newest first."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer

from erpsync.app.console import ConfigOption, settings_or_exit
from erpsync.core.config import Settings


def history_rows(settings: Settings, sku: str, store: str | None, days: int | None, limit: int) -> list[dict[str, Any]]:
    """The SKU's recorded stock writes (every store, or one) as rows, newest first."""
    from erpsync.core.state import StateStore

    since = datetime.now(UTC) - timedelta(days=days) if days else None
    state = StateStore.open(settings.state.url.get())
    try:
        movements = state.movements(sku, store=store, since=since, limit=limit)
    finally:
        state.close()
    return [
        {
            "at": m.at.isoformat(),
            "store": m.store,
            "sku": m.sku,
            "cause": m.cause,
            "previous": None if m.previous is None else f"{m.previous.normalize():f}",
            "quantity": f"{m.quantity.normalize():f}",
            "erp_ref": m.erp_ref,
            "run_id": m.run_id,
        }
        for m in movements
    ]


def stock_history(
    sku: Annotated[str, typer.Argument(help="The ERP SKU.")],
    store: Annotated[str | None, typer.Option("--store", "-s", help="Only this store.")] = None,
    days: Annotated[int | None, typer.Option(help="Only the last N days.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many movements.")] = 200,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON rows.")] = False,
    config: ConfigOption = None,
) -> None:
    """Every stock quantity erpsync wrote to the shop for a SKU: when, why (sale, receipt, return, inventory,
    reconciliation, manual), the ERP document, the quantity before and after."""
    settings = settings_or_exit(config, store)
    rows = history_rows(settings, sku, store, days, limit)
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=1))
        return
    if not rows:
        typer.echo(f"no stock movements recorded for {sku}" + (f" in store {store}" if store else ""))
        return
    header = ("when (UTC)", "store", "cause", "quantity", "ERP document", "run")
    table = [
        (
            r["at"][:19].replace("T", " "),
            r["store"],
            r["cause"],
            (f"{r['previous']} -> " if r["previous"] is not None else "-> ") + r["quantity"],
            r["erp_ref"] or "",
            (r["run_id"] or "")[:8],
        )
        for r in rows
    ]
    widths = [max(len(c) for c in column) for column in zip(header, *table, strict=False)]
    typer.echo("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip())
    for row in table:
        typer.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    typer.echo(f"{len(rows)} movement(s) of {sku}")


def register_history_command(app: typer.Typer) -> None:
    """Add ``stock-history`` to the ``erpsync`` app."""
    app.command("stock-history")(stock_history)
