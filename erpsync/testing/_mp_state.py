"""The MerchantPro simulator's shop state and the machinery every resource shares: the request, the route table,
the list envelope and paging."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from erpsync.testing import _catalogue as cat
from erpsync.testing._mp_rules import (
    DEFAULT_LIMIT,
    LIST_CONTROLS,
    MAX_LIMIT,
    ORDER_STATUS_ACTIONS,
    TRUE_WORDS,
    ApiError,
    Json,
    bad,
)


@dataclass
class Request:
    """One HTTP request as the simulator sees it: path segments after `/api/v2/`, query pairs, body."""

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
        """Query parameters; the last value of a repeated name wins."""
        return dict(self.query)

    def flag(self, name: str) -> bool:
        """Whether a query flag is on (`1`, `true`, `yes`, `on`)."""
        return self.params.get(name, "").lower() in TRUE_WORDS

    def json_object(self) -> Json:
        """The body as a JSON object, else a 400 `invalid_json`."""
        if not self.body.strip():
            raise bad("invalid_json", "The request body must be a JSON object")
        try:
            payload = json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise bad("invalid_json", f"Malformed JSON body: {exc}") from None
        if not isinstance(payload, dict):
            raise bad("invalid_json", "The request body must be a JSON object")
        return payload


@dataclass(frozen=True)
class Route:
    """One path pattern of the API and the handler method (of the simulator) for each HTTP method."""

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


ROUTES: tuple[Route, ...] = (
    Route(("products",), {"GET": "_list_products", "POST": "_post_product"}),
    Route(("products", "{id}"), {"GET": "_get_product", "PATCH": "_patch_product", "DELETE": "_delete_product"}),
    Route(("inventory", "sku", "{value}"), {"GET": "_inventory_by_sku"}),
    Route(("inventory", "ean", "{value}"), {"GET": "_inventory_by_ean"}),
    Route(("inventory", "{id}"), {"GET": "_inventory_by_id"}),
    Route(("orders",), {"GET": "_list_orders", "POST": "_post_order"}),
    Route(("orders", "{id}"), {"GET": "_get_order", "PATCH": "_patch_order"}),
    Route(("orders", "{id}", "tags"), {"POST": "_post_order_tag"}),
    Route(("orders", "{id}", "create_invoice"), {"PATCH": "_create_invoice"}),
    *(Route(("orders", "{id}", action), {"PATCH": "_order_status_action"}) for action in ORDER_STATUS_ACTIONS),
    Route(("taxonomy", "taxes"), {"GET": "_list_taxes"}),
    Route(("taxonomy", "measurement_units"), {"GET": "_list_units"}),
    Route(("categories",), {"GET": "_list_categories", "POST": "_post_category"}),
    Route(("categories", "{id}"), {"GET": "_get_category", "PATCH": "_patch_category", "DELETE": "_delete_category"}),
    Route(("customers",), {"GET": "_list_customers", "POST": "_post_customer"}),
    Route(("customers", "{id}"), {"GET": "_get_customer", "PATCH": "_patch_customer", "DELETE": "_delete_customer"}),
)


def resolve(request: Request) -> tuple[Route, list[str]]:
    """The route a request's path matches and the placeholders' values, else a 404."""
    for route in ROUTES:
        args = route.match(request.segments)
        if args is not None:
            return route, args
    raise ApiError(404, "not_found", f"No route for {request.raw_path}")


def check_method(route: Route, method: str) -> None:
    """A 405 (with ``Allow``) when the route has no handler for the method."""
    if method not in route.handlers:
        allowed = ", ".join(route.handlers)
        raise ApiError(
            405,
            "method_not_allowed",
            f"Method {method} is not allowed on {route.label} (allowed: {allowed})",
            [("Allow", allowed)],
        )


@dataclass(frozen=True)
class ListQuery:
    """The parsed controls of a list request: paging, `fields`, `include`, `sort` and the filters."""

    start: int
    limit: int
    fields: frozenset[str] | None
    include: frozenset[str]
    sort: str | None
    filters: tuple[tuple[str, str], ...]


class ShopState:
    """The shop's data and indexes, and the helpers that read lists out of them."""

    def __init__(self, base_url: str | None) -> None:
        self.base_url = base_url.rstrip("/") if base_url else None
        self.now: Callable[[], datetime] = cat.local_now  # the shop's clock for date_created/date_modified
        self.products: dict[int, Json] = {}
        # Product id -> the fields a POST/PATCH sent with ignore_nonexistent_fields=1 that the shop does not know
        # (the last value of each): dropped as the API drops them, kept here for tests to see what was sent.
        self.ignored_product_fields: dict[int, Json] = {}
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

    def _allocate_unit_id(self) -> int:
        unit_id = self._next_unit
        self._next_unit += 1
        return unit_id

    @staticmethod
    def _list_query(request: Request, filters: frozenset[str]) -> ListQuery:
        params = request.params
        for name in params:
            if name not in LIST_CONTROLS and name not in filters:
                raise bad("undefined_filter", f"No such filter `{name}` defined")

        def int_param(name: str, default: int, minimum: int) -> int:
            raw = params.get(name, "")
            if raw == "":
                return default
            try:
                value = int(raw)
            except ValueError:
                raise bad("invalid_parameter", f"Parameter `{name}` must be an integer, got `{raw}`") from None
            if value < minimum:
                raise bad("invalid_parameter", f"Parameter `{name}` must be >= {minimum}, got `{raw}`")
            return value

        def names(name: str) -> frozenset[str]:
            return frozenset(part.strip() for part in params.get(name, "").split(",") if part.strip())

        return ListQuery(
            start=int_param("start", 0, 0),
            limit=min(int_param("limit", DEFAULT_LIMIT, 1), MAX_LIMIT),
            fields=names("fields") or None,
            include=names("include"),
            sort=params.get("sort") or None,
            filters=tuple(sorted((k, v) for k, v in params.items() if k in filters)),
        )

    def _base(self, request: Request) -> str:
        if self.base_url:
            return self.base_url
        return f"{request.scheme}://{request.headers.get('host', 'localhost')}"

    def _envelope(self, request: Request, data: list[Any], total: int, query: ListQuery) -> Json:
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
            raise bad(
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

    def _render_one(self, request: Request, obj: Json) -> Json:
        fields = request.params.get("fields")
        if not fields:
            return obj
        return self._project(obj, frozenset(f.strip() for f in fields.split(",") if f.strip()), frozenset())
