"""Oblio as an ERP: products and stock per management in, shop orders out as invoices (or proformas) that take
stock out, stornos and returns back (``docs/oblio.md``).

Oblio has no sales-order or customer-create endpoint: the client travels inside each document, an order becomes
an invoice (``useStock``) whose id is ``"SERIES-NUMBER"`` (``"proforma:SERIES-NUMBER"`` for a proforma), keyed
by ``idempotencyKey`` = the order's reference so a repeated POST never issues a second document.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import date, datetime
from decimal import Decimal
from functools import partial
from typing import TYPE_CHECKING, Any, NoReturn
from zoneinfo import ZoneInfo

import httpx

from erpsync.connectors.erp.base import Capabilities, Needs, NotSupported, Probe
from erpsync.connectors.erp.oblio.client import SYSTEM, OblioClient
from erpsync.connectors.erp.oblio.mapping import (
    DocId,
    decimal,
    document_body,
    is_service,
    parse_product,
    stock_levels,
)
from erpsync.connectors.erp.oblio.registry import MemoryOblioRegistry, OblioRegistry
from erpsync.connectors.erp.oblio.returns import after_sale, return_body, storno_body
from erpsync.connectors.errors import ConnectorError, FatalError, RecordError, record_error
from erpsync.connectors.http import Counters
from erpsync.core.models import (
    AfterSale,
    Customer,
    ErpInvoice,
    ErpOrderStatus,
    GoodsReceipt,
    Order,
    Page,
    Product,
    ReturnLine,
    StockLevel,
    Supplier,
)

if TYPE_CHECKING:
    from erpsync.core.config import OblioSettings

log = logging.getLogger("erpsync.oblio")

BUCHAREST = ZoneInfo("Europe/Bucharest")
PAGE = 250  # Oblio's nomenclature page (offset in multiples of 250)

CAPABILITIES = Capabilities(
    products_read=True,
    stock_read=True,
    orders_create=True,
    orders_read_status=True,
    orders_cancel=True,
    orders_return=True,
    invoices=True,
)


class OblioConnector:
    """Oblio through its REST API (``https://www.oblio.eu/api``)."""

    system = SYSTEM
    capabilities = CAPABILITIES
    product_fields = frozenset({"name", "description", "price", "vat"})

    def __init__(
        self,
        url: str,
        email: str,
        secret: str,
        cif: str,
        *,
        invoice_series: str = "FCT",
        document: str = "invoice",
        measuring_unit: str = "buc",
        order_warehouse: str | None = None,
        shipping_name: str = "Transport",
        requests_per_second: float = 2.5,
        window_margin_seconds: float = 0.25,
        max_retries: int = 2,
        timeout_seconds: float = 30,
        transport: httpx.BaseTransport | None = None,
        registry: OblioRegistry | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        if document not in ("invoice", "proforma"):
            raise ValueError(f"document must be 'invoice' or 'proforma', not {document!r}")
        self.client = OblioClient(
            url,
            email,
            secret,
            requests_per_second=requests_per_second,
            window_margin_seconds=window_margin_seconds,
            max_retries=max_retries,
            timeout_seconds=timeout_seconds,
            transport=transport,
            clock=clock,
            sleep=sleep,
        )
        self.cif = cif
        self.invoice_series = invoice_series
        self.document = document
        self.measuring_unit = measuring_unit
        self.order_warehouse = order_warehouse
        self.shipping_name = shipping_name
        self.registry: OblioRegistry = registry if registry is not None else MemoryOblioRegistry()
        self._now = now or (lambda: datetime.now(BUCHAREST))
        self.counters: Counters = self.client.counters
        self._managements: list[str] | None = None
        self._vat: list[Decimal] | None = None

    @classmethod
    def from_settings(cls, settings: OblioSettings, **options: Any) -> OblioConnector:
        """The connector of an ``[erp] type = "oblio"`` section; ``options`` go to the constructor
        (``order_warehouse``, ``registry``, ``transport``...)."""
        return cls(
            str(settings.url),
            settings.email,
            settings.secret.get(),
            settings.cif,
            **{
                "invoice_series": settings.invoice_series,
                "document": settings.document,
                "measuring_unit": settings.measuring_unit,
                "requests_per_second": settings.requests_per_second,
                "timeout_seconds": settings.timeout_seconds,
                **options,
            },
        )

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> OblioConnector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _get(self, path: str, **params: Any) -> Any:
        return self.client.request("GET", path, params={"cif": self.cif, **params})

    def _today(self) -> str:
        return self._now().astimezone(BUCHAREST).date().isoformat()

    # -- check and preflight -------------------------------------------------------------------------------

    def check(self) -> str:
        """The token and one call (``/nomenclature/companies``): ``"Oblio, CIF RO1 (Firma SRL)"``."""
        companies = self.client.request("GET", "nomenclature/companies")
        name = _company(companies, self.cif)
        if name is None:
            raise FatalError(SYSTEM, f"CIF {self.cif} is not a company of this Oblio account: set [erp] cif")
        return f"Oblio, CIF {self.cif} ({name})"

    def preflight(self, needs: Sequence[Needs]) -> list[Probe]:
        """Credentials and CIF, the invoice (or proforma) series, every store warehouse as an Oblio management,
        and the VAT rates the stores use: 4 calls (+1 for the token)."""
        probes: list[Probe] = []
        probes.append(self._probe("erp credentials and CIF", self.check))
        kind = "Proforma" if self.document == "proforma" else "Factura"

        def series() -> str:
            rows = self._get("nomenclature/series")
            names = [str(r.get("name")) for r in rows or [] if isinstance(r, dict) and r.get("type") == kind]
            if self.invoice_series not in names:
                raise RecordError(
                    SYSTEM,
                    f"{self.invoice_series!r} is not a {kind} series of CIF {self.cif} (known: "
                    f"{', '.join(map(repr, names)) or 'none'}): add it in Oblio (Setari > Serii documente) "
                    f"or set [erp] invoice_series",
                )
            return f"{self.invoice_series!r} ({kind}) present"

        probes.append(self._probe("erp invoice series", series))
        self._managements = None
        for warehouse in sorted({w for n in needs for w in n.warehouses}):
            probes.append(self._probe(f"erp warehouse {warehouse}", partial(self._management_probe, warehouse)))

        def vat() -> str:
            self._vat = None
            rates = self.vat_rates()
            wanted = sorted({Decimal(r).normalize() for n in needs for r in n.vat_rates})
            missing = [r for r in wanted if r not in rates]
            if missing:
                raise RecordError(SYSTEM, f"Oblio has no VAT rate {', '.join(f'{r}%' for r in missing)}")
            return ", ".join(f"{r}%" for r in sorted(rates))

        probes.append(self._probe("erp VAT rates", vat))
        return probes

    def _probe(self, target: str, run: Callable[[], str]) -> Probe:
        try:
            return Probe(target, True, run())
        except ConnectorError as error:
            return Probe(target, False, f"{type(error).__name__}: {error}")

    def _management_probe(self, warehouse: str) -> str:
        known = self.managements()
        if warehouse not in known:
            raise RecordError(
                SYSTEM,
                f"{warehouse!r} is not an Oblio management of CIF {self.cif} (known: "
                f"{', '.join(map(repr, known)) or 'none'}): the store's warehouses are Oblio management names",
            )
        return "an Oblio management"

    def managements(self) -> list[str]:
        """The management (warehouse) names (one call, then cached)."""
        if self._managements is None:
            rows = self._get("nomenclature/management")
            self._managements = [
                str(r["management"]) for r in rows or [] if isinstance(r, dict) and r.get("management")
            ]
        return self._managements

    def vat_rates(self) -> list[Decimal]:
        """The company's VAT percentages (one call, then cached)."""
        if self._vat is None:
            rows = self._get("nomenclature/vat_rates")
            rates = [decimal(r.get("percent")) for r in rows or [] if isinstance(r, dict)]
            self._vat = [r.normalize() for r in rates if r is not None]
        return self._vat

    # -- products and stock ---------------------------------------------------------------------------------

    def _product_pages(self) -> Iterator[list[Any]]:
        offset = 0
        while True:
            rows = self._get("nomenclature/products", offset=offset)
            rows = rows if isinstance(rows, list) else []
            yield rows
            if len(rows) < PAGE:
                return
            offset += PAGE

    def iter_products(self, *, changed_since: datetime | None = None) -> Iterator[Page[Product]]:
        """Goods of the nomenclature, 250 a page (1 call each); services are left out."""
        if changed_since is not None:
            raise NotSupported(SYSTEM, "Oblio cannot list products changed since a time; read them whole")
        return self._products()

    def _products(self) -> Iterator[Page[Product]]:
        for rows in self._product_pages():
            page = Page[Product]()
            for row in rows:
                if is_service(row):
                    continue
                parsed = parse_product(row)
                (page.errors if not isinstance(parsed, Product) else page.items).append(parsed)  # type: ignore[arg-type]
            yield page

    def iter_stock(
        self,
        warehouses: Sequence[str],
        *,
        skus: Sequence[str] | None = None,
        changed_since: datetime | None = None,
    ) -> Iterator[Page[StockLevel]]:
        """Stock per SKU and management (``warehouses`` = Oblio management names), one page per 250 products
        (1 call each, +1 once for the managements); reserved is 0 (Oblio does not report reservations)."""
        if changed_since is not None:
            raise NotSupported(SYSTEM, "Oblio cannot list stock changed since a time; read it whole")
        if not warehouses:
            raise ValueError("iter_stock needs at least one warehouse")
        known = self.managements()
        unknown = [w for w in warehouses if w not in known]
        if unknown:
            raise FatalError(
                SYSTEM, f"not an Oblio management: {', '.join(map(repr, unknown))} (known: {', '.join(known)})"
            )
        return self._stock(list(warehouses), None if skus is None else set(skus))

    def _stock(self, warehouses: list[str], skus: set[str] | None) -> Iterator[Page[StockLevel]]:
        for rows in self._product_pages():
            items, errors = stock_levels(rows, warehouses, skus)
            yield Page[StockLevel](items=items, errors=errors)

    # -- orders as documents ------------------------------------------------------------------------------

    def find_order(self, reference: str) -> str | None:
        """The document issued for this order reference, from the registry (no call)."""
        return self.registry.get(reference)

    def create_order(self, order: Order, customer: Customer) -> str:
        """Issue the invoice (``useStock``: goods leave ``order_warehouse``) or proforma of a shop order.

        ``idempotencyKey`` = the reference, so the POST may be repeated after a lost reply (the HTTP layer does,
        on a timeout or 5xx) and Oblio answers with the document issued the first time. An unknown SKU or too
        little stock is a ``RecordError`` naming the SKU.
        """
        reference = order.reference or order.shop_id
        if not reference:
            raise ValueError("create_order needs order.reference or order.shop_id: it is the idempotency key")
        known = self.registry.get(reference)
        if known is not None:
            return known
        invoice = self.document == "invoice"
        if invoice and self.order_warehouse is None:
            raise FatalError(SYSTEM, "order_warehouse is not configured: cannot issue invoices with useStock")
        default_vat = max(self.vat_rates(), default=None) if order.shipping_amount > 0 else None
        body = document_body(
            order,
            customer,
            reference,
            cif=self.cif,
            series=self.invoice_series,
            management=self.order_warehouse if invoice else None,
            measuring_unit=self.measuring_unit,
            shipping_name=self.shipping_name,
            issue_date=self._today(),
            use_stock=invoice,
            default_vat=default_vat,
        )
        path = "docs/invoice" if invoice else "docs/proforma"
        try:
            reply = self.client.request(
                "POST", path, json_body=body, kind="write", idempotent=True, record_key=reference
            )
        except RecordError as error:
            raise _name_sku(error, order, reference) from None
        doc = _doc_id(reply, self.invoice_series, proforma=not invoice, reference=reference)
        erp_id = str(doc)
        log.info("Oblio %s %s issued for order %s", doc.kind, erp_id, reference)
        details = {
            "issued": body["issueDate"],
            "url": _link(reply),
            "client": body["client"],
            "currency": body["currency"],
            "lines": body["products"],
        }
        try:
            self.registry.put(reference, erp_id, details)
        except Exception as exc:
            raise FatalError(
                SYSTEM, f"{doc.kind} {erp_id} issued for order {reference} but not recorded ({exc})"
            ) from exc
        return erp_id

    def cancel_order(self, erp_id: str, *, reference: str) -> AfterSale:
        """An invoice: its storno (``POST /docs/invoice`` with ``referenceDocument``, ``idempotencyKey`` =
        ``reference``: one storno whatever the retries), the stock back. A proforma: ``PUT /docs/proforma/cancel``
        (it moved no stock). A storno already recorded is returned without a call."""
        doc = DocId.parse(erp_id)
        known = self.registry.credit(reference)
        if known is not None:
            return after_sale(known)
        details = self.registry.details(erp_id) or {}
        for credit in details.get("credits", []):
            if credit.get("kind") == "storno":
                return after_sale(credit)
        if doc.proforma:
            body = {"cif": self.cif, "seriesName": doc.series, "number": doc.number}
            try:
                self.client.request("PUT", "docs/proforma/cancel", json_body=body, record_key=reference)
            except RecordError as error:
                if "anulat" not in error.message.lower():
                    raise
            return AfterSale(kind="cancelled", erp_id=erp_id, detail=f"proforma {doc.printed} cancelled")
        returns = [str(c.get("erp_id")) for c in details.get("credits", []) if c.get("kind") == "return"]
        if returns:
            raise record_error(
                SYSTEM,
                reference,
                f"invoice {erp_id} has returns ({', '.join(returns)}): a storno would reverse it whole and credit "
                f"them twice; book the rest as a return",
            )
        body = storno_body(self.cif, doc, details.get("client") or self._client_of(doc), reference, self._today())
        reply = self.client.request(
            "POST", "docs/invoice", json_body=body, kind="write", idempotent=True, record_key=reference
        )
        storno = _doc_id(reply, doc.series, proforma=False, reference=reference)
        returned = {k: str(v) for k, v in _goods(details).items()}
        return self._record(reference, "storno", storno, erp_id, reply, returned)

    def return_order(self, erp_id: str, lines: Sequence[ReturnLine], *, reference: str) -> AfterSale:
        """A return: one invoice with NEGATIVE quantities of these lines at the invoice's prices (``useStock``:
        the goods come back into their management), ``idempotencyKey`` = ``reference``. ``RecordError`` before
        any call for a SKU not on the invoice, more than invoiced less earlier returns, or an invoice with a
        storno."""
        known = self.registry.credit(reference)
        if known is not None:
            return after_sale(known)
        doc = DocId.parse(erp_id)
        if doc.proforma:
            raise record_error(SYSTEM, reference, f"{erp_id} is a proforma: nothing left the warehouse")
        details = self.registry.details(erp_id)
        body = return_body(self.cif, erp_id, details, lines, reference, self._today())
        reply = self.client.request(
            "POST", "docs/invoice", json_body=body, kind="write", idempotent=True, record_key=reference
        )
        credit = _doc_id(reply, doc.series, proforma=False, reference=reference)
        returned = {line.sku: str(line.quantity) for line in lines}
        return self._record(reference, "return", credit, erp_id, reply, returned)

    def _record(
        self, reference: str, kind: str, doc: DocId, of: str, reply: Any, returned: dict[str, str]
    ) -> AfterSale:
        credit = {
            "erp_id": str(doc),
            "of": of,
            "kind": kind,
            "issued": self._today(),
            "url": _link(reply),
            "reference": reference,
            "returned": returned,
        }
        log.info("Oblio %s %s issued for %s (invoice %s)", kind, doc, reference, of)
        self.registry.put_credit(reference, credit)
        return after_sale(credit)

    def _client_of(self, doc: DocId) -> dict[str, Any]:
        rows = self._get("docs/invoice/list", seriesName=doc.series, number=doc.number)
        row = rows[0] if isinstance(rows, list) and rows else {}
        client = row.get("client") if isinstance(row, dict) else None
        return dict(client) if isinstance(client, dict) else {"name": "Client"}

    def order_statuses(self, erp_ids: Sequence[str]) -> list[ErpOrderStatus]:
        """One ``/docs/<kind>/list`` read per document (number, date, link, cancelled); stornos and returns
        from the registry."""
        statuses = []
        for erp_id in erp_ids:
            doc = DocId.parse(erp_id)
            rows = self._get(f"docs/{doc.kind}/list", seriesName=doc.series, number=doc.number)
            row = rows[0] if isinstance(rows, list) and rows and isinstance(rows[0], dict) else None
            if row is None:
                statuses.append(ErpOrderStatus(erp_id=erp_id, state="missing"))
                continue
            invoices = [
                ErpInvoice(
                    erp_id=erp_id, number=doc.printed, issued=_date(row.get("issueDate")), url=row.get("link") or None
                )
            ]
            cancelled = str(row.get("canceled")) == "1"
            for credit in (self.registry.details(erp_id) or {}).get("credits", []):
                credit_id = DocId.parse(str(credit["erp_id"]))
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
                    state="cancelled" if cancelled else ("proforma" if doc.proforma else "invoiced"),
                    invoiced=not doc.proforma,
                    invoice_number=None if doc.proforma else doc.printed,
                    cancelled=cancelled,
                    invoices=invoices,
                )
            )
        return statuses

    # -- what Oblio cannot do -------------------------------------------------------------------------------

    def _unsupported(self, what: str) -> NoReturn:
        raise NotSupported(SYSTEM, f"Oblio's API cannot {what}")

    def update_order(self, erp_id: str, order: Order, customer: Customer) -> bool:
        self._unsupported("rewrite an issued document (storno it and issue a new one)")

    def record_payment(self, erp_id: str, order: Order, *, reference: str) -> str:
        self._unsupported("record payments through erpsync yet (PUT /docs/invoice/collect is not wired)")

    def create_product(self, product: Product) -> Product:
        self._unsupported("create products (a product is created by the first document that names it)")

    def update_product(self, product: Product, changed: set[str]) -> None:
        self._unsupported("update products")

    def find_customer(self, customer: Customer) -> Customer | None:
        self._unsupported("be asked for customers by erpsync (the client travels inside each document)")

    def create_customer(self, customer: Customer) -> Customer:
        self._unsupported("create customers (the client travels inside each document)")

    def iter_orders(self, *, changed_since: datetime | None = None) -> Iterator[Page[Order]]:
        self._unsupported("list orders (it has no sales orders)")

    def iter_goods_receipts(self, since: datetime, warehouses: Sequence[str]) -> Iterator[Page[GoodsReceipt]]:
        self._unsupported("list goods receipts")

    def iter_suppliers(self) -> Iterator[Page[Supplier]]:
        self._unsupported("list suppliers")


