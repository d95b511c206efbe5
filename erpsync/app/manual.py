"""The manual part of the ``erpsync`` command: ``failures list|retry|resolve|dismiss`` and ``resync-order``.

Registered on the main app by ``register_manual_commands(app)`` (``erpsync/app/cli.py``). Kept light at import time
(typer only): the state store, Prefect and the flows are imported inside the commands.

Exit codes as for ``erpsync run``: 0 success, 1 a run failed, 2 bad configuration or usage, 3 partially failed.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from erpsync.app.console import ConfigOption, fail, run_and_exit, settings_or_exit

if TYPE_CHECKING:
    from erpsync.core.config import Settings

REASON_WIDTH = 90

failures_app = typer.Typer(
    name="failures",
    help="Records that failed in any stream: list them, retry them (held ones included).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

StoreOption = Annotated[str | None, typer.Option("--store", "-s", help="Store name (default: every store).")]
EntityOption = Annotated[
    str | None, typer.Option("--entity", "-e", help="Only this entity (order, erp_order, order_status, stock ...).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def failure_rows(settings: Settings, store: str | None, entity: str | None) -> list[dict[str, Any]]:
    """The open failures as rows (``held``: waits for a person), oldest first."""
    from erpsync.core.order_rules import failure_held
    from erpsync.core.state import StateStore

    state = StateStore.open(settings.state.url.get())
    try:
        failures = state.open_failures(store, entity)
    finally:
        state.close()
    max_attempts = {s.name: s.orders.max_attempts for s in settings.stores}
    rows = []
    for failure in failures:
        held = failure_held(failure.entity, failure.error, failure.attempts, max_attempts.get(failure.store, 5))
        rows.append(
            {
                "store": failure.store,
                "entity": failure.entity,
                "key": failure.key,
                "attempts": failure.attempts,
                "held": held,
                "first_seen": failure.first_seen.isoformat(),
                "last_seen": failure.last_seen.isoformat(),
                "error": failure.error,
            }
        )
    return rows


@failures_app.command("list")
def list_failures(
    store: StoreOption = None,
    entity: EntityOption = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """List open failures: store, entity, key, attempts, held or retrying, when last seen, and why."""
    settings = settings_or_exit(config, store)
    rows = failure_rows(settings, store, entity)
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=1))
        return
    if not rows:
        typer.echo("no open failures")
        return
    header = ("store", "entity", "key", "attempts", "state", "last seen (UTC)", "reason")
    table = [
        (
            r["store"],
            r["entity"],
            r["key"],
            str(r["attempts"]),
            "held" if r["held"] else "retrying",
            r["last_seen"][:19].replace("T", " "),
            r["error"] if len(r["error"]) <= REASON_WIDTH else r["error"][: REASON_WIDTH - 3] + "...",
        )
        for r in rows
    ]
    widths = [max(len(c) for c in column) for column in zip(header, *table, strict=False)]
    typer.echo("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip())
    for row in table:
        typer.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    held = sum(1 for r in rows if r["held"])
    typer.echo(f"{len(rows)} open failure(s), {held} held for a person: erpsync failures retry --store S [KEY ...]")


@failures_app.command("retry")
def retry(
    keys: Annotated[list[str] | None, typer.Argument(help="Only these keys (order ids, SKUs ...).")] = None,
    store: StoreOption = None,
    entity: EntityOption = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Retry open failures now, held ones included: orders are re-sent, other streams re-run for their keys."""
    settings = settings_or_exit(config, store)
    stores = [store] if store else [s.name for s in settings.stores]
    run_and_exit("retry-failures", stores, {"entity": entity, "keys": list(keys) if keys else None}, as_json)


