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
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import httpx

from erpsync.connectors.erp.base import Capabilities, Needs, NotSupported, Probe
from erpsync.connectors.erp.smartbill.after_sale import AfterSaleCalls
from erpsync.connectors.erp.smartbill.checks import probes
from erpsync.connectors.erp.smartbill.client import SYSTEM, SmartBillClient
from erpsync.connectors.erp.smartbill.invoices import InvoiceId, IssuedRegistry, MemoryIssuedRegistry
from erpsync.connectors.erp.smartbill.mapping import invoice_body, parse_stock, parse_taxes, stock_entries
from erpsync.connectors.erp.smartbill.returns import (
    credit_invoice,
    invoice_details,
    is_already_reversed,
    return_products,
    stock_lines,
)
from erpsync.connectors.erp.smartbill.statuses import after_sale, order_statuses
from erpsync.connectors.erp.smartbill.unsupported import Unsupported
from erpsync.connectors.errors import FatalError, RateLimitedError, RecordError, RetriableError, record_error
from erpsync.connectors.http import Counters
from erpsync.core.models import (
    AfterSale,
    Customer,
    ErpOrderStatus,
    Order,
    Page,
    ReturnLine,
    StockLevel,
)

if TYPE_CHECKING:
    from erpsync.core.config import SmartBillSettings

log = logging.getLogger("erpsync.smartbill")

BUCHAREST = ZoneInfo("Europe/Bucharest")

CAPABILITIES = Capabilities(
    stock_read=True,
    orders_create=True,
    invoices=True,
    orders_cancel=True,
    orders_return=True,
    orders_read_status=True,  # from the issued registry, no call (docs/smartbill.md, "After the import")
)
# document = "estimate": an order becomes a proforma (no stock moves; cancelled by PUT /estimate/cancel; no
# storno, return or payment of a proforma through the API)
ESTIMATE_CAPABILITIES = Capabilities(stock_read=True, orders_create=True, orders_cancel=True, orders_read_status=True)


def capabilities_for(document: str, payments: Mapping[str, str]) -> Capabilities:
    """What a connector of this ``document`` kind and ``[erp] payments`` mapping can do."""
    if document == "estimate":
        return ESTIMATE_CAPABILITIES
    return replace(CAPABILITIES, payments_record=bool(payments))


