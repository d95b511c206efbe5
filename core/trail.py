"""Why a stock quantity was written to a shop: the cause and the ERP document, per SKU (the movement trail).

A stock write carries a ``Trail``: a default cause for every SKU of the run, overridden per SKU where the run
knows better (an order run's SKUs are ``sale``, those of a return ``return``), and the ERP document behind each
SKU where one exists (the sale, the goods receipt, the return).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from erpsync.core.models import Order
from erpsync.core.skus import erp_sku

CAUSES = ("sale", "receipt", "return", "inventory", "reconciliation", "manual")
MAX_REF = 200  # an ERP reference longer than this is cut (several documents for one SKU are joined)


@dataclass(frozen=True)
class Trail:
    """The cause of a run's stock writes (``cause``), per-SKU overrides and the ERP documents by ERP SKU; ``seen``:
    the quantity the shop showed before the write when the run read it (else the last push is the "before")."""

    cause: str = "inventory"
    causes: Mapping[str, str] = field(default_factory=dict)
    refs: Mapping[str, str] = field(default_factory=dict)
    seen: Mapping[str, float] = field(default_factory=dict)  # the shop's own value read by this run (drift)

    def __post_init__(self) -> None:
        for sku, cause in [("*", self.cause), *self.causes.items()]:
            if cause not in CAUSES:
                raise ValueError(f"{sku}: unknown stock movement cause {cause!r}; one of {', '.join(CAUSES)}")

    def cause_of(self, sku: str) -> str:
        return self.causes.get(sku, self.cause)

    def ref_of(self, sku: str) -> str | None:
        return self.refs.get(sku)


def join_refs(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """``(sku, document)`` pairs -> one reference per SKU (documents joined with ", ", cut at ``MAX_REF``)."""
    by_sku: dict[str, list[str]] = {}
    for sku, document in pairs:
        docs = by_sku.setdefault(sku, [])
        if document and document not in docs:
            docs.append(document)
    return {sku: ", ".join(docs)[:MAX_REF] for sku, docs in by_sku.items() if docs}


def order_trail(
    orders: Iterable[Order], erp_ids: Mapping[str, str], events: Iterable[Mapping[str, str]], prefix: str
) -> Trail:
    """The trail of an order run's stock sync: SKUs of orders just booked are ``sale`` (the ERP sale named), SKUs
    of orders returned or cancelled after import are ``return`` (the ERP return or credit note named)."""
    by_id = {o.shop_id: o for o in orders if o.shop_id}
    causes: dict[str, str] = {}
    pairs: list[tuple[str, str]] = []

    def skus_of(order: Order) -> list[str]:
        codes = (erp_sku(prefix, line.sku) for line in order.lines if line.kind == "product" and line.sku)
        return [code for code in codes if code]

    for sid, erp_id in erp_ids.items():
        if sid in by_id:
            pairs += [(sku, f"sale {erp_id} (order {sid})") for sku in skus_of(by_id[sid])]
    for event in events:
        order = by_id.get(event.get("order", ""))
        what = event.get("what", "")
        if order is None or what not in ("return", "storno", "cancelled"):
            continue
        document = event.get("ERP document") or ""
        for sku in skus_of(order):
            causes[sku] = "return"
            pairs.append((sku, f"{what} {document} (order {order.shop_id})".replace("  ", " ")))
    return Trail("sale", causes, join_refs(pairs))
