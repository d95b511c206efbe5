"""An Oblio simulator: an ASGI app that behaves like ``https://www.oblio.eu/api`` (``docs/oblio.md``).

What it reproduces:

- ``POST /authorize/token`` (JSON or form: ``client_id``, ``client_secret``, ``grant_type``) ->
  ``{access_token, expires_in: "3600", token_type: "Bearer", scope, request_time}``; wrong pair -> 401.
  Tokens expire after ``token_ttl`` seconds of the injectable clock; ``expire_tokens()`` ends them all now.
  An unknown or expired bearer token -> 401 ``{"status": 401, "statusMessage": ...}``.
- The lock: more than ``rate_limit`` (3) accepted calls of one token within ``rate_window`` (1 s) -> that token
  is locked ``lock_seconds`` (600): every call with it is refused with ``lock_status`` (429 by default;
  *(inference)*: Oblio documents the lock, not its reply) and a ``statusMessage`` saying so.
- Nomenclatures: ``companies``, ``vat_rates``, ``series``, ``management``, ``products`` (pages of 250 by
  ``offset``, goods with ``stock[{workStation, management, quantity, price, ...}]``).
- Documents (``_oblio_docs.py``): invoices and proformas with ``idempotencyKey`` (the same key returns the
  same document), ``useStock`` moving stock, negative quantities bringing it back, storno by
  ``referenceDocument``, cancel, delete (the last of a series), view and list, each with its ``link``.
- Refusals: HTTP 400 ``{"status": 400, "statusMessage": ...}``. Faults: ``inject(route, status, after=...)``.
- Webhooks: ``POST /webhooks`` ``{cif, topic, endpoint}`` subscribes, ``GET`` lists, ``DELETE ?id=`` ends one.
  Every stock change (a document with ``useStock``, ``set_stock``) queues a notice per ``stock`` subscription;
  ``deliver_notices()`` POSTs them with a fresh ``X-Oblio-Request-Id`` and keeps those not answered 200 with the
  base64 of that id (the documented handshake). The notice's body is *(inference)*: Oblio does not document it;
  here ``{"topic": "stock", "cif", "data": {"products": [{"code", "management", "quantity"}]}}``.
- ``stats``: requests, accepted calls with their times (``max_in_window``), per route, tokens issued, 401s, locks.
"""

from __future__ import annotations

import base64
import json
import math
import secrets
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import Receive, Scope, Send

from erpsync.testing._oblio_docs import SERVICE, SimDoc, SimError, SimItem, _DocRoutes, json_number

__all__ = ["OblioSimulator", "SimDoc", "SimError", "SimItem", "SimStats"]

PAGE = 250
DEFAULT_VAT: tuple[tuple[str, Decimal], ...] = (("Normala", Decimal(21)), ("Redusa", Decimal(11)), ("SDD", Decimal(0)))
Handler = Callable[[Request], Awaitable[Response]]


@dataclass
class SimStats:
    """What the simulator saw."""

    requests: int = 0
    calls: int = 0
    tokens_issued: int = 0
    auth_failures: int = 0
    rate_limited: int = 0
    locks: int = 0
    faults: int = 0
    by_route: dict[str, int] = field(default_factory=dict)
    call_times: list[float] = field(default_factory=list)
    last_params: dict[str, dict[str, str]] = field(default_factory=dict)

    def max_in_window(self, period: float = 1.0) -> int:
        """The most accepted calls in any window of ``period`` seconds."""
        times = sorted(self.call_times)
        best = start = 0
        for end, moment in enumerate(times):
            while times[start] <= moment - period:
                start += 1
            best = max(best, end - start + 1)
        return best


@dataclass
class _Token:
    user: str
    expires_at: float
    window: deque[float] = field(default_factory=deque)
    locked_until: float = -math.inf


@dataclass
class _Fault:
    route: str | None
    status: int
    after: bool


