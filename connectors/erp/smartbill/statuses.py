"""What SmartBill's documents say back to the shop, from the issued registry (no call): an order's invoice with its
stornos/returns (``order_statuses``), a storno/return as the run shows it (``after_sale``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from erpsync.connectors.erp.smartbill.invoices import InvoiceId, IssuedRegistry
from erpsync.connectors.erp.smartbill.payments import PAYMENT
from erpsync.core.models import AfterSale, ErpInvoice, ErpOrderStatus


def order_statuses(issued: IssuedRegistry, erp_ids: Sequence[str]) -> list[ErpOrderStatus]:
    """Each invoice's number, date and link, its stornos/returns as credits, from the registry (no call:
    SmartBill cannot report an invoice's state; a storno or cancel made in SmartBill's UI is not seen)."""
    statuses = []
    for erp_id in erp_ids:
        invoice = InvoiceId.parse(erp_id)
        details = issued.details(erp_id) or {}
        if details.get("document") == "estimate":  # a proforma: no invoice yet (made from it in SmartBill)
            cancelled = any(c.get("kind") == "cancelled" for c in details.get("credits", []))
            state = "cancelled" if cancelled else "estimate"
            statuses.append(ErpOrderStatus(erp_id=erp_id, state=state, cancelled=cancelled))
            continue
        invoices = [
            ErpInvoice(
                erp_id=erp_id,
                number=invoice.printed,
                issued=_date(details.get("issued")),
                url=details.get("url") or None,
            )
        ]
        cancelled = False
        for credit in details.get("credits", []):
            if credit.get("kind") == PAYMENT:
                continue
            credit_id = InvoiceId.parse(str(credit["erp_id"]))
            invoices.append(
                ErpInvoice(
                    erp_id=str(credit_id),
                    number=credit_id.printed,
                    issued=_date(credit.get("issued")),
                    url=credit.get("url") or None,
                    credit=True,
                )
            )
            cancelled = cancelled or credit.get("kind") == "storno"
        statuses.append(
            ErpOrderStatus(
                erp_id=erp_id,
                state="cancelled" if cancelled else "invoiced",
                invoiced=True,
                invoice_number=invoice.printed,
                cancelled=cancelled,
                invoices=invoices,
            )
        )
    return statuses


def _printed(erp_id: str) -> str:
    try:
        return InvoiceId.parse(erp_id).printed
    except ValueError:
        return erp_id


def after_sale(credit: dict[str, Any]) -> AfterSale:
    """The ``AfterSale`` of a recorded credit; its detail names the documents as printed and what came back:
    ``"return WEB 0002 of WEB 0001: SKU-B x 1"`` (the run's "after the import" table shows it)."""
    erp_id = str(credit["erp_id"])
    if credit.get("kind") == "cancelled":  # a proforma cancelled: no document of its own
        return AfterSale(kind="cancelled", detail=f"estimate {_printed(str(credit.get('of') or ''))} cancelled")
    number = _printed(erp_id)
    of = _printed(str(credit["of"])) if credit.get("of") else "an invoice"
    returned = credit.get("returned")
    returned = returned if isinstance(returned, dict) else {}
    lines = ", ".join(f"{sku} x {Decimal(str(qty)).normalize():f}" for sku, qty in sorted(returned.items()))
    detail = f"{credit.get('kind') or 'storno'} {number} of {of}" + (f": {lines}" if lines else "")
    if credit.get("kind") == "return":
        return AfterSale(kind="return", erp_id=erp_id, credit_note=number, detail=detail)
    return AfterSale(kind="storno", erp_id=erp_id, credit_note=number, detail=detail)


def _date(value: Any) -> date | None:
    try:
        return date.fromisoformat(str(value)) if value else None
    except ValueError:
        return None
