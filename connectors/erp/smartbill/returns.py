"""After the import, pure: what the registry keeps of an invoice, a storno/return reply as a credit, and the
``POST /invoice`` body of a return (negative quantities of the returned lines, at the invoice's prices).

No HTTP here; ``connector.py`` makes the calls. Decisions are written up in ``docs/smartbill.md`` ("After the
import").
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from erpsync.connectors.erp.smartbill.client import SYSTEM
from erpsync.connectors.erp.smartbill.invoices import InvoiceId
from erpsync.connectors.errors import RecordError, record_error
from erpsync.core.models import ReturnLine

_ALREADY_REVERSED = re.compile(r"deja stornat|already reversed|exista stornari", re.IGNORECASE)


def is_already_reversed(message: str) -> bool:
    """Whether a refused storno only says the invoice has one already (SmartBill allows one per invoice)."""
    return _ALREADY_REVERSED.search(message) is not None


def invoice_details(body: Mapping[str, Any], reply: Any) -> dict[str, Any]:
    """What the registry keeps of an issued invoice: its date, the link the reply gave, the client, the currency
    and the lines as sent (the prices a later return is booked at)."""
    reply = reply if isinstance(reply, dict) else {}
    return {
        "issued": body.get("issueDate"),
        "url": _link(reply),
        "client": body.get("client"),
        "currency": body.get("currency"),
        "lines": list(body.get("products") or []),
    }


def credit_invoice(reply: Any, *, kind: str, of: str, reference: str, issued: str) -> dict[str, Any]:
    """A storno/return reply as the credit the registry keeps; ``RecordError`` when it names no document."""
    reply = reply if isinstance(reply, dict) else {}
    number = str(reply.get("number") or "")
    if not number:
        raise record_error(
            SYSTEM, reference, f"SmartBill answered the {kind} of {of} without a number: {reply!r}"[:300]
        )
    series = str(reply.get("series") or InvoiceId.parse(of).series)
    return {
        "erp_id": str(InvoiceId(series, number)),
        "of": of,
        "kind": kind,
        "issued": issued,
        "url": _link(reply),
        "reference": reference,
    }


def stock_lines(products: Sequence[Mapping[str, Any]]) -> dict[str, Decimal]:
    """Quantity per product code of an invoice's stock lines (no service, discount or code-less line)."""
    totals: dict[str, Decimal] = {}
    for line in products:
        code = str(line.get("code") or "")
        if not code or line.get("isService") or line.get("isDiscount"):
            continue
        totals[code] = totals.get(code, Decimal(0)) + _decimal(line.get("quantity"))
    return totals


def returned_so_far(details: Mapping[str, Any]) -> dict[str, Decimal]:
    """Quantity per SKU already credited on an invoice (its returns and storno)."""
    totals: dict[str, Decimal] = {}
    for credit in details.get("credits", []):
        for sku, quantity in (credit.get("returned") or {}).items():
            totals[sku] = totals.get(sku, Decimal(0)) + _decimal(quantity)
    return totals


def return_products(
    erp_id: str, details: Mapping[str, Any] | None, lines: Sequence[ReturnLine], reference: str
) -> dict[str, Any]:
    """The return invoice of ``lines`` (without ``companyVatCode``/``issueDate``): the invoice's series and
    client, ``useStock``, a mention of the invoice, and per SKU the original lines (name, price, VAT, unit,
    warehouse) with the returned quantity negated.

    ``RecordError`` for: an invoice without registered lines, one already reversed, a SKU not on it, a quantity
    not above 0, more than invoiced minus earlier returns (over-return).
    """
    if not details or not details.get("lines"):
        raise _refused(
            reference,
            f"the lines of invoice {erp_id} are not registered (issued before erpsync kept them, or linked by "
            f"hand): book the return in SmartBill by hand",
        )
    stornos = [str(c.get("erp_id")) for c in details.get("credits", []) if c.get("kind") == "storno"]
    if stornos:
        raise _refused(reference, f"invoice {erp_id} is reversed whole by storno {stornos[0]}: nothing to return")
    invoiced = stock_lines(details["lines"])
    returned = returned_so_far(details)
    asked: dict[str, Decimal] = {}
    for line in lines:
        if line.sku not in invoiced:
            raise _refused(reference, f"SKU {line.sku!r} is not on invoice {erp_id}")
        if line.quantity <= 0:
            raise _refused(reference, f"SKU {line.sku!r}: a return quantity must be above 0, not {line.quantity}")
        asked[line.sku] = asked.get(line.sku, Decimal(0)) + line.quantity
    if not asked:
        raise _refused(reference, "a return needs at least one line")
    products: list[dict[str, Any]] = []
    for sku, quantity in asked.items():
        left = invoiced[sku] - returned.get(sku, Decimal(0))
        if quantity > left:
            raise _refused(
                reference,
                f"over-return of SKU {sku!r} on invoice {erp_id}: invoiced {_show(invoiced[sku])}, returned "
                f"already {_show(returned.get(sku, Decimal(0)))}, asked {_show(quantity)}",
            )
        for original in details["lines"]:
            if quantity <= 0:
                break
            if str(original.get("code") or "") != sku or original.get("isService") or original.get("isDiscount"):
                continue
            take = min(quantity, _decimal(original.get("quantity")))
            products.append({**original, "quantity": float(-take)})
            quantity -= take
    invoice = InvoiceId.parse(erp_id)
    body: dict[str, Any] = {
        "client": details.get("client") or {},
        "seriesName": invoice.series,
        "isDraft": False,
        "useStock": True,
        "mentions": f"Retur din factura {invoice.printed} ({reference})",
        "products": products,
    }
    if details.get("currency"):
        body["currency"] = details["currency"]
    return body


def _refused(reference: str, message: str) -> RecordError:
    return record_error(SYSTEM, reference, message)


def _link(reply: Mapping[str, Any]) -> str | None:
    for key in ("documentViewUrl", "url"):
        value = reply.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _show(value: Decimal) -> str:
    return f"{value.normalize():f}"


def _decimal(value: Any) -> Decimal:
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return Decimal(0)
    return number if number.is_finite() else Decimal(0)