class OblioSimulator(_DocRoutes):
    """An in-memory Oblio company; the instance is the ASGI app. State is public for tests to seed and inspect."""

    def __init__(
        self,
        *,
        cif: str = "RO12345678",
        company: str = "Magazin Demo SRL",
        users: Mapping[str, str] | None = None,
        managements: Mapping[str, Mapping[str, Any]] | None = None,
        work_station: str = "Sediu",
        series: Iterable[tuple[str, str]] = (("FCT", "Factura"), ("PR", "Proforma")),
        vat_rates: Iterable[tuple[str, Decimal | int]] = DEFAULT_VAT,
        token_ttl: float = 3600.0,
        rate_limit: int = 3,
        rate_window: float = 1.0,
        lock_seconds: float = 600.0,
        lock_status: int = 429,
        allow_negative_stock: bool = False,
        link_template: str = "https://www.oblio.eu/utils/show_file/?ic=1&id={id}&it=sim{series}{number}",
        today: str | None = None,
        prefix: str = "/api",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cif = cif
        self.company = company
        self.users: dict[str, str] = dict(users or {"office@example.ro": "oblio-secret-0001"})
        self.managements: dict[str, str] = {}
        self.products: dict[str, SimItem] = {}
        self.series: dict[str, tuple[str, int]] = {name: (kind, 1) for name, kind in series}
        self.vat_rates = [(name, Decimal(rate)) for name, rate in vat_rates]
        self.docs: dict[str, SimDoc] = {}
        self.idempotency: dict[str, str] = {}
        self.token_ttl = token_ttl
        self.rate_limit = rate_limit
        self.rate_window = rate_window
        self.lock_seconds = lock_seconds
        self.lock_status = lock_status
        self.allow_negative_stock = allow_negative_stock
        self.link_template = link_template
        self.today = today
        self.clock = clock
        self.stats = SimStats()
        self.tokens: dict[str, _Token] = {}
        self._faults: list[_Fault] = []
        self._lock = threading.RLock()
        self.webhooks: dict[int, dict[str, str]] = {}
        self.notices: list[tuple[str, dict[str, Any]]] = []  # (endpoint, body) not yet acknowledged
        self.deliveries: list[tuple[str, int, bool]] = []  # (request id, status, echo right)
        for name, stock in (managements or {}).items():
            self.add_management(name, stock, work_station=work_station)
        self.app = Starlette(routes=[Mount(prefix, routes=self._routes())])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)

    # -- seeding and inspection ---------------------------------------------------------------------------

    def add_management(self, name: str, stock: Mapping[str, Any] | None = None, *, work_station: str = "Sediu") -> None:
        """A management (warehouse) with ``code -> quantity`` (products are created as goods when new)."""
        with self._lock:
            self.managements[name] = work_station
            for code, quantity in (stock or {}).items():
                item = self.products.setdefault(code, SimItem(name=f"Produs {code}", code=code))
                item.stock[name] = Decimal(str(quantity))

    def add_product(self, item: SimItem) -> None:
        with self._lock:
            self.products[item.code or item.name] = item

    def seed_generated(self, count: int, management: str, *, prefix: str = "OB") -> None:
        """``count`` goods ``OB00001``... with quantities 0..49 in ``management``."""
        self.add_management(management, {f"{prefix}{i:05d}": i % 50 for i in range(1, count + 1)})

    def quantity(self, management: str, code: str) -> Decimal:
        with self._lock:
            return self.products[code].stock.get(management, Decimal(0))

    def invoices(self) -> list[SimDoc]:
        with self._lock:
            return [doc for doc in self.docs.values() if doc.kind == "Factura"]

    def stornos(self, of: str | None = None) -> list[SimDoc]:
        with self._lock:
            return [d for d in self.docs.values() if d.storno_of is not None and of in (None, d.storno_of)]

    def expire_tokens(self) -> None:
        """Every token issued so far expires now (as if an hour had passed)."""
        with self._lock:
            for token in self.tokens.values():
                token.expires_at = min(token.expires_at, self.clock())

    def set_stock(self, code: str, management: str, quantity: Decimal | int) -> None:
        """What a receipt or a count typed into Oblio does: the quantity changes and a stock notice is queued."""
        with self._lock:
            self.products[code].stock[management] = Decimal(quantity)
            self._stock_moved({(code, management)})

    def _stock_moved(self, moved: set[tuple[str, str]]) -> None:
        with self._lock:
            endpoints = [w["endpoint"] for w in self.webhooks.values() if w["topic"] == "stock"]
            if not endpoints:
                return
            products = [
                {"code": code, "management": m, "quantity": json_number(self.products[code].stock.get(m, Decimal(0)))}
                for code, m in sorted(moved)
                if code in self.products
            ]
            body = {"topic": "stock", "cif": self.cif, "data": {"products": products}}
            self.notices.extend((endpoint, body) for endpoint in endpoints)

    def deliver_notices(self, client: httpx.Client | None = None) -> int:
        """POST the queued notices (``client``: e.g. over an ASGI transport); those answered 200 with the right
        echo are done, the rest stay queued. The number delivered."""
        with self._lock:
            queued, self.notices = self.notices, []
        owned = client is None
        http = client or httpx.Client(timeout=10.0)
        kept: list[tuple[str, dict[str, Any]]] = []
        try:
            for endpoint, body in queued:
                request_id = secrets.token_hex(8)
                try:
                    reply = http.post(endpoint, content=json.dumps(body), headers={"X-Oblio-Request-Id": request_id})
                    status, text = reply.status_code, reply.text
                except httpx.HTTPError:
                    status, text = 0, ""
                right = status == 200 and text.strip() == base64.b64encode(request_id.encode()).decode()
                self.deliveries.append((request_id, status, right))
                if not right:
                    kept.append((endpoint, body))
        finally:
            if owned:
                http.close()
        with self._lock:
            self.notices[:0] = kept
        return len(queued) - len(kept)

    def unlock_all(self) -> None:
        with self._lock:
            for token in self.tokens.values():
                token.locked_until = -math.inf
                token.window.clear()

    def inject(self, route: str | None = None, *, status: int = 500, count: int = 1, after: bool = False) -> None:
        """Queue ``count`` faults for ``route`` (``"docs/invoice"``...): the reply is ``status``; with ``after`` the
        request is processed first (a lost reply)."""
        with self._lock:
            self._faults.extend(_Fault(route, status, after) for _ in range(count))

    # -- the gate ---------------------------------------------------------------------------------------------

    def _routes(self) -> list[Route]:
        guard = self._guard
        return [
            Route("/authorize/token", self._token, methods=["POST"]),
            Route("/nomenclature/companies", guard("nomenclature/companies", self._companies), methods=["GET"]),
            Route("/nomenclature/vat_rates", guard("nomenclature/vat_rates", self._vat), methods=["GET"]),
            Route("/nomenclature/series", guard("nomenclature/series", self._series), methods=["GET"]),
            Route("/nomenclature/management", guard("nomenclature/management", self._management), methods=["GET"]),
            Route("/nomenclature/products", guard("nomenclature/products", self._products), methods=["GET"]),
            Route("/docs/invoice/list", guard("docs/invoice/list", self._list_invoices), methods=["GET"]),
            Route("/docs/proforma/list", guard("docs/proforma/list", self._list_proformas), methods=["GET"]),
            Route("/docs/invoice/cancel", guard("docs/invoice/cancel", self._cancel_invoice), methods=["PUT"]),
            Route("/docs/proforma/cancel", guard("docs/proforma/cancel", self._cancel_proforma), methods=["PUT"]),
            Route("/docs/invoice", guard("docs/invoice", self._invoice), methods=["GET", "POST", "DELETE"]),
            Route("/docs/proforma", guard("docs/proforma", self._issue_proforma), methods=["POST"]),
            Route("/webhooks", guard("webhooks", self._webhooks), methods=["GET", "POST", "DELETE"]),
        ]

    async def _invoice(self, request: Request) -> Response:
        if request.method == "GET":
            return await self._view_invoice(request)
        if request.method == "DELETE":
            return await self._delete_invoice(request)
        return await self._issue_invoice(request)

    def _guard(self, route: str, handler: Handler) -> Handler:
        async def guarded(request: Request) -> Response:
            with self._lock:
                self.stats.requests += 1
                refused = self._admit(request)
                if refused is not None:
                    return refused
                self.stats.calls += 1
                self.stats.by_route[route] = self.stats.by_route.get(route, 0) + 1
                self.stats.last_params[route] = dict(request.query_params)
                fault = next((f for f in self._faults if f.route in (None, route)), None)
                if fault is not None:
                    self._faults.remove(fault)
                    self.stats.faults += 1
            if fault is not None and not fault.after:
                return _error(fault.status, f"simulated fault {fault.status}")
            try:
                response = await handler(request)
            except SimError as exc:
                response = _error(400, str(exc))
            if fault is not None:
                return _error(fault.status, f"simulated fault {fault.status} (processed)")
            return response

        return guarded

    def _admit(self, request: Request) -> Response | None:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        token = self.tokens.get(value.strip()) if scheme.lower() == "bearer" else None
        now = self.clock()
        if token is None or now >= token.expires_at:
            self.stats.auth_failures += 1
            return _error(401, "Access token invalid sau expirat")  # (inference) the wording
        if now < token.locked_until:
            self.stats.rate_limited += 1
            return self._locked(token, now)
        while token.window and token.window[0] <= now - self.rate_window:
            token.window.popleft()
        if len(token.window) >= self.rate_limit:
            token.locked_until = now + self.lock_seconds
            token.window.clear()
            self.stats.locks += 1
            self.stats.rate_limited += 1
            return self._locked(token, now)
        token.window.append(now)
        self.stats.call_times.append(now)
        return None

    def _locked(self, token: _Token, now: float) -> Response:
        left = max(1, math.ceil(token.locked_until - now))
        message = f"Prea multe cereri pe secunda: token-ul de acces este blocat timp de 10 minute ({left} s ramase)"
        return _error(self.lock_status, message)

    async def _token(self, request: Request) -> Response:
        raw = await request.body()
        try:
            form: dict[str, Any] = await request.json()
        except ValueError:
            form = {k: v[0] for k, v in parse_qs(raw.decode(errors="replace")).items()}
        user, secret = str(form.get("client_id") or ""), str(form.get("client_secret") or "")
        with self._lock:
            self.stats.requests += 1
            if not user or self.users.get(user) != secret:
                self.stats.auth_failures += 1
                return _error(401, "client_id sau client_secret invalid")
            value = secrets.token_hex(20)
            now = self.clock()
            self.tokens[value] = _Token(user=user, expires_at=now + self.token_ttl)
            self.stats.tokens_issued += 1
        return JSONResponse(
            {
                "access_token": value,
                "expires_in": str(int(self.token_ttl)),
                "token_type": "Bearer",
                "scope": "",
                "request_time": str(int(time.time())),
            }
        )

    # -- nomenclatures ------------------------------------------------------------------------------------------

    async def _webhooks(self, request: Request) -> Response:
        with self._lock:
            if request.method == "GET":
                return _ok([{"id": key, **hook} for key, hook in self.webhooks.items()])
            if request.method == "DELETE":
                key = int(request.query_params.get("id") or 0)
                if self.webhooks.pop(key, None) is None:
                    return _error(404, f"Webhook-ul {key} nu exista")
                return _ok({"id": key})
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "Corpul cererii nu este JSON")
        topic, endpoint = str(body.get("topic") or ""), str(body.get("endpoint") or "")
        if body.get("cif") != self.cif:
            return _error(400, "CIF-ul nu apartine contului")
        if topic not in ("stock", "document", "collect"):  # (inference) the topic names beside "stock"
            return _error(400, f"Topic necunoscut: {topic!r}")
        url = urlparse(endpoint)
        host = url.hostname or ""
        local = url.scheme == "http" and (host in ("127.0.0.1", "localhost") or host.endswith(".test"))
        if not (url.scheme == "https" or local):
            return _error(400, "Endpoint-ul trebuie sa fie HTTPS")  # (inference) loopback and .test hosts allowed
        with self._lock:
            key = max(self.webhooks, default=0) + 1
            self.webhooks[key] = {"topic": topic, "endpoint": endpoint}
        return _ok({"id": key, "topic": topic, "endpoint": endpoint})

    async def _companies(self, request: Request) -> Response:
        return _ok([{"cif": self.cif, "company": self.company, "userTypeAccess": "admin"}])

    async def _vat(self, request: Request) -> Response:
        self._require_cif(request.query_params.get("cif"))
        rates = [
            {"name": name, "percent": json_number(rate), "default": i == 0}
            for i, (name, rate) in enumerate(self.vat_rates)
        ]
        return _ok(rates)

    async def _series(self, request: Request) -> Response:
        self._require_cif(request.query_params.get("cif"))
        with self._lock:
            rows = [
                {"type": kind, "name": name, "start": "0001", "next": f"{nxt:04d}", "default": True}
                for name, (kind, nxt) in self.series.items()
            ]
        return _ok(rows)

    async def _management(self, request: Request) -> Response:
        self._require_cif(request.query_params.get("cif"))
        with self._lock:
            rows = [
                {"management": name, "workStation": station, "managementType": "Cantitativ Valorica"}
                for name, station in self.managements.items()
            ]
        return _ok(rows)

    async def _products(self, request: Request) -> Response:
        query = request.query_params
        self._require_cif(query.get("cif"))
        offset = int(query.get("offset") or 0)
        with self._lock:
            items = [
                item
                for item in self.products.values()
                if (not query.get("code") or item.code == query["code"])
                and (not query.get("name") or query["name"].lower() in item.name.lower())
            ]
            rows = [self._product_row(item) for item in items[offset : offset + PAGE]]
        return _ok(rows)

    def _product_row(self, item: SimItem) -> dict[str, Any]:
        row: dict[str, Any] = {
            "name": item.name,
            "code": item.code,
            "description": item.description,
            "measuringUnit": item.unit,
            "productType": item.product_type,
        }
        money = {
            "price": f"{item.price:.2f}",
            "currency": "RON",
            "vatName": next((n for n, r in self.vat_rates if r == item.vat), "Normala"),
            "vatPercentage": json_number(item.vat),
            "vatIncluded": True,
        }
        if item.product_type == SERVICE:
            return row | money
        row["stock"] = [
            {"workStation": self.managements.get(m, "Sediu"), "management": m, "quantity": json_number(q)} | money
            for m, q in item.stock.items()
        ]
        return row


def _ok(data: Any) -> Response:
    return JSONResponse({"status": 200, "statusMessage": "Success", "data": data})


def _error(status: int, message: str) -> Response:
    return JSONResponse({"status": status, "statusMessage": message, "data": []}, status_code=status)
