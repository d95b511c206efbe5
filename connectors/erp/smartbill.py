"""SmartBill Cloud as an ERP: stock per warehouse in, shop orders out as invoices that take stock out.

SmartBill has no product catalogue, customer or order endpoints: products are matched by ``productCode`` = SKU,
the client travels inside each invoice, and an order becomes an invoice (``useStock``) whose id is
``"SERIES-NUMBER"``. SmartBill cannot say which invoice an order produced, so an ``IssuedRegistry`` remembers
it (the state store's links in production). The token is locked for ten minutes when more than 30 calls
reach it in 10 s: every call goes through one strict sliding window per credential, and a 429 is retried
only when its Retry-After is short (30 s at most); otherwise no call is made until the lock-out is over.
Decisions and the in-doubt window of a timed-out invoice are written up in ``docs/smartbill.md``.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, NoReturn, Protocol
from zoneinfo import ZoneInfo

import httpx

from erpsync.connectors.erp.base import Capabilities, NotSupported
from erpsync.connectors.errors import (
    AuthError,
    BadRequestError,
    ConnectorError,
    FatalError,
    RateLimitedError,
    RecordError,
    RetriableError,
    record_error,
)
from erpsync.connectors.http import (
    Counters,
    HttpClient,
    RetryPolicy,
    SlidingWindow,
    classify,
    credential_key,
    shared_limiter,
)
from erpsync.core.models import (
    Address,
    Customer,
    ErpOrderStatus,
    GoodsReceipt,
    Order,
    Page,
    Product,
    RowError,
    StockLevel,
    Supplier,
    gross_from_net,
)
from erpsync.core.redact import register_basic_auth

if TYPE_CHECKING:
    from erpsync.core.config import SmartBillSettings

log = logging.getLogger("erpsync.smartbill")

SYSTEM = "smartbill"
DEFAULT_URL = "https://ws.smartbill.ro/SBORO/api"
BUCHAREST = ZoneInfo("Europe/Bucharest")
LOCKOUT_SECONDS = 600.0
INVOICE_ENTITY = "smartbill_invoice"
COUNTRY_NAMES = {"RO": "Romania", "MD": "Moldova", "HU": "Ungaria", "BG": "Bulgaria", "DE": "Germania"}

CAPABILITIES = Capabilities(stock_read=True, orders_create=True, invoices=True, orders_cancel=True)

# errorText phrases (Romanian and English) that mean the credentials or the company rights are wrong. They are
# looked for outside quotes, where SmartBill echoes product codes and names ("ACCESORII-1" is not an auth error).
_AUTH_TEXT = re.compile(
    r"autentific|neautorizat|unauthori[sz]ed|authenticat|drepturi de acces|nu aveti drept|access denied"
    r"|token(?:ul)? (?:invalid|expirat|gresit)|invalid token|parola",
    re.IGNORECASE,
)
_QUOTED = re.compile(r"\"[^\"]*\"|'[^']*'|„[^”]*”")
_TRANSIENT_TEXT = re.compile(r"temporar|incercati din nou|try again|unavailable|indisponibil", re.IGNORECASE)
_ALREADY_CANCELLED = re.compile(r"deja anulat|already cancel", re.IGNORECASE)


# --------------------------------------------------------------------------- errorText classification


def error_text(response: httpx.Response) -> str:
    """SmartBill's ``errorText`` from a JSON object reply, or ``""`` (no JSON body, or no error).

    The body decides, not the Content-Type: an error object sent as text/plain must not pass for a success.
    """
    if response.content.lstrip()[:1] != b"{":
        return ""
    try:
        body = response.json()
    except ValueError:
        return ""
    if isinstance(body, dict):
        text = body.get("errorText")
        if text:
            return str(text).strip()
    return ""


def classify_smartbill(
    response: httpx.Response, *, system: str, record_key: str | None = None
) -> ConnectorError | None:
    """``connectors.http.classify`` plus SmartBill's habits.

    ======================================  ====================================================
    HTTP 200 with an empty ``errorText``    success
    ``errorText`` about credentials/rights  AuthError (on 200, 400 and the other refusals)
    HTTP 200, ``errorText`` "temporar..."   RetriableError
    HTTP 200, other ``errorText``           RecordError for a write about one record
                                            (``record_key``), else BadRequestError
    429 without Retry-After                 RateLimitedError with retry_after = the 600 s lock-out,
                                            so the HTTP layer never retries into a locked token
    anything else                           as ``classify``
    ======================================  ====================================================
    """
    error = classify(response, system=system, record_key=record_key)
    request = response.request
    common: dict[str, Any] = {
        "status": response.status_code,
        "method": request.method,
        "path": request.url.raw_path.decode(errors="replace"),
    }
    if isinstance(error, RateLimitedError):
        if error.retry_after is None:
            error.retry_after = LOCKOUT_SECONDS
        return error
    text = error_text(response)
    if error is not None:
        if isinstance(error, RecordError | BadRequestError) and _is_auth_text(text):
            return AuthError(system, f"authentication refused: {text}", **common)
        return error
    if not text:
        return None
    if _is_auth_text(text):
        return AuthError(system, f"authentication refused: {text}", **common)
    if _TRANSIENT_TEXT.search(_QUOTED.sub("", text)):
        return RetriableError(system, text, **common)
    if record_key is not None:
        return record_error(system, record_key, text, **common)
    return BadRequestError(system, text, **common)


def _is_auth_text(text: str) -> bool:
    return bool(text) and _AUTH_TEXT.search(_QUOTED.sub("", text)) is not None


# --------------------------------------------------------------------------- which invoice an order produced


class IssuedRegistry(Protocol):
    """Remembers the invoice issued for each shop order reference (SmartBill cannot be asked)."""

    def get(self, reference: str) -> str | None: ...

    def put(self, reference: str, erp_id: str) -> None: ...


class MemoryIssuedRegistry:
    """An in-process registry (tests, demos): forgotten when the process ends."""

    def __init__(self, issued: Mapping[str, str] | None = None) -> None:
        self._issued: dict[str, str] = dict(issued or {})
        self._lock = threading.Lock()

    def get(self, reference: str) -> str | None:
        """The invoice id issued for ``reference``, if any."""
        with self._lock:
            return self._issued.get(reference)

    def put(self, reference: str, erp_id: str) -> None:
        """Remember the invoice id of ``reference`` (refuses a second, different one)."""
        with self._lock:
            known = self._issued.setdefault(reference, erp_id)
        if known != erp_id:
            raise ValueError(f"order {reference!r} is already invoiced as {known!r}, not {erp_id!r}")

    def __len__(self) -> int:
        with self._lock:
            return len(self._issued)


class _HasErpId(Protocol):
    @property
    def erp_id(self) -> str: ...


class LinkStore(Protocol):
    """The part of ``core.state.StateStore`` the registry needs."""

    def link(
        self,
        store: str,
        entity: str,
        *,
        shop_id: str,
        erp_id: str,
        sku: str | None = ...,
        extra: dict[str, Any] | None = ...,
    ) -> object: ...

    def find_link(
        self,
        store: str,
        entity: str,
        *,
        shop_id: str | None = ...,
        erp_id: str | None = ...,
        sku: str | None = ...,
    ) -> _HasErpId | None: ...


class StateIssuedRegistry:
    """The registry kept as state-store links: entity ``smartbill_invoice``, shop_id = order reference,
    erp_id = ``"SERIES-NUMBER"`` (both unique per store, enforced by the database)."""

    def __init__(self, state: LinkStore, store: str, *, entity: str = INVOICE_ENTITY) -> None:
        self.state = state
        self.store = store
        self.entity = entity

    def get(self, reference: str) -> str | None:
        """The invoice id linked to ``reference``, if any."""
        link = self.state.find_link(self.store, self.entity, shop_id=reference)
        return None if link is None else link.erp_id

    def put(self, reference: str, erp_id: str) -> None:
        """Link ``reference`` to its invoice (idempotent; a different partner raises ``LinkConflict``)."""
        self.state.link(self.store, self.entity, shop_id=reference, erp_id=erp_id)


# --------------------------------------------------------------------------- ids


@dataclass(frozen=True)
class InvoiceId:
    """A SmartBill invoice: series and number (kept as SmartBill wrote it, e.g. ``"0042"``)."""

    series: str
    number: str

    def __str__(self) -> str:
        return f"{self.series}-{self.number}"

    @classmethod
    def parse(cls, erp_id: str) -> InvoiceId:
        """``"WEB-0042"`` -> series ``WEB``, number ``0042`` (the number is the digits after the last dash)."""
        series, dash, number = erp_id.rpartition("-")
        if not dash or not series or not number.isdigit():
            raise ValueError(f"not a SmartBill invoice id (SERIES-NUMBER): {erp_id!r}")
        return cls(series, number)


# --------------------------------------------------------------------------- the connector


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
        register_basic_auth(username, token)
        self.cif = cif
        self.invoice_series = invoice_series
        self.measuring_unit = measuring_unit
        self.order_warehouse = order_warehouse
        self.shipping_name = shipping_name
        self.issued: IssuedRegistry = issued if issued is not None else MemoryIssuedRegistry()
        self._clock = clock
        self._now = now or (lambda: datetime.now(BUCHAREST))
        # The margin widens the window the limiter keeps, so that calls whose latency differs cannot arrive
        # closer together than SmartBill's 10 s; the first call past 30 would cost a 10-minute lock-out.
        period = window_seconds + window_margin_seconds
        self.limiter = shared_limiter(
            credential_key(SYSTEM, username, token),
            lambda: SlidingWindow(requests_per_10s, period, clock=clock, sleep=sleep),
        )
        self._http = HttpClient(
            SYSTEM,
            url,
            auth=(username, token),
            limiter=self.limiter,
            retry=RetryPolicy(max_retries=max_retries, backoff_base=1.0, backoff_max=8.0, max_retry_after=30.0),
            connect_timeout=min(10.0, timeout_seconds),
            read_timeout=timeout_seconds,
            transport=transport,
            classifier=classify_smartbill,
            sleep=sleep,
        )
        self.counters: Counters = self._http.counters
        self._locked_until = -math.inf
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
        self._http.close()

    def __enter__(self) -> SmartBillConnector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- calls ----------------------------------------------------------------------------------------------

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        """One call; after a 429 the token is left alone until its lock-out is over (no call is made)."""
        left = self._locked_until - self._clock()
        if left > 0:
            error = RateLimitedError(
                SYSTEM,
                f"token locked by SmartBill's rate limit; not calling for {left:.0f} s",
                method=method,
                path=path,
            )
            error.retry_after = left
            error.not_sent = True
            raise error
        try:
            return self._http.request(method, path, **kwargs)
        except RateLimitedError as error:
            wait = error.retry_after or LOCKOUT_SECONDS
            self._locked_until = self._clock() + wait
            log.error("SmartBill rate limit hit: token locked for %.0f s; no call until then", wait)
            raise

    def _today(self) -> str:
        return self._now().astimezone(BUCHAREST).date().isoformat()

    def taxes(self) -> dict[Decimal, str]:
        """SmartBill's VAT rates of the company: percentage -> tax name (one call, then cached)."""
        if self._taxes is None:
            reply = self._request("GET", "tax", params={"cif": self.cif})
            rows = reply.get("taxes") if isinstance(reply, dict) else None
            if not isinstance(rows, list):
                raise BadRequestError(SYSTEM, f"unexpected /tax reply: {str(reply)[:200]}")
            taxes: dict[Decimal, str] = {}
            for row in rows:
                rate = _decimal(row.get("percentage")) if isinstance(row, dict) else None
                if rate is not None and row.get("name"):
                    taxes.setdefault(rate.normalize(), str(row["name"]))
            self._taxes = taxes
        return self._taxes

    def check(self) -> str:
        """One authenticated call (``GET /tax``): ``"SmartBill, CIF RO123, 3 VAT rates"``."""
        self._taxes = None
        return f"SmartBill, CIF {self.cif}, {len(self.taxes())} VAT rates"

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
        entries = reply.get("list") if isinstance(reply, dict) else None
        if not isinstance(entries, list):
            raise BadRequestError(SYSTEM, f"unexpected /stocks reply: {str(reply)[:200]}")
        yield parse_stock(entries, warehouses, skus)

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
        body = self._invoice_body(order, customer, reference)
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

    def _invoice_body(self, order: Order, customer: Customer, reference: str) -> dict[str, Any]:
        taxes = self.taxes()
        products: list[dict[str, Any]] = []
        for line in order.lines:
            if not line.sku.strip():
                raise record_error(SYSTEM, reference, f"a line has no SKU ({line.name or 'unnamed'})")
            rate = line.vat_rate
            if rate is None:
                raise record_error(SYSTEM, reference, f"SKU {line.sku!r} has no VAT rate")
            if line.unit_price_gross is not None:
                price = line.unit_price_gross
            elif line.unit_price_net is not None:
                price = gross_from_net(line.unit_price_net, rate)
            else:
                raise record_error(SYSTEM, reference, f"SKU {line.sku!r} has no price")
            products.append(
                self._product(line.name or line.sku, line.sku, line.quantity, price, rate, taxes, reference)
                | {"warehouseName": self.order_warehouse, "isService": False}
            )
        if not products:
            raise record_error(SYSTEM, reference, "the order has no lines")
        if order.shipping_amount > 0:
            rate = order.shipping_vat_rate if order.shipping_vat_rate is not None else max(taxes, default=None)
            if rate is None:
                raise record_error(SYSTEM, reference, "no VAT rate for the shipping line")
            products.append(
                self._product(self.shipping_name, "", Decimal(1), order.shipping_amount, rate, taxes, reference)
                | {"isService": True}
            )
        return {
            "companyVatCode": self.cif,
            "client": _client(customer, order.billing or customer.billing),
            "issueDate": self._today(),
            "seriesName": self.invoice_series,
            "currency": order.currency,
            "language": "RO",
            "precision": 2,
            "isDraft": False,
            "useStock": True,
            "mentions": f"Comanda online {reference}",
            "products": products,
        }

    def _product(
        self,
        name: str,
        code: str,
        quantity: Decimal,
        price: Decimal,
        rate: Decimal,
        taxes: Mapping[Decimal, str],
        reference: str,
    ) -> dict[str, Any]:
        tax_name = taxes.get(rate.normalize())
        if tax_name is None:
            known = ", ".join(f"{r}%" for r in sorted(taxes))
            raise record_error(
                SYSTEM, reference, f"{code or name}: VAT rate {rate}% is not defined in SmartBill (defined: {known})"
            )
        return {
            "name": name,
            "code": code,
            "measuringUnitName": self.measuring_unit,
            "quantity": float(quantity),
            "price": float(price),
            "isTaxIncluded": True,
            "taxName": tax_name,
            "taxPercentage": float(rate),
        }

    def cancel_order(self, erp_id: str) -> None:
        """Cancel the invoice ``"SERIES-NUMBER"`` (its stock goes back); cancelling twice is harmless."""
        invoice = InvoiceId.parse(erp_id)
        params = {"cif": self.cif, "seriesname": invoice.series, "number": invoice.number}
        try:
            self._request("PUT", "invoice/cancel", params=params, kind="write", record_key=erp_id)
        except RecordError as error:
            if not _ALREADY_CANCELLED.search(error.message):
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


