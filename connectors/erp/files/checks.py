"""``erpsync check`` for the files ERP: the inbox and outbox reachable, exports waiting or half-written, the last
accepted stock file, and each store's warehouses in it. Reads only: nothing is taken in, nothing is written."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from erpsync.connectors.erp.base import Needs, Probe
from erpsync.connectors.erp.files.folders import DONE_SUFFIX
from erpsync.connectors.errors import ConnectorError

INBOX, OUTBOX, STOCK_FILE = "files inbox", "files outbox", "files stock file"


def probes(connector: Any, needs: Sequence[Needs]) -> list[Probe]:
    """One probe per folder, one for the accepted stock file, one per store's warehouses (``connector``: a
    ``FilesConnector``)."""
    out: list[Probe] = []
    try:
        entries = connector.inbox.list()
    except ConnectorError as error:
        out.append(Probe(INBOX, False, f"{connector.inbox.where}: {error}"))
    else:
        names = {e.name for e in entries}
        ready = connector._ready(entries)
        waiting = [e.name for e in entries if connector._kind(e.name) and f"{e.name}{DONE_SUFFIX}" not in names]
        detail = f"{connector.inbox.where}: {len(ready)} complete export(s) waiting"
        if waiting:
            detail += f"; without their .done yet (not read until it is there): {', '.join(sorted(waiting)[:5])}"
        out.append(Probe(INBOX, True, detail))
    try:
        connector.outbox.list()
    except ConnectorError as error:
        out.append(Probe(OUTBOX, False, f"{connector.outbox.where}: {error}"))
    else:
        out.append(Probe(OUTBOX, True, f"{connector.outbox.where}: reachable"))
    try:
        accepted = connector.current()
    except ConnectorError as error:
        out.append(Probe(STOCK_FILE, False, str(error)))
        return out
    if accepted is None:
        out.append(
            Probe(
                STOCK_FILE,
                False,
                f"no stock export accepted yet: drop one matching {connector.stock.pattern!r} into the inbox with "
                "its .done file (the next stock run takes it in)",
            )
        )
        return out
    frame = accepted.frame
    out.append(Probe(STOCK_FILE, True, f"{accepted.name}: {len(frame)} rows, {frame['sku'].nunique()} SKUs"))
    present = sorted(set(frame["warehouse"]))
    for need in needs:
        missing = [w for w in need.warehouses if w not in present]
        out.append(
            Probe(
                f"store {need.store} warehouses",
                not missing,
                f"{', '.join(need.warehouses)} in {accepted.name}"
                if not missing
                else f"{', '.join(missing)} not in {accepted.name} (its warehouses: {', '.join(present[:10])}): "
                "set the store's warehouses, or [erp.stock] warehouse when the export has no warehouse column",
            )
        )
    return out
