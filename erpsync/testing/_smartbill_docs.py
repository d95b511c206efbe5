"""The SmartBill simulator's documents: invoices (negative quantities included), storno, cancel, PDF.

``_InvoiceRoutes`` is a mixin of ``SmartBillSimulator`` (``erpsync/testing/smartbill.py``), which supplies the
state it reads (``cif``, ``series``, ``taxes``, ``warehouses``, ``invoices``, ``_lock``...). What is documented
and what is inference is written up in ``docs/smartbill.md`` ("After the import").
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response


class SimError(Exception):
    """A refusal the simulator answers as ``errorText`` (HTTP 200 or 400, by route)."""


@dataclass
class SimProduct:
    """One product code in one warehouse."""

    name: str
    quantity: Decimal
    unit: str = "buc"


@dataclass
class SimInvoice:
    """An issued invoice (or storno), as the simulator remembers it."""

    series: str
    number: int
    client: dict[str, Any]
    products: list[dict[str, Any]]
    use_stock: bool
    total: Decimal
    cancelled: bool = False
    issue_date: str = ""
    mentions: str = ""
    url: str = ""
    storno_of: str | None = None  # the invoice this storno reverses
    reversed_by: str | None = None  # the storno of this invoice
    e_factura: bool = False  # sent to RO e-Factura (SPV): it can no longer be cancelled

    @property
    def key(self) -> str:
        return f"{self.series}-{self.number:04d}"

    @property
    def printed(self) -> str:
        return f"{self.series}{self.number:04d}"


class _InvoiceRoutes:
    """``POST /invoice``, ``POST|PUT /invoice/reverse``, ``PUT|DELETE /invoice/cancel``, ``GET /invoice/pdf``."""

    cif: str
    series: dict[str, int]
    taxes: list[tuple[str, Decimal]]
    warehouses: dict[str, dict[str, SimProduct]]
    invoices: dict[str, SimInvoice]
    allow_negative_stock: bool
    invoice_url: str | None
    _lock: threading.RLock

    def _require_cif(self, request: Request, value: str | None = None) -> None:
        cif = value if value is not None else request.query_params.get("cif", "")
        if not cif:
            raise SimError("Parametrul cif este obligatoriu.")
        if cif != self.cif:
            raise SimError(f"Nu aveti drepturi de acces pe firma cu CIF-ul {cif}.")

    def _today(self) -> str:
        return date.today().isoformat()

    def _issue(self, series: str, **fields: Any) -> SimInvoice:
        """Number a document in ``series`` (under the lock) and keep it."""
        number = self.series[series]
        self.series[series] = number + 1
        invoice = SimInvoice(series, number, **fields)
        if self.invoice_url is not None:
            invoice.url = self.invoice_url.format(series=series, number=f"{number:04d}", cif=self.cif)
        self.invoices[invoice.key] = invoice
        return invoice

    @staticmethod
    def _reply(invoice: SimInvoice) -> Response:
        return JSONResponse(
            {
                "errorText": "",
                "message": "",
                "number": f"{invoice.number:04d}",
                "series": invoice.series,
                "url": invoice.url,
            }
        )

    @staticmethod
    async def _json_body(request: Request) -> dict[str, Any]:
        try:
            body = json.loads(await request.body(), parse_float=Decimal)
        except ValueError:
            raise SimError("Corpul cererii nu este JSON valid.") from None
        if not isinstance(body, dict):
            raise SimError("Corpul cererii trebuie sa fie un obiect JSON.")
        return body

    async def _invoice(self, request: Request) -> Response:
        body = await self._json_body(request)
        self._require_cif(request, str(body.get("companyVatCode") or ""))
        client = body.get("client")
        if not isinstance(client, dict) or not str(client.get("name") or "").strip():
            raise SimError("Numele clientului este obligatoriu.")
        series = str(body.get("seriesName") or "")
        products = body.get("products")
        if not isinstance(products, list) or not products:
            raise SimError("Factura trebuie sa contina cel putin un produs.")
        use_stock = bool(body.get("useStock"))
        with self._lock:
            if series not in self.series:
                raise SimError(f"Seria {series!r} nu exista.")
            moves, total = self._check_products(products, use_stock)
            for warehouse, code, quantity in moves:
                self.warehouses[warehouse][code].quantity -= quantity  # a negative quantity comes back
            invoice = self._issue(
                series,
                client=client,
                products=products,
                use_stock=use_stock,
                total=total,
                issue_date=str(body.get("issueDate") or self._today()),
                mentions=str(body.get("mentions") or ""),
            )
        return self._reply(invoice)

    def _check_products(self, products: list[Any], use_stock: bool) -> tuple[list[tuple[str, str, Decimal]], Decimal]:
        """Validate every line before anything moves: the stock moves and the invoice total.

        A negative quantity (a return on an invoice: *inference*, SmartBill's UI issues partial stornos so) is
        accepted; with ``useStock`` it brings the goods back into its warehouse (code and warehouse must exist).
        """
        rates = {rate for _, rate in self.taxes}
        names = {name: rate for name, rate in self.taxes}
        moves: list[tuple[str, str, Decimal]] = []
        wanted: dict[tuple[str, str], Decimal] = {}
        total = Decimal(0)
        amounts: list[Decimal] = []  # what each line adds to the total (VAT included)
        for index, line in enumerate(products, start=1):
            if not isinstance(line, dict) or not str(line.get("name") or "").strip():
                raise SimError(f"Produsul {index}: numele este obligatoriu.")
            if line.get("isDiscount"):
                self._check_tax(line, rates, names)
                amount = _discount_amount(line, amounts)
                amounts.append(amount)
                total += amount
                continue
            quantity = _decimal(line.get("quantity"))
            price = _decimal(line.get("price"))
            if quantity is None or quantity == 0 or price is None or price < 0:
                raise SimError(f"Produsul {line['name']}: cantitate sau pret invalid.")
            if not line.get("measuringUnitName"):
                raise SimError(f"Produsul {line['name']}: unitatea de masura este obligatorie.")
            self._check_tax(line, rates, names)
            amount = _cents(quantity * price)
            amounts.append(amount)
            total += amount
            if not use_stock or line.get("isService"):
                continue
            code = str(line.get("code") or "")
            warehouse = str(line.get("warehouseName") or "")
            if warehouse not in self.warehouses:
                raise SimError(f"Gestiunea {warehouse!r} nu exista.")
            if code not in self.warehouses[warehouse]:
                raise SimError(f'Produsul cu codul "{code}" nu exista in gestiunea "{warehouse}".')
            key = (warehouse, code)
            wanted[key] = wanted.get(key, Decimal(0)) + quantity
            have = self.warehouses[warehouse][code].quantity
            if not self.allow_negative_stock and quantity > 0 and wanted[key] > have:
                raise SimError(
                    f'Stoc insuficient pentru produsul cu codul "{code}" in gestiunea "{warehouse}" '
                    f"(disponibil {number_json(have)})."
                )
            moves.append((warehouse, code, quantity))
        return moves, total

    @staticmethod
    def _check_tax(line: dict[str, Any], rates: set[Decimal], names: dict[str, Decimal]) -> None:
        rate = _decimal(line.get("taxPercentage"))
        if rate is None or rate not in rates:
            raise SimError(f"Cota TVA {line.get('taxPercentage')} nu este definita.")
        tax_name = line.get("taxName")
        if tax_name and names.get(tax_name) != rate:
            raise SimError(f"Cota TVA {tax_name!r} nu corespunde procentului {rate}.")

    def _lookup(self, series: str, number: str) -> SimInvoice:
        try:
            key = f"{series}-{int(number):04d}"
        except ValueError:
            raise SimError("Numarul facturii este obligatoriu.") from None
        invoice = self.invoices.get(key)
        if invoice is None:
            raise SimError(f"Factura {series}{number} nu exista.")
        return invoice

    def _find_invoice(self, request: Request) -> SimInvoice:
        self._require_cif(request)
        query = request.query_params
        return self._lookup(query.get("seriesname", ""), query.get("number", ""))

    def _restock(self, invoice: SimInvoice, sign: int) -> None:
        """Put the stock lines of ``invoice`` back (``sign`` 1) as they left."""
        if not invoice.use_stock:
            return
        for line in invoice.products:
            if line.get("isService") or line.get("isDiscount"):
                continue
            product = self.warehouses[line["warehouseName"]][line["code"]]
            product.quantity += sign * (_decimal(line["quantity"]) or Decimal(0))

    async def _cancel(self, request: Request) -> Response:
        """Cancel an issued invoice (stays in the books as cancelled; its stock comes back). Refused for an
        invoice sent to e-Factura or with a storno (*inference*: Romanian law forbids cancelling a document
        already in SPV; a reversed invoice is settled by its storno)."""
        with self._lock:
            invoice = self._find_invoice(request)
            if invoice.cancelled:
                raise SimError(f"Factura {invoice.printed} este deja anulata.")
            if invoice.e_factura:
                raise SimError(
                    f"Factura {invoice.printed} a fost transmisa in e-Factura si nu mai poate fi anulata; "
                    f"emiteti o factura storno."
                )
            if invoice.reversed_by is not None or invoice.storno_of is not None:
                raise SimError(f"Factura {invoice.printed} are stornari si nu poate fi anulata.")
            invoice.cancelled = True
            self._restock(invoice, 1)
        return JSONResponse({"errorText": "", "message": "Factura a fost anulata."})

    async def _reverse(self, request: Request) -> Response:
        """Storno: a new invoice in the same series, every line of the original with its quantity negated
        (discounts with their value negated), the stock back when the original used stock. Only an existing
        invoice without a storno can be reversed (SmartBill's documentation); a storno, a cancelled invoice or a
        storno dated before its invoice is refused (*inference*)."""
        body = await self._json_body(request)
        self._require_cif(request, str(body.get("companyVatCode") or ""))
        series = str(body.get("seriesName") or "")
        issue_date = str(body.get("issueDate") or self._today())
        try:
            date.fromisoformat(issue_date)
        except ValueError:
            raise SimError(f"Data {issue_date} nu este valida (format yyyy-MM-dd).") from None
        with self._lock:
            original = self._lookup(series, str(body.get("number") or ""))
            if original.reversed_by is not None:
                raise SimError(f"Factura {original.printed} este deja stornata.")
            if original.storno_of is not None:
                raise SimError(f"Factura {original.printed} este o factura storno si nu poate fi stornata.")
            if original.cancelled:
                raise SimError(f"Factura {original.printed} este anulata si nu poate fi stornata.")
            if original.issue_date and issue_date < original.issue_date:
                raise SimError(f"Data facturii storno nu poate fi anterioara facturii {original.printed}.")
            storno = self._issue(
                series,
                client=original.client,
                products=[_negated(line) for line in original.products],
                use_stock=original.use_stock,
                total=-original.total,
                issue_date=issue_date,
                mentions=f"Stornare factura {original.printed}",
                storno_of=original.key,
            )
            original.reversed_by = storno.key
            self._restock(original, 1)
        return self._reply(storno)

    async def _pdf(self, request: Request) -> Response:
        with self._lock:
            invoice = self._find_invoice(request)
            content = (
                f"%PDF-1.4\n% simulated SmartBill invoice {invoice.printed} of {invoice.issue_date}, "
                f"total {invoice.total}\n%%EOF\n"
            ).encode()
        return Response(content, media_type="application/octet-stream")


def _negated(line: dict[str, Any]) -> dict[str, Any]:
    copy = dict(line)
    if line.get("isDiscount"):
        value = _decimal(line.get("discountValue"))
        if value is not None:
            copy["discountValue"] = -value
        return copy
    copy["quantity"] = -(_decimal(line.get("quantity")) or Decimal(0))
    return copy


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _cents(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def _discount_amount(line: dict[str, Any], amounts: list[Decimal]) -> Decimal:
    """What a discount line (``isDiscount``) adds to the total: a negative amount, VAT included (positive on a
    storno, which negates it).

    It applies to the ``numberOfItems`` lines right before it (at least 1, at most the lines before it);
    ``discountType`` 1 takes off ``discountValue`` (sent as a negative number; 0 or positive is refused unless
    the lines it covers are negative), 2 takes off ``discountPercentage`` (0-100) % of those lines, rounded to
    the ban. A discount larger than the lines it applies to is refused. *(inference: the reference names
    ``isDiscount`` and "discount type/value fields beside it"; the field names and the sign follow SmartBill's
    public API documentation)*
    """
    name = line.get("name")
    count = line.get("numberOfItems")
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= len(amounts):
        raise SimError(f"Discountul {name}: numarul de produse la care se aplica este invalid ({count!r}).")
    base = sum(amounts[-count:], Decimal(0))
    sign = -1 if base < 0 else 1
    kind = line.get("discountType")
    if kind == 1:
        value = _decimal(line.get("discountValue"))
        if value is None or value * sign >= 0:
            raise SimError(f"Discountul {name}: valoarea discountului trebuie sa fie negativa.")
        amount = _cents(value)
    elif kind == 2:
        percent = _decimal(line.get("discountPercentage"))
        if percent is None or not 0 < percent <= 100:
            raise SimError(f"Discountul {name}: procentul discountului este invalid.")
        amount = -_cents(base * percent / 100)
    else:
        raise SimError(f"Discountul {name}: tipul discountului este invalid ({kind!r}).")
    if (base + amount) * sign < 0:
        raise SimError(f"Discountul {name} depaseste valoarea produselor la care se aplica.")
    return amount


def number_json(value: Decimal) -> int | float:
    """A quantity as SmartBill writes it in JSON: a plain number."""
    return int(value) if value == value.to_integral_value() else float(value)
