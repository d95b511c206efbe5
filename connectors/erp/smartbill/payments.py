"""Payments the shop collected, booked in SmartBill against the order's invoice (``POST /payment``), once.

Pure: the body of the call and what the registry keeps of a booked payment. The write-ahead idempotency (a mark
before the call, the payment recorded under its reference after) is the connector's, with the issued registry.

``POST /payment`` (SmartBill's Postman collection, section *Incasari*): ``{"companyVatCode", "client", "issueDate",
"precision", "value", "isDraft", "type", "isCash", "useInvoiceDetails", "invoicesList": [{"seriesName",
"number"}]}``; ``type`` is one of SmartBill's payment types ("Card", "Ordin plata", "Mandat postal", "Cec", "Bilet
ordin", "Alta incasare"; "Chitanta" and "Bon" are documents of their own that need a receipt series or a fiscal
printer, which erpsync does not configure). The reply is ``{"errorText", "message", "number", "series", "url"}``
(a number only for numbered documents such as a receipt).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from erpsync.connectors.erp.smartbill.client import SYSTEM
from erpsync.connectors.erp.smartbill.invoices import InvoiceId
from erpsync.connectors.erp.smartbill.mapping import invoice_client
from erpsync.connectors.errors import RecordError, record_error
from erpsync.core.models import Order

PAYMENT = "payment"  # the ``kind`` of a payment kept among an invoice's credits
CASH_TYPES = frozenset({"Chitanta", "Bon"})  # cash documents: a receipt series or a fiscal printer (unsupported)


def payment_body(
    invoice: InvoiceId,
    order: Order,
    details: Mapping[str, Any] | None,
    *,
    kind: str,
    cif: str,
    issue_date: str,
    reference: str,
) -> dict[str, Any]:
    """The ``POST /payment`` body of ``order``'s total, paid by ``kind``, against ``invoice``.

    ``RecordError`` before any call: an order without a total (or not above 0), a cash document type.
    """
    if kind in CASH_TYPES:
        raise _refused(
            reference,
            f"payment type {kind!r} is a cash document (receipt/fiscal receipt) erpsync cannot issue: map the "
            f"method to 'Card', 'Ordin plata' or 'Alta incasare' in [erp] payments, or book it in SmartBill",
        )
    total = order.total
    if total is None or total <= 0:
        raise _refused(reference, f"the order has no total to book as a payment ({total!r})")
    client = (details or {}).get("client") or invoice_client(order.customer, order.billing)
    return {
        "companyVatCode": cif,
        "client": client,
        "issueDate": issue_date,
        "currency": (details or {}).get("currency") or "RON",
        "precision": 2,
        "value": float(total.quantize(Decimal("0.01"))),
        "isDraft": False,
        "type": kind,
        "isCash": False,
        "useInvoiceDetails": False,
        "invoicesList": [{"seriesName": invoice.series, "number": invoice.number}],
    }


def payment_record(body: Mapping[str, Any], reply: Any, *, of: str, reference: str) -> dict[str, Any]:
    """What the registry keeps of a booked payment (under ``reference``, among the invoice's credits)."""
    reply = reply if isinstance(reply, dict) else {}
    number, series = str(reply.get("number") or ""), str(reply.get("series") or "")
    return {
        "kind": PAYMENT,
        "erp_id": f"{series}-{number}" if number and series else reference,
        "of": of,
        "reference": reference,
        "type": body.get("type"),
        "value": str(body.get("value")),
        "issued": body.get("issueDate"),
    }


def describe(payment: Mapping[str, Any]) -> str:
    """The payment document as the run shows it: ``"Card 151.00 on WEB 0001"``."""
    of = str(payment.get("of") or "")
    try:
        shown = InvoiceId.parse(of).printed
    except ValueError:
        shown = of
    value = Decimal(str(payment.get("value") or 0)).quantize(Decimal("0.01"))
    return f"{payment.get('type') or 'payment'} {value} on {shown}"


def _refused(reference: str, message: str) -> RecordError:
    return record_error(SYSTEM, reference, message)
