"""The Oblio simulator's documents: invoices and proformas (``POST /docs/invoice|proforma``), storno by
``referenceDocument``, cancel, delete, view and list. The gate (tokens, the lock) is ``erpsync.testing.oblio``.

Shapes follow Oblio's API page (https://www.oblio.eu/api); where it is silent the simulator makes a choice that is
marked *(inference)* and written up in ``docs/oblio.md``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

CENT = Decimal("0.01")
SERVICE = "Serviciu"


class SimError(Exception):
    """A refusal: HTTP 400 with ``{"status": 400, "statusMessage": ...}``."""


@dataclass
class SimItem:
    """One product of the nomenclature, with its stock per management."""

    name: str
    code: str
    price: Decimal = Decimal("10.00")
    vat: Decimal = Decimal(21)
    unit: str = "buc"
    product_type: str = "Marfa"
    description: str = ""
    stock: dict[str, Decimal] = field(default_factory=dict)


@dataclass
class SimDoc:
    """An issued invoice or proforma."""

    kind: str  # "Factura" | "Proforma"
    series: str
    number: str
    issue_date: str
    client: dict[str, Any]
    products: list[dict[str, Any]]
    total: Decimal
    use_stock: bool = False
    canceled: bool = False
    storno_of: str | None = None  # "FCT-0001" for a storno
    stornoed_by: str | None = None  # the storno of this invoice
    idempotency_key: str | None = None
    mentions: str = ""
    id: int = 0

    @property
    def key(self) -> str:
        return f"{self.series}-{self.number}"


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def number(value: Any, what: str) -> Decimal:
    try:
        result = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise SimError(f"Valoare invalida pentru {what}: {value!r}") from None
    if not result.is_finite():
        raise SimError(f"Valoare invalida pentru {what}: {value!r}")
    return result


def json_number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def document_total(products: list[dict[str, Any]]) -> Decimal:
    """The total as the simulator computes it: each line round(quantity x price (+VAT when excluded), 2); a
    discount line (``discount``) takes its value (``valoric``) or percentage (``procentual``) of the lines before
    it that have no discount (``discountAllAbove`` 1) or of the one line right above it (0)."""
    total = Decimal(0)
    open_lines: list[Decimal] = []
    for row in products:
        if "discount" in row:
            base_lines = open_lines if str(row.get("discountAllAbove", 0)) in ("1", "True", "true") else open_lines[-1:]
            base = sum(base_lines, Decimal(0))
            amount = number(row["discount"], "discount")
            if str(row.get("discountType") or "valoric") == "procentual":
                amount = cents(base * amount / 100)
            if amount > base:
                raise SimError(f"Discountul {row.get('name')!r} depaseste valoarea produselor")
            total -= amount
            open_lines = [] if base_lines is open_lines else open_lines[:-1]
            continue
        price = number(row.get("price"), "price")
        quantity = number(row.get("quantity", 1), "quantity")
        if str(row.get("vatIncluded", 1)) in ("0", "False", "false"):
            price = price * (1 + number(row.get("vatPercentage", 0), "vatPercentage") / 100)
        amount = cents(quantity * price)
        open_lines.append(amount)
        total += amount
    return total


class _DocRoutes:
    """Mixed into ``OblioSimulator``: the document routes (state lives on the simulator)."""

    cif: str
    products: dict[str, SimItem]
    managements: dict[str, str]
    series: dict[str, tuple[str, int]]
    docs: dict[str, SimDoc]
    idempotency: dict[str, str]
    allow_negative_stock: bool
    link_template: str
    today: str | None
    _lock: threading.RLock

    def _require_cif(self, value: Any) -> None:
        if str(value or "") != self.cif:
            raise SimError(f"Nu aveti acces la firma cu CIF {value!r}")

    def _link(self, doc: SimDoc) -> str:
        return self.link_template.format(id=doc.id, series=doc.series, number=doc.number)

    def _reply(self, doc: SimDoc, message: str = "Success") -> Response:
        data = {"seriesName": doc.series, "number": doc.number, "link": self._link(doc)}
        return JSONResponse({"status": 200, "statusMessage": message, "data": data})

    async def _issue_invoice(self, request: Request) -> Response:
        return await self._issue(request, "Factura")

    async def _issue_proforma(self, request: Request) -> Response:
        return await self._issue(request, "Proforma")

    async def _issue(self, request: Request, kind: str) -> Response:
        body = await _json(request)
        self._require_cif(body.get("cif"))
        key = str(body.get("idempotencyKey") or "") or None
        with self._lock:
            if key is not None and key in self.idempotency:
                return self._reply(self.docs[self.idempotency[key]])  # the same document, never a second
            doc = self._build(body, kind)
            doc.idempotency_key = key
            self.docs[doc.key] = doc
            if key is not None:
                self.idempotency[key] = doc.key
        return self._reply(doc)

    def _build(self, body: dict[str, Any], kind: str) -> SimDoc:
        series = str(body.get("seriesName") or "")
        known = self.series.get(series)
        if known is None or known[0] != kind:
            raise SimError(f"Seria {series!r} nu exista pentru {kind}")
        client = body.get("client")
        if not isinstance(client, dict) or not str(client.get("name") or "").strip():
            raise SimError("Numele clientului este obligatoriu")
        reference = body.get("referenceDocument")
        use_stock = kind == "Factura" and str(body.get("useStock", 0)) in ("1", "True", "true")
        storno_of = None
        if isinstance(reference, dict):
            products, storno_of, use_stock = self._storno_lines(reference)
        else:
            given = body.get("products")
            if not isinstance(given, list) or not given:
                raise SimError("Documentul trebuie sa aiba cel putin un produs")
            products = [dict(p) for p in given if isinstance(p, dict)]
            for row in products:
                if "discount" not in row and not str(row.get("name") or "").strip():
                    raise SimError("Numele produsului este obligatoriu")
                if "discount" not in row and "price" not in row:
                    raise SimError(f"Pretul produsului {row.get('name')!r} este obligatoriu")
        total = document_total(products)
        if use_stock:
            self._move_stock(products, sign=-1)
        next_number = known[1]
        self.series[series] = (kind, next_number + 1)
        doc = SimDoc(
            kind=kind,
            series=series,
            number=f"{next_number:04d}",
            issue_date=str(body.get("issueDate") or self.today or date.today().isoformat()),
            client=dict(client),
            products=products,
            total=total,
            use_stock=use_stock,
            storno_of=storno_of,
            mentions=str(body.get("mentions") or ""),
            id=len(self.docs) + 1,
        )
        if storno_of is not None:
            self.docs[storno_of].stornoed_by = doc.key
        return doc

    def _storno_lines(self, reference: dict[str, Any]) -> tuple[list[dict[str, Any]], str, bool]:
        """A ``referenceDocument`` of type Factura: the whole invoice reversed *(inference)*."""
        if str(reference.get("type") or "") != "Factura":
            raise SimError("Simulatorul stie doar referenceDocument de tip Factura (storno)")
        key = f"{reference.get('seriesName')}-{reference.get('number')}"
        original = self.docs.get(key)
        if original is None or original.kind != "Factura":
            raise SimError(f"Factura {key} nu exista")
        if original.canceled:
            raise SimError(f"Factura {key} este anulata")
        if original.stornoed_by is not None:
            raise SimError(f"Factura {key} a fost deja stornata")
        lines = []
        for row in original.products:
            if "discount" in row:
                lines.append(dict(row) | {"discount": str(-number(row["discount"], "discount"))})
            else:
                lines.append(dict(row) | {"quantity": str(-number(row.get("quantity", 1), "quantity"))})
        return lines, key, original.use_stock

    def _move_stock(self, products: list[dict[str, Any]], *, sign: int) -> None:
        """Take stock out (``sign`` -1; negative quantities come back in); all lines checked before any moves."""
        moves: list[tuple[SimItem, str, Decimal]] = []
        for row in products:
            if "discount" in row or str(row.get("productType") or "") == SERVICE:
                continue
            management = str(row.get("management") or "")
            if management not in self.managements:
                raise SimError(f"Gestiunea {management!r} nu exista")
            code = str(row.get("code") or "")
            item = self.products.get(code) if code else None
            if item is None:
                item = next((p for p in self.products.values() if p.name == row.get("name") and not p.code), None)
            if item is None or item.product_type == SERVICE:
                raise SimError(f"Produsul {code or row.get('name')!r} nu exista in gestiunea {management!r}")
            quantity = number(row.get("quantity", 1), "quantity") * sign
            have = item.stock.get(management, Decimal(0))
            if quantity < 0 and have + quantity < 0 and not self.allow_negative_stock:
                raise SimError(f"Stoc insuficient pentru produsul {item.code!r} in gestiunea {management!r}: {have}")
            moves.append((item, management, quantity))
        for item, management, quantity in moves:
            item.stock[management] = item.stock.get(management, Decimal(0)) + quantity
        if moves:
            self._stock_moved({(item.code or item.name, management) for item, management, _ in moves})

    def _stock_moved(self, moved: set[tuple[str, str]]) -> None:
        """Hook: goods whose stock changed (code, management); the simulator queues its stock notices."""

    def _find(self, series: Any, number_: Any, kind: str) -> SimDoc:
        doc = self.docs.get(f"{series}-{number_}")
        if doc is None or doc.kind != kind:
            raise SimError(f"Documentul {series} {number_} nu exista")
        return doc

    async def _view(self, request: Request, kind: str) -> Response:
        query = request.query_params
        self._require_cif(query.get("cif"))
        with self._lock:
            doc = self._find(query.get("seriesName"), query.get("number"), kind)
            data = {
                "documentType": kind,
                "seriesName": doc.series,
                "number": doc.number,
                "link": self._link(doc),
                "collects": [],
            }
        return JSONResponse({"status": 200, "statusMessage": "Success", "data": data})

    async def _view_invoice(self, request: Request) -> Response:
        return await self._view(request, "Factura")

    async def _list(self, request: Request, kind: str) -> Response:
        query = request.query_params
        self._require_cif(query.get("cif"))
        limit = min(100, int(query.get("limitPerPage") or 100))
        offset = int(query.get("offset") or 0)
        with self._lock:
            rows = [doc for doc in self.docs.values() if doc.kind == kind]
            for name, attr in (("seriesName", "series"), ("number", "number")):
                if query.get(name):
                    rows = [doc for doc in rows if getattr(doc, attr) == query[name]]
            if query.get("canceled") in ("0", "1"):
                rows = [doc for doc in rows if doc.canceled == (query["canceled"] == "1")]
            if query.get("issuedAfter"):
                rows = [doc for doc in rows if doc.issue_date >= query["issuedAfter"]]
            data = [self._row(doc, bool(query.get("withProducts"))) for doc in rows[offset : offset + limit]]
        return JSONResponse({"status": 200, "statusMessage": "Success", "data": data})

    def _row(self, doc: SimDoc, with_products: bool) -> dict[str, Any]:
        row: dict[str, Any] = {
            "id": str(doc.id),
            "draft": "0",
            "canceled": "1" if doc.canceled else "0",
            "seriesName": doc.series,
            "number": doc.number,
            "issueDate": doc.issue_date,
            "total": f"{doc.total:.4f}",
            "mentions": doc.mentions,
            "useStock": "1" if doc.use_stock else "0",
            "type": doc.kind,
            "link": self._link(doc),
            "client": doc.client,
        }
        if with_products:
            row["products"] = doc.products
        return row

    async def _list_invoices(self, request: Request) -> Response:
        return await self._list(request, "Factura")

    async def _list_proformas(self, request: Request) -> Response:
        return await self._list(request, "Proforma")

    async def _cancel(self, request: Request, kind: str) -> Response:
        body = await _json(request)
        self._require_cif(body.get("cif"))
        with self._lock:
            doc = self._find(body.get("seriesName"), body.get("number"), kind)
            if doc.canceled:
                raise SimError("Documentul este deja anulat")
            if doc.stornoed_by is not None:
                raise SimError("Documentul are storno: nu poate fi anulat")
            if doc.use_stock:
                self._move_stock(doc.products, sign=1)  # the stock comes back (inference)
            doc.canceled = True
        return self._reply(doc, "Documentul a fost anulat.")

    async def _cancel_invoice(self, request: Request) -> Response:
        return await self._cancel(request, "Factura")

    async def _cancel_proforma(self, request: Request) -> Response:
        return await self._cancel(request, "Proforma")

    async def _delete_invoice(self, request: Request) -> Response:
        body = await _json(request)
        self._require_cif(body.get("cif"))
        with self._lock:
            doc = self._find(body.get("seriesName"), body.get("number"), "Factura")
            if self.series[doc.series][1] != int(doc.number) + 1:
                raise SimError("Se poate sterge doar ultima factura din serie")
            if doc.use_stock and not doc.canceled:
                self._move_stock(doc.products, sign=1)
            del self.docs[doc.key]
            self.series[doc.series] = ("Factura", int(doc.number))
            if doc.idempotency_key:
                self.idempotency.pop(doc.idempotency_key, None)
        data = {"documentType": "Factura", "seriesName": doc.series, "number": doc.number}
        return JSONResponse({"status": 200, "statusMessage": "Documentul a fost sters.", "data": data})


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise SimError("Corpul cererii nu este JSON valid") from None
    if not isinstance(body, dict):
        raise SimError("Corpul cererii trebuie sa fie un obiect JSON")
    return body
