"""The MerchantPro client at transport level, against a hand-written fake that is not our simulator.

The fake answers the way the reference document describes, with details of its own (next links on another
host, ids as numbers or strings, a 100-row cap): the client must follow the document, not our simulator.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
import pytest

from erpsync.connectors.errors import AuthError, BadRequestError, RecordError
from erpsync.connectors.http import RetryPolicy
from erpsync.connectors.merchantpro import MerchantProClient, StockWrite

KEY, SECRET = "fake-key", "fake-secret-123"


class FakeShop:
    def __init__(self, n_products: int = 0, n_orders: int = 0) -> None:
        self.products = [
            {"id": i, "type": "basic", "sku": f"P{i:04d}", "stock": i % 7, "name": f"P {i}"}
            for i in range(1, n_products + 1)
        ]
        self.orders = [
            {
                "id": str(42209900 + i),
                "sys_id": i,
                "shipping_status": "awaiting",
                "customer_email": f"c{i}@x.ro",
                "line_items": [],
            }
            for i in range(1, n_orders + 1)
        ]
        if n_orders:
            self.orders[0]["id"] = "95750870.3"
        self.requests: list[httpx.Request] = []
        self.patches: list[tuple[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        expected = "Basic " + base64.b64encode(f"{KEY}:{SECRET}".encode()).decode()
        if request.headers.get("Authorization") != expected:
            return httpx.Response(401, json={"error": {"name": "unauthorized", "message": "Invalid credentials"}})
        path = unquote(request.url.path)
        query = {k: v[0] for k, v in parse_qs(urlsplit(str(request.url)).query).items()}
        if request.method == "GET" and path in ("/api/v2/products", "/api/v2/orders"):
            rows = self.products if path.endswith("products") else self.orders
            unknown = set(query) - {"start", "limit", "fields", "include", "created[gte]", "modified[gte]", "ids"}
            if unknown:
                name = sorted(unknown)[0]
                return httpx.Response(
                    400, json={"error": {"name": "undefined_filter", "message": f"No such filter `{name}` defined"}}
                )
            if "ids" in query:
                wanted = set(query["ids"].split(","))
                rows = [r for r in rows if str(r["id"]) in wanted]
            start, limit = int(query.get("start", 0)), min(int(query.get("limit", 20)), 100)
            page = rows[start : start + limit]
            more = start + limit < len(rows)
            nxt = f"https://cdn.other-host.ro{path}?start={start + limit}&limit={limit}" if more else None
            return httpx.Response(
                200, json={"data": page, "meta": {"count": {"total": len(rows)}, "links": {"next": nxt}}}
            )
        if path.startswith("/api/v2/orders/"):
            order_id = path.removeprefix("/api/v2/orders/")
            for order in self.orders:
                if order["id"] == order_id:
                    return httpx.Response(200, json=order)
            if order_id.endswith("/shipped") and request.method == "PATCH":
                return httpx.Response(200, json={"id": order_id.removesuffix("/shipped")})
            return httpx.Response(404, json={"error": {"name": "not_found", "message": "No such order"}})
        if request.method == "PATCH" and path.startswith("/api/v2/products/"):
            body = json.loads(request.content)
            self.patches.append((path.rsplit("/", 1)[1], body))
            if path.endswith("/666"):
                return httpx.Response(400, json={"error": {"name": "invalid_field", "message": "stock on parent"}})
            return httpx.Response(200, json={"id": int(path.rsplit("/", 1)[1])})
        return httpx.Response(404, json={"error": {"name": "not_found", "message": path}})


def client_for(shop: FakeShop, **kwargs: Any) -> MerchantProClient:
    return MerchantProClient(
        "https://www.example.ro",
        kwargs.pop("key", KEY),
        kwargs.pop("secret", SECRET),
        transport=httpx.MockTransport(shop),
        requests_per_second=None,
        retry=RetryPolicy(max_retries=1, backoff_base=0.001),
        **kwargs,
    )


def test_pages_through_250_products_following_next_links() -> None:
    shop = FakeShop(n_products=250)
    client = client_for(shop)
    pages = list(client.iter_products())
    assert [len(p.items) for p in pages] == [100, 100, 50]
    assert [p.items[0].sku for p in pages] == ["P0001", "P0101", "P0201"]
    assert all(not p.errors for p in pages)
    # every request stayed on our own host, with our credentials, and asked for at most 100
    assert {r.url.host for r in shop.requests} == {"www.example.ro"}
    assert all(int(r.url.params.get("limit", "100")) <= 100 for r in shop.requests)
    assert client.counters.reads == 3


def test_pages_through_orders_and_keeps_suffixed_ids_whole() -> None:
    shop = FakeShop(n_orders=260)
    client = client_for(shop)
    since = datetime(2026, 11, 20, 22, 30, tzinfo=UTC)  # 00:30 on the 21st in Bucharest
    orders = [o for page in client.iter_orders(since=since, overlap_days=1) for o in page.items]
    assert len(orders) == 260
    assert orders[0].shop_id == "95750870.3"
    # the fake's next links carry only start/limit: the client puts its filter and side-load back on every page
    assert len(shop.requests) == 3
    assert all(r.url.params.get("created[gte]") == "2026-11-20" for r in shop.requests)
    assert all(r.url.params.get("include") == "line_items" for r in shop.requests)
    assert [r.url.params["start"] for r in shop.requests] == ["0", "100", "200"]
    order = client.get_order("95750870.3")
    assert order.shop_id == "95750870.3"
    assert shop.requests[-1].url.path == "/api/v2/orders/95750870.3"


def test_status_shortcut_url_keeps_the_order_id_whole() -> None:
    shop = FakeShop(n_orders=1)
    client = client_for(shop)
    client.set_order_status("95750870.3", "shipped")
    assert shop.requests[-1].method == "PATCH"
    assert shop.requests[-1].url.path == "/api/v2/orders/95750870.3/shipped"
    with pytest.raises(TypeError):
        client.get_order(95750870.3)  # type: ignore[arg-type]


def test_variant_stock_goes_to_the_parent_as_one_patch_and_a_refusal_is_per_record() -> None:
    shop = FakeShop()
    client = client_for(shop)
    results = client.set_stock(
        [
            StockWrite("TS-S", "12", "1201", Decimal(4)),
            StockWrite("TS-M", "12", "1202", Decimal(0)),
            StockWrite("BAD", "666", None, Decimal(1)),
            StockWrite("B1", "4", None, Decimal("7")),
        ]
    )
    assert shop.patches == [
        ("12", {"variants": [{"id": 1201, "stock": 4}, {"id": 1202, "stock": 0}]}),
        ("666", {"stock": 1}),
        ("4", {"stock": 7}),
    ]
    assert [(r.key, r.ok) for r in results] == [("TS-S", True), ("TS-M", True), ("BAD", False), ("B1", True)]
    assert isinstance(results[2].error, RecordError)
    assert client.counters.writes == 3


def test_bad_credentials_are_fatal_and_name_the_system() -> None:
    client = client_for(FakeShop(n_products=1), secret="wrong-secret")
    with pytest.raises(AuthError) as info:
        client.check()
    assert str(info.value).startswith("merchantpro GET /api/v2/products")
    assert "wrong-secret" not in str(info.value)


def test_unknown_filter_is_a_fatal_bad_request() -> None:
    client = client_for(FakeShop(n_products=1))
    with pytest.raises(BadRequestError, match="No such filter `colour` defined"):
        list(client.iter_products(filters={"colour": "red"}))


def test_date_filter_is_date_only() -> None:
    shop = FakeShop(n_products=3)
    client = client_for(shop)
    list(client.iter_products(modified_since=date(2026, 11, 1)))
    assert shop.requests[0].url.params["modified[gte]"] == "2026-11-01"


def test_rows_that_do_not_map_become_row_errors_and_the_rest_is_read() -> None:
    shop = FakeShop(n_products=5)
    shop.products[2]["sku"] = ""
    shop.products[3]["stock"] = "many"
    client = client_for(shop)
    pages = list(client.iter_inventory())
    assert [u.sku for u in pages[0].items] == ["P0001", "P0002", "P0005"]
    assert {e.key for e in pages[0].errors} == {"3", "P0004"}


def test_paging_without_links_falls_back_to_count_total() -> None:
    rows = [{"id": i, "type": "basic", "sku": f"N{i}", "stock": 1} for i in range(1, 231)]
    seen: list[dict[str, str]] = []

    def no_links(request: httpx.Request) -> httpx.Response:
        params = dict(request.url.params)
        seen.append(params)
        start, limit = int(params["start"]), int(params["limit"])
        return httpx.Response(200, json={"data": rows[start : start + limit], "meta": {"count": {"total": 230}}})

    client = MerchantProClient(
        "https://www.example.ro", KEY, SECRET, transport=httpx.MockTransport(no_links), requests_per_second=None
    )
    assert sum(len(p.items) for p in client.iter_products()) == 230
    assert [p["start"] for p in seen] == ["0", "100", "200"]


def test_a_bare_array_is_one_page_and_wrapped_single_objects_are_unwrapped() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/taxonomy/taxes"):
            taxes = [{"id": 1, "name": "TVA 19%", "value": 19}, {"id": 2, "name": "TVA 9%", "value": 9}]
            return httpx.Response(200, json=taxes)
        return httpx.Response(200, json={"data": {"id": "7", "line_items": [], "customer_email": "a@b.ro"}})

    client = MerchantProClient(
        "https://www.example.ro", KEY, SECRET, transport=httpx.MockTransport(handler), requests_per_second=None
    )
    assert [(t.id, t.value) for t in client.taxes()] == [(1, Decimal(19)), (2, Decimal(9))]
    assert client.get_order("7").shop_id == "7"


def test_check_describes_a_shop_whatever_the_list_reply_carries() -> None:
    replies = iter(
        [
            {"data": [{"id": 1}], "meta": {"count": {"total": 42}}},
            {"data": [{"id": 1}], "meta": {"count": None}},
            [{"id": 1}],
        ]
    )
    client = MerchantProClient(
        "https://www.example.ro",
        KEY,
        SECRET,
        requests_per_second=None,
        transport=httpx.MockTransport(lambda _request: httpx.Response(200, json=next(replies))),
    )
    assert client.check().endswith("authenticated, 42 products")
    assert client.check().endswith("authenticated, ? products")
    assert client.check().endswith("authenticated, ? products")


def test_paging_without_links_or_count_reads_until_a_short_page() -> None:
    rows = [{"id": i, "type": "basic", "sku": f"N{i}", "stock": 1} for i in range(1, 251)]
    starts: list[str] = []

    def bare(request: httpx.Request) -> httpx.Response:
        start, limit = int(request.url.params["start"]), int(request.url.params["limit"])
        starts.append(str(start))
        return httpx.Response(200, json={"data": rows[start : start + limit]})

    client = MerchantProClient(
        "https://www.example.ro", KEY, SECRET, transport=httpx.MockTransport(bare), requests_per_second=None
    )
    assert sum(len(p.items) for p in client.iter_products()) == 250
    assert starts == ["0", "100", "200"]


def test_a_server_ignoring_start_is_not_read_forever() -> None:
    rows = [{"id": i, "type": "basic", "sku": f"N{i}", "stock": 1} for i in range(1, 101)]
    calls = 0

    def stuck(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(200, json={"data": rows})

    client = MerchantProClient(
        "https://www.example.ro", KEY, SECRET, transport=httpx.MockTransport(stuck), requests_per_second=None
    )
    assert sum(len(p.items) for p in client.iter_products()) == 100  # page one; its repeat is noticed, not yielded
    assert calls == 2
