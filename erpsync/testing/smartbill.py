"""A SmartBill Cloud simulator: an ASGI app that behaves like ``https://ws.smartbill.ro/SBORO/api``.

What it reproduces (see ``docs/smartbill.md``):

- HTTP Basic ``email:token``; a wrong pair gets 401 with an ``errorText``; a ``cif`` the user has no right on
  gets an ``errorText`` about rights.
- ``GET /stocks?cif&date[&warehouseName&productName&productCode]``: ``date`` required, warehouse name
  case-sensitive (a wrong case matches nothing: an empty list, not an error), every warehouse in one reply.
- ``POST /invoice``: numbered invoices per series; with ``useStock`` each product line leaves its warehouse
  (unknown code or too little stock -> ``errorText``), a line with a negative quantity comes back into it;
  ``POST|PUT /invoice/reverse`` issues the storno of an invoice (once), ``PUT|DELETE /invoice/cancel`` cancels
  one (not once sent to e-Factura); both put the stock back; ``GET /invoice/pdf`` (PDF bytes), ``GET /tax``,
  ``GET /series`` (``type=f`` invoices, ``type=p`` estimates). The documents are ``_smartbill_docs.py``;
  ``POST /estimate`` (a proforma: no stock moves) and ``POST /payment`` (against invoices, never above their
  total) are ``_smartbill_extra.py``.
- Errors as ``errorText``: the routes named in ``errors_as_200`` answer HTTP 200 with ``errorText`` set, the
  others HTTP 400 with ``errorText`` (both happen in the real service).
- The rate limit with its lock-out: more than ``rate_limit`` accepted calls in any ``rate_window`` seconds
  -> 429 and the token is locked for ``lockout_seconds``; every call during the lock-out -> 429.
  ``X-RateLimit-Limit``, ``X-RateLimit-Remaining``, ``X-RateLimit-Reset`` (seconds until a slot frees) on
  every authenticated reply, ``Retry-After`` on a 429. The clock is injectable so tests need not wait.
- Fault injection (``erpsync.testing.faults``): queued faults per route (status, before or *after* processing,
  a stall, an ``errorText``) and a seeded plan (``fault_rate`` + ``seed``: random 500s; or ``faults=Faults(...)``
  with 500s, 429s and timeouts).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import math
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import Receive, Scope, Send

from erpsync.testing._smartbill_docs import SimError, SimInvoice, SimProduct, _InvoiceRoutes, number_json
from erpsync.testing._smartbill_extra import SimPayment, _ExtraRoutes
from erpsync.testing.faults import REPLY_KINDS, Fault, FaultInjector, Faults, refuse_kinds

__all__ = ["SimError", "SimInvoice", "SimPayment", "SimProduct", "SimStats", "SmartBillSimulator"]

DEFAULT_PREFIX = "/SBORO/api"
DEFAULT_TAXES: tuple[tuple[str, Decimal], ...] = (
    ("Normala", Decimal(21)),
    ("Redusa", Decimal(11)),
    ("SDD", Decimal(0)),
)
WAREHOUSE_TYPE = "cantitativ-valorica"
Handler = Callable[[Request], Awaitable[Response]]


@dataclass
class SimStats:
    """What the simulator saw: requests, accepted calls (with their times), 429s, lock-outs, per route (with
    the query of the last call)."""

    requests: int = 0
    calls: int = 0
    rate_limited: int = 0
    lockouts: int = 0
    auth_failures: int = 0
    faults: Counter[str] = field(default_factory=Counter)  # fault kind -> count
    by_route: dict[str, int] = field(default_factory=dict)
    last_params: dict[str, dict[str, str]] = field(default_factory=dict)
    call_times: list[float] = field(default_factory=list)

    def max_in_window(self, period: float) -> int:
        """The most accepted calls seen in any window of ``period`` seconds (half-open, like the limit)."""
        times = sorted(self.call_times)
        best = 0
        start = 0
        for end, moment in enumerate(times):
            while times[start] <= moment - period:
                start += 1
            best = max(best, end - start + 1)
        return best


class _TokenState:
    def __init__(self) -> None:
        self.window: deque[float] = deque()
        self.locked_until: float = -math.inf


class SmartBillSimulator(_InvoiceRoutes, _ExtraRoutes):
    """An in-memory SmartBill company: users, warehouses with stock, series, invoices, VAT rates.

    The instance is the ASGI app (``SyncASGITransport(sim)`` or ``uvicorn``); every piece of state is public for
    tests to seed and inspect.
    """

    def __init__(
        self,
        *,
        cif: str = "RO12345678",
        users: Mapping[str, str] | None = None,
        warehouses: Mapping[str, Mapping[str, Any]] | None = None,
        series: Iterable[str] = ("WEB",),
        estimate_series: Iterable[str] = ("PRF",),
        taxes: Iterable[tuple[str, Decimal | int]] = DEFAULT_TAXES,
        prefix: str = DEFAULT_PREFIX,
        rate_limit: int = 30,
        rate_window: float = 10.0,
        lockout_seconds: float = 600.0,
        errors_as_200: Iterable[str] = ("stocks", "tax", "series"),
        allow_negative_stock: bool = False,
        invoice_url: str | None = "https://cloud.smartbill.ro/sim/{cif}/factura/{series}{number}",
        fault_rate: float = 0.0,
        seed: int = 0,
        faults: Faults | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cif = cif
        self.users: dict[str, str] = dict(users or {"shop@example.com": "sb-token-0001"})
        self.warehouses: dict[str, dict[str, SimProduct]] = {}
        self.raw_rows: dict[str, list[dict[str, Any]]] = {}
        self.series: dict[str, int] = {name: 1 for name in series}
        self.taxes: list[tuple[str, Decimal]] = [(name, Decimal(rate)) for name, rate in taxes]
        self.invoices: dict[str, SimInvoice] = {}
        self.estimate_series: dict[str, int] = {name: 1 for name in estimate_series}
        self.estimates: dict[str, SimInvoice] = {}  # proformas (POST /estimate): they move no stock
        self.payments: list[SimPayment] = []  # POST /payment
        self.rate_limit = rate_limit
        self.rate_window = rate_window
        self.lockout_seconds = lockout_seconds
        self.errors_as_200: set[str] = set(errors_as_200)
        self.allow_negative_stock = allow_negative_stock
        self.invoice_url = invoice_url  # the ``url`` a new invoice's reply carries (None: an empty one)
        self.stats = SimStats()
        self.clock = clock
        self.fault_injector = FaultInjector(counts=self.stats.faults)
        if faults is None and fault_rate:
            faults = Faults(error_500=fault_rate, seed=seed)  # the seeded random 500 rate
        self.set_faults(faults)
        self._tokens: dict[str, _TokenState] = {}
        self._lock = threading.RLock()
        for name, products in (warehouses or {}).items():
            self.add_warehouse(name, products)
        self.app = Starlette(routes=[Mount(prefix, routes=self._routes())])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)

    # -- seeding ------------------------------------------------------------------------------------------

    def add_warehouse(self, name: str, products: Mapping[str, Any] | None = None) -> None:
        """Add (or extend) a warehouse; ``products`` maps a code to a quantity or to a ``SimProduct``."""
        with self._lock:
            stock = self.warehouses.setdefault(name, {})
            for code, value in (products or {}).items():
                stock[code] = (
                    value if isinstance(value, SimProduct) else SimProduct(f"Produs {code}", Decimal(str(value)))
                )

    def seed_generated(self, count: int, warehouses: Iterable[str], *, seed: int = 0, prefix: str = "SKU") -> None:
        """Fill warehouses with ``count`` codes ``SKU00001``... with seeded quantities from 0 to 50."""
        rng = random.Random(seed)
        for name in warehouses:
            self.add_warehouse(name, {f"{prefix}{i:05d}": rng.randint(0, 50) for i in range(1, count + 1)})

    def add_raw_row(self, warehouse: str, row: dict[str, Any]) -> None:
        """Append a row to a warehouse's stock reply exactly as given (to simulate malformed data)."""
        with self._lock:
            self.warehouses.setdefault(warehouse, {})
            self.raw_rows.setdefault(warehouse, []).append(row)

    def quantity(self, warehouse: str, code: str) -> Decimal:
        """The quantity of a code in a warehouse now."""
        with self._lock:
            return self.warehouses[warehouse][code].quantity

    def mark_e_factura(self, key: str) -> None:
        """Mark invoice ``"WEB-0001"`` as sent to e-Factura (it can no longer be cancelled, only reversed)."""
        with self._lock:
            self.invoices[key].e_factura = True

    def stornos(self, key: str | None = None) -> list[SimInvoice]:
        """The storno invoices (of ``key`` only, when given)."""
        with self._lock:
            return [i for i in self.invoices.values() if i.storno_of is not None and key in (None, i.storno_of)]

    def inject(
        self,
        route: str | None = None,
        *,
        status: int = 500,
        count: int = 1,
        after: bool = False,
        delay: float = 0.0,
        error_text: str | None = None,
    ) -> None:
        """Queue ``count`` faults for ``route`` (``"invoice"``, ``"stocks"``...; None: the next call of any)."""
        fault = Fault.queued(route, status=status, after=after, delay=delay, error_text=error_text)
        self.fault_injector.queue(fault, count)

    def set_faults(self, faults: Faults | None) -> None:
        """Install (or clear) a seeded fault plan (500s, 429s, timeouts: the kinds a reply can say)."""
        refuse_kinds(faults, REPLY_KINDS, "the SmartBill simulator")
        self.fault_injector.set_plan(faults)

    def unlock_all(self) -> None:
        """Lift every lock-out and forget every window (as if ten quiet minutes had passed)."""
        with self._lock:
            self._tokens.clear()

    # -- the gate every call passes ---------------------------------------------------------------------

    def _routes(self) -> list[Route]:
        return [
            Route("/stocks", self._guard("stocks", self._stocks), methods=["GET"]),
            Route("/invoice", self._guard("invoice", self._invoice), methods=["POST"]),
            Route("/invoice/cancel", self._guard("invoice/cancel", self._cancel), methods=["PUT", "DELETE"]),
            Route("/invoice/reverse", self._guard("invoice/reverse", self._reverse), methods=["POST", "PUT"]),
            Route("/invoice/pdf", self._guard("invoice/pdf", self._pdf), methods=["GET"]),
            Route("/tax", self._guard("tax", self._tax), methods=["GET"]),
            Route("/series", self._guard("series", self._series), methods=["GET"]),
            Route("/estimate", self._guard("estimate", self._estimate), methods=["POST"]),
            Route("/estimate/cancel", self._guard("estimate/cancel", self._estimate_cancel), methods=["PUT"]),
            Route("/payment", self._guard("payment", self._payment), methods=["POST"]),
        ]

    def _guard(self, route: str, handler: Handler) -> Handler:
        async def guarded(request: Request) -> Response:
            with self._lock:
                self.stats.requests += 1
                token = self._authenticate(request)
                if token is None:
                    self.stats.auth_failures += 1
                    return JSONResponse(
                        {"errorText": "Autentificare esuata: utilizator sau token invalid.", "message": ""},
                        status_code=401,
                        headers={"WWW-Authenticate": 'Basic realm="SmartBill"'},
                    )
                refused, headers = self._admit(token)
                if refused is not None:
                    return refused
                self.stats.calls += 1
                self.stats.by_route[route] = self.stats.by_route.get(route, 0) + 1
                self.stats.last_params[route] = dict(request.query_params)
                fault = self.fault_injector.draw(request.method, route)
            if latency := self.fault_injector.latency(request.method):
                await asyncio.sleep(latency)
            if fault is not None and not fault.after:
                await asyncio.sleep(fault.delay)
                return self._fault_response(route, fault, headers)
            try:
                response = await handler(request)
            except SimError as exc:
                response = self._error_text(route, str(exc))
            if fault is not None:
                # The work is done; the client sees a failure (or nothing, if it gave up during the stall).
                await asyncio.sleep(fault.delay)
                return self._fault_response(route, fault, headers)
            response.headers.update(headers)
            return response

        return guarded

    def _authenticate(self, request: Request) -> str | None:
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, _, token = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return token if token and self.users.get(user) == token else None

    def _admit(self, token: str) -> tuple[Response | None, dict[str, str]]:
        """Count one call against the token's window; a 429 (and maybe a fresh lock-out) when over."""
        now = self.clock()
        state = self._tokens.setdefault(token, _TokenState())
        if now < state.locked_until:
            return self._too_many(state, now), {}
        while state.window and state.window[0] <= now - self.rate_window:
            state.window.popleft()
        if len(state.window) >= self.rate_limit:
            state.locked_until = now + self.lockout_seconds
            state.window.clear()
            self.stats.lockouts += 1
            return self._too_many(state, now), {}
        state.window.append(now)
        self.stats.call_times.append(now)
        reset = state.window[0] + self.rate_window - now
        return None, {
            "X-RateLimit-Limit": str(self.rate_limit),
            "X-RateLimit-Remaining": str(self.rate_limit - len(state.window)),
            "X-RateLimit-Reset": str(max(0, math.ceil(reset))),
        }

    def _too_many(self, state: _TokenState, now: float) -> Response:
        self.stats.rate_limited += 1
        remaining = max(1, math.ceil(state.locked_until - now))
        return JSONResponse(
            {"errorText": "Too many requests: tokenul este blocat temporar.", "message": ""},
            status_code=429,
            headers={
                "Retry-After": str(remaining),
                "X-RateLimit-Limit": str(self.rate_limit),
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(remaining),
            },
        )

    def _error_text(self, route: str, text: str) -> Response:
        status = 200 if route in self.errors_as_200 else 400
        return JSONResponse({"errorText": text, "message": ""}, status_code=status)

    def _fault_response(self, route: str, fault: Fault, headers: dict[str, str]) -> Response:
        if fault.error_text is not None:
            response = self._error_text(route, fault.error_text)
            response.headers.update(headers)
            return response
        if fault.status == 429:
            headers = {**headers, "Retry-After": str(math.ceil(fault.retry_after or 1))}
        return Response(f"simulated fault {fault.status}", status_code=fault.status, headers=headers)

    # -- routes ---------------------------------------------------------------------------------------------

    async def _stocks(self, request: Request) -> Response:
        self._require_cif(request)
        query = request.query_params
        when = query.get("date", "")
        if not when:
            raise SimError("Data este obligatorie (parametrul date, format yyyy-MM-dd).")
        try:
            date.fromisoformat(when)
        except ValueError:
            raise SimError(f"Data {when} nu este valida (format yyyy-MM-dd).") from None
        only_warehouse = query.get("warehouseName")
        only_code = query.get("productCode")
        only_name = query.get("productName")
        entries = []
        with self._lock:
            for name, stock in self.warehouses.items():
                if only_warehouse is not None and name != only_warehouse:
                    continue
                products = [
                    {
                        "measuringUnit": product.unit,
                        "productCode": code,
                        "productName": product.name,
                        "quantity": number_json(product.quantity),
                    }
                    for code, product in stock.items()
                    if (only_code is None or code == only_code) and (only_name is None or product.name == only_name)
                ]
                if only_code is None and only_name is None:
                    products.extend(self.raw_rows.get(name, []))
                entries.append(
                    {"warehouse": {"warehouseName": name, "warehouseType": WAREHOUSE_TYPE}, "products": products}
                )
        return JSONResponse({"errorText": "", "message": "", "list": entries})

    async def _tax(self, request: Request) -> Response:
        self._require_cif(request)
        taxes = [{"name": name, "percentage": number_json(rate)} for name, rate in self.taxes]
        return JSONResponse({"errorText": "", "message": "", "taxes": taxes})

    async def _series(self, request: Request) -> Response:
        self._require_cif(request)
        kind = request.query_params.get("type", "f")
        with self._lock:
            numbered = self.estimate_series if kind == "p" else self.series  # p: proformas, f: invoices
            listed = [{"name": name, "nextNumber": number, "type": kind} for name, number in numbered.items()]
        return JSONResponse({"errorText": "", "message": "", "list": listed})
