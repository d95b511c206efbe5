"""The MerchantPro REST API v2 client: paged ``iter_*`` reads and the writes the flows need.

Every call goes through ``connectors.http.HttpClient`` (pacing per API key, bounded retries, classification).
Lists follow ``meta.links.next`` over ``start``/``limit`` pages of at most 100; single resources come back as
bare objects. Order ids are strings and are put into URLs whole (``"95750870.3"``).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal
from urllib.parse import quote
from zoneinfo import ZoneInfo

import httpx

from erpsync.connectors.errors import BadRequestError, ConnectorError, RecordError, RetriableError
from erpsync.connectors.http import (
    Counters,
    HttpClient,
    RateLimiter,
    RetryPolicy,
    TokenBucket,
    credential_key,
    shared_limiter,
)
from erpsync.connectors.merchantpro import mapping
from erpsync.connectors.merchantpro.customers import customer_from_shop
from erpsync.connectors.merchantpro.mapping import InventoryUnit, MappingError
from erpsync.connectors.merchantpro.writes import StockWrite, order_payload, product_payload, stock_payloads
from erpsync.core.models import Order, Page, Product, RowError
from erpsync.core.redact import register_basic_auth

log = logging.getLogger("erpsync.merchantpro")

SYSTEM = "merchantpro"
API = "/api/v2"
MAX_PAGE = 100
PACE_HEADROOM = 0.96  # in-process pacing at 96 % of the configured rate: 260 ms between calls at 4/s
STOCK_FIELDS = "id,type,sku,stock,inventory_enabled,variants"
# What the product sync reads of a product (``fields=``): what ``mapping.product_from_shop`` needs.
PRODUCT_SYNC_FIELDS = (
    "id,type,sku,ean,ext_ref,name,description,status,price_net,price_gross,old_price_net,old_price_gross,"
    "tax_id,tax_value,weight,variants,date_modified"
)
ORDER_STATUS_SHORTCUTS = ("in_process", "shipped", "delivered", "returned", "cancelled")
OrderStatusShortcut = Literal["in_process", "shipped", "delivered", "returned", "cancelled"]


@dataclass(frozen=True)
class Tax:
    id: int
    name: str
    value: Decimal


@dataclass(frozen=True)
class WriteResult:
    """The outcome of one record's write: ``error`` is None on success."""

    key: str
    error: ConnectorError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def order_path(order_id: str) -> str:
    """The URL path of one order; the id is a string and is kept whole."""
    if not isinstance(order_id, str) or not order_id:
        raise TypeError(f"order ids are non-empty strings, got {order_id!r}")
    return f"{API}/orders/{quote(order_id, safe='')}"


def local_date_since(since: datetime, *, timezone: str, overlap_days: int) -> date:
    """The date-only filter value that surely covers ``since``: its local date in the shop's zone, minus overlap."""
    if since.tzinfo is None:
        raise ValueError("since must be timezone-aware")
    return since.astimezone(ZoneInfo(timezone)).date() - timedelta(days=overlap_days)


def product_sync_fields(include_images: bool) -> str:
    """The ``fields=`` of the product sync's product reads (with ``images`` when images are synced)."""
    return PRODUCT_SYNC_FIELDS + (",images" if include_images else "")


