"""MerchantPro REST API v2 simulator: an ASGI app with seeded data, pacing and seeded fault injection.

It follows `/work/shared/reference/merchantpro-api.md`, quirks included; every choice made where the
reference is silent is listed in `docs/simulators.md`. Run it with
`python -m simulators.merchantpro --port 8300 --products 250 --orders 40 --key K --secret S [--rate 4]`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import bisect
import hmac
import json
import operator
import random
import re
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode

from simulators import _catalogue as cat
from simulators.server import serve_in_thread

try:
    import orjson as _orjson
except ImportError:  # pragma: no cover - orjson comes with prefect
    _orjson = None  # type: ignore[assignment]

__all__ = ["ApiError", "Faults", "MerchantProSimulator", "SimStats", "SimulatedConnectionReset", "main"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Json = dict[str, Any]

API_PREFIX = "/api/v2/"
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
LIST_CONTROLS = frozenset({"start", "limit", "fields", "include", "sort", "ignore_nonexistent_fields"})
WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})
FAULT_KINDS = ("error_500", "error_429", "timeout", "reset", "reset_after_write", "truncated")
ORDER_STATUS_ACTIONS = ("in_process", "shipped", "delivered", "returned", "cancelled")
SHIPPING_STATUSES = ("temporary", "awaiting", "confirmed", *ORDER_STATUS_ACTIONS)
PAYMENT_STATUSES = ("awaiting", "paid")

_DATE_OPS: dict[str, Callable[[str, str], bool]] = {
    "gte": operator.ge,
    "gt": operator.gt,
    "lte": operator.le,
    "lt": operator.lt,
}
_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")
_TRUE = frozenset({"1", "true", "yes", "on"})


def _date_filters(*names: str) -> frozenset[str]:
    return frozenset(f"{name}[{op}]" for name in names for op in _DATE_OPS)


PRODUCT_FILTERS = frozenset({"sku", "ean", "ext_ref", "ids", "type", "status", "category_id"}) | _date_filters(
    "created", "modified"
)
ORDER_FILTERS = frozenset(
    {"created_after", "created_before", "ids", "shipping_status", "payment_status", "payment_method_code"}
) | _date_filters("created", "modified")
CUSTOMER_FILTERS = frozenset({"email", "group_id", "status", "newsletter", "country_code", "city"}) | _date_filters(
    "created", "modified"
)
CATEGORY_FILTERS = frozenset({"parent_id", "status"})

PRODUCT_SIDELOADS = frozenset({"variants", "images"})
ORDER_SIDELOADS = frozenset({"line_items"})

PRODUCT_KEYS = (
    "id", "type", "sku", "ean", "ext_ref", "name", "description", "meta_title", "meta_description", "url",
    "status", "inventory_enabled", "stock", "stock_reserved", "allow_backorders", "price_net", "price_gross",
    "old_price_net", "old_price_gross", "cost_net", "cost_gross", "tax_id", "tax_value", "tax_name",
    "quantity_multiplier", "weight", "category_id", "category_name", "categories", "images", "image_url",
    "variant_attributes", "variants", "date_created", "date_modified",
)  # fmt: skip
PRODUCT_READONLY = frozenset(
    {"id", "stock_reserved", "tax_value", "tax_name", "category_name", "image_url", "variant_attributes",
     "date_created", "date_modified"}
)  # fmt: skip
PRODUCT_WRITABLE = frozenset(PRODUCT_KEYS) - PRODUCT_READONLY
PARENT_FORBIDDEN = ("stock", "price_net", "price_gross", "old_price_net", "old_price_gross", "weight")
VARIANT_WRITABLE = frozenset(
    {"id", "sku", "ean", "ext_ref", "inventory_enabled", "stock", "price_net", "price_gross",
     "old_price_net", "old_price_gross", "weight", "variant_options"}
)  # fmt: skip

BILLING_TEXT = (
    "billing_name", "billing_company_name", "billing_company_code", "billing_company_reg_no",
    "billing_country_code", "billing_state", "billing_city", "billing_address", "billing_postal_code",
    "billing_phone",
)  # fmt: skip
SHIPPING_TEXT = (
    "shipping_name", "shipping_country_code", "shipping_state", "shipping_city", "shipping_address",
    "shipping_postal_code", "shipping_phone",
)  # fmt: skip
ORDER_WRITABLE = frozenset(
    {"payment_status", "payment_method_code", "payment_date", "paid_amount", "shipping_status",
     "shipping_method_id", "shipping_amount", "shipping_awb", "customer_email", "customer_note", "currency",
     "meta_fields", "billing_type", "shipping_as_billing", "line_items", *BILLING_TEXT, *SHIPPING_TEXT}
)  # fmt: skip
ORDER_READONLY = frozenset(
    {"id", "sys_id", "public_code", "channel_id", "source_type", "payment_method_name", "shipping_method_name",
     "shipping_tax_percent", "shipping_tax_amount", "subtotal_including_tax", "subtotal_excluding_tax",
     "tax_amount", "total_amount", "has_returns", "customer_id", "date_created", "date_modified",
     "carrier_tracking", "proforma_url", "info_url", "invoice_series", "invoice_number", "invoice_url", "tags"}
)  # fmt: skip
LINE_WRITABLE = frozenset(
    {"id", "item_type", "product_id", "product_sku", "product_name", "quantity", "unit_price_net",
     "unit_price_gross", "product_tax_percent", "meta_fields"}
)  # fmt: skip
LINE_READONLY = frozenset(
    {"product_ean", "product_stock", "backorder_quantity", "product_tax_name", "unit_tax_amount",
     "line_subtotal_net", "line_tax_amount", "line_subtotal_gross", "weight", "status"}
)  # fmt: skip
CATEGORY_WRITABLE = frozenset({"name", "parent_id", "position", "status", "url"})
CUSTOMER_WRITABLE = frozenset(
    {"email", "first_name", "last_name", "phone", "type", "company_name", "company_code", "group_id",
     "status", "newsletter", "country_code", "city"}
)  # fmt: skip
CUSTOMER_READONLY = frozenset({"id", "name", "date_created", "date_modified"})


def _dumps(payload: Any) -> bytes:
    if _orjson is not None:
        return _orjson.dumps(payload)
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def _format_seconds(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"


class ApiError(Exception):
    """An error reply: an HTTP status and the body `{"error": {"name": ..., "message": ...}}`."""

    def __init__(self, status: int, name: str, message: str, headers: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__(f"{status} {name}: {message}")
        self.status = status
        self.name = name
        self.message = message
        self.headers = list(headers)

    def body(self) -> Json:
        """The JSON error body."""
        return {"error": {"name": self.name, "message": self.message}}


class SimulatedConnectionReset(ConnectionResetError):
    """Raised mid-response by a "reset" fault: uvicorn aborts the connection, ASGITransport re-raises it."""

    simulated = True


def _bad(name: str, message: str) -> ApiError:
    return ApiError(400, name, message)


@dataclass
class Faults:
    """Seeded fault injection: each share is a probability per (eligible) request; their sum must be <= 1."""

    error_500: float = 0.0
    error_429: float = 0.0
    timeout: float = 0.0
    reset: float = 0.0
    truncated: float = 0.0
    seed: int = 0
    hang_seconds: float = 3.0
    only_methods: frozenset[str] | None = None
    reset_after_write: float = 0.0

    def __post_init__(self) -> None:
        shares = [getattr(self, kind) for kind in FAULT_KINDS]
        if any(not 0.0 <= share <= 1.0 for share in shares) or sum(shares) > 1.0 + 1e-9:
            raise ValueError("fault shares must each be within [0, 1] and sum to at most 1")
        if self.hang_seconds < 0:
            raise ValueError("hang_seconds must be >= 0")
        if self.only_methods is not None:
            self.only_methods = frozenset(method.upper() for method in self.only_methods)

    def applies_to(self, method: str) -> bool:
        """Whether requests with this method draw from the fault RNG at all."""
        return self.only_methods is None or method in self.only_methods

    def pick(self, rng: random.Random) -> str | None:
        """Draw once from `rng` and return the fault kind to inject, or None."""
        draw = rng.random()
        threshold = 0.0
        for kind in FAULT_KINDS:
            threshold += getattr(self, kind)
            if draw < threshold:
                return kind
        return None


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

    def reset(self) -> None:
        """Zero every counter."""
        self.requests = self.reads = self.writes = self.applied_writes = 0
        self.rate_limited = self.auth_failures = 0
        self.routes.clear()
        self.statuses.clear()
        self.faults.clear()
        self.recent.clear()

    def count(self, route: str) -> int:
        """Requests seen on one route label, e.g. `stats.count("PATCH /products/{id}")`."""
        return self.routes[route]


@dataclass
class _Request:
    method: str
    raw_path: str
    segments: list[str]
    query: list[tuple[str, str]]
    raw_query: str
    headers: dict[str, str]
    body: bytes
    scheme: str

    @property
    def params(self) -> dict[str, str]:
        return dict(self.query)

    def flag(self, name: str) -> bool:
        return self.params.get(name, "").lower() in _TRUE

    def json_object(self) -> Json:
        if not self.body.strip():
            raise _bad("invalid_json", "The request body must be a JSON object")
        try:
            payload = json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise _bad("invalid_json", f"Malformed JSON body: {exc}") from None
        if not isinstance(payload, dict):
            raise _bad("invalid_json", "The request body must be a JSON object")
        return payload


@dataclass(frozen=True)
class _Route:
    pattern: tuple[str, ...]  # literal segments, "{name}" for a placeholder
    handlers: dict[str, str]  # method -> handler method name

    @property
    def label(self) -> str:
        return "/" + "/".join(self.pattern)

    def match(self, segments: list[str]) -> list[str] | None:
        if len(segments) != len(self.pattern):
            return None
        args = []
        for part, segment in zip(self.pattern, segments, strict=True):
            if part.startswith("{"):
                if not segment:
                    return None
                args.append(segment)
            elif part != segment:
                return None
        return args


_ROUTES: tuple[_Route, ...] = (
    _Route(("products",), {"GET": "_list_products", "POST": "_post_product"}),
    _Route(("products", "{id}"), {"GET": "_get_product", "PATCH": "_patch_product", "DELETE": "_delete_product"}),
    _Route(("inventory", "sku", "{value}"), {"GET": "_inventory_by_sku"}),
    _Route(("inventory", "ean", "{value}"), {"GET": "_inventory_by_ean"}),
    _Route(("inventory", "{id}"), {"GET": "_inventory_by_id"}),
    _Route(("orders",), {"GET": "_list_orders", "POST": "_post_order"}),
    _Route(("orders", "{id}"), {"GET": "_get_order", "PATCH": "_patch_order"}),
    _Route(("orders", "{id}", "tags"), {"POST": "_post_order_tag"}),
    _Route(("orders", "{id}", "create_invoice"), {"PATCH": "_create_invoice"}),
    *(_Route(("orders", "{id}", action), {"PATCH": "_order_status_action"}) for action in ORDER_STATUS_ACTIONS),
    _Route(("taxonomy", "taxes"), {"GET": "_list_taxes"}),
    _Route(("taxonomy", "measurement_units"), {"GET": "_list_units"}),
    _Route(("categories",), {"GET": "_list_categories", "POST": "_post_category"}),
    _Route(("categories", "{id}"), {"GET": "_get_category", "PATCH": "_patch_category", "DELETE": "_delete_category"}),
    _Route(("customers",), {"GET": "_list_customers", "POST": "_post_customer"}),
    _Route(("customers", "{id}"), {"GET": "_get_customer"}),
)


@dataclass(frozen=True)
class _ListQuery:
    start: int
    limit: int
    fields: frozenset[str] | None
    include: frozenset[str]
    sort: str | None
    filters: tuple[tuple[str, str], ...]


# --- field validation -------------------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == value


def _number(name: str, value: Any, *, nullable: bool = False, positive: bool = False) -> float | int | None:
    if value is None and nullable:
        return None
    if not _is_number(value) or value < 0 or (positive and value == 0):
        bound = "> 0" if positive else ">= 0"
        raise _bad("invalid_value", f"Field `{name}` must be a number {bound}, got {json.dumps(value)}")
    return value


def _text(name: str, value: Any, *, nullable: bool = True, max_length: int = 65535) -> str | None:
    if value is None and nullable:
        return None
    if not isinstance(value, str) or (not nullable and not value.strip()) or len(value) > max_length:
        raise _bad("invalid_value", f"Field `{name}` must be a non-empty string, got {json.dumps(value)}")
    return value


def _choice(name: str, value: Any, options: Iterable[str]) -> str:
    options = tuple(options)
    if value not in options:
        raise _bad("invalid_value", f"Field `{name}` must be one of {', '.join(options)}, got {json.dumps(value)}")
    return value


def _boolean(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _bad("invalid_value", f"Field `{name}` must be true or false, got {json.dumps(value)}")
    return value


def _integer(name: str, value: Any, *, nullable: bool = False) -> int | None:
    if value is None and nullable:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise _bad("invalid_value", f"Field `{name}` must be an integer, got {json.dumps(value)}")
    return value


def _writable(payload: Json, writable: frozenset[str], readonly: frozenset[str], ignore_unknown: bool) -> Json:
    """The writable fields of a payload; read-only ones are dropped, unknown ones fail (or are dropped)."""
    result = {}
    for name, value in payload.items():
        if name in writable:
            result[name] = value
        elif name not in readonly and not ignore_unknown:
            raise _bad("undefined_field", f"No such field `{name}` defined")
    return result


def _pair_prices(obj: Json, net_key: str, gross_key: str, sent: Json, vat: float, tax_changed: bool) -> None:
    """Keep a net/gross pair consistent with the VAT when only one side (or the tax) was written."""
    if net_key in sent and gross_key in sent:
        return
    if gross_key in sent or (tax_changed and net_key not in sent):
        gross = obj.get(gross_key)
        obj[net_key] = None if gross is None else cat.net_from_gross(gross, vat)
    elif net_key in sent:
        net = obj.get(net_key)
        obj[gross_key] = None if net is None else cat.gross_from_net(net, vat)


def _date_filter_value(name: str, value: str) -> str:
    if _DATE_ONLY.fullmatch(value):
        try:
            date.fromisoformat(value)
            return value
        except ValueError:
            pass
    raise _bad("invalid_filter_value", f"Filter `{name}` takes a date (YYYY-MM-DD), got `{value}`")


def _date_predicate(key: str, compare: Callable[[str, str], bool], value: str) -> Callable[[Json], bool]:
    return lambda obj: compare(obj[key][:10], value)


def _date_predicates(filters: Iterable[tuple[str, str]], shown: str | None = None) -> list[Callable[[Json], bool]]:
    """Predicates for `created[op]` / `modified[op]` filters: calendar-date comparisons in shop local time."""
    predicates = []
    for name, raw in filters:
        if "[" not in name:
            continue
        base, op = name[:-1].split("[")
        key = "date_created" if base == "created" else "date_modified"
        predicates.append(_date_predicate(key, _DATE_OPS[op], _date_filter_value(shown or name, raw)))
    return predicates


def _enum_filter(name: str, raw: str, options: Iterable[str]) -> frozenset[str]:
    values = frozenset(v.strip() for v in raw.split(",") if v.strip())
    options = frozenset(options)
    if not values or not values <= options:
        raise _bad("invalid_filter_value", f"Filter `{name}` takes {', '.join(sorted(options))}, got `{raw}`")
    return values


def _int_filter(name: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise _bad("invalid_filter_value", f"Filter `{name}` takes an integer, got `{raw}`") from None


def _int_list_filter(name: str, raw: str) -> list[int]:
    return [_int_filter(name, part.strip()) for part in raw.split(",") if part.strip()]


class MerchantProSimulator:
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
    ) -> None:
        self.api_key = api_key
        self.api_secret = api_secret
        self.retry_after = retry_after
        self.lockout_after = lockout_after
        self.base_url = base_url.rstrip("/") if base_url else None
        self.clock = clock
        self.now: Callable[[], datetime] = cat.local_now  # the shop's clock for date_created/date_modified
        self.stats = SimStats()
        self.products: dict[int, Json] = {}
        self.orders: dict[str, Json] = {}
        self.taxes: dict[int, Json] = {tax["id"]: dict(tax) for tax in cat.TAXES}
        self.measurement_units: list[Json] = [dict(unit) for unit in cat.MEASUREMENT_UNITS]
        self.categories: dict[int, Json] = cat.seed_categories()
        self.customers: dict[int, Json] = {}
        self.variant_options = cat.VariantOptionRegistry()
        self._product_ids: list[int] = []  # ascending: the default list order
        self._next_unit = 1  # products and variants share one id sequence (inventory ids are unambiguous)
        self._sku: dict[str, int] = {}  # sku -> product or variant id
        self._ean: dict[str, set[int]] = {}
        self._ext_ref: dict[str, set[int]] = {}
        self._variant_parent: dict[int, int] = {}
        self._customer_email: dict[str, int] = {}
        self._tag_ids: dict[str, int] = {}
        self._next_sys_id = 10_001
        self._next_line_id = 1
        self._next_customer_id = 1
        self._next_invoice = 1
        self._ids_rng = random.Random(0x5EED)  # order ids of orders created through the API
        self._version = 0  # bumped by every state change; keys the list cache
        self._list_cache: dict[tuple[Any, ...], tuple[int, list[Any]]] = {}
        self._bad_attempts: dict[str, int] = {}
        self._locked: set[str] = set()
        self._buckets: dict[str, tuple[float, float]] = {}
        self.rate_per_second: float | None = None
        self.set_rate(rate_per_second)
        self.faults: Faults | None = None
        self._fault_rng = random.Random(0)
        self.set_faults(faults)

    # --- configuration ---------------------------------------------------------------------------------

    def set_faults(self, faults: Faults | None) -> None:
        """Install (or clear) fault injection; the fault RNG restarts from `faults.seed`."""
        self.faults = faults
        self._fault_rng = random.Random(faults.seed if faults else 0)

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

    def _allocate_unit_id(self) -> int:
        unit_id = self._next_unit
        self._next_unit += 1
        return unit_id

    def seed_catalogue(
        self,
        n_products: int,
        *,
        multi_variant_share: float = 0.1,
        variants: tuple[int, int] = (2, 4),
        seed: int = 0,
        sku_prefix: str = "SKU-",
    ) -> None:
        """Add `n_products` generated products; deterministic for a seed (on an empty catalogue)."""
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
        moment = start if start is not None else self.now() - sum(gaps, timedelta()) - timedelta(hours=1)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=cat.BUCHAREST)
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
                billing_company_name=firm["name"],
                billing_company_code=firm["code"],
                billing_company_reg_no=firm["reg_no"],
            )
        if status in ("shipped", "delivered", "returned"):
            payload["shipping_awb"] = f"2{rng.randrange(10**9, 10**10)}"
        return payload

    def add_product(self, payload: Json) -> Json:
        """Create a product as POST /products does (raises ApiError when invalid); returns the stored dict.

        Besides the writable fields, `id`, `date_created` and `date_modified` may be given (ISO strings).
        """
        payload = dict(payload)
        overrides: Json = {key: payload.pop(key) for key in ("id", "date_created", "date_modified") if key in payload}
        if "id" in overrides:
            pid = _integer("id", overrides["id"])
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

    # --- ASGI -------------------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point."""
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        request = await self._read_request(scope, receive)
        await self._serve(request, send)

    @staticmethod
    async def _read_request(scope: Scope, receive: Receive) -> _Request:
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
        return _Request(
            method=scope["method"].upper(),
            raw_path=raw_path_text,
            segments=segments,
            query=parse_qsl(query_text, keep_blank_values=True),
            raw_query=query_text,
            headers=headers,
            body=b"".join(chunks),
            scheme=scope.get("scheme", "http"),
        )

    async def _serve(self, request: _Request, send: Send) -> None:
        stats = self.stats
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
            route, args = self._resolve(request)
            label = f"{request.method} {route.label}"
            self._check_method(route, request.method)
            fault = self._draw_fault(request.method)
            if fault is not None:
                stats.faults[fault] += 1
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
        await self._send(send, status, payload, headers)

    @staticmethod
    async def _send(send: Send, status: int, payload: Any, headers: list[tuple[str, str]]) -> None:
        raw_headers = [(name.lower().encode(), value.encode()) for name, value in headers]
        if status == 204 or payload is None:
            await send({"type": "http.response.start", "status": status, "headers": raw_headers})
            await send({"type": "http.response.body", "body": b""})
            return
        body = _dumps(payload)
        raw_headers += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": body})

    def _authenticate(self, request: _Request) -> str:
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

    def _too_many(self, message: str) -> ApiError:
        headers = [] if self.retry_after is None else [("Retry-After", _format_seconds(self.retry_after))]
        return ApiError(429, "too_many_requests", message, headers)

    @staticmethod
    def _resolve(request: _Request) -> tuple[_Route, list[str]]:
        for route in _ROUTES:
            args = route.match(request.segments)
            if args is not None:
                return route, args
        raise ApiError(404, "not_found", f"No route for {request.raw_path}")

    @staticmethod
    def _check_method(route: _Route, method: str) -> None:
        if method not in route.handlers:
            allowed = ", ".join(route.handlers)
            raise ApiError(
                405,
                "method_not_allowed",
                f"Method {method} is not allowed on {route.label} (allowed: {allowed})",
                [("Allow", allowed)],
            )

    def _dispatch(self, route: _Route, request: _Request, args: list[str]) -> tuple[int, Any]:
        handler: Callable[..., tuple[int, Any]] = getattr(self, route.handlers[request.method])
        version = self._version
        status, payload = handler(request, *args)
        if self._version != version:
            self.stats.applied_writes += 1
        return status, payload

    # --- faults ------------------------------------------------------------------------------------------

    def _draw_fault(self, method: str) -> str | None:
        faults = self.faults
        if faults is None or not faults.applies_to(method):
            return None
        return faults.pick(self._fault_rng)

    async def _inject(self, kind: str, request: _Request, route: _Route, args: list[str], send: Send) -> int:
        """Play one fault; returns the status sent (0 for a reset) or raises the ApiError to send."""
        assert self.faults is not None
        if kind == "error_500":
            raise ApiError(500, "internal_error", "Internal server error (simulated)")
        if kind == "error_429":
            raise self._too_many("Rate limit exceeded (simulated)")
        if kind == "timeout":
            await asyncio.sleep(self.faults.hang_seconds)
            raise ApiError(500, "timeout", "The request took too long (simulated)")
        if kind == "reset_after_write":
            try:
                status, payload = self._dispatch(route, request, args)
            except ApiError as err:
                status, payload = err.status, err.body()
            body = _dumps(payload) if payload is not None else b'{"result":"ok"}'
        else:
            status, body = 200, self._fault_body(request, route, args)
        half = body[: max(1, len(body) // 2)]
        if kind == "truncated":
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(half))],
                }
            )
            await send({"type": "http.response.body", "body": half})
            return 200
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))],
            }
        )
        await send({"type": "http.response.body", "body": half, "more_body": True})
        raise SimulatedConnectionReset(f"simulated connection reset during {request.method} {request.raw_path}")

    def _fault_body(self, request: _Request, route: _Route, args: list[str]) -> bytes:
        """The body a cut reply starts from: the real reply for a GET; for a write (never applied) its echo."""
        if request.method == "GET":
            try:
                _status, payload = self._dispatch(route, request, args)
            except ApiError as err:
                payload = err.body()
            return _dumps(payload)
        return request.body if len(request.body.strip()) >= 2 else b'{"result":"ok"}'

    # --- lists -------------------------------------------------------------------------------------------

    @staticmethod
    def _list_query(request: _Request, filters: frozenset[str]) -> _ListQuery:
        params = request.params
        for name in params:
            if name not in LIST_CONTROLS and name not in filters:
                raise _bad("undefined_filter", f"No such filter `{name}` defined")

        def integer(name: str, default: int, minimum: int) -> int:
            raw = params.get(name, "")
            if raw == "":
                return default
            try:
                value = int(raw)
            except ValueError:
                raise _bad("invalid_parameter", f"Parameter `{name}` must be an integer, got `{raw}`") from None
            if value < minimum:
                raise _bad("invalid_parameter", f"Parameter `{name}` must be >= {minimum}, got `{raw}`")
            return value

        def names(name: str) -> frozenset[str]:
            return frozenset(part.strip() for part in params.get(name, "").split(",") if part.strip())

        return _ListQuery(
            start=integer("start", 0, 0),
            limit=min(integer("limit", DEFAULT_LIMIT, 1), MAX_LIMIT),
            fields=names("fields") or None,
            include=names("include"),
            sort=params.get("sort") or None,
            filters=tuple(sorted((k, v) for k, v in params.items() if k in filters)),
        )

    def _base(self, request: _Request) -> str:
        if self.base_url:
            return self.base_url
        return f"{request.scheme}://{request.headers.get('host', 'localhost')}"

    def _envelope(self, request: _Request, data: list[Any], total: int, query: _ListQuery) -> Json:
        base = self._base(request) + request.raw_path

        def link(start: int | None) -> str | None:
            if start is None:
                return None
            params = [(k, v) for k, v in request.query if k not in ("start", "limit")]
            params += [("start", str(start)), ("limit", str(query.limit))]
            return base + "?" + urlencode(params, safe="[],")

        end = query.start + query.limit
        return {
            "data": data,
            "meta": {
                "count": {"total": total, "start": query.start, "limit": query.limit},
                "links": {
                    "self": base + ("?" + request.raw_query if request.raw_query else ""),
                    "next": link(end) if end < total else None,
                    "prev": link(max(0, query.start - query.limit)) if query.start > 0 else None,
                },
            },
        }

    def _cached(self, key: tuple[Any, ...], build: Callable[[], list[Any]]) -> list[Any]:
        hit = self._list_cache.get(key)
        if hit is not None and hit[0] == self._version:
            return hit[1]
        if len(self._list_cache) > 64:
            self._list_cache.clear()
        result = build()
        self._list_cache[key] = (self._version, result)
        return result

    @staticmethod
    def _sort_key(sort: str | None, allowed: Iterable[str]) -> tuple[str, bool] | None:
        if sort is None:
            return None
        name, _, direction = sort.partition(".")
        direction = direction or "asc"
        if name not in allowed or direction not in ("asc", "desc"):
            raise _bad(
                "invalid_sort", f"Cannot sort by `{sort}`: use <field>.asc|desc with field in {', '.join(allowed)}"
            )
        return name, direction == "desc"

    @staticmethod
    def _sorted(items: list[Json], key: tuple[str, bool]) -> list[Json]:
        name, descending = key
        if name.startswith("date_"):
            return sorted(items, key=lambda obj: datetime.fromisoformat(obj[name]), reverse=descending)
        return sorted(items, key=lambda obj: (obj[name] is None, obj[name]), reverse=descending)

    @staticmethod
    def _project(obj: Json, fields: frozenset[str] | None, hidden: frozenset[str]) -> Json:
        """Apply `fields=` (id always kept) and drop side-loads that were not asked for."""
        if fields is not None:
            keep = fields | {"id"}
            return {k: v for k, v in obj.items() if k in keep}
        if hidden.isdisjoint(obj):
            return obj
        return {k: v for k, v in obj.items() if k not in hidden}

    @staticmethod
    def _hidden(
        query_fields: frozenset[str] | None, include: frozenset[str], sideloads: frozenset[str]
    ) -> frozenset[str]:
        return sideloads - include - (query_fields or frozenset())

    # --- products ----------------------------------------------------------------------------------------

    def _list_products(self, request: _Request) -> tuple[int, Any]:
        query = self._list_query(request, PRODUCT_FILTERS)
        ids = self._filtered_product_ids(query)
        hidden = self._hidden(query.fields, query.include, PRODUCT_SIDELOADS)
        fields = None if query.fields is None else query.fields | (query.include & PRODUCT_SIDELOADS)
        products = self.products
        data = [self._project(products[pid], fields, hidden) for pid in ids[query.start : query.start + query.limit]]
        return 200, self._envelope(request, data, len(ids), query)

    def _filtered_product_ids(self, query: _ListQuery) -> list[int]:
        sort = self._sort_key(query.sort, ("id", "sku", "name", "date_created", "date_modified"))
        filters = dict(query.filters)
        predicates = self._product_predicates(filters)  # validates every filter value, cache or not
        if not filters and sort in (None, ("id", False)):
            return self._product_ids
        return self._cached(("products", query.filters, sort), lambda: self._select_products(filters, predicates, sort))

    def _product_predicates(self, filters: dict[str, str]) -> list[Callable[[Json], bool]]:
        predicates = _date_predicates(filters.items())
        if "type" in filters:
            types = _enum_filter("type", filters["type"], ("basic", "multi_variant"))
            predicates.append(lambda p: p["type"] in types)
        if "status" in filters:
            statuses = _enum_filter("status", filters["status"], ("active", "inactive"))
            predicates.append(lambda p: p["status"] in statuses)
        if "category_id" in filters:
            cid = _int_filter("category_id", filters["category_id"])
            predicates.append(lambda p: p["category_id"] == cid or any(c["id"] == cid for c in p["categories"]))
        if "ids" in filters:
            _int_list_filter("ids", filters["ids"])
        return predicates

    def _select_products(
        self, filters: dict[str, str], predicates: list[Callable[[Json], bool]], sort: tuple[str, bool] | None
    ) -> list[int]:
        candidates: set[int] | None = None

        def narrow(found: Iterable[int]) -> None:
            nonlocal candidates
            found = {pid for pid in found if pid in self.products}
            candidates = found if candidates is None else candidates & found

        if "ids" in filters:
            narrow(_int_list_filter("ids", filters["ids"]))
        if "sku" in filters:
            narrow([self._sku[filters["sku"]]] if filters["sku"] in self._sku else [])
        if "ean" in filters:
            narrow(self._ean.get(filters["ean"], ()))
        if "ext_ref" in filters:
            narrow(self._ext_ref.get(filters["ext_ref"], ()))
        ids: Iterable[int] = self._product_ids if candidates is None else sorted(candidates)
        selected = [self.products[pid] for pid in ids if all(pred(self.products[pid]) for pred in predicates)]
        if sort is not None:
            selected = self._sorted(selected, sort)
        return [p["id"] for p in selected]

    def _product_or_404(self, raw_id: str) -> Json:
        product = self.products.get(int(raw_id)) if raw_id.isdigit() else None
        if product is None:
            raise ApiError(404, "not_found", f"Product `{raw_id}` not found")
        return product

    def _render_one(self, request: _Request, obj: Json) -> Json:
        fields = request.params.get("fields")
        if not fields:
            return obj
        return self._project(obj, frozenset(f.strip() for f in fields.split(",") if f.strip()), frozenset())

    def _get_product(self, request: _Request, raw_id: str) -> tuple[int, Any]:
        return 200, self._render_one(request, self._product_or_404(raw_id))

    def _post_product(self, request: _Request) -> tuple[int, Any]:
        new = self._apply_product(None, request.json_object(), ignore_unknown=request.flag("ignore_nonexistent_fields"))
        return 201, self._render_one(request, self._commit_product(new, None, {}))

    def _patch_product(self, request: _Request, raw_id: str) -> tuple[int, Any]:
        current = self._product_or_404(raw_id)
        payload = request.json_object()
        new = self._apply_product(current, payload, ignore_unknown=request.flag("ignore_nonexistent_fields"))
        return 200, self._render_one(request, self._commit_product(new, current, {}))

    def _delete_product(self, request: _Request, raw_id: str) -> tuple[int, Any]:
        product = self._product_or_404(raw_id)
        self._unindex_product(product)
        del self.products[product["id"]]
        self._product_ids.remove(product["id"])
        self._version += 1
        return 204, None

    def _blank_product(self, ptype: str) -> Json:
        basic = ptype == "basic"
        tax = self.taxes[1]
        product: Json = {key: None for key in PRODUCT_KEYS if key not in ("variants", "variant_attributes")}
        product.update(
            type=ptype,
            status="active",
            inventory_enabled="on",
            stock=0 if basic else None,
            stock_reserved=0,
            allow_backorders=False,
            price_net=0.0 if basic else None,
            price_gross=0.0 if basic else None,
            tax_id=tax["id"],
            tax_value=tax["value"],
            tax_name=tax["name"],
            quantity_multiplier=1,
            categories=[],
            images=[],
        )
        if not basic:
            product["variant_attributes"] = []
            product["variants"] = []
        return product

    def _product_field(self, name: str, value: Any) -> Any:
        if name in ("sku", "name"):
            return _text(name, value, nullable=False, max_length=255)
        if name in ("ean", "ext_ref", "description", "meta_title", "meta_description", "url"):
            return _text(name, value)
        if name == "status":
            return _choice(name, value, ("active", "inactive"))
        if name == "inventory_enabled":
            return _choice(name, value, ("on", "off"))
        if name == "allow_backorders":
            return _boolean(name, value)
        if name in ("stock", "price_net", "price_gross"):
            return _number(name, value)
        if name in ("old_price_net", "old_price_gross", "cost_net", "cost_gross", "weight"):
            return _number(name, value, nullable=True)
        if name == "quantity_multiplier":
            return _number(name, value, positive=True)
        if name == "tax_id":
            if _integer(name, value) not in self.taxes:
                raise _bad("invalid_value", f"Tax `{value}` does not exist")
            return value
        if name == "category_id":
            if _integer(name, value, nullable=True) is not None and value not in self.categories:
                raise _bad("invalid_value", f"Category `{value}` does not exist")
            return value
        if name == "categories":
            return self._category_refs(value)
        if name == "images":
            return self._image_refs(value)
        raise AssertionError(f"unhandled product field {name}")

    def _category_refs(self, value: Any) -> list[Json]:
        if not isinstance(value, list):
            raise _bad("invalid_value", "Field `categories` must be a list of {id}")
        refs = []
        for item in value:
            cid = item.get("id") if isinstance(item, dict) else item
            if isinstance(cid, bool) or not isinstance(cid, int) or cid not in self.categories:
                raise _bad("invalid_value", f"Category `{cid}` does not exist")
            refs.append({"id": cid, "name": self.categories[cid]["name"]})
        return refs

    @staticmethod
    def _image_refs(value: Any) -> list[Json]:
        if not isinstance(value, list):
            raise _bad("invalid_value", "Field `images` must be a list of {url}")
        refs = []
        for item in value:
            url = item.get("url") if isinstance(item, dict) else item
            if not isinstance(url, str) or not url:
                raise _bad("invalid_value", "Every entry of `images` needs a `url`")
            refs.append({"url": url})
        return refs

    def _apply_product(self, current: Json | None, payload: Json, *, ignore_unknown: bool) -> Json:
        """Validate a POST/PATCH payload and return the new product (a copy); the shop is not touched yet."""
        sent = _writable(payload, PRODUCT_WRITABLE, PRODUCT_READONLY, ignore_unknown)
        ptype = _choice("type", sent.get("type", current["type"] if current else "basic"), ("basic", "multi_variant"))
        if current is not None and ptype != current["type"]:
            raise _bad("invalid_field", "Field `type` cannot be changed once a product exists")
        if ptype == "multi_variant":
            forbidden = [name for name in PARENT_FORBIDDEN if name in sent]
            if forbidden:
                names = ", ".join(f"`{name}`" for name in forbidden)
                raise _bad(
                    "invalid_field",
                    f"Field(s) {names} cannot be set on a multi_variant product: set them on its variants",
                )
        elif "variants" in sent:
            raise _bad("invalid_field", "Field `variants` is only valid on multi_variant products")
        if current is None and not sent.get("name"):
            raise _bad("missing_field", "Field `name` is required")
        new = dict(current) if current is not None else self._blank_product(ptype)
        for name, value in sent.items():
            if name not in ("type", "variants"):
                new[name] = self._product_field(name, value)
        old_tax = current["tax_id"] if current is not None else None
        tax = self.taxes[new["tax_id"]]
        new["tax_value"], new["tax_name"] = tax["value"], tax["name"]
        tax_changed = current is not None and new["tax_id"] != old_tax
        self._link_categories(new, current, sent)
        if "images" in sent:
            first = new["images"][0]["url"] if new["images"] else None
            new["image_url"] = None if first is None else {"thumb": first, "medium": first, "large": first}
        if ptype == "basic":
            for net, gross in (
                ("price_net", "price_gross"),
                ("old_price_net", "old_price_gross"),
                ("cost_net", "cost_gross"),
            ):
                _pair_prices(new, net, gross, sent, tax["value"], tax_changed)
        else:
            _pair_prices(new, "cost_net", "cost_gross", sent, tax["value"], tax_changed)
            new["variants"] = self._apply_variants(new, current, sent.get("variants"), ignore_unknown, tax_changed)
            if not new["variants"]:
                raise _bad("invalid_field", "A multi_variant product needs at least one variant")
            new["variant_attributes"] = cat.variant_attributes_for(new["variants"])
        self._check_skus(new, current)
        return new

    def _link_categories(self, new: Json, current: Json | None, sent: Json) -> None:
        if "categories" in sent and "category_id" not in sent:
            ids = [c["id"] for c in new["categories"]]
            if new["category_id"] not in ids:
                new["category_id"] = ids[0] if ids else None
        elif "category_id" in sent and "categories" not in sent:
            old_main = current["category_id"] if current else None
            others = [c for c in new["categories"] if c["id"] not in (old_main, new["category_id"])]
            main = [] if new["category_id"] is None else [{"id": new["category_id"], "name": ""}]
            new["categories"] = main + others
        if new["category_id"] is not None and all(c["id"] != new["category_id"] for c in new["categories"]):
            new["categories"] = [{"id": new["category_id"], "name": ""}, *new["categories"]]
        new["categories"] = [{"id": c["id"], "name": self.categories[c["id"]]["name"]} for c in new["categories"]]
        cid = new["category_id"]
        new["category_name"] = None if cid is None else self.categories[cid]["name"]

    def _apply_variants(
        self, product: Json, current: Json | None, entries: Any, ignore_unknown: bool, tax_changed: bool
    ) -> list[Json]:
        vat = product["tax_value"]
        variants = list(current["variants"]) if current is not None else []
        if tax_changed:
            variants = [dict(v) for v in variants]
            for variant in variants:
                _pair_prices(variant, "price_net", "price_gross", {}, vat, True)
                _pair_prices(variant, "old_price_net", "old_price_gross", {}, vat, True)
        if entries is None:
            return variants
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise _bad("invalid_value", "Field `variants` must be a list of objects")
        position = {v["id"]: i for i, v in enumerate(variants)}
        touched: set[int] = set()
        for entry in entries:
            sent = _writable(entry, VARIANT_WRITABLE, frozenset(), ignore_unknown)
            if "id" in entry:
                vid = entry["id"]
                if isinstance(vid, bool) or vid not in position:
                    raise _bad("invalid_variant", f"Variant `{vid}` does not belong to product `{product.get('id')}`")
                if vid in touched:
                    raise _bad("invalid_variant", f"Variant `{vid}` is listed twice")
                touched.add(vid)
                variant = dict(variants[position[vid]])
            else:
                if "sku" not in sent:
                    raise _bad("missing_field", "A new variant needs a `sku`")
                variant = {
                    "id": None, "sku": None, "ean": None, "ext_ref": None, "inventory_enabled": "on", "stock": 0,
                    "price_net": 0.0, "price_gross": 0.0, "old_price_net": None, "old_price_gross": None,
                    "weight": None, "variant_options": [],
                }  # fmt: skip
            for name, value in sent.items():
                if name != "id":
                    variant[name] = self._variant_field(name, value)
            _pair_prices(variant, "price_net", "price_gross", sent, vat, False)
            _pair_prices(variant, "old_price_net", "old_price_gross", sent, vat, False)
            if variant["id"] is None:
                variants.append(variant)
            else:
                variants[position[variant["id"]]] = variant
        return variants

    def _variant_field(self, name: str, value: Any) -> Any:
        if name == "sku":
            return _text(name, value, nullable=False, max_length=255)
        if name in ("ean", "ext_ref"):
            return _text(name, value)
        if name == "inventory_enabled":
            return _choice(name, value, ("on", "off"))
        if name in ("stock", "price_net", "price_gross"):
            return _number(name, value)
        if name in ("old_price_net", "old_price_gross", "weight"):
            return _number(name, value, nullable=True)
        if name == "variant_options":
            if not isinstance(value, list) or not all(
                isinstance(o, dict) and isinstance(o.get("name"), str) and isinstance(o.get("value"), str)
                for o in value
            ):
                raise _bad("invalid_value", "Field `variant_options` must be a list of {name, value}")
            return self.variant_options.options_for([(o["name"], o["value"]) for o in value])
        raise AssertionError(f"unhandled variant field {name}")

    def _check_skus(self, new: Json, current: Json | None) -> None:
        own: set[int] = set()
        if current is not None:
            own.add(current["id"])
            own.update(v["id"] for v in current.get("variants", ()))
        seen: set[str] = set()
        for unit in (new, *new.get("variants", ())):
            sku = unit["sku"]
            if sku is None:
                raise _bad("missing_field", "Field `sku` is required")
            owner = self._sku.get(sku)
            if sku in seen or (owner is not None and owner not in own):
                raise _bad("duplicate_sku", f"SKU `{sku}` is already used by another product or variant")
            seen.add(sku)

    def _commit_product(self, new: Json, current: Json | None, overrides: Json) -> Json:
        stamp = cat.iso(self.now())
        if current is None:
            new["id"] = overrides.get("id") or self._allocate_unit_id()
            self._next_unit = max(self._next_unit, new["id"] + 1)
            new["date_created"] = overrides.get("date_created", stamp)
            new["url"] = new["url"] or f"/{new['sku'].lower()}-{new['id']}"
            new["meta_title"] = new["meta_title"] or new["name"]
        else:
            self._unindex_product(current)
        for variant in new.get("variants", ()):
            if variant["id"] is None:
                variant["id"] = self._allocate_unit_id()
        new["date_modified"] = overrides.get("date_modified", stamp)
        ordered = {key: new[key] for key in PRODUCT_KEYS if key in new}
        self._index_product(ordered)
        self.products[ordered["id"]] = ordered
        if current is None:
            bisect.insort(self._product_ids, ordered["id"])
        self._version += 1
        return ordered

    def _index_product(self, product: Json) -> None:
        pid = product["id"]
        self._sku[product["sku"]] = pid
        if product["ean"]:
            self._ean.setdefault(product["ean"], set()).add(pid)
        if product["ext_ref"]:
            self._ext_ref.setdefault(product["ext_ref"], set()).add(pid)
        for variant in product.get("variants", ()):
            self._sku[variant["sku"]] = variant["id"]
            self._variant_parent[variant["id"]] = pid
            if variant["ean"]:
                self._ean.setdefault(variant["ean"], set()).add(variant["id"])

    def _unindex_product(self, product: Json) -> None:
        self._sku.pop(product["sku"], None)
        if product["ean"]:
            self._ean.get(product["ean"], set()).discard(product["id"])
        if product["ext_ref"]:
            self._ext_ref.get(product["ext_ref"], set()).discard(product["id"])
        for variant in product.get("variants", ()):
            self._sku.pop(variant["sku"], None)
            self._variant_parent.pop(variant["id"], None)
            if variant["ean"]:
                self._ean.get(variant["ean"], set()).discard(variant["id"])

    # --- inventory ---------------------------------------------------------------------------------------

    def _inventory_unit(self, unit_id: int | None, label: str) -> Json:
        """One inventory unit (a basic product or a variant): stock and prices; see docs/simulators.md."""
        if unit_id is None:
            raise ApiError(404, "not_found", f"Inventory unit {label} not found")
        parent_id = self._variant_parent.get(unit_id)
        if parent_id is not None:
            parent = self.products[parent_id]
            unit = next(v for v in parent["variants"] if v["id"] == unit_id)
            options = ", ".join(o["value"] for o in unit["variant_options"])
            name = f"{parent['name']} ({options})" if options else parent["name"]
        else:
            found = self.products.get(unit_id)
            if found is None:
                raise ApiError(404, "not_found", f"Inventory unit {label} not found")
            parent = unit = found
            if unit["type"] == "multi_variant":
                raise ApiError(
                    404, "not_found", f"Product {label} is multi_variant: its inventory units are its variants"
                )
            name = unit["name"]
        return {
            "id": unit["id"],
            "product_id": parent["id"],
            "variant_id": unit["id"] if parent_id is not None else None,
            "sku": unit["sku"],
            "ean": unit["ean"],
            "ext_ref": unit["ext_ref"],
            "name": name,
            "status": parent["status"],
            "inventory_enabled": unit["inventory_enabled"],
            "stock": unit["stock"],
            "stock_reserved": parent["stock_reserved"] if parent_id is None else 0,
            "allow_backorders": parent["allow_backorders"],
            "price_net": unit["price_net"],
            "price_gross": unit["price_gross"],
            "old_price_net": unit["old_price_net"],
            "old_price_gross": unit["old_price_gross"],
            "tax_value": parent["tax_value"],
            "date_modified": parent["date_modified"],
        }

    def _inventory_by_id(self, request: _Request, raw_id: str) -> tuple[int, Any]:
        return 200, self._render_one(
            request, self._inventory_unit(int(raw_id) if raw_id.isdigit() else None, f"`{raw_id}`")
        )

    def _inventory_by_sku(self, request: _Request, sku: str) -> tuple[int, Any]:
        return 200, self._render_one(request, self._inventory_unit(self._sku.get(sku), f"with SKU `{sku}`"))

    def _inventory_by_ean(self, request: _Request, ean: str) -> tuple[int, Any]:
        units = self._ean.get(ean)
        return 200, self._render_one(request, self._inventory_unit(min(units) if units else None, f"with EAN `{ean}`"))

    # --- orders ------------------------------------------------------------------------------------------

    def _new_order_id(self, rng: random.Random) -> str:
        while True:
            candidate = str(rng.randrange(10_000_000, 100_000_000))
            if candidate not in self.orders and candidate + ".3" not in self.orders:
                return candidate

    def _order_or_404(self, order_id: str) -> Json:
        order = self.orders.get(order_id)
        if order is None:
            raise ApiError(404, "not_found", f"Order `{order_id}` not found")
        return order

    def _list_orders(self, request: _Request) -> tuple[int, Any]:
        query = self._list_query(request, ORDER_FILTERS)
        sort = self._sort_key(query.sort, ("sys_id", "id", "date_created", "date_modified", "total_amount"))
        filters = dict(query.filters)
        predicates = self._order_predicates(filters)
        ids = self._cached(("orders", query.filters, sort), lambda: self._select_orders(predicates, sort))
        hidden = self._hidden(query.fields, query.include, ORDER_SIDELOADS)
        fields = None if query.fields is None else query.fields | (query.include & ORDER_SIDELOADS)
        page = ids[query.start : query.start + query.limit]
        data = [self._project(self.orders[oid], fields, hidden) for oid in page]
        return 200, self._envelope(request, data, len(ids), query)

    def _order_predicates(self, filters: dict[str, str]) -> list[Callable[[Json], bool]]:
        predicates = _date_predicates(filters.items())
        # created_after = created[gte] and created_before = created[lt] (date-only, like the bracket filters).
        for alias, target in (("created_after", "created[gte]"), ("created_before", "created[lt]")):
            if alias in filters:
                predicates += _date_predicates([(target, filters[alias])], shown=alias)
        if "ids" in filters:
            wanted = {part.strip() for part in filters["ids"].split(",") if part.strip()}
            predicates.append(lambda o: o["id"] in wanted)
        if "shipping_status" in filters:
            shipping = _enum_filter("shipping_status", filters["shipping_status"], SHIPPING_STATUSES)
            predicates.append(lambda o: o["shipping_status"] in shipping)
        if "payment_status" in filters:
            payment = _enum_filter("payment_status", filters["payment_status"], PAYMENT_STATUSES)
            predicates.append(lambda o: o["payment_status"] in payment)
        if "payment_method_code" in filters:
            methods = {part.strip() for part in filters["payment_method_code"].split(",")}
            predicates.append(lambda o: o["payment_method_code"] in methods)
        return predicates

    def _select_orders(self, predicates: list[Callable[[Json], bool]], sort: tuple[str, bool] | None) -> list[str]:
        selected = [o for o in self.orders.values() if all(pred(o) for pred in predicates)]
        if sort is not None:
            selected = self._sorted(selected, sort)
        return [o["id"] for o in selected]

    def _get_order(self, request: _Request, order_id: str) -> tuple[int, Any]:
        return 200, self._render_one(request, self._order_or_404(order_id))

    def _post_order(self, request: _Request) -> tuple[int, Any]:
        order = self._insert_order(
            request.json_object(),
            ignore_unknown=request.flag("ignore_nonexistent_fields"),
            adjust_stock=True,
            order_id=None,
            created=None,
            modified=None,
            source_type="api",
        )
        return 201, self._render_one(request, order)

    def _patch_order(self, request: _Request, order_id: str) -> tuple[int, Any]:
        current = self._order_or_404(order_id)
        sent = _writable(
            request.json_object(), ORDER_WRITABLE, ORDER_READONLY, request.flag("ignore_nonexistent_fields")
        )
        new = dict(current)
        self._apply_order_fields(new, sent)
        if "line_items" in sent:
            # The reference's quirk: the list sent replaces the order's lines (omitted lines are dropped).
            lines, _moves = self._build_lines(sent["line_items"], current, request.flag("ignore_nonexistent_fields"))
            new["line_items"] = self._number_lines(lines)
            self._order_totals(new)
        elif "shipping_amount" in sent:
            self._order_totals(new)
        return 200, self._render_one(request, self._store_order(new))

    def _order_status_action(self, request: _Request, order_id: str) -> tuple[int, Any]:
        new = dict(self._order_or_404(order_id))
        action = request.segments[-1]
        new["shipping_status"] = action
        if action == "returned":
            new["has_returns"] = True
        return 200, self._render_one(request, self._store_order(new))

    def _create_invoice(self, request: _Request, order_id: str) -> tuple[int, Any]:
        new = dict(self._order_or_404(order_id))
        if new["invoice_number"] is not None:
            raise _bad(
                "invoice_exists",
                f"Order `{order_id}` already has invoice {new['invoice_series']}{new['invoice_number']}",
            )
        new["invoice_series"] = "MP"
        new["invoice_number"] = f"{self._next_invoice:06d}"
        new["invoice_url"] = f"{self._base(request)}/invoice/{order_id}.pdf"
        self._next_invoice += 1
        return 200, self._render_one(request, self._store_order(new))

    def _post_order_tag(self, request: _Request, order_id: str) -> tuple[int, Any]:
        current = self._order_or_404(order_id)
        sent = _writable(
            request.json_object(), frozenset({"name"}), frozenset(), request.flag("ignore_nonexistent_fields")
        )
        name = _text("name", sent.get("name"), nullable=False, max_length=100)
        assert name is not None
        new = dict(current)
        if all(tag["name"] != name for tag in current["tags"]):
            tag_id = self._tag_ids.setdefault(name, len(self._tag_ids) + 1)
            new["tags"] = [*current["tags"], {"id": tag_id, "name": name}]
        return 201, self._render_one(request, self._store_order(new))

    def _store_order(self, order: Json) -> Json:
        order["date_modified"] = cat.iso(self.now())
        self.orders[order["id"]] = order
        self._version += 1
        return order

    def _apply_order_fields(self, order: Json, sent: Json) -> None:
        for name, value in sent.items():
            if name == "line_items":
                continue
            if name == "payment_status":
                order[name] = _choice(name, value, PAYMENT_STATUSES)
            elif name == "shipping_status":
                order[name] = _choice(name, value, SHIPPING_STATUSES)
            elif name == "billing_type":
                order[name] = _choice(name, value, ("individual", "company"))
            elif name == "payment_method_code":
                order[name] = _text(name, value, nullable=False, max_length=64)
                order["payment_method_name"] = cat.PAYMENT_METHODS.get(value, value)
            elif name == "shipping_method_id":
                if _integer(name, value) not in cat.SHIPPING_METHODS:
                    raise _bad("invalid_value", f"Shipping method `{value}` does not exist")
                order[name], order["shipping_method_name"] = value, cat.SHIPPING_METHODS[value]
            elif name in ("shipping_amount", "paid_amount"):
                order[name] = _number(name, value, nullable=name == "paid_amount")
            elif name == "shipping_as_billing":
                order[name] = _boolean(name, value)
            elif name == "meta_fields":
                if not isinstance(value, dict):
                    raise _bad("invalid_value", "Field `meta_fields` must be an object")
                order[name] = value
            elif name == "currency":
                order[name] = _choice(name, value, ("RON", "EUR", "USD", "HUF", "BGN"))
            elif name == "customer_email":
                email = _text(name, value)
                if email is not None and "@" not in email:
                    raise _bad("invalid_value", f"Field `customer_email` is not an e-mail address: `{email}`")
                order[name] = email
            else:  # billing_*, shipping_* texts, shipping_awb, customer_note, payment_date
                order[name] = _text(name, value)
        if "shipping_awb" in sent:
            awb = order["shipping_awb"]
            order["carrier_tracking"] = (
                [] if awb is None else [{"awb": awb, "carrier": order["shipping_method_name"], "url": None}]
            )

    def _resolve_unit(self, entry: Json) -> tuple[Json, Json]:
        """(product, unit) for a line: by product_sku, else by product_id (a basic product or a variant id)."""
        if "product_sku" in entry:
            unit_id = self._sku.get(entry["product_sku"]) if isinstance(entry["product_sku"], str) else None
            label = f"SKU `{entry['product_sku']}`"
        else:
            raw = entry.get("product_id")
            unit_id = raw if isinstance(raw, int) and not isinstance(raw, bool) else None
            label = f"product_id `{raw}`"
        if unit_id is None:
            raise _bad("invalid_value", f"Line item: no product with {label}")
        parent_id = self._variant_parent.get(unit_id)
        if parent_id is not None:
            parent = self.products[parent_id]
            return parent, next(v for v in parent["variants"] if v["id"] == unit_id)
        product = self.products.get(unit_id)
        if product is None:
            raise _bad("invalid_value", f"Line item: no product with {label}")
        if product["type"] == "multi_variant":
            raise _bad("invalid_value", f"Line item: {label} is a multi_variant product; name one of its variants")
        return product, product

    def _build_lines(
        self, entries: Any, current: Json | None, ignore_unknown: bool
    ) -> tuple[list[Json], list[tuple[Json, Json, float]]]:
        """Validate line items; returns the lines and the stock moves (product, unit, quantity) they imply."""
        if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
            raise _bad("invalid_value", "Field `line_items` must be a non-empty list of objects")
        existing = {line["id"]: line for line in current["line_items"]} if current is not None else {}
        lines: list[Json] = []
        moves: list[tuple[Json, Json, float]] = []
        for entry in entries:
            sent = _writable(entry, LINE_WRITABLE, LINE_READONLY, ignore_unknown)
            base = existing.get(sent["id"]) if "id" in sent else None
            if "id" in sent and base is None:
                raise _bad("invalid_value", f"Line item `{sent['id']}` does not belong to this order")
            if base is None or "product_sku" in sent or "product_id" in sent:
                product, unit = self._resolve_unit(sent)
            else:
                product, unit = self._resolve_unit({"product_sku": base["product_sku"]})
            quantity = _number("quantity", sent.get("quantity", base["quantity"] if base else None), positive=True)
            assert quantity is not None
            vat = sent.get("product_tax_percent", base["product_tax_percent"] if base else product["tax_value"])
            _number("product_tax_percent", vat)
            if "unit_price_gross" in sent:
                gross = _number("unit_price_gross", sent["unit_price_gross"])
            elif "unit_price_net" in sent:
                gross = cat.gross_from_net(_number("unit_price_net", sent["unit_price_net"]) or 0, vat)
            else:
                gross = base["unit_price_gross"] if base else unit["price_gross"]
            assert gross is not None
            net = cat.net_from_gross(gross, vat)
            line_gross = cat.money(gross * quantity)
            line_net = cat.net_from_gross(line_gross, vat)
            tracked = unit["inventory_enabled"] == "on"
            stock_before = unit["stock"] or 0
            lines.append(
                {
                    "id": base["id"] if base else None,
                    "item_type": "product",
                    "product_id": product["id"],
                    "product_sku": unit["sku"],
                    "product_ean": unit["ean"],
                    "product_name": sent.get("product_name") or (base["product_name"] if base else product["name"]),
                    "product_stock": f"{(stock_before - quantity) if tracked else -1:.3f}",
                    "backorder_quantity": max(0, quantity - max(stock_before, 0)) if tracked else 0,
                    "product_tax_name": product["tax_name"],
                    "product_tax_percent": vat,
                    "quantity": quantity,
                    "unit_price_net": net,
                    "unit_tax_amount": cat.money(gross - net),
                    "unit_price_gross": gross,
                    "line_subtotal_net": line_net,
                    "line_tax_amount": cat.money(line_gross - line_net),
                    "line_subtotal_gross": line_gross,
                    "weight": unit.get("weight"),
                    "meta_fields": sent.get("meta_fields") or (base["meta_fields"] if base else {}),
                }
            )
            if tracked:
                moves.append((product, unit, quantity))
        return lines, moves

    def _number_lines(self, lines: list[Json]) -> list[Json]:
        for line in lines:
            if line["id"] is None:
                line["id"] = self._next_line_id
                self._next_line_id += 1
        return lines

    @staticmethod
    def _order_totals(order: Json) -> None:
        lines = order["line_items"]
        gross = cat.money(sum(line["line_subtotal_gross"] for line in lines))
        net = cat.money(sum(line["line_subtotal_net"] for line in lines))
        shipping = order["shipping_amount"] or 0.0
        shipping_tax = cat.money(shipping - cat.net_from_gross(shipping, order["shipping_tax_percent"]))
        order["shipping_tax_amount"] = shipping_tax
        order["subtotal_including_tax"] = gross
        order["subtotal_excluding_tax"] = net
        order["tax_amount"] = cat.money(gross - net + shipping_tax)
        order["total_amount"] = cat.money(gross + shipping)

    def _insert_order(
        self,
        payload: Json,
        *,
        ignore_unknown: bool,
        adjust_stock: bool,
        order_id: str | None,
        created: datetime | None,
        modified: datetime | None,
        source_type: str,
    ) -> Json:
        sent = _writable(payload, ORDER_WRITABLE, ORDER_READONLY, ignore_unknown)
        if "line_items" not in sent:
            raise _bad("missing_field", "Field `line_items` is required")
        order: Json = {
            "id": None, "sys_id": None, "public_code": None, "channel_id": 1, "source_type": source_type,
            "payment_status": "awaiting", "payment_method_code": "cash_delivery",
            "payment_method_name": cat.PAYMENT_METHODS["cash_delivery"], "payment_date": None, "paid_amount": None,
            "shipping_status": "awaiting", "shipping_method_id": 1, "shipping_method_name": cat.SHIPPING_METHODS[1],
            "shipping_amount": 0.0, "shipping_tax_percent": 19, "shipping_tax_amount": 0.0, "shipping_awb": None,
            "subtotal_including_tax": 0.0, "subtotal_excluding_tax": 0.0, "tax_amount": 0.0, "total_amount": 0.0,
            "currency": "RON", "has_returns": False, "customer_id": None, "customer_email": None,
            "customer_note": None, "date_created": None, "date_modified": None, "meta_fields": {},
            "billing_type": "individual", **dict.fromkeys(BILLING_TEXT), "shipping_as_billing": False,
            **dict.fromkeys(SHIPPING_TEXT), "carrier_tracking": [], "proforma_url": None, "info_url": None,
            "invoice_series": None, "invoice_number": None, "invoice_url": None, "tags": [], "line_items": [],
        }  # fmt: skip
        self._apply_order_fields(order, sent)
        if order["shipping_as_billing"]:
            for name in SHIPPING_TEXT:
                if name not in sent:
                    order[name] = order["billing_" + name.removeprefix("shipping_")]
        order["line_items"], moves = self._build_lines(sent["line_items"], None, ignore_unknown)
        self._order_totals(order)
        if order["payment_status"] == "paid" and order["paid_amount"] is None:
            order["paid_amount"] = order["total_amount"]
        # Valid: from here on the shop changes.
        now = self.now()
        created = created or now
        if created.tzinfo is None:
            created = created.replace(tzinfo=cat.BUCHAREST)
        order_id = order_id or self._new_order_id(self._ids_rng)
        base = self.base_url or "http://shop.test"
        order.update(
            id=order_id,
            sys_id=self._next_sys_id,
            public_code=str(self._next_sys_id),
            date_created=cat.iso(created),
            date_modified=cat.iso(modified or created),
            proforma_url=f"{base}/proforma/{order_id}.pdf",
            info_url=f"{base}/order/info/{order_id}",
        )
        if order["payment_status"] == "paid" and order["payment_date"] is None:
            order["payment_date"] = order["date_created"]
        self._next_sys_id += 1
        self._number_lines(order["line_items"])
        order["customer_id"] = self._customer_for(order, created)
        if adjust_stock:
            self._lower_stock(moves)
        self.orders[order_id] = order
        self._version += 1
        return order

    def _customer_for(self, order: Json, created: datetime) -> int | None:
        email = order["customer_email"]
        if not email:
            return None
        known = self._customer_email.get(email.lower())
        if known is not None:
            return known
        first, _, last = (order["billing_name"] or "").partition(" ")
        company = order["billing_type"] == "company"
        customer = self._store_customer(
            {
                "email": email,
                "first_name": first or None,
                "last_name": last or None,
                "phone": order["billing_phone"],
                "type": order["billing_type"],
                "company_name": order["billing_company_name"] if company else None,
                "company_code": order["billing_company_code"] if company else None,
                "country_code": order["billing_country_code"],
                "city": order["billing_city"],
            },
            created,
        )
        return int(customer["id"])

    def _lower_stock(self, moves: list[tuple[Json, Json, float]]) -> None:
        stamp = cat.iso(self.now())
        for product, unit, quantity in moves:
            current = self.products[product["id"]]
            if unit is product:
                new = dict(current, stock=current["stock"] - quantity)
            else:
                variants = [
                    dict(v, stock=v["stock"] - quantity) if v["id"] == unit["id"] else v for v in current["variants"]
                ]
                new = dict(current, variants=variants, variant_attributes=cat.variant_attributes_for(variants))
            new["date_modified"] = stamp
            self.products[product["id"]] = new

    # --- taxonomy, categories, customers -----------------------------------------------------------------

    def _static_list(self, request: _Request, items: list[Json]) -> tuple[int, Any]:
        query = self._list_query(request, frozenset())
        page = [self._project(i, query.fields, frozenset()) for i in items[query.start : query.start + query.limit]]
        return 200, self._envelope(request, page, len(items), query)

    def _list_taxes(self, request: _Request) -> tuple[int, Any]:
        return self._static_list(request, list(self.taxes.values()))

    def _list_units(self, request: _Request) -> tuple[int, Any]:
        return self._static_list(request, self.measurement_units)

    def _list_categories(self, request: _Request) -> tuple[int, Any]:
        query = self._list_query(request, CATEGORY_FILTERS)
        filters = dict(query.filters)
        items = list(self.categories.values())
        if "parent_id" in filters:
            parent = (
                None if filters["parent_id"] in ("", "0", "null") else _int_filter("parent_id", filters["parent_id"])
            )
            items = [c for c in items if c["parent_id"] == parent]
        if "status" in filters:
            statuses = _enum_filter("status", filters["status"], ("active", "inactive"))
            items = [c for c in items if c["status"] in statuses]
        page = [self._project(c, query.fields, frozenset()) for c in items[query.start : query.start + query.limit]]
        return 200, self._envelope(request, page, len(items), query)

    def _category_or_404(self, raw_id: str) -> Json:
        category = self.categories.get(int(raw_id)) if raw_id.isdigit() else None
        if category is None:
            raise ApiError(404, "not_found", f"Category `{raw_id}` not found")
        return category

    def _get_category(self, request: _Request, raw_id: str) -> tuple[int, Any]:
        return 200, self._render_one(request, self._category_or_404(raw_id))

    def _apply_category(self, current: Json | None, request: _Request) -> Json:
        sent = _writable(
            request.json_object(), CATEGORY_WRITABLE, frozenset({"id"}), request.flag("ignore_nonexistent_fields")
        )
        new = (
            dict(current)
            if current
            else {"id": None, "name": None, "parent_id": None, "position": 0, "status": "active", "url": None}
        )
        for name, value in sent.items():
            if name == "name":
                new[name] = _text(name, value, nullable=False, max_length=255)
            elif name == "parent_id":
                if _integer(name, value, nullable=True) is not None and (
                    value not in self.categories or value == new["id"]
                ):
                    raise _bad("invalid_value", f"Parent category `{value}` does not exist")
                new[name] = value
            elif name == "position":
                new[name] = _integer(name, value)
            elif name == "status":
                new[name] = _choice(name, value, ("active", "inactive"))
            else:
                new[name] = _text(name, value)
        if new["name"] is None:
            raise _bad("missing_field", "Field `name` is required")
        return new

    def _post_category(self, request: _Request) -> tuple[int, Any]:
        new = self._apply_category(None, request)
        new["id"] = max(self.categories, default=0) + 1
        new["url"] = new["url"] or f"/{new['name'].lower().replace(' ', '-')}"
        self.categories[new["id"]] = new
        self._version += 1
        return 201, new

    def _patch_category(self, request: _Request, raw_id: str) -> tuple[int, Any]:
        current = self._category_or_404(raw_id)
        new = self._apply_category(current, request)
        self.categories[new["id"]] = new
        if new["name"] != current["name"]:
            self._rename_category(new["id"], new["name"])
        self._version += 1
        return 200, self._render_one(request, new)

    def _rename_category(self, cid: int, name: str) -> None:
        for pid, product in self.products.items():
            if product["category_id"] == cid or any(c["id"] == cid for c in product["categories"]):
                categories = [dict(c, name=name) if c["id"] == cid else c for c in product["categories"]]
                renamed = dict(product, categories=categories)
                if product["category_id"] == cid:
                    renamed["category_name"] = name
                self.products[pid] = renamed

    def _delete_category(self, request: _Request, raw_id: str) -> tuple[int, Any]:
        category = self._category_or_404(raw_id)
        cid = category["id"]
        if any(c["parent_id"] == cid for c in self.categories.values()) or any(
            p["category_id"] == cid or any(c["id"] == cid for c in p["categories"]) for p in self.products.values()
        ):
            raise _bad("category_in_use", f"Category `{cid}` still has products or sub-categories")
        del self.categories[cid]
        self._version += 1
        return 204, None

    def _list_customers(self, request: _Request) -> tuple[int, Any]:
        query = self._list_query(request, CUSTOMER_FILTERS)
        filters = dict(query.filters)
        predicates = _date_predicates(filters.items())
        if "email" in filters:
            email = filters["email"].lower()
            predicates.append(lambda c: c["email"].lower() == email)
        if "group_id" in filters:
            group = _int_filter("group_id", filters["group_id"])
            predicates.append(lambda c: c["group_id"] == group)
        if "status" in filters:
            statuses = _enum_filter("status", filters["status"], ("active", "inactive"))
            predicates.append(lambda c: c["status"] in statuses)
        if "newsletter" in filters:
            wanted = filters["newsletter"].lower() in _TRUE
            predicates.append(lambda c: c["newsletter"] is wanted)
        if "country_code" in filters:
            country = filters["country_code"]
            predicates.append(lambda c: c["country_code"] == country)
        if "city" in filters:
            city = filters["city"]
            predicates.append(lambda c: c["city"] == city)
        sort = self._sort_key(query.sort, ("id", "email", "date_created"))
        items = self._cached(
            ("customers", query.filters, sort),
            lambda: [
                c["id"]
                for c in (self._sorted(self._matching(predicates), sort) if sort else self._matching(predicates))
            ],
        )
        page = [
            self._project(self.customers[i], query.fields, frozenset())
            for i in items[query.start : query.start + query.limit]
        ]
        return 200, self._envelope(request, page, len(items), query)

    def _matching(self, predicates: list[Callable[[Json], bool]]) -> list[Json]:
        return [c for c in self.customers.values() if all(pred(c) for pred in predicates)]

    def _get_customer(self, request: _Request, raw_id: str) -> tuple[int, Any]:
        customer = self.customers.get(int(raw_id)) if raw_id.isdigit() else None
        if customer is None:
            raise ApiError(404, "not_found", f"Customer `{raw_id}` not found")
        return 200, self._render_one(request, customer)

    def _post_customer(self, request: _Request) -> tuple[int, Any]:
        sent = _writable(
            request.json_object(), CUSTOMER_WRITABLE, CUSTOMER_READONLY, request.flag("ignore_nonexistent_fields")
        )
        fields: Json = {}
        for name, value in sent.items():
            if name == "type":
                fields[name] = _choice(name, value, ("individual", "company"))
            elif name == "status":
                fields[name] = _choice(name, value, ("active", "inactive"))
            elif name == "newsletter":
                fields[name] = _boolean(name, value)
            elif name == "group_id":
                fields[name] = _integer(name, value)
            else:
                fields[name] = _text(name, value, nullable=name != "email", max_length=255)
        email = fields.get("email")
        if not email or "@" not in email:
            raise _bad("missing_field", "Field `email` is required and must be an e-mail address")
        if email.lower() in self._customer_email:
            raise _bad("duplicate_email", f"A customer with e-mail `{email}` already exists")
        return 201, self._render_one(request, self._store_customer(fields, self.now()))

    def _store_customer(self, fields: Json, created: datetime) -> Json:
        cid = self._next_customer_id
        self._next_customer_id += 1
        customer: Json = {
            "id": cid, "email": None, "first_name": None, "last_name": None, "name": None, "phone": None,
            "type": "individual", "company_name": None, "company_code": None, "group_id": 1, "status": "active",
            "newsletter": False, "country_code": "RO", "city": None,
            "date_created": cat.iso(created), "date_modified": cat.iso(created),
        }  # fmt: skip
        customer.update(fields)
        customer["name"] = " ".join(part for part in (customer["first_name"], customer["last_name"]) if part) or None
        self.customers[cid] = customer
        self._customer_email[customer["email"].lower()] = cid
        self._version += 1
        return customer


def main(argv: list[str] | None = None) -> None:
    """Run the simulator as a loopback HTTP server until Ctrl-C."""
    parser = argparse.ArgumentParser(prog="python -m simulators.merchantpro", description=main.__doc__)
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