def operator() -> str:
    """Who closes a failure: ``$ERPSYNC_OPERATOR``, else user@host of this shell."""
    import getpass
    import os
    import socket

    who = os.environ.get("ERPSYNC_OPERATOR")
    if who:
        return who
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def close_failures(
    settings: Settings, store: str, entity: str | None, keys: list[str], *, how: str, reason: str, by: str
) -> tuple[list[str], list[str]]:
    """Close the open failures of these keys (of ``entity``, or of any entity); (lines said, keys not open).
    A resolved ``order_edit`` makes the shop's version what the ERP has (``accept_edit``); a dismissed order is
    not retried until it changes in the shop (journal state ``dismissed``)."""
    from erpsync.core.order_rules import DISMISSED
    from erpsync.core.state import StateStore
    from erpsync.runtime.order_after import ORDER_EDIT, accept_edit

    state = StateStore.open(settings.state.url.get())
    said, unknown = [], []
    try:
        for key in keys:
            failures = [f for f in state.open_failures(store, entity) if f.key == key]
            if not failures:
                unknown.append(key)
            for failure in failures:
                if failure.entity == ORDER_EDIT and how == "resolved":
                    accept_edit(state, store, key, failure.payload)
                if failure.entity == "order" and how == "dismissed":
                    entry = state.journal_get(store, key)
                    if entry is not None and not entry.erp_order_id:  # not retried until it changes in the shop
                        state.journal_update(store, key, state=DISMISSED)
                state.resolve_failure(store, failure.entity, key, how=how, by=by, reason=reason)
                said.append(f"{how}: {store} {failure.entity} {key} (by {by}{'; ' + reason if reason else ''})")
    finally:
        state.close()
    return said, unknown


def _close(keys: list[str], store: str, entity: str | None, reason: str, config: Any, how: str) -> None:
    settings = settings_or_exit(config, store)
    said, unknown = close_failures(settings, store, entity, keys, how=how, reason=reason, by=operator())
    for line in said:
        typer.echo(line)
    if unknown:
        kind = f"{entity} failure" if entity else "failure"
        typer.echo(f"no open {kind} of store {store} for: {', '.join(unknown)}", err=True)
        raise typer.Exit(2)


KeysArgument = Annotated[list[str], typer.Argument(help="The failures' keys (order ids, SKUs ...).")]
StoreRequired = Annotated[str, typer.Option("--store", "-s", help="Store name.")]


@failures_app.command("resolve")
def resolve(
    keys: KeysArgument,
    store: StoreRequired,
    entity: Annotated[
        str | None, typer.Option("--entity", "-e", help="Only failures of this entity (default: any).")
    ] = None,
    reason: Annotated[str, typer.Option("--reason", "-r", help="What was done (kept with the failure).")] = "",
    config: ConfigOption = None,
) -> None:
    """Close failures a person has dealt with (recorded: who, when, why); for order_edit, the shop's version
    becomes what the ERP has."""
    _close(keys, store, entity, reason, config, "resolved")


@failures_app.command("dismiss")
def dismiss(
    keys: KeysArgument,
    store: StoreRequired,
    reason: Annotated[str, typer.Option("--reason", "-r", help="Why nothing needs doing (kept with it).")],
    entity: Annotated[
        str | None, typer.Option("--entity", "-e", help="Only failures of this entity (default: any).")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Close failures that need nothing (a mistyped id, a test order): kept, closed, with who, when and why;
    no longer retried nor counted as held. A record that fails again reopens it."""
    if not reason.strip():
        fail("--reason must say why the failure needs nothing", 2)
    _close(keys, store, entity, reason.strip(), config, "dismissed")


def resync_order(
    order_id: Annotated[str, typer.Argument(help="The shop order id, kept whole (e.g. 95750870.3).")],
    store: Annotated[str, typer.Option("--store", "-s", help="Store name.")],
    force: Annotated[bool, typer.Option(help="Also when held or in doubt (check the ERP first).")] = True,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Send one shop order to the ERP again now (also when held or in doubt), then its status and stock."""
    settings_or_exit(config, store)
    run_and_exit("resync-order", [store], {"order_id": order_id, "force": force}, as_json)


def register_manual_commands(app: typer.Typer) -> None:
    """Add ``failures list|retry`` and ``resync-order`` to the ``erpsync`` app."""
    app.add_typer(failures_app, name="failures")
    app.command("resync-order")(resync_order)
