"""After the import, pure: the storno body of an invoice, the return invoice of some lines (negative
quantities at the invoice's prices), and the ``AfterSale`` of a recorded credit (``docs/oblio.md``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from erpsync.connectors.erp.oblio.client import SYSTEM
from erpsync.connectors.erp.oblio.mapping import SERVICE, DocId, decimal, stock_lines
from erpsync.connectors.errors import RecordError, record_error
from erpsync.core.models import AfterSale, ReturnLine


def storno_body(cif: str, doc: DocId, client: Mapping[str, Any], reference: str, issue_date: str) -> dict[str, Any]:
    """``POST /docs/invoice`` of the storno of a whole invoice: ``referenceDocument`` of type Factura *(inference:
    Oblio's page documents the field and its ``refund`` "for the invoice being reversed"; no products sent)*.
    ``idempotencyKey`` = ``"storno:" + reference``: a repeated request returns the same storno."""
    return {
        "cif": cif,
        "client": dict(client),
        "issueDate": issue_date,
        "seriesName": doc.series,
        "referenceDocument": {"type": "Factura", "seriesName": doc.series, "number": doc.number, "refund": 0},
        "useStock": 1,
        "mentions": f"Storno factura {doc.printed} ({reference})",
        "idempotencyKey": f"storno:{reference}",  # never the order's own key, whatever the caller passes
    }


def returned_so_far(details: Mapping[str, Any]) -> dict[str, Decimal]:
    """Quantity per SKU already credited on an invoice (its returns and storno)."""
    totals: dict[str, Decimal] = {}
    for credit in details.get("credits", []):
        for sku, quantity in (credit.get("returned") or {}).items():
            totals[sku] = totals.get(sku, Decimal(0)) + (decimal(quantity) or Decimal(0))
    return totals


def return_body(
    cif: str,
    erp_id: str,
    details: Mapping[str, Any] | None,
    lines: Sequence[ReturnLine],
    reference: str,
    issue_date: str,
) -> dict[str, Any]:
    """The return invoice of ``lines``: the invoice's series, client and currency, ``useStock``, a mention of the
    invoice, the original lines (name, code, price, VAT, unit, management) with the returned quantity negated.

    ``RecordError`` for an invoice without registered lines, one with a storno, a SKU not on it, a quantity not
    above 0, or more than invoiced less earlier returns.
    """
    if not details or not details.get("lines"):
        raise _refused(reference, f"the lines of invoice {erp_id} are not registered: book the return in Oblio")
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
                f"over-return of SKU {sku!r} on invoice {erp_id}: invoiced {invoiced[sku]}, returned already "
                f"{returned.get(sku, Decimal(0))}, asked {quantity}",
            )
        for original in details["lines"]:
            if quantity <= 0:
                break
            if str(original.get("code") or "") != sku or "discount" in original:
                continue
            if original.get("productType") == SERVICE:
                continue
            take = min(quantity, decimal(original.get("quantity")) or Decimal(0))
            products.append({**original, "quantity": float(-take)})
            quantity -= take
    doc = DocId.parse(erp_id)
    body: dict[str, Any] = {
        "cif": cif,
        "client": details.get("client") or {"name": "Client"},
        "issueDate": issue_date,
        "seriesName": doc.series,
        "useStock": 1,
        "mentions": f"Retur din factura {doc.printed} ({reference})",
        "products": products,
        "idempotencyKey": reference,
    }
    if details.get("currency"):
        body["currency"] = details["currency"]
    return body


def after_sale(credit: Mapping[str, Any]) -> AfterSale:
    """The ``AfterSale`` of a recorded credit: ``"storno FCT 0002 of FCT 0001: SKU-A x 2"``."""
    erp_id = str(credit["erp_id"])
    number = _printed(erp_id)
    of = _printed(str(credit["of"])) if credit.get("of") else "an invoice"
    returned = credit.get("returned") if isinstance(credit.get("returned"), dict) else {}
    shown = ", ".join(f"{sku} x {Decimal(str(q)).normalize():f}" for sku, q in sorted((returned or {}).items()))
    detail = f"{credit.get('kind') or 'storno'} {number} of {of}" + (f": {shown}" if shown else "")
    if credit.get("kind") == "return":
        return AfterSale(kind="return", erp_id=erp_id, credit_note=number, detail=detail)
    return AfterSale(kind="storno", erp_id=erp_id, credit_note=number, detail=detail)


def _printed(erp_id: str) -> str:
    try:
        return DocId.parse(erp_id).printed
    except ValueError:
        return erp_id


def _refused(reference: str, message: str) -> RecordError:
    return record_error(SYSTEM, reference, message)
