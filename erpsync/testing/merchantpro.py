"""MerchantPro REST API v2 simulator: an ASGI app with seeded data, pacing and seeded fault injection.

It follows `/work/shared/reference/merchantpro-api.md`, quirks included; every choice made where the
reference is silent is listed in `docs/simulators.md`. Run it with
`python -m erpsync.testing.merchantpro --port 8300 --products 250 --orders 40 --key K --secret S [--rate 4]`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import hmac
import random
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, quote, unquote

from erpsync.testing import _catalogue as cat
from erpsync.testing._mp_catalogue_routes import CatalogueRoutes
from erpsync.testing._mp_order_routes import OrderRoutes
from erpsync.testing._mp_rules import (
    API_PREFIX,
    SHIPPING_STATUSES,
    WRITE_METHODS,
    ApiError,
    Json,
    dumps,
    integer,
)
from erpsync.testing._mp_state import Request, Route, check_method, resolve
from erpsync.testing._mp_taxonomy_routes import TaxonomyRoutes
from erpsync.testing.faults import Fault, FaultInjector, Faults, SimulatedConnectionReset, send_cut, send_truncated
from erpsync.testing.server import answer_lifespan, serve_in_thread

__all__ = [
    "ApiError",
    "Faults",
    "MerchantProSimulator",
    "SimStats",
    "SimulatedConnectionReset",
    "busiest_window",
    "main",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def _format_seconds(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"


@dataclass
class SimStats:
    """Request counters; `reset()` zeroes them."""

    requests: int = 0
    reads: int = 0  # GET
    writes: int = 0  # POST/PATCH/PUT/DELETE, whatever their outcome
    applied_writes: int = 0  # writes that changed the shop's state
    rate_limited: int = 0  # 429 replies, from pacing or injected
    auth_failures: int = 0  # 401 and 403 replies
    routes: Counter[str] = field(default_factory=Counter)  # "PATCH /products/{id}" -> count
    statuses: Counter[int] = field(default_factory=Counter)  # 0 = connection reset
    faults: Counter[str] = field(default_factory=Counter)  # fault kind -> count
    recent: deque[tuple[str, str, int]] = field(default_factory=lambda: deque(maxlen=500))
    # The call log: (arrival on the simulator's clock, route label, status) of every request, 429s included.
    calls: deque[tuple[float, str, int]] = field(default_factory=lambda: deque(maxlen=200_000))

    def reset(self) -> None:
        """Zero every counter."""
        self.requests = self.reads = self.writes = self.applied_writes = 0
        self.rate_limited = self.auth_failures = 0
        self.routes.clear()
        self.statuses.clear()
        self.faults.clear()
        self.recent.clear()
        self.calls.clear()

    def count(self, route: str) -> int:
        """Requests seen on one route label, e.g. `stats.count("PATCH /products/{id}")`."""
        return self.routes[route]

    def busiest_window(self, period: float = 1.0, *, since: float | None = None) -> int:
        """The most requests (any status) that arrived within one window ``[t, t + period)`` of the call log."""
        times = sorted(t for t, _label, _status in self.calls if since is None or t >= since)
        return busiest_window(times, period)


def busiest_window(times: list[float], period: float = 1.0) -> int:
    """The most of the sorted ``times`` inside any half-open window of ``period`` seconds."""
    best = start = 0
    for end, moment in enumerate(times):
        while moment - times[start] >= period:
            start += 1
        best = max(best, end - start + 1)
    return best


class MerchantProSimulator(CatalogueRoutes, TaxonomyRoutes, OrderRoutes):
    """An ASGI app standing in for MerchantPro's REST API v2 (see docs/simulators.md)."""

    def __init__(
        self,
        *,
        api_key: str = "demo-key",
        api_secret: str = "demo-secret",
        rate_per_second: float | None = None,
        retry_after: float | None = None,
        lockout_after: int = 5,
        faults: Faults | None = None,
        base_url: str | None = "http://shop.test",
        clock: Callable[[], float] = time.monotonic,
        omit_tax_value: bool = False,
    ) -> None:
        super().__init__(base_url)
        self.omit_tax_value = omit_tax_value  # product replies carry tax_id only (docs/simulators.md)
        self.api_key = api_key
        self.api_secret = api_secret
        self.retry_after = retry_after
        self.lockout_after = lockout_after
        self.clock = clock
        self.stats = SimStats()
        self._bad_attempts: dict[str, int] = {}
        self._locked: set[str] = set()
        self._buckets: dict[str, tuple[float, float]] = {}
        self.rate_per_second: float | None = None
        self.set_rate(rate_per_second)
        self.fault_injector = FaultInjector(faults, counts=self.stats.faults)

    # --- configuration ---------------------------------------------------------------------------------

    @property
    def faults(self) -> Faults | None:
        """The fault plan in force (None: no injected fault)."""
        return self.fault_injector.plan

    def set_faults(self, faults: Faults | None) -> None:
        """Install (or clear) fault injection; the fault RNG restarts from `faults.seed`."""
        self.fault_injector.set_plan(faults)

    def set_rate(self, rate_per_second: float | None) -> None:
        """Pace requests per API key with a token bucket (capacity max(1, rate)); None turns pacing off."""
        if rate_per_second is not None and rate_per_second <= 0:
            raise ValueError("rate_per_second must be > 0 or None")
        self.rate_per_second = rate_per_second
        self._buckets.clear()

    def unlock(self, api_key: str | None = None) -> None:
        """Lift the bad-credential lock-out of one key (or of all keys)."""
        if api_key is None:
            self._locked.clear()
            self._bad_attempts.clear()
        else:
            self._locked.discard(api_key)
            self._bad_attempts.pop(api_key, None)

    # --- seeding and direct access ---------------------------------------------------------------------

    def seed_catalogue(
        self,
        n_products: int,
        *,
        multi_variant_share: float = 0.1,
        variants: tuple[int, int] = (2, 4),
        seed: int = 0,
        sku_prefix: str = "SKU-",
        current_vat: bool = False,
    ) -> None:
        """Add `n_products` generated products; deterministic for a seed (on an empty catalogue); `current_vat`:
        taxed at today's rates (21 %, 11 %) instead of 19 %/9 %."""
        low, high = variants
        if not 1 <= low <= high <= 4:
            raise ValueError("variants must be a (low, high) range within 1..4")
        generated = cat.generate_products(
            n_products,
            next_id=self._allocate_unit_id,
            categories=self.categories,
            multi_variant_share=multi_variant_share,
            variants=variants,
            seed=seed,
            sku_prefix=sku_prefix,
            registry=self.variant_options,
            current_vat=current_vat,
        )
        for product in generated:
            for unit in (product, *product.get("variants", ())):
                if unit["sku"] in self._sku:
                    raise ValueError(f"seeded SKU {unit['sku']} already exists: use another sku_prefix")
            self._index_product(product)
            self.products[product["id"]] = product
            self._product_ids.append(product["id"])
        self._product_ids.sort()
        self._version += 1

    def seed_orders(self, n: int, *, seed: int = 0, start: datetime | None = None) -> None:
        """Add `n` historical orders over seeded products (stock is not lowered); one id carries `.3`."""
        if n <= 0:
            return
        if not self._product_ids:
            raise ValueError("seed_catalogue() first: seeded orders refer to existing products")
        rng = random.Random(seed)
        gaps = cat.order_gaps(rng, n)
        moment = cat.as_local(start) if start is not None else self.now() - sum(gaps, timedelta()) - timedelta(hours=1)
        suffixed = rng.randrange(n) if n >= 2 else -1
        people = [cat.person(rng) for _ in range(max(1, n * 2 // 3))]
        companies = {i: cat.company(rng) for i in range(len(people)) if rng.random() < 0.25}
        for i in range(n):
            moment += gaps[i]
            who = rng.randrange(len(people))
            order_id = self._new_order_id(rng) + (".3" if i == suffixed else "")
            payload = self._seed_order_payload(rng, people[who], companies.get(who))
            modified = min(moment + timedelta(minutes=rng.randint(0, 2880)), max(moment, self.now()))
            self._insert_order(
                payload,
                ignore_unknown=False,
                adjust_stock=False,
                order_id=order_id,
                created=moment,
                modified=modified,
                source_type="web",
            )

    def _seed_order_payload(self, rng: random.Random, who: Json, firm: dict[str, str] | None) -> Json:
        lines = []
        for _ in range(rng.randint(1, 4)):
            product = self.products[rng.choice(self._product_ids)]
            unit = rng.choice(product["variants"]) if product["type"] == "multi_variant" else product
            lines.append({"product_sku": unit["sku"], "quantity": rng.choice((1, 1, 1, 2, 3))})
        method = rng.choices(list(cat.PAYMENT_METHODS), weights=(6, 1, 3))[0]
        status = rng.choices(SHIPPING_STATUSES[1:], weights=(25, 15, 15, 15, 25, 1, 4))[0]
        paid = method == "card" or status == "delivered"
        address = {
            "name": who["name"],
            "country_code": "RO",
            "state": who["state"],
            "city": who["city"],
            "address": who["address"],
            "postal_code": who["postal_code"],
            "phone": who["phone"],
        }
        payload: Json = {
            "payment_status": "paid" if paid else "awaiting",
            "payment_method_code": method,
            "shipping_status": status,
            "shipping_method_id": rng.choice(list(cat.SHIPPING_METHODS)),
            "shipping_amount": rng.choice((0.0, 15.99, 19.99)),
            "customer_email": who["email"],
            "customer_note": rng.choice((None, None, None, "Vă rog sunați înainte de livrare.")),
            "billing_type": "company" if firm else "individual",
            **{f"billing_{key}": value for key, value in address.items()},
            "shipping_as_billing": True,
            "line_items": lines,
        }
        if firm:
            payload.update(
                billing_company=firm["name"],
                billing_fiscal_code=firm["code"],
                billing_reg_no=firm["reg_no"],
            )
        if status in ("shipped", "delivered", "returned"):
            payload["shipping_awb"] = f"2{rng.randrange(10**9, 10**10)}"
        return payload

    def set_stock_out_of_band(self, sku: str, stock: float | int) -> None:
        """Change a unit's stock as a person would in the shop's admin (no API call is counted): drift for tests."""
        unit_id = self._sku[sku]
        parent_id = self._variant_parent.get(unit_id)
        product = self.products[parent_id if parent_id is not None else unit_id]
        unit = product if parent_id is None else next(v for v in product["variants"] if v["id"] == unit_id)
        unit["stock"] = stock
        product["date_modified"] = cat.iso(self.now())
        self._version += 1

    def add_product(self, payload: Json) -> Json:
        """Create a product as POST /products does (raises ApiError when invalid); returns the stored dict.

        Besides the writable fields, `id`, `date_created` and `date_modified` may be given (ISO strings).
        """
        payload = dict(payload)
        overrides: Json = {key: payload.pop(key) for key in ("id", "date_created", "date_modified") if key in payload}
        if "id" in overrides:
            pid = integer("id", overrides["id"])
            if pid is None or pid < 1 or pid in self.products or pid in self._variant_parent:
                raise ValueError(f"product id {overrides['id']!r} is taken or invalid")
        new = self._apply_product(None, payload, ignore_unknown=False)
        return self._commit_product(new, None, overrides)

    def add_order(self, payload: Json, *, adjust_stock: bool = True) -> Json:
        """Create an order as POST /orders does (lowers stock unless told not to); returns the stored dict.

        Besides the writable fields, `id` (string), `date_created` and `date_modified` (ISO) may be given.
        """
        payload = dict(payload)
        order_id = payload.pop("id", None)
        created = payload.pop("date_created", None)
        modified = payload.pop("date_modified", None)
        if order_id is not None and (not isinstance(order_id, str) or order_id in self.orders):
            raise ValueError(f"order id {order_id!r} must be a new string")
        created_at = datetime.fromisoformat(created) if created else None
        return self._insert_order(
            payload,
            ignore_unknown=False,
            adjust_stock=adjust_stock,
            order_id=order_id,
            created=created_at,
            modified=datetime.fromisoformat(modified) if modified else created_at,
            source_type="api",
        )

    def add_customer(self, payload: Json) -> Json:
        """Create a customer account as POST /customers does (raises ApiError when invalid); the stored dict.

        Besides the writable fields, ``date_created`` (ISO) may be given; ``date_modified`` starts equal to it.
        """
        payload = dict(payload)
        created = payload.pop("date_created", None)
        fields = self._customer_fields(payload, False)
        email = fields.get("email")
        if not email or "@" not in email or email.lower() in self._customer_email:
            raise ValueError(f"customer e-mail {email!r} is missing, invalid or taken")
        return self._store_customer(fields, datetime.fromisoformat(created) if created else self.now())

    def return_line(self, order_id: str, sku: str) -> Json:
        """A person records in the shop's admin that one line came back (no API call is counted): the line's
        ``status`` becomes "Returnat" and the order ``has_returns`` (*inference*: see docs/simulators.md)."""
        order = self.orders[order_id]
        lines = [
            {**line, "status": {"id": 4, "name": "Returnat", "color": "#d9534f"}}
            if line.get("product_sku") == sku
            else line
            for line in order["line_items"]
        ]
        if lines == order["line_items"]:
            raise ValueError(f"order {order_id!r} has no line with SKU {sku!r}")
        order = {**order, "line_items": lines, "has_returns": True, "date_modified": cat.iso(self.now())}
        self.orders[order_id] = order
        self._version += 1
        return order

    # --- ASGI -------------------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point."""
        if scope["type"] == "lifespan":
            await answer_lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        request = await self._read_request(scope, receive)
        await self._serve(request, send)

    @staticmethod
    async def _read_request(scope: Scope, receive: Receive) -> Request:
        chunks = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        raw_path = scope.get("raw_path") or quote(scope["path"]).encode()
        raw_path_text = raw_path.decode("latin-1") if isinstance(raw_path, bytes) else str(raw_path)
        query_text = scope.get("query_string", b"").decode("latin-1")
        rest = raw_path_text[len(API_PREFIX) :] if raw_path_text.startswith(API_PREFIX) else None
        segments = [unquote(part) for part in rest.rstrip("/").split("/")] if rest else []
        headers = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope["headers"]}
        return Request(
            method=scope["method"].upper(),
            raw_path=raw_path_text,
            segments=segments,
            query=parse_qsl(query_text, keep_blank_values=True),
            raw_query=query_text,
            headers=headers,
            body=b"".join(chunks),
            scheme=scope.get("scheme", "http"),
        )

    async def _serve(self, request: Request, send: Send) -> None:
        stats = self.stats
        arrived = self.clock()
        stats.requests += 1
        if request.method == "GET":
            stats.reads += 1
        elif request.method in WRITE_METHODS:
            stats.writes += 1
        label = f"{request.method} ?"
        status = 0
        headers: list[tuple[str, str]] = []
        try:
            if not request.segments:
                raise ApiError(404, "not_found", f"No route for {request.raw_path}")
            api_key = self._authenticate(request)
            self._pace(api_key)
            route, args = resolve(request)
            label = f"{request.method} {route.label}"
            check_method(route, request.method)
            if latency := self.fault_injector.latency(request.method):
                await asyncio.sleep(latency)
            fault = self.fault_injector.draw(request.method, label)
            if fault is not None:
                status = await self._inject(fault, request, route, args, send)
                return
            status, payload = self._dispatch(route, request, args)
        except ApiError as err:
            status, payload, headers = err.status, err.body(), err.headers
        finally:
            stats.routes[label] += 1
            if status:
                stats.statuses[status] += 1
            if status == 429:
                stats.rate_limited += 1
            elif status in (401, 403):
                stats.auth_failures += 1
            stats.recent.append((request.method, request.raw_path, status))
            stats.calls.append((arrived, label, status))
        await self._send(send, status, payload, headers)

    @staticmethod
    async def _send(send: Send, status: int, payload: Any, headers: list[tuple[str, str]]) -> None:
        raw_headers = [(name.lower().encode(), value.encode()) for name, value in headers]
        if status == 204 or payload is None:
            await send({"type": "http.response.start", "status": status, "headers": raw_headers})
            await send({"type": "http.response.body", "body": b""})
            return
        body = dumps(payload)
        raw_headers += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": body})

    def _authenticate(self, request: Request) -> str:
        header = request.headers.get("authorization", "")
        scheme, _, encoded = header.partition(" ")
        key = secret = None
        if scheme.lower() == "basic" and encoded:
            try:
                decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                decoded = ""
            if ":" in decoded:
                key, _, secret = decoded.partition(":")
        if key is None or secret is None:
            raise ApiError(401, "unauthorized", "Missing or malformed HTTP Basic credentials")
        if key in self._locked:
            raise ApiError(403, "forbidden", "Too many failed authentication attempts: this API key is blocked")
        key_ok = hmac.compare_digest(key.encode(), self.api_key.encode())
        if key_ok and hmac.compare_digest(secret.encode(), self.api_secret.encode()):
            self._bad_attempts.pop(key, None)
            return key
        attempts = self._bad_attempts[key] = self._bad_attempts.get(key, 0) + 1
        if 0 < self.lockout_after <= attempts:
            self._locked.add(key)
        raise ApiError(401, "unauthorized", "Invalid API key or secret")

    def _pace(self, api_key: str) -> None:
        rate = self.rate_per_second
        if rate is None:
            return
        capacity = max(1.0, rate)
        now = self.clock()
        tokens, last = self._buckets.get(api_key, (capacity, now))
        tokens = min(capacity, tokens + (now - last) * rate)
        if tokens < 1.0:
            self._buckets[api_key] = (tokens, now)
            raise self._too_many("Rate limit exceeded")
        self._buckets[api_key] = (tokens - 1.0, now)

    def _too_many(self, message: str, retry_after: float | None = None) -> ApiError:
        retry_after = self.retry_after if retry_after is None else retry_after
        headers = [] if retry_after is None else [("Retry-After", _format_seconds(retry_after))]
        return ApiError(429, "too_many_requests", message, headers)

    def _dispatch(self, route: Route, request: Request, args: list[str]) -> tuple[int, Any]:
        handler: Callable[..., tuple[int, Any]] = getattr(self, route.handlers[request.method])
        version = self._version
        status, payload = handler(request, *args)
        if self._version != version:
            self.stats.applied_writes += 1
        return status, self._tax_view(route.label, payload)

    # --- faults ------------------------------------------------------------------------------------------

    async def _inject(self, fault: Fault, request: Request, route: Route, args: list[str], send: Send) -> int:
        """Play one fault; returns the status sent or raises the ApiError (or the reset) to send."""
        if fault.kind == "timeout":
            await asyncio.sleep(fault.delay)
            raise ApiError(500, "timeout", "The request took too long (simulated)")
        if fault.status == 429:
            retry_after = fault.retry_after if fault.retry_after is not None else self.retry_after
            raise self._too_many("Rate limit exceeded (simulated)", retry_after)
        if not fault.cuts:
            raise ApiError(fault.status, "internal_error", "Internal server error (simulated)")
        if fault.after:  # reset_after_write: the work is done, the reply is lost
            try:
                status, payload = self._dispatch(route, request, args)
            except ApiError as err:
                status, payload = err.status, err.body()
            body = dumps(payload) if payload is not None else b'{"result":"ok"}'
        else:
            status, body = 200, self._fault_body(request, route, args)
        if fault.kind == "truncated":
            await send_truncated(send, body)
            return 200
        await send_cut(send, status, body, what=f"{request.method} {request.raw_path}")

    def _fault_body(self, request: Request, route: Route, args: list[str]) -> bytes:
        """The body a cut reply starts from: the real reply for a GET; for a write (never applied) its echo."""
        if request.method == "GET":
            try:
                _status, payload = self._dispatch(route, request, args)
            except ApiError as err:
                payload = err.body()
            return dumps(payload)
        return request.body if len(request.body.strip()) >= 2 else b'{"result":"ok"}'


def main(argv: list[str] | None = None) -> None:
    """Run the simulator as a loopback HTTP server until Ctrl-C."""
    parser = argparse.ArgumentParser(prog="python -m erpsync.testing.merchantpro", description=main.__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8300)
    parser.add_argument("--products", type=int, default=250)
    parser.add_argument("--orders", type=int, default=40)
    parser.add_argument("--key", default="demo-key")
    parser.add_argument("--secret", default="demo-secret")
    parser.add_argument("--rate", type=float, default=None, help="requests per second per key (default: no pacing)")
    parser.add_argument("--retry-after", type=float, default=None, help="send Retry-After on 429 replies")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    sim = MerchantProSimulator(
        api_key=args.key, api_secret=args.secret, rate_per_second=args.rate, retry_after=args.retry_after
    )
    sim.seed_catalogue(args.products, seed=args.seed)
    sim.seed_orders(args.orders, seed=args.seed)
    with serve_in_thread(sim, args.host, args.port) as server:
        sim.base_url = server.url
        print(
            f"MerchantPro simulator: {server.url}/api/v2/ (key {args.key}; "
            f"{len(sim.products)} products, {len(sim.orders)} orders). Ctrl-C to stop.",
            flush=True,
        )
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
