"""An order-status export from the ERP (order reference -> status, invoice, AWB) read into the file journal, and
the ``ErpOrderStatus`` of an order file from it. Which words mean what is ``[erp.status] states`` over
``core.config.files.STATUS_WORDS`` *(inference)*; a word it does not know leaves the order "open"."""

from __future__ import annotations

import json
import unicodedata
from datetime import date
from typing import Any

import pandas as pd

from erpsync.core.config.files import StatusFileSettings
from erpsync.core.models import ErpInvoice, ErpOrderStatus, ErpShipment

STATUS_KEYS = ("status", "invoice", "invoice_date", "awb", "carrier")


def status_rows(table: pd.DataFrame, settings: StatusFileSettings) -> tuple[dict[str, dict[str, str]], list[str]]:
    """reference -> {state, invoice, invoice_date, awb, carrier, word} (the last row of a reference wins), and
    the columns the file lacks (``reference`` is required; the others are read where the file has them)."""
    headers = {str(h).strip().lower(): h for h in table.columns}
    mapping = {k: v for k, v in settings.columns.items() if v.strip()}
    found = {k: headers.get(v.strip().lower()) for k, v in mapping.items()}
    if not found.get("reference"):
        return {}, [mapping.get("reference", "reference")]
    words = {plain(k): v for k, v in settings.words().items()}
    rows: dict[str, dict[str, str]] = {}
    columns = {k: table[h] for k, h in found.items() if h is not None}
    for index in range(len(table)):
        values = {k: _cell(series.iloc[index]) for k, series in columns.items()}
        reference = values.pop("reference", "")
        if not reference:
            continue
        word = values.get("status", "")
        rows[reference] = {
            "state": words.get(plain(word), "open"),
            "word": word,
            **{k: values.get(k, "") for k in STATUS_KEYS if k != "status"},
        }
    return rows, []


def plain(word: str) -> str:
    """A status word compared without case or diacritics ("Expediată" = "expediata")."""
    decomposed = unicodedata.normalize("NFKD", word.strip().lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def order_status(erp_id: str, reference: str | None, detail: str | None) -> ErpOrderStatus:
    """What the ERP said of an order file (``detail``: a status row as JSON), or "sent" when it said nothing."""
    if detail is None:
        return ErpOrderStatus(erp_id=erp_id, reference=reference, state="sent")
    row = json.loads(detail)
    state = row.get("state") or "open"
    invoice = row.get("invoice") or None
    awb = row.get("awb") or None
    shipped = state in ("shipped", "delivered") or bool(awb)
    invoiced = bool(invoice) or state in ("invoiced", "shipped", "delivered")
    return ErpOrderStatus(
        erp_id=erp_id,
        reference=reference,
        state=state,
        invoiced=invoiced and bool(invoice),
        invoice_number=invoice,
        shipped=shipped,
        delivered=state == "delivered",
        cancelled=state == "cancelled",
        awb=awb,
        shipments=[ErpShipment(erp_id=awb, state="done", shipped=True, awb=awb, carrier=row.get("carrier") or None)]
        if awb
        else [],
        invoices=[ErpInvoice(erp_id=invoice, number=invoice, issued=_date(row.get("invoice_date")))] if invoice else [],
    )


def _date(text: str | None) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None