class SmartBillConnector(AfterSaleCalls, Unsupported):
    """SmartBill Cloud through its REST API: stock read, orders in as invoices, stornos and returns."""

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
        document: str = "invoice",
        payments: Mapping[str, str] | None = None,
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
        if document not in ("invoice", "estimate"):
            raise ValueError(f"document must be 'invoice' or 'estimate', not {document!r}")
        self.document = document
        self.payments: dict[str, str] = dict(payments or {})
        self.capabilities = capabilities_for(document, self.payments)
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
                "document": settings.document,
                "payments": dict(settings.payments),
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

    def taxes(self, *, fresh: bool = False) -> dict[Decimal, str]:
        """SmartBill's VAT rates of the company: percentage -> tax name (one call, then cached; ``fresh``: ask)."""
        if self._taxes is None or fresh:
            self._taxes = parse_taxes(self._request("GET", "tax", params={"cif": self.cif}))
        return self._taxes

    def check(self) -> str:
        """One authenticated call (``GET /tax``): ``"SmartBill, CIF RO123, 3 VAT rates"``."""
        return f"SmartBill, CIF {self.cif}, {len(self.taxes(fresh=True))} VAT rates"

    def preflight(self, needs: Sequence[Needs]) -> list[Probe]:
        """``erpsync check`` (``checks.py``, three calls): credentials, the CIF, the document series, the VAT rates
        the stores use, each configured warehouse; one probe a line, the fix when it fails."""
        return probes(self, needs)

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
        try:
            taxes = self.taxes()
        except RetriableError as error:
            error.not_sent = True  # no invoice was sent yet: the order is not in doubt, only retried
            raise
        body = invoice_body(
            order,
            customer,
            reference,
            taxes=taxes,
            cif=self.cif,
            series=self.invoice_series,
            warehouse=self.order_warehouse,
            measuring_unit=self.measuring_unit,
            shipping_name=self.shipping_name,
            issue_date=self._today(),
        )
        path = "invoice"
        if self.document == "estimate":
            path = "estimate"
            body.pop("useStock", None)  # a proforma moves no stock (the invoice made from it later does)
        try:
            reply = self._request("POST", path, json_body=body, kind="write", idempotent=False, record_key=reference)
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
        log.info("SmartBill %s %s issued for order %s", self.document, erp_id, reference)
        details = invoice_details(body, reply)
        if self.document == "estimate":
            details["document"] = "estimate"
        try:
            self.issued.put(reference, erp_id, details)
        except Exception as exc:
            # The invoice exists; only this message (and the log line above) knows it now.
            raise FatalError(
                SYSTEM,
                f"invoice {erp_id} issued for order {reference} but not recorded ({exc}); "
                f"link it before re-sending the order",
            ) from exc
        return erp_id

    def cancel_order(self, erp_id: str, *, reference: str) -> AfterSale:
        """Undo an invoiced order by its storno (``POST /invoice/reverse``, PUT when POST gets 405): the whole
        invoice reversed, its stock back. Idempotent on ``reference`` (write-ahead, as returns): a storno already
        recorded (under this reference or another) is returned without a call; a storno request whose outcome
        is unknown is never sent again (``RecordError``: check SmartBill). Never ``NeedsReturn``.

        Refused (``RecordError``, nothing sent) when returns were booked on the invoice: SmartBill would reverse
        it whole and credit the returned goods twice.
        """
        invoice = InvoiceId.parse(erp_id)
        done = self._known_credit(reference, erp_id)
        if done is not None:
            return done
        details = self.issued.details(erp_id) or {}
        if details.get("document") == "estimate" or self.document == "estimate":
            return self._cancel_estimate(invoice, reference)
        for credit in details.get("credits", []):
            if credit.get("kind") == "storno":
                return after_sale(credit)
        returns = [str(c.get("erp_id")) for c in details.get("credits", []) if c.get("kind") == "return"]
        if returns:
            raise record_error(
                SYSTEM,
                reference,
                f"invoice {erp_id} has returns ({', '.join(returns)}): a storno would reverse it whole and credit "
                f"them twice; book the rest as a return, or storno it in SmartBill by hand",
            )
        body = {
            "companyVatCode": self.cif,
            "seriesName": invoice.series,
            "number": invoice.number,
            "issueDate": self._today(),
        }
        self.issued.mark_sent(reference, erp_id)
        try:
            reply = self._send_reverse(body, reference)
        except RecordError as error:
            self.issued.clear_sent(reference)  # refused: nothing was issued
            if is_already_reversed(error.message):
                return AfterSale(
                    kind="storno",
                    detail=f"invoice {erp_id} already has a storno in SmartBill (not made by erpsync): {error}",
                )
            raise
        except RetriableError as error:
            raise self._in_doubt(error, reference, f"the storno of invoice {erp_id}") from None
        credit = credit_invoice(reply, kind="storno", of=erp_id, reference=reference, issued=self._today())
        credit["returned"] = {sku: str(qty) for sku, qty in stock_lines(details.get("lines", [])).items()}
        return self._record_credit(reference, credit)

    def _cancel_estimate(self, estimate: InvoiceId, reference: str) -> AfterSale:
        """``PUT /estimate/cancel``: a proforma moved no stock, so cancelling it undoes the order (idempotent: the
        cancel is recorded under ``reference``; SmartBill answering "already cancelled" reads as done)."""
        params = {"cif": self.cif, "seriesname": estimate.series, "number": estimate.number}
        try:
            self._request("PUT", "estimate/cancel", params=params, kind="write", record_key=reference)
        except RecordError as error:
            if "deja anulat" not in error.message.lower():
                raise
        credit = {"kind": "cancelled", "erp_id": reference, "of": str(estimate), "reference": reference}
        credit["issued"] = self._today()
        self.issued.put_credit(reference, credit)
        return after_sale(credit)

    def return_order(self, erp_id: str, lines: Sequence[ReturnLine], *, reference: str) -> AfterSale:
        """Book a return: one invoice with NEGATIVE quantities of just these lines (``POST /invoice``,
        ``useStock``: the goods come back into the warehouse they left), at the original invoice's prices as
        registered, in its series, to its client, mentioning it. Idempotent on ``reference`` (write-ahead: an
        unknown outcome is never re-sent). ``RecordError`` before any call for: an invoice whose lines are not
        registered, a SKU not on it, more than invoiced minus earlier returns (or an invoice already reversed).
        """
        done = self._known_credit(reference, erp_id)
        if done is not None:
            return done
        InvoiceId.parse(erp_id)
        details = self.issued.details(erp_id)
        body = {
            "companyVatCode": self.cif,
            "issueDate": self._today(),
            **return_products(erp_id, details, lines, reference),
        }
        self.issued.mark_sent(reference, erp_id)
        try:
            reply = self._request(
                "POST", "invoice", json_body=body, kind="write", idempotent=False, record_key=reference
            )
        except RecordError:
            self.issued.clear_sent(reference)
            raise
        except RetriableError as error:
            raise self._in_doubt(error, reference, f"the return invoice of {erp_id}") from None
        credit = credit_invoice(reply, kind="return", of=erp_id, reference=reference, issued=self._today())
        credit["returned"] = {line.sku: str(line.quantity) for line in lines}
        return self._record_credit(reference, credit)

    def order_statuses(self, erp_ids: Sequence[str]) -> list[ErpOrderStatus]:
        """Each invoice's number, date and link, its stornos/returns as credits, from the registry (no call:
        SmartBill cannot report an invoice's state; a storno or cancel made in SmartBill's UI is not seen)."""
        return order_statuses(self.issued, erp_ids)

    def invoice_pdf(self, erp_id: str) -> bytes:
        """The PDF of an invoice."""
        invoice = InvoiceId.parse(erp_id)
        params = {"cif": self.cif, "seriesname": invoice.series, "number": invoice.number}
        response = self._request("GET", "invoice/pdf", params=params, record_key=erp_id, expect_json=False)
        content: bytes = response.content
        return content


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
