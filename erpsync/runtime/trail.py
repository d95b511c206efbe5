"""The movement trail's recording hook: what a stock write task wrote, with its cause and ERP document."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from erpsync.core.state import NewMovement, StateStore
from erpsync.core.trail import Trail
from erpsync.runtime.artifacts import artifact_key, publish_table

SHOWN = 500


def current_run_id() -> str | None:
    """The Prefect flow run this write belongs to (None outside a run)."""
    try:
        from prefect.runtime import flow_run

        run_id = flow_run.id
    except Exception:
        return None
    return str(run_id) if run_id else None


def record_writes(
    state: StateStore,
    store: str,
    written: Sequence[tuple[str, Decimal]],
    before: Mapping[str, Decimal | None],
    trail: Trail,
) -> int:
    """One movement per ``(ERP SKU, quantity written)``: the quantity before (last pushed, when known), why, and
    the ERP document."""
    return state.record_movements(
        store,
        (
            NewMovement(sku, quantity, _before(sku, before, trail), trail.cause_of(sku), trail.ref_of(sku))
            for sku, quantity in written
        ),
        run_id=current_run_id(),
    )


def _before(sku: str, pushed: Mapping[str, Decimal | None], trail: Trail) -> Decimal | None:
    seen = trail.seen.get(sku)
    if seen is not None and seen == seen:  # not NaN: the shop's value this run read
        return Decimal(str(seen))
    return pushed.get(sku)


def publish_movements(flow: str, store: str, written: Sequence[Any], trail: Trail) -> None:
    """The run's movements as a table artifact (``<flow>-<store>-movements``): SKU, quantity, cause, ERP document.

    ``written``: the ``Planned`` writes the shop accepted (ERP SKU and its ``StockWrite``)."""
    rows = [
        {
            "sku": p.erp_sku,
            "quantity": f"{p.write.quantity.normalize():f}",
            "cause": trail.cause_of(p.erp_sku),
            "ERP document": trail.ref_of(p.erp_sku) or "",
        }
        for p in written[:SHOWN]
    ]
    more = f" (first {SHOWN} of {len(written)})" if len(written) > SHOWN else ""
    publish_table(artifact_key(flow, store, "movements"), rows, f"Stock written to the shop {store}{more}, and why")