def product_sync_filters(include_images: bool, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The filters of the product sync's product reads: the side-loads (variants, and images when they are
    synced), then ``extra`` (``ids``, ``sku``)."""
    filters: dict[str, Any] = {"include": "variants,images" if include_images else "variants"}
    filters.update(extra or {})
    return filters


class MerchantProClient:
    """A typed client of one MerchantPro shop.

    ``requests_per_second=None`` turns pacing off (simulators and benchmarks only); ``limiter`` replaces the
    process-local token bucket (e.g. by one shared through a Prefect global concurrency limit).
    """

    system = SYSTEM

    def __init__(
        self,
        url: str,
        api_key: str,
        api_secret: str,
        *,
        requests_per_second: float | None = 4.0,
        max_retries: int = 5,
        connect_timeout: float = 10.0,
        read_timeout: float = 30.0,
        customers_path: str = f"{API}/customers",
        timezone: str = "Europe/Bucharest",
        transport: httpx.BaseTransport | None = None,
        limiter: RateLimiter | None = None,
        retry: RetryPolicy | None = None,
        counters: Counters | None = None,
        page_size: int = MAX_PAGE,
    ) -> None:
        if not 1 <= page_size <= MAX_PAGE:
            raise ValueError(f"page_size must be 1..{MAX_PAGE}")
        register_basic_auth(api_key, api_secret)
        self.url = url.rstrip("/")
        self.customers_path = customers_path
        self.timezone = timezone
        self.page_size = page_size
        if limiter is None and requests_per_second is not None:
            # one bucket per API key, shared by every client of this process; calls spaced a little wider than the
            # rate: a thread that wakes late (tens of ms on a busy machine) otherwise lets the next calls land 5 in
            # one second at 4/s (seen by bench freshness: busiest window 5)
            rate = requests_per_second * PACE_HEADROOM
            limiter = shared_limiter(credential_key(SYSTEM, self.url, api_key), lambda: TokenBucket(rate))
        self.http = HttpClient(
            SYSTEM,
            self.url,
            auth=(api_key, api_secret),
            headers={"Content-Type": "application/json"},
            limiter=limiter,
            retry=retry or RetryPolicy(max_retries=max_retries),
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            transport=transport,
            counters=counters,
        )

    @property
    def counters(self) -> Counters:
        return self.http.counters

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> MerchantProClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ paging

    def iter_pages(self, path: str, params: Mapping[str, Any] | None = None) -> Iterator[list[dict[str, Any]]]:
        """Raw pages of a list endpoint, following ``meta.links.next`` until it is null.

        Tolerant of what the document leaves open: a next link keeps our parameters (see ``_relative``), a reply
        without ``links`` is paged by ``start``/``limit`` against ``meta.count.total``, and a bare JSON array is
        one whole page.
        """
        base: dict[str, Any] = dict(params or {})
        start = 0
        query: dict[str, Any] | None = {**base, "start": start, "limit": self.page_size}
        url = path
        seen: set[str] = set()
        previous_first: Any = None
        while True:
            body = self.http.request("GET", url, params=query)
            if isinstance(body, list):
                yield body
                return
            if not isinstance(body, dict) or not isinstance(body.get("data"), list):
                raise RetriableError(SYSTEM, f"GET {url}: reply is not a list envelope", method="GET", path=url)
            data: list[dict[str, Any]] = body["data"]
            first = data[0].get("id") if data and isinstance(data[0], dict) else None
            if query is not None and start > 0 and first is not None and first == previous_first:
                # A server that ignores `start` answers page one again: stop rather than read it forever.
                log.warning("%s: %s repeats its first page at start=%d; stopping", SYSTEM, path, start)
                return
            previous_first = first
            yield data
            if not data:
                return
            meta = body.get("meta") or {}
            links = meta.get("links")
            if isinstance(links, dict) and "next" in links:
                next_url = links.get("next")
                if not next_url:
                    return
                url = self._relative(str(next_url), base)
                if url in seen:  # a server that loops would otherwise keep us reading forever
                    log.warning("%s: next link repeats (%s); stopping", SYSTEM, url)
                    return
                seen.add(url)
                query = None
                continue
            total = (meta.get("count") or {}).get("total") if isinstance(meta.get("count"), dict) else None
            start += len(data)
            if isinstance(total, int):
                if start >= total:
                    return
            elif len(data) < self.page_size:  # no links and no count: a short page is the last one
                return
            url, query = path, {**base, "start": start, "limit": self.page_size}

    def _relative(self, next_url: str, params: Mapping[str, Any]) -> str:
        """The path and query of a next link, to be requested against our own base URL (and credentials).

        A parameter of ours that the link dropped (a date filter, ``include``, ``fields``) is put back: a next
        link that carries only ``start``/``limit`` must not widen the read or lose the side-loads.
        """
        parsed = httpx.URL(next_url)
        missing = {key: value for key, value in params.items() if key not in parsed.params}
        if missing:
            parsed = parsed.copy_merge_params(missing)
        return parsed.raw_path.decode()

    def _paged(self, path: str, params: Mapping[str, Any], parse: Any, key_of: Any) -> Iterator[Page[Any]]:
        for rows in self.iter_pages(path, params):
            page: Page[Any] = Page()
            for row in rows:
                try:
                    parsed = parse(row)
                except (MappingError, ValueError) as exc:
                    page.errors.append(RowError(key=key_of(row), error=str(exc), payload=row))
                    continue
                if isinstance(parsed, list):
                    page.items.extend(parsed)
                else:
                    page.items.append(parsed)
            yield page

    # ------------------------------------------------------------------ probe and taxonomy

    def check(self) -> str:
        """One authenticated read; returns a one-line description of the shop."""
        body = self.http.request("GET", f"{API}/products", params={"start": 0, "limit": 1, "fields": "id"})
        meta = body.get("meta") if isinstance(body, dict) else None
        count = meta.get("count") if isinstance(meta, dict) else None
        total = count.get("total") if isinstance(count, dict) else None
        return f"MerchantPro at {self.url}: authenticated, {total if total is not None else '?'} products"

    def taxes(self) -> list[Tax]:
        """The shop's VAT rates (``/taxonomy/taxes``)."""
        taxes = []
        for rows in self.iter_pages(f"{API}/taxonomy/taxes"):
            for row in rows:
                value = mapping.to_decimal(row.get("value"), "value")
                taxes.append(Tax(int(row["id"]), str(row.get("name") or ""), value or Decimal(0)))
        return taxes

    def iter_categories(self) -> Iterator[list[dict[str, Any]]]:
        return self.iter_pages(f"{API}/categories")

    def create_category(self, name: str, parent_id: int | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"name": name}
        if parent_id:
            body["parent_id"] = parent_id
        result: dict[str, Any] = self.http.request("POST", f"{API}/categories", json_body=body, record_key=name)
        return result

    # ------------------------------------------------------------------ products

    def iter_products(
        self,
        *,
        modified_since: date | None = None,
        filters: Mapping[str, Any] | None = None,
        fields: str | None = None,
        tax_rates: Mapping[int, Decimal] | None = None,
    ) -> Iterator[Page[Product]]:
        """Canonical products page by page, variants side-loaded; ``modified_since`` is a date-only filter;
        ``tax_rates`` (the shop's tax table, id -> VAT percent) gives the rate of a reply without ``tax_value``."""
        params: dict[str, Any] = {"include": "variants", **(filters or {})}
        if modified_since is not None:
            params["modified[gte]"] = modified_since.isoformat()
        if fields:
            params["fields"] = fields
        return self._paged(
            f"{API}/products", params, functools.partial(mapping.product_from_shop, tax_rates=tax_rates), _row_key
        )

    def iter_inventory(self, *, filters: Mapping[str, Any] | None = None) -> Iterator[Page[InventoryUnit]]:
        """The shop's stock snapshot: one unit per basic product or variant, read with a small ``fields=``."""
        params = {"include": "variants", "fields": STOCK_FIELDS, **(filters or {})}
        return self._paged(f"{API}/products", params, mapping.inventory_units, _row_key)

    def get_product(self, product_id: str) -> Product:
        row = self.http.request("GET", f"{API}/products/{quote(product_id, safe='')}", record_key=product_id)
        return mapping.product_from_shop(bare(row))

    def create_product(
        self,
        product: Product,
        *,
        tax_id: int | None,
        category_id: int | None = None,
        inferred: Mapping[str, Any] | None = None,
    ) -> Product:
        """Create a product (POST, never retried blindly); return it as the shop now has it. ``inferred``: fields
        the API reference does not name (the supplier's), sent with ``ignore_nonexistent_fields=1``."""
        payload = {**product_payload(product, tax_id=tax_id, category_id=category_id), **(inferred or {})}
        params = {"ignore_nonexistent_fields": 1} if inferred else None
        row = self.http.request("POST", f"{API}/products", params=params, json_body=payload, record_key=product.sku)
        return mapping.product_from_shop(bare(row))

    def update_product(
        self, product_id: str, patch: Mapping[str, Any], *, key: str, inferred: bool = False
    ) -> dict[str, Any]:
        """PATCH a product with a body from ``writes.shop_patch`` (or ``product_patch``); ``key`` names it in errors;
        ``inferred``: the body carries a field the reference does not name (``ignore_nonexistent_fields=1``)."""
        if not patch:
            raise ValueError(f"{key}: empty PATCH (an unchanged product must cost no call)")
        result: dict[str, Any] = self.http.request(
            "PATCH",
            f"{API}/products/{quote(product_id, safe='')}",
            params={"ignore_nonexistent_fields": 1} if inferred else None,
            json_body=dict(patch),
            record_key=key,
        )
        return result

    def set_stock(self, writes: Sequence[StockWrite]) -> list[WriteResult]:
        """Write absolute stock quantities: one PATCH per basic product, one per multi-variant parent.

        A refused write is reported for every SKU it carried; the others go on.
        """
        results: list[WriteResult] = []
        for product_id, body, group in stock_payloads(writes):
            key = group[0].sku if len(group) == 1 else f"product {product_id} ({len(group)} variants)"
            try:
                self.http.request(
                    "PATCH", f"{API}/products/{quote(product_id, safe='')}", json_body=body, record_key=key
                )
            except RecordError as error:
                results.extend(WriteResult(w.sku, error) for w in group)
            else:
                results.extend(WriteResult(w.sku) for w in group)
        return results

    def set_backorders(self, product_id: str, allow: bool, text: str | None, *, key: str) -> None:
        """Let a product be ordered out of stock (``allow_backorders``) with an availability text, or stop it.

        ``allow_backorders`` is a documented product field; ``availability_text`` is an *inference*, sent with
        ``ignore_nonexistent_fields=1`` so a shop without it still takes the backorder flag."""
        self.http.request(
            "PATCH",
            f"{API}/products/{quote(product_id, safe='')}",
            params={"ignore_nonexistent_fields": 1},
            json_body={"allow_backorders": allow, "availability_text": text},
            record_key=key,
        )

    def inventory_by_sku(self, sku: str) -> dict[str, Any] | None:
        """The inventory unit (basic product or variant) with this SKU, or None."""
        try:
            row: dict[str, Any] = self.http.request("GET", f"{API}/inventory/sku/{quote(sku, safe='')}", record_key=sku)
        except RecordError as error:
            if error.status == 404:
                return None
            raise
        return row

    # ------------------------------------------------------------------ orders

    def iter_orders(
        self,
        *,
        since: datetime | None = None,
        overlap_days: int = 1,
        date_filter: Literal["created", "modified"] = "created",
        filters: Mapping[str, Any] | None = None,
    ) -> Iterator[Page[Order]]:
        """Canonical orders with their lines; ``since`` becomes a date-only filter that overlaps the boundary.

        The caller de-duplicates: the overlap re-reads orders it has already seen.
        """
        params: dict[str, Any] = {"include": "line_items", **(filters or {})}
        if since is not None:
            day = local_date_since(since, timezone=self.timezone, overlap_days=overlap_days)
            params[f"{date_filter}[gte]"] = day.isoformat()
        return self._paged(f"{API}/orders", params, mapping.order_from_shop, _row_key)

    def iter_orders_by_id(self, order_ids: Sequence[str]) -> Iterator[Page[Order]]:
        """Orders by id, 100 ids a request (the ``ids`` filter)."""
        ids = list(dict.fromkeys(order_ids))
        for start in range(0, len(ids), self.page_size):
            chunk = ids[start : start + self.page_size]
            yield from self._paged(
                f"{API}/orders", {"include": "line_items", "ids": ",".join(chunk)}, mapping.order_from_shop, _row_key
            )

    def get_order_raw(self, order_id: str) -> dict[str, Any]:
        return bare(self.http.request("GET", order_path(order_id), record_key=order_id))

    def get_order(self, order_id: str) -> Order:
        return mapping.order_from_shop(self.get_order_raw(order_id))

    def create_order(self, order: Order, **options: Any) -> str:
        """Create an order from another channel (POST, never retried blindly); return the shop's string id."""
        payload = order_payload(order, **options)
        # The buyer's company fields are named as public client code names them; a shop that does not know a
        # name must still take the order rather than refuse it whole.
        row = bare(
            self.http.request(
                "POST",
                f"{API}/orders",
                params={"ignore_nonexistent_fields": 1},
                json_body=payload,
                record_key=order.reference or "order",
            )
        )
        new_id = mapping.shop_id(row.get("id"))
        if new_id is None:
            raise BadRequestError(SYSTEM, "POST /orders: the reply carries no order id")
        return new_id

    def patch_order(self, order_id: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        """PATCH order fields; line items, when sent, must be all of them (the API replaces the list)."""
        result: dict[str, Any] = self.http.request(
            "PATCH", order_path(order_id), json_body=dict(fields), record_key=order_id
        )
        return result

    def set_order_status(self, order_id: str, status: OrderStatusShortcut) -> dict[str, Any] | None:
        """One of the status shortcuts (no body): in_process, shipped, delivered, returned, cancelled."""
        if status not in ORDER_STATUS_SHORTCUTS:
            raise ValueError(f"unknown order status shortcut {status!r}")
        result: dict[str, Any] | None = self.http.request(
            "PATCH", f"{order_path(order_id)}/{status}", record_key=order_id
        )
        return result

    def set_awb(self, order_id: str, awb: str) -> dict[str, Any]:
        return self.patch_order(order_id, {"shipping_awb": awb})

    def set_order_meta(self, order_id: str, meta: Mapping[str, str]) -> dict[str, Any]:
        """PATCH the order's ``meta_fields`` as a whole (the object sent replaces the order's: pass the fields it
        has too — *inference*, as the simulator does)."""
        return self.patch_order(order_id, {"meta_fields": dict(meta)})

    def create_invoice(self, order_id: str) -> dict[str, Any] | None:
        result: dict[str, Any] | None = self.http.request(
            "PATCH", f"{order_path(order_id)}/create_invoice", record_key=order_id
        )
        return result

    def add_order_tag(self, order_id: str, name: str) -> None:
        self.http.request("POST", f"{order_path(order_id)}/tags", json_body={"name": name}, record_key=order_id)

    # ------------------------------------------------------------------ customers

    def iter_customers(self, filters: Mapping[str, Any] | None = None) -> Iterator[list[dict[str, Any]]]:
        """Raw customer pages from the configured path (the reference could not confirm it)."""
        return self.iter_pages(self.customers_path, filters)

    def iter_customer_accounts(self, *, since: datetime | None = None, overlap_days: int = 1) -> Iterator[Page[Any]]:
        """Customer accounts (``Page[ShopCustomer]``) changed since a UTC time (date-only filter, overlapping the
        boundary: the caller de-duplicates), oldest id first; every account when ``since`` is None."""
        params: dict[str, Any] = {}
        if since is not None:
            day = local_date_since(since, timezone=self.timezone, overlap_days=overlap_days)
            params["modified[gte]"] = day.isoformat()
        return self._paged(self.customers_path, params, customer_from_shop, _row_key)

    def get_customer(self, customer_id: str) -> dict[str, Any]:
        row: dict[str, Any] = self.http.request(
            "GET", f"{self.customers_path}/{quote(customer_id, safe='')}", record_key=customer_id
        )
        return row


def bare(reply: Any) -> dict[str, Any]:
    """A single resource as the bare object the document describes (a ``{"data": {...}}`` wrapper is undone)."""
    if isinstance(reply, dict) and set(reply) == {"data"} and isinstance(reply["data"], dict):
        return reply["data"]
    if not isinstance(reply, dict):
        raise BadRequestError(SYSTEM, f"expected a JSON object, got {type(reply).__name__}")
    return reply


def _row_key(row: Mapping[str, Any]) -> str:
    for field in ("sku", "id"):
        value = row.get(field)
        if value not in (None, ""):
            return str(value)
    return "?"
