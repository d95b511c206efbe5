"""The SmartBill simulator's ``POST /estimate`` (proformas) and ``POST /payment`` (collections against invoices).

Shaped like SmartBill's Postman collection (sections *Proforme* and *Incasari*, kept in the public repository
``florin-szilagyi/smartbill-ts-sdk``): an estimate has the invoice's body without stock (it moves none), numbered
in an estimate series (``/series?type=p``); a payment carries ``value``, ``type`` and ``invoicesList`` of the
invoices it pays, and is refused when an invoice is unknown, cancelled or would be paid above its total.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from erpsync.testing._smartbill_docs import SimError, SimInvoice, SimProduct

PAYMENT_TYPES = frozenset(
    {"Card", "CEC", "Cec", "Bilet ordin", "Ordin plata", "Mandat postal", "Alta incasare", "Chitanta"}
)


@dataclass
class SimPayment:
    """A payment SmartBill registered: its type and value, the invoices (``"WEB-0001"``) it pays."""

    type: str
    value: Decimal
    invoices: list[str]
    issue_date: str
    number: str = ""  # receipts (Chitanta) only


class _ExtraRoutes:
    """``POST /estimate``, ``PUT /estimate/cancel`` and ``POST /payment`` (mixed into ``SmartBillSimulator``)."""

    cif: str
    taxes: list[tuple[str, Decimal]]
    warehouses: dict[str, dict[str, SimProduct]]
    invoices: dict[str, SimInvoice]
    estimate_series: dict[str, int]
    estimates: dict[str, SimInvoice]
    payments: list[SimPayment]
    _lock: threading.RLock

    # the invoice routes' helpers (``_InvoiceRoutes``)
    _require_cif: Any
    _json_body: Any
    _check_products: Any
    _today: Any
    invoice_url: str | None

    async def _estimate(self, request: Request) -> Response:
        body = await self._json_body(request)
        self._require_cif(request, str(body.get("companyVatCode") or ""))
        client = body.get("client")
        if not isinstance(client, dict) or not str(client.get("name") or "").strip():
            raise SimError("Numele clientului este obligatoriu.")
        series = str(body.get("seriesName") or "")
        products = body.get("products")
        if not isinstance(products, list) or not products:
            raise SimError("Proforma trebuie sa contina cel putin un produs.")
        with self._lock:
            if series not in self.estimate_series:
                raise SimError(f"Seria de proforme {series!r} nu exista.")
            _moves, total = self._check_products(products, False)
            number = self.estimate_series[series]
            self.estimate_series[series] = number + 1
            estimate = SimInvoice(
                series,
                number,
                client=client,
                products=products,
                use_stock=False,
                total=total,
                issue_date=str(body.get("issueDate") or self._today()),
                mentions=str(body.get("mentions") or ""),
            )
            if self.invoice_url is not None:
                estimate.url = self.invoice_url.format(series=series, number=f"{number:04d}", cif=self.cif)
            self.estimates[estimate.key] = estimate
        return JSONResponse(
            {"errorText": "", "message": "", "number": f"{number:04d}", "series": series, "url": estimate.url}
        )

    async def _estimate_cancel(self, request: Request) -> Response:
        """``PUT /estimate/cancel?cif=&seriesname=&number=``: the proforma stays, cancelled (it moved no stock)."""
        self._require_cif(request)
        query = request.query_params
        number = query.get("number", "")
        key = f"{query.get('seriesname')}-{int(number):04d}" if number.isdigit() else ""
        with self._lock:
            estimate = self.estimates.get(key)
            if estimate is None:
                raise SimError(f"Proforma {query.get('seriesname')} {number} nu exista.")
            if estimate.cancelled:
                raise SimError(f"Proforma {estimate.printed} este deja anulata.")
            estimate.cancelled = True
        return JSONResponse({"errorText": "", "message": "Proforma a fost anulata."})

    async def _payment(self, request: Request) -> Response:
        body = await self._json_body(request)
        self._require_cif(request, str(body.get("companyVatCode") or ""))
        kind = str(body.get("type") or "")
        if kind not in PAYMENT_TYPES:
            raise SimError(f"Tipul incasarii {kind!r} nu este valid.")
        try:
            value = Decimal(str(body.get("value")))
        except ArithmeticError:
            raise SimError("Valoarea incasarii nu este valida.") from None
        if not value.is_finite() or value <= 0:
            raise SimError("Valoarea incasarii trebuie sa fie pozitiva.")
        if kind == "Chitanta" and not body.get("seriesName"):
            raise SimError("Seria chitantei este obligatorie.")
        listed = body.get("invoicesList") or []
        listed = [listed] if isinstance(listed, dict) else listed
        with self._lock:
            keys = []
            for item in listed:
                number = str((item or {}).get("number") or "")
                key = f"{(item or {}).get('seriesName')}-{int(number):04d}" if number.isdigit() else ""
                invoice = self.invoices.get(key)
                if invoice is None:
                    raise SimError(f"Factura {item!r} nu exista.")
                if invoice.cancelled or invoice.reversed_by:
                    raise SimError(f"Factura {key} este anulata sau stornata.")
                paid = sum((p.value for p in self.payments if key in p.invoices), Decimal(0))
                if paid + value > invoice.total:
                    raise SimError(f"Valoarea incasata depaseste restul de plata al facturii {key}.")
                keys.append(key)
            payment = SimPayment(kind, value, keys, str(body.get("issueDate") or self._today()))
            if kind == "Chitanta":
                payment.number = f"{len(self.payments) + 1:04d}"
            self.payments.append(payment)
        series = str(body.get("seriesName") or "") if payment.number else ""
        return JSONResponse({"errorText": "", "message": "", "number": payment.number, "series": series, "url": ""})
