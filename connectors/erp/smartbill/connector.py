"""SmartBill Cloud as an ERP: stock per warehouse in, shop orders out as invoices that take stock out.

SmartBill has no product catalogue, customer or order endpoints: products are matched by ``productCode`` = SKU,
the client travels inside each invoice, and an order becomes an invoice (``useStock``) whose id is
``"SERIES-NUMBER"``. SmartBill cannot say which invoice an order produced, so an ``IssuedRegistry``
(``invoices.py``) remembers it (the state store's links in production). Calls, pacing, the lock-out and
``errorText`` are ``client.py``; the JSON both ways is ``mapping.py``. Decisions and the in-doubt window of a
timed-out invoice are written up in ``docs/smartbill.md``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NoReturn
from zoneinfo import ZoneInfo

import httpx

from erpsync.connectors.erp.base import Capabilities, Needs, NotSupported, Probe
from erpsync.connectors.erp.smartbill.client import SYSTEM, SmartBillClient, is_already_cancelled
from erpsync.connectors.erp.smartbill.invoices import InvoiceId, IssuedRegistry, MemoryIssuedRegistry
from erpsync.connectors.erp.smartbill.mapping import invoice_body, parse_stock, parse_taxes, stock_entries
from erpsync.connectors.errors import FatalError, RateLimitedError, RecordError, RetriableError, record_error
from erpsync.connectors.http import Counters
from erpsync.core.models import (
    Customer,
    ErpOrderStatus,
    GoodsReceipt,
    Order,
    Page,
    Product,
    StockLevel,
    Supplier,
)

if TYPE_CHECKING:
    from erpsync.core.config import SmartBillSettings

log = logging.getLogger("erpsync.smartbill")

BUCHAREST = ZoneInfo("Europe/Bucharest")

CAPABILITIES = Capabilities(stock_read=True, orders_create=True, invoices=True, orders_cancel=True)


class SmartBillConnector:
    """SmartBill Cloud through its REST API: stock read, orders in as invoices, invoice cancel."""

    system = SYSTEM
    capabilities = CAPABILITIES

    def __init__(
        self,
        url: str,
        username: str,
        token: str,
        cif: str,
        *,
        invoice_series: str = "WEB",
        measuring_unit: str = "buc",
        order_warehouse: str | None = None,
        shipping_name: str = "Transport",
        requests_per_10s: int = 30,
        window_seconds: float = 10.0,
        window_margin_seconds: float = 1.0,
        max_retries: int = 2,
        timeout_seconds: float = 30,
        transport: httpx.BaseTransport | None = None,
        issued: IssuedRegistry | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self._client = SmartBillClient(
            url,
            username,
            token,
            requests_per_10s=requests_per_10s,
            window_seconds=window_seconds,
            window_margin_seconds=window_margin_seconds,
            max_retries=max_retries,
            timeout_seconds=timeout_seconds,
            transport=transport,
            clock=clock,
            sleep=sleep,
        )
        self.cif = cif
        self.invoice_series = invoice_series
        self.measuring_unit = measuring_unit
        self.order_warehouse = order_warehouse
        self.shipping_name = shipping_name
        self.issued: IssuedRegistry = issued if issued is not None else MemoryIssuedRegistry()
        self._now = now or (lambda: datetime.now(BUCHAREST))
        self.limiter = self._client.limiter
        self.counters: Counters = self._client.counters
        self._taxes: dict[Decimal, str] | None = None

    @classmethod
    def from_settings(cls, settings: SmartBillSettings, **options: Any) -> SmartBillConnector:
        """The connector of an ``[erp] type = "smartbill"`` section; ``options`` go to the constructor
        (``order_warehouse``, ``issued``, ``transport``...)."""
        return cls(
            settings.url,
            settings.username,
            settings.token.get(),
            settings.cif,
            **{
                "invoice_series": settings.invoice_series,
                "measuring_unit": settings.measuring_unit,
                "requests_per_10s": settings.requests_per_10s,
                "timeout_seconds": settings.timeout_seconds,
                **options,
            },
        )

    def close(self) -> None:
        """Close the HTTP client."""
        self._client.close()

    def __enter__(self) -> SmartBillConnector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- calls ----------------------------------------------------------------------------------------------

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        """One call through the client (after a 429 no call is made until the lock-out is over)."""
        return self._client.request(method, path, **kwargs)

    def _today(self) -> str:
        return self._now().astimezone(BUCHAREST).date().isoformat()

    def taxes(self) -> dict[Decimal, str]:
        """SmartBill's VAT rates of the company: percentage -> tax name (one call, then cached)."""
        if self._taxes is None:
            self._taxes = parse_taxes(self._request("GET", "tax", params={"cif": self.cif}))
        return self._taxes

    def check(self) -> str:
        """One authenticated call (``GET /tax``): ``"SmartBill, CIF RO123, 3 VAT rates"``."""
        self._taxes = None
        return f"SmartBill, CIF {self.cif}, {len(self.taxes())} VAT rates"

    def preflight(self, needs: Sequence[Needs]) -> list[Probe]:
        """What SmartBill's API lets erpsync check before a run (two calls): the invoice series exists, and
        a VAT rate for every rate the stores use (``[stores.products] vat_taxes``; at least one rate)."""
        probes: list[Probe] = []
        try:
            reply = self._request("GET", "series", params={"cif": self.cif, "type": "f"})
            rows = reply.get("list") if isinstance(reply, dict) else None
            names = [str(r.get("name")) for r in rows or [] if isinstance(r, dict) and r.get("name")]
            if self.invoice_series in names:
                probes.append(Probe("erp invoice series", True, f"{self.invoice_series!r} present"))
            else:
                probes.append(
                    Probe(
                        "erp invoice series",
                        False,
                        f"{self.invoice_series!r} is not an invoice series of CIF {self.cif} (known: "
                        f"{', '.join(map(repr, names)) or 'none'}): create it in SmartBill under Configurare > "
                        f"Serii, or set [erp] invoice_series; every invoice fails without it",
                    )
                )
        except (RecordError, FatalError, RetriableError) as error:
            probes.append(Probe("erp invoice series", False, f"{type(error).__name__}: {error}"))
        try:
            self._taxes = None
            rates = self.taxes()
            wanted = sorted({Decimal(r).normalize() for n in needs for r in n.vat_rates}, key=Decimal)
            missing = [r for r in wanted if r not in rates]
            if not rates or missing:
                what = ", ".join(f"{r}%" for r in missing) if missing else "any VAT rate"
                probes.append(
                    Probe(
                        "erp VAT rates",
                        False,
                        f"SmartBill has no tax for {what} (CIF {self.cif}): add it under Configurare > Cote TVA; "
                        f"an order line at a missing rate fails",
                    )
                )
            else:
                shown = ", ".join(f"{r}%" for r in sorted(rates))
                probes.append(Probe("erp VAT rates", True, shown))
        except (RecordError, FatalError, RetriableError) as error:
            probes.append(Probe("erp VAT rates", False, f"{type(error).__name__}: {error}"))
        return probes

    # -- stock ----------------------------------------------------------------------------------------------

    def iter_stock(
        self,
        warehouses: Sequence[str],
        *,
        skus: Sequence[str] | None = None,
        changed_since: datetime | None = None,
    ) -> Iterator[Page[StockLevel]]:
        """One ``GET /stocks`` for today (Europe/Bucharest), one page of the requested warehouses.

        Warehouse names match exactly (case-sensitive). A warehouse missing from the reply, a row without a
        product code, and a SKU with an unreadable quantity or two measuring units become ``RowError``s; rows of
        the same SKU in one warehouse (lots at different prices) are summed.
        """
        # Not a generator itself, so that a wrong call fails here rather than at the first next().
        if changed_since is not None:
            raise NotSupported(SYSTEM, "SmartBill cannot list stock changed since a time; read it whole")
        if not warehouses:
            raise ValueError("iter_stock needs at least one warehouse")
        return self._stock_pages(list(warehouses), None if skus is None else list(skus))

    def _stock_pages(self, warehouses: list[str], skus: list[str] | None) -> Iterator[Page[StockLevel]]:
        reply = self._request("GET", "stocks", params={"cif": self.cif, "date": self._today()})
        yield parse_stock(stock_entries(reply), warehouses, skus)

    # -- orders as invoices -----------------------------------------------------------------------------

    def find_order(self, reference: str) -> str | None:
        """The invoice issued for this shop order reference, from the registry (no call)."""
        return self.issued.get(reference)

    def create_order(self, order: Order, customer: Customer) -> str:
        """Issue the invoice of a shop order (stock leaves ``order_warehouse``); idempotent on its reference.

        The reference is ``order.reference`` (the store's ``reference_prefix`` + the shop order id, as the order
        flow sets it), else ``order.shop_id``.

        Returns ``"SERIES-NUMBER"``. An unknown SKU (or one out of stock) raises ``RecordError`` naming it. A
        timeout or 5xx after the request was sent raises ``RecordError`` too: the invoice may exist, so it is
        never re-sent automatically (see docs/smartbill.md, "the in-doubt window").
        """
        reference = order.reference or order.shop_id
        if not reference:
            raise ValueError("create_order needs order.reference or order.shop_id: it is the idempotency key")
        known = self.issued.get(reference)
        if known is not None:
            return known
        if self.order_warehouse is None:
            raise FatalError(SYSTEM, "order_warehouse is not configured: cannot issue invoices with useStock")
        body = invoice_body(
            order,
            customer,
            reference,
            taxes=self.taxes(),
            cif=self.cif,
            series=self.invoice_series,
            warehouse=self.order_warehouse,
            measuring_unit=self.measuring_unit,
            shipping_name=self.shipping_name,
            issue_date=self._today(),
        )
        try:
            reply = self._request(
                "POST", "invoice", json_body=body, kind="write", idempotent=False, record_key=reference
            )
        except RecordError as error:
            raise _name_sku(error, order, reference) from None
        except RetriableError as error:
            if isinstance(error, RateLimitedError) or error.not_sent:
                raise  # provably not processed: safe to try again later
            raise record_error(
                SYSTEM,
                reference,
                f"the invoice request may have reached SmartBill ({error.message}); it is not re-sent "
                f"automatically: check series {self.invoice_series} in SmartBill, then resolve this failure",
                status=error.status,
            ) from None
        number = str(reply.get("number") or "") if isinstance(reply, dict) else ""
        series = str(reply.get("series") or self.invoice_series) if isinstance(reply, dict) else ""
        if not number:
            raise record_error(SYSTEM, reference, f"SmartBill answered without an invoice number: {reply!r}"[:300])
        erp_id = str(InvoiceId(series, number))
        log.info("SmartBill invoice %s issued for order %s", erp_id, reference)
        try:
            self.issued.put(reference, erp_id)
        except Exception as exc:
            # The invoice exists; only this message (and the log line above) knows it now.
            raise FatalError(
                SYSTEM,
                f"invoice {erp_id} issued for order {reference} but not recorded ({exc}); "
                f"link it before re-sending the order",
            ) from exc
        return erp_id

    def cancel_order(self, erp_id: str) -> None:
        """Cancel the invoice ``"SERIES-NUMBER"`` (its stock goes back); cancelling twice is harmless."""
        invoice = InvoiceId.parse(erp_id)
        params = {"cif": self.cif, "seriesname": invoice.series, "number": invoice.number}
        try:
            self._request("PUT", "invoice/cancel", params=params, kind="write", record_key=erp_id)
        except RecordError as error:
            if not is_already_cancelled(error.message):
                raise

    def order_statuses(self, erp_ids: Sequence[str]) -> list[ErpOrderStatus]:
        """Every invoice we issued is an invoiced order; SmartBill's API tells nothing more (no call)."""
        statuses = []
        for erp_id in erp_ids:
            InvoiceId.parse(erp_id)
            statuses.append(ErpOrderStatus(erp_id=erp_id, state="invoiced", invoiced=True, invoice_number=erp_id))
        return statuses

    def invoice_pdf(self, erp_id: str) -> bytes:
        """The PDF of an invoice."""
        invoice = InvoiceId.parse(erp_id)
        params = {"cif": self.cif, "seriesname": invoice.series, "number": invoice.number}
        response = self._request("GET", "invoice/pdf", params=params, record_key=erp_id, expect_json=False)
        content: bytes = response.content
        return content

    # -- what SmartBill cannot do ---------------------------------------------------------------------------

    def _unsupported(self, what: str) -> NoReturn:
        raise NotSupported(SYSTEM, f"SmartBill has no API to {what}")

    def iter_products(self, *, changed_since: datetime | None = None) -> Iterator[Page[Product]]:
        self._unsupported("list products")

    def create_product(self, product: Product) -> Product:
        self._unsupported("create products")

    def update_product(self, product: Product, changed: set[str]) -> None:
        self._unsupported("update products")

    def find_customer(self, customer: Customer) -> Customer | None:
        self._unsupported("find customers (the client travels inside each invoice)")

    def create_customer(self, customer: Customer) -> Customer:
        self._unsupported("create customers (the client travels inside each invoice)")

    def iter_orders(self, *, changed_since: datetime | None = None) -> Iterator[Page[Order]]:
        self._unsupported("list orders")

    def iter_goods_receipts(self, since: datetime, warehouses: Sequence[str]) -> Iterator[Page[GoodsReceipt]]:
        self._unsupported("list goods receipts")

    def iter_suppliers(self) -> Iterator[Page[Supplier]]:
        self._unsupported("list suppliers")


def _name_sku(error: RecordError, order: Order, reference: str) -> RecordError:
    """Re-word a refused invoice so that the failure names the SKU SmartBill complained about."""
    text = error.message.removeprefix(f"{reference}: ")
    named = [line.sku for line in order.lines if line.sku and line.sku in text]
    if not named:
        return error
    return record_error(
        SYSTEM,
        reference,
        f"SKU {named[0]!r} refused by SmartBill: {text}",
        status=error.status,
        method=error.method,
        path=error.path,
    )