def _company(rows: Any, cif: str) -> str | None:
    bare = cif.upper().removeprefix("RO")
    for row in rows if isinstance(rows, list) else []:
        if isinstance(row, dict) and str(row.get("cif") or "").upper().removeprefix("RO") == bare:
            return str(row.get("company") or cif)
    return None


def _doc_id(reply: Any, series: str, *, proforma: bool, reference: str) -> DocId:
    number = str(reply.get("number") or "") if isinstance(reply, dict) else ""
    if not number:
        raise record_error(SYSTEM, reference, f"Oblio answered without a document number: {reply!r}"[:300])
    return DocId(str(reply.get("seriesName") or series), number, proforma)


def _link(reply: Any) -> str | None:
    value = reply.get("link") if isinstance(reply, dict) else None
    return value.strip() if isinstance(value, str) and value.strip() else None


def _goods(details: dict[str, Any]) -> dict[str, Decimal]:
    from erpsync.connectors.erp.oblio.mapping import stock_lines

    return stock_lines(details.get("lines") or [])


def _date(value: Any) -> date | None:
    try:
        return date.fromisoformat(str(value)[:10]) if value else None
    except ValueError:
        return None


def _name_sku(error: RecordError, order: Order, reference: str) -> RecordError:
    """Re-word a refused document so that the failure names the SKU Oblio complained about."""
    text = error.message.removeprefix(f"{reference}: ")
    named = [line.sku for line in order.lines if line.sku and line.sku in text]
    if not named:
        return error
    return record_error(
        SYSTEM, reference, f"SKU {named[0]!r} refused by Oblio: {text}", status=error.status, method=error.method
    )