# --------------------------------------------------------------------------- pure helpers


def parse_stock(
    entries: Sequence[Any], warehouses: Sequence[str], skus: Sequence[str] | None = None
) -> Page[StockLevel]:
    """The ``list`` of a ``/stocks`` reply -> one page of the requested warehouses (see ``iter_stock``)."""
    wanted = set(warehouses)
    only = set(skus) if skus is not None else None
    totals: dict[tuple[str, str], Decimal] = {}
    units: dict[tuple[str, str], str] = {}
    bad: dict[tuple[str, str], RowError] = {}
    errors: list[RowError] = []
    seen: set[str] = set()
    for entry in entries:
        warehouse = entry.get("warehouse") if isinstance(entry, dict) else None
        name = warehouse.get("warehouseName") if isinstance(warehouse, dict) else None
        if not isinstance(name, str):
            errors.append(RowError(key="warehouse:?", error="a warehouse without a name", payload=_payload(entry)))
            continue
        seen.add(name)
        if name not in wanted:
            continue
        products = entry.get("products")
        if not isinstance(products, list):
            errors.append(
                RowError(
                    key=f"warehouse:{name}", error="products is not a list", payload={"products": str(products)[:200]}
                )
            )
            continue
        for index, row in enumerate(products):
            code = row.get("productCode") if isinstance(row, dict) else None
            if not isinstance(code, str) or not code.strip():
                errors.append(RowError(key=f"{name}#{index}", error="a row without productCode", payload=_payload(row)))
                continue
            if only is not None and code not in only:
                continue
            key = (name, code)
            if key in bad:
                continue
            quantity = _decimal(row.get("quantity"))
            unit = str(row.get("measuringUnit") or "")
            if quantity is None:
                bad[key] = RowError(
                    key=code,
                    error=f"quantity {row.get('quantity')!r} in {name!r} is not a number",
                    payload=_payload(row),
                )
            elif key in units and units[key] != unit:
                bad[key] = RowError(
                    key=code,
                    error=f"listed in {name!r} with two measuring units ({units[key]!r}, {unit!r})",
                    payload=_payload(row),
                )
            else:
                units[key] = unit
                totals[key] = totals.get(key, Decimal(0)) + quantity
    items = [
        StockLevel(sku=code, warehouse=name, on_hand=quantity)
        for (name, code), quantity in totals.items()
        if (name, code) not in bad
    ]
    errors.extend(bad.values())
    for name in warehouses:
        if name not in seen:
            hint = [known for known in sorted(seen) if known.casefold() == name.casefold()]
            advice = f"; did you mean {hint[0]!r}? (names are case-sensitive)" if hint else ""
            errors.append(
                RowError(
                    key=f"warehouse:{name}",
                    error=f"warehouse {name!r} is not in SmartBill's reply{advice}",
                    payload={"known": sorted(seen)},
                )
            )
    return Page[StockLevel](items=items, errors=errors)


def _decimal(value: Any) -> Decimal | None:
    """A finite number from a JSON number or numeric string; None for anything else (bools included)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _payload(row: Any) -> dict[str, Any]:
    return row if isinstance(row, dict) else {"row": str(row)[:200]}


def _client(customer: Customer, address: Address | None) -> dict[str, Any]:
    """The invoice's client block: the company when it is one, else the person."""
    address = address or Address()
    if customer.is_company:
        name = customer.company_name or address.company or customer.name or address.name
    else:
        name = address.name or customer.name
    vat_code = (customer.vat_code or "").strip() if customer.is_company else ""
    client: dict[str, Any] = {
        "name": name,
        "vatCode": vat_code,
        "regCom": (customer.registration_number or "") if customer.is_company else "",
        "isTaxPayer": vat_code.upper().startswith("RO"),
        "address": address.street,
        "city": address.city,
        "county": address.region,
        "country": COUNTRY_NAMES.get(address.country_code.upper(), address.country_code),
        "email": customer.email or address.email or "",
        "phone": customer.phone or address.phone or "",
        "saveToDb": False,
    }
    return client


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
