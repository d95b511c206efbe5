"""The MerchantPro simulator follows the reference: envelope, paging, auth, pacing, the multi-variant rule, faults."""

from __future__ import annotations

import asyncio
import copy
import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from erpsync.testing._catalogue import BUCHAREST, gross_from_net
from erpsync.testing.merchantpro import Faults, MerchantProSimulator
from erpsync.testing.server import InProcessTransport, serve_in_thread

KEY, SECRET = "k-test", "s-test"
AUTH = (KEY, SECRET)
BASE = "http://shop.test"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Api:
    """A synchronous face over an `httpx.AsyncClient` talking to the app in-process."""

    def __init__(self, app: Any, *, auth: tuple[str, str] | None = AUTH, transport: type = httpx.ASGITransport):
        self.loop = asyncio.new_event_loop()
        self.client = httpx.AsyncClient(transport=transport(app=app), base_url=BASE, auth=auth)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.loop.run_until_complete(self.client.request(method, path, **kwargs))

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("PATCH", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def close(self) -> None:
        self.loop.run_until_complete(self.client.aclose())
        self.loop.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sim(clock: FakeClock) -> MerchantProSimulator:
    shop = MerchantProSimulator(api_key=KEY, api_secret=SECRET, clock=clock)
    shop.seed_catalogue(250, seed=1)
    shop.seed_orders(40, seed=1)
    return shop


@pytest.fixture
def api(sim: MerchantProSimulator) -> Iterator[Api]:
    client = Api(sim)
    yield client
    client.close()


def first_of_type(sim: MerchantProSimulator, ptype: str) -> dict[str, Any]:
    return next(p for p in sim.products.values() if p["type"] == ptype)


def error_name(response: httpx.Response) -> str:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"name", "message"}
    return str(body["error"]["name"])


# --- lists --------------------------------------------------------------------------------------------------


def test_paging_250_products_by_100_follows_next_links_to_null(api: Api) -> None:
    url: str | None = f"{BASE}/api/v2/products?limit=100&status=active,inactive"
    pages = []
    while url is not None:
        response = api.get(url)
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        body = response.json()
        pages.append(body)
        url = body["meta"]["links"]["next"]
    assert [len(page["data"]) for page in pages] == [100, 100, 50]
    assert [page["meta"]["count"] for page in pages] == [
        {"total": 250, "start": 0, "limit": 100},
        {"total": 250, "start": 100, "limit": 100},
        {"total": 250, "start": 200, "limit": 100},
    ]
    ids = [p["id"] for page in pages for p in page["data"]]
    assert ids == sorted(set(ids)) and len(ids) == 250
    links = pages[1]["meta"]["links"]
    assert links["next"] == f"{BASE}/api/v2/products?status=active,inactive&start=200&limit=100"
    assert links["prev"] == f"{BASE}/api/v2/products?status=active,inactive&start=0&limit=100"
    assert pages[0]["meta"]["links"]["prev"] is None
    assert links["self"].startswith(f"{BASE}/api/v2/products?")


def test_limit_defaults_to_20_is_clamped_to_100_and_must_be_positive(api: Api) -> None:
    assert api.get("/api/v2/products").json()["meta"]["count"]["limit"] == 20
    clamped = api.get("/api/v2/products", params={"limit": 500}).json()
    assert clamped["meta"]["count"]["limit"] == 100 and len(clamped["data"]) == 100
    assert "limit=100" in clamped["meta"]["links"]["next"]
    bad = api.get("/api/v2/products", params={"limit": 0})
    assert bad.status_code == 400 and error_name(bad) == "invalid_parameter"


def test_fields_select_and_include_side_loads(api: Api, sim: MerchantProSimulator) -> None:
    slim = api.get("/api/v2/products", params={"fields": "id,sku,stock", "limit": 100}).json()["data"]
    assert all(set(p) == {"id", "sku", "stock"} for p in slim)

    multi = first_of_type(sim, "multi_variant")
    params = {"ids": str(multi["id"])}
    plain = api.get("/api/v2/products", params=params).json()["data"][0]
    assert "variants" not in plain and "images" not in plain and plain["variant_attributes"]
    loaded = api.get("/api/v2/products", params={**params, "include": "variants,images"}).json()["data"][0]
    assert [v["id"] for v in loaded["variants"]] == [v["id"] for v in multi["variants"]]
    assert "images" in loaded
    snapshot = api.get("/api/v2/products", params={**params, "fields": "id,sku,stock,variants"}).json()["data"][0]
    assert set(snapshot) == {"id", "sku", "stock", "variants"} and snapshot["stock"] is None

    orders = api.get("/api/v2/orders").json()["data"]
    assert orders and all("line_items" not in o for o in orders)
    with_lines = api.get("/api/v2/orders", params={"include": "line_items"}).json()["data"]
    assert all(o["line_items"] and isinstance(o["line_items"][0]["product_stock"], str) for o in with_lines)


def test_single_resources_are_bare_objects(api: Api, sim: MerchantProSimulator) -> None:
    one = api.get("/api/v2/products/1")
    assert one.status_code == 200 and one.json()["id"] == 1 and "data" not in one.json()
    created = api.post("/api/v2/products", json={"name": "Cană", "sku": "NEW-1", "price_gross": 11.9, "stock": 4})
    assert created.status_code == 201
    body = created.json()
    assert body["sku"] == "NEW-1" and body["price_net"] == 10.0 and body["tax_value"] == 19
    assert body["date_created"] == body["date_modified"] and body["date_created"][-6:] in ("+02:00", "+03:00")
    patched = api.patch(f"/api/v2/products/{body['id']}", json={"price_net": 20})
    assert patched.status_code == 200 and patched.json()["price_gross"] == gross_from_net(20, 19) == 23.8
    deleted = api.request("DELETE", f"/api/v2/products/{body['id']}")
    assert deleted.status_code == 204 and deleted.content == b""
    gone = api.get(f"/api/v2/products/{body['id']}")
    assert gone.status_code == 404 and error_name(gone) == "not_found"
    assert "NEW-1" not in {p["sku"] for p in sim.products.values()}


def test_unknown_path_is_404_and_wrong_method_is_405(api: Api) -> None:
    missing = api.get("/api/v2/nothing")
    assert missing.status_code == 404 and error_name(missing) == "not_found"
    wrong = api.request("DELETE", "/api/v2/inventory/sku/SKU-000001")
    assert wrong.status_code == 405 and error_name(wrong) == "method_not_allowed" and wrong.headers["allow"] == "GET"
    assert api.request("PUT", "/api/v2/products/1").status_code == 405


def test_an_undefined_filter_is_refused(api: Api) -> None:
    response = api.get("/api/v2/products", params={"foo": "1"})
    assert response.status_code == 400
    assert response.json() == {"error": {"name": "undefined_filter", "message": "No such filter `foo` defined"}}
    assert api.get("/api/v2/orders", params={"customer_id": "3"}).status_code == 400


def test_date_filters_take_dates_only_and_compare_calendar_days(api: Api, sim: MerchantProSimulator) -> None:
    sim.now = lambda: datetime(2026, 11, 20, 23, 30, tzinfo=BUCHAREST)
    assert api.patch("/api/v2/products/2", json={"name": "Modificat"}).status_code == 200
    for value in ("2026-11-20T00:00:00", "2026-11-20 10:00", "20-11-2026", "2026-13-01"):
        response = api.get("/api/v2/products", params={"modified[gte]": value})
        assert response.status_code == 400 and error_name(response) == "invalid_filter_value", value

    def ids(**params: str) -> list[int]:
        return [p["id"] for p in api.get("/api/v2/products", params=params).json()["data"]]

    assert ids(**{"modified[gte]": "2026-11-20"}) == [2]
    assert ids(**{"modified[gt]": "2026-11-19"}) == [2]
    assert ids(**{"modified[gt]": "2026-11-20"}) == []  # date-only: `gt` skips the whole day
    assert 2 not in ids(**{"modified[lt]": "2026-11-20"})
    bad = api.get("/api/v2/orders", params={"created_after": "2026-11-01T10:00:00"})
    assert bad.status_code == 400


# --- auth and pacing ------------------------------------------------------------------------------------------


def test_bad_credentials_give_401_then_403_lockout_until_unlocked(sim: MerchantProSimulator) -> None:
    anonymous = Api(sim, auth=None)
    wrong = Api(sim, auth=(KEY, "wrong"))
    good = Api(sim)
    try:
        response = anonymous.get("/api/v2/products")
        assert response.status_code == 401 and error_name(response) == "unauthorized"
        for _ in range(4):
            assert wrong.get("/api/v2/products").status_code == 401
        assert good.get("/api/v2/products").status_code == 200  # a good request resets the count
        statuses = [wrong.get("/api/v2/products").status_code for _ in range(6)]
        assert statuses == [401] * 5 + [403]
        locked = good.get("/api/v2/products")
        assert locked.status_code == 403 and error_name(locked) == "forbidden"
        sim.unlock(KEY)
        assert good.get("/api/v2/products").status_code == 200
        assert sim.stats.auth_failures == 12
    finally:
        for client in (anonymous, wrong, good):
            client.close()


def test_rate_limit_gives_429_past_the_bucket_and_refills(sim: MerchantProSimulator, clock: FakeClock) -> None:
    sim.set_rate(2)
    api = Api(sim)
    try:
        statuses = [api.get("/api/v2/taxonomy/taxes").status_code for _ in range(4)]
        assert statuses == [200, 200, 429, 429]
        limited = api.get("/api/v2/taxonomy/taxes")
        assert error_name(limited) == "too_many_requests" and "retry-after" not in limited.headers
        clock.now += 0.5  # one token back at 2/s
        assert [api.get("/api/v2/taxonomy/taxes").status_code for _ in range(2)] == [200, 429]
        sim.retry_after = 2
        assert api.get("/api/v2/taxonomy/taxes").headers["retry-after"] == "2"
        assert sim.stats.rate_limited == 5
    finally:
        api.close()


# --- products: the multi-variant rule, variants, validation -------------------------------------------------


def test_price_or_stock_on_a_multi_variant_parent_is_400_and_changes_nothing(
    api: Api, sim: MerchantProSimulator
) -> None:
    multi = first_of_type(sim, "multi_variant")
    before = copy.deepcopy(multi)
    for field in ("stock", "price_net", "price_gross", "old_price_gross", "weight"):
        response = api.patch(f"/api/v2/products/{multi['id']}", json={"name": "Nou", field: 5})
        assert response.status_code == 400 and error_name(response) == "invalid_field", field
    assert sim.products[multi["id"]] == before
    created = api.post(
        "/api/v2/products",
        json={"type": "multi_variant", "name": "X", "sku": "MV-1", "price_gross": 9, "variants": [{"sku": "MV-1-S"}]},
    )
    assert created.status_code == 400 and "MV-1" not in {p["sku"] for p in sim.products.values()}
    assert sim.stats.applied_writes == 0


def test_variants_are_merged_by_id(api: Api, sim: MerchantProSimulator) -> None:
    multi = first_of_type(sim, "multi_variant")
    first, *others = multi["variants"]
    response = api.patch(f"/api/v2/products/{multi['id']}", json={"variants": [{"id": first["id"], "stock": 41}]})
    assert response.status_code == 200
    after = sim.products[multi["id"]]
    assert after["variants"][0] == {**first, "stock": 41}
    assert after["variants"][1:] == others
    assert after["date_modified"] > multi["date_modified"]
    unit = api.get(f"/api/v2/inventory/{first['id']}").json()
    assert unit["stock"] == 41 and unit["product_id"] == multi["id"] and unit["sku"] == first["sku"]
    unknown = api.patch(f"/api/v2/products/{multi['id']}", json={"variants": [{"id": 10**9, "stock": 1}]})
    assert unknown.status_code == 400 and error_name(unknown) == "invalid_variant"
    assert sim.products[multi["id"]] == after


def test_product_write_validation(api: Api, sim: MerchantProSimulator) -> None:
    basic = first_of_type(sim, "basic")
    path = f"/api/v2/products/{basic['id']}"
    for payload in ({"stock": -1}, {"stock": "5"}, {"stock": True}, {"inventory_enabled": True}, {"tax_id": 99}):
        response = api.patch(path, json=payload)
        assert response.status_code == 400 and error_name(response) == "invalid_value", payload
    unknown = api.patch(path, json={"stock": 3, "colour": "red"})
    assert unknown.status_code == 400 and error_name(unknown) == "undefined_field"
    assert sim.products[basic["id"]]["stock"] == basic["stock"]
    ignored = api.patch(path, params={"ignore_nonexistent_fields": 1}, json={"stock": 3, "colour": "red"})
    assert ignored.status_code == 200 and ignored.json()["stock"] == 3 and "colour" not in ignored.json()
    taken = api.patch(path, json={"sku": first_of_type(sim, "multi_variant")["variants"][0]["sku"]})
    assert taken.status_code == 400 and error_name(taken) == "duplicate_sku"
    assert api.get("/api/v2/products", params={"sku": basic["sku"]}).json()["data"][0]["id"] == basic["id"]


def test_inventory_look_ups(api: Api, sim: MerchantProSimulator) -> None:
    basic = next(p for p in sim.products.values() if p["type"] == "basic" and p["ean"])
    by_ean = api.get(f"/api/v2/inventory/ean/{basic['ean']}").json()
    by_sku = api.get(f"/api/v2/inventory/sku/{basic['sku']}").json()
    assert by_ean == by_sku and by_sku["id"] == basic["id"] and by_sku["variant_id"] is None
    multi = first_of_type(sim, "multi_variant")
    assert api.get(f"/api/v2/inventory/{multi['id']}").status_code == 404
    assert api.get("/api/v2/inventory/sku/NOPE").status_code == 404


# --- orders ---------------------------------------------------------------------------------------------------


def test_the_suffixed_order_id_routes_whole(api: Api, sim: MerchantProSimulator) -> None:
    suffixed = [oid for oid in sim.orders if "." in oid]
    assert len(suffixed) == 1 and suffixed[0].endswith(".3")
    oid = suffixed[0]
    assert all(isinstance(o["id"], str) and isinstance(o["sys_id"], int) for o in sim.orders.values())
    got = api.get(f"/api/v2/orders/{oid}")
    assert got.status_code == 200 and got.json()["id"] == oid
    patched = api.patch(f"/api/v2/orders/{oid}", json={"shipping_awb": "1234567890"})
    assert patched.status_code == 200 and sim.orders[oid]["shipping_awb"] == "1234567890"
    shipped = api.patch(f"/api/v2/orders/{oid}/shipped")
    assert shipped.status_code == 200 and shipped.json()["shipping_status"] == "shipped"
    invoiced = api.patch(f"/api/v2/orders/{oid}/create_invoice")
    assert invoiced.status_code == 200 and invoiced.json()["invoice_number"]
    assert api.patch(f"/api/v2/orders/{oid}/create_invoice").status_code == 400
    tagged = api.post(f"/api/v2/orders/{oid}/tags", json={"name": "erp"})
    assert tagged.status_code == 201 and [t["name"] for t in tagged.json()["tags"]] == ["erp"]
    base = oid.split(".")[0]
    assert api.get(f"/api/v2/orders/{base}").status_code == 404
    listed = api.get("/api/v2/orders", params={"ids": f"{oid},{base}"}).json()["data"]
    assert [o["id"] for o in listed] == [oid]


def test_order_list_filters_and_sort(api: Api, sim: MerchantProSimulator) -> None:
    newest = api.get("/api/v2/orders", params={"sort": "date_created.desc", "limit": 100}).json()["data"]
    created = [datetime.fromisoformat(o["date_created"]) for o in newest]
    assert created == sorted(created, reverse=True) and len(newest) == 40
    delivered = api.get("/api/v2/orders", params={"shipping_status": "delivered", "limit": 100}).json()
    expected = sum(o["shipping_status"] == "delivered" for o in sim.orders.values())
    assert delivered["meta"]["count"]["total"] == expected > 0
    assert any(o["billing_type"] == "company" and o["billing_fiscal_code"] for o in sim.orders.values())
    day = newest[-1]["date_created"][:10]
    after = api.get("/api/v2/orders", params={"created_after": day, "limit": 100}).json()["meta"]["count"]["total"]
    assert after == sum(o["date_created"][:10] >= day for o in sim.orders.values())


def test_post_order_returns_the_bare_order_and_lowers_stock(api: Api, sim: MerchantProSimulator) -> None:
    basic = first_of_type(sim, "basic")
    multi = first_of_type(sim, "multi_variant")
    variant = multi["variants"][0]
    payload = {
        "payment_status": "awaiting",
        "payment_method_code": "cash_delivery",
        "shipping_status": "awaiting",
        "shipping_method_id": 1,
        "shipping_amount": 15.99,
        "customer_email": "ion.popescu@example.ro",
        "billing_type": "company",
        "billing_name": "Ion Popescu",
        "billing_company": "Alfa SRL",
        "billing_fiscal_code": "RO123456",
        "billing_reg_no": "J40/123/2020",
        "shipping_as_billing": True,
        "line_items": [
            {"product_id": basic["id"], "quantity": 2, "unit_price_gross": 119.0},
            {"product_sku": variant["sku"], "quantity": 1},
        ],
    }
    response = api.post("/api/v2/orders", json=payload)
    assert response.status_code == 201
    order = response.json()
    assert isinstance(order["id"], str) and order["id"] in sim.orders and "data" not in order
    assert order["subtotal_including_tax"] == round(238.0 + variant["price_gross"], 2)
    assert order["total_amount"] == round(order["subtotal_including_tax"] + 15.99, 2)
    assert order["customer_id"] in sim.customers and order["source_type"] == "api"
    assert sim.products[basic["id"]]["stock"] == basic["stock"] - 2
    assert sim.products[multi["id"]]["variants"][0]["stock"] == variant["stock"] - 1
    line = order["line_items"][0]
    assert line["product_stock"] == f"{basic['stock'] - 2:.3f}" and line["unit_price_net"] == 100.0

    keep = {"id": order["line_items"][1]["id"], "quantity": 3}
    patched = api.patch(f"/api/v2/orders/{order['id']}", json={"line_items": [keep]}).json()
    assert [(li["id"], li["quantity"]) for li in patched["line_items"]] == [(keep["id"], 3)]
    bad = api.post("/api/v2/orders", json={"line_items": [{"product_id": multi["id"], "quantity": 1}]})
    assert bad.status_code == 400


# --- faults ---------------------------------------------------------------------------------------------------


def test_fault_injection_is_deterministic_per_seed() -> None:
    def sequence(seed: int) -> list[int]:
        shop = MerchantProSimulator(faults=Faults(error_500=0.3, error_429=0.2, seed=seed))
        client = Api(shop, auth=("demo-key", "demo-secret"))
        try:
            return [client.get("/api/v2/taxonomy/taxes").status_code for _ in range(40)]
        finally:
            client.close()

    first = sequence(7)
    assert first == sequence(7)
    assert first != sequence(8)
    assert {200, 429, 500} == set(first)


def test_only_methods_limits_faults_and_a_faulted_write_changes_nothing(api: Api, sim: MerchantProSimulator) -> None:
    sim.set_faults(Faults(error_500=1.0, only_methods=frozenset({"patch"})))
    assert api.get("/api/v2/products/1").status_code == 200
    basic = first_of_type(sim, "basic")
    failed = api.patch(f"/api/v2/products/{basic['id']}", json={"stock": 49})
    assert failed.status_code == 500 and error_name(failed) == "internal_error"
    assert sim.products[basic["id"]] == basic
    assert sim.stats.faults["error_500"] == 1 and sim.stats.applied_writes == 0


def test_reset_surfaces_as_a_transport_error_in_process(sim: MerchantProSimulator) -> None:
    sim.set_faults(Faults(reset=1.0))
    plain, wire_like = Api(sim), Api(sim, transport=InProcessTransport)
    try:
        with pytest.raises(ConnectionResetError):
            plain.get("/api/v2/products")
        with pytest.raises(httpx.ReadError):
            wire_like.get("/api/v2/products")
        basic = first_of_type(sim, "basic")
        with pytest.raises(httpx.ReadError):
            wire_like.patch(f"/api/v2/products/{basic['id']}", json={"stock": 48})
        assert sim.products[basic["id"]]["stock"] == basic["stock"]
        sim.set_faults(Faults(reset_after_write=1.0))
        with pytest.raises(httpx.ReadError):
            wire_like.patch(f"/api/v2/products/{basic['id']}", json={"stock": 48})
        assert sim.products[basic["id"]]["stock"] == 48  # applied, but the client never heard back
        sim.set_faults(Faults(timeout=1.0, hang_seconds=0.5))
        with pytest.raises(httpx.ReadTimeout):
            wire_like.get("/api/v2/products", timeout=0.05)
    finally:
        plain.close()
        wire_like.close()


def test_reset_and_truncation_over_a_loopback_server(sim: MerchantProSimulator) -> None:
    with serve_in_thread(sim) as server, httpx.Client(base_url=server.url, auth=AUTH, timeout=5) as client:
        assert client.get("/api/v2/products", params={"limit": 1}).status_code == 200
        sim.set_faults(Faults(reset=1.0))
        with pytest.raises(httpx.TransportError):
            client.get("/api/v2/products")
        sim.set_faults(Faults(truncated=1.0))
        cut = client.get("/api/v2/products")
        assert cut.status_code == 200 and int(cut.headers["content-length"]) == len(cut.content) > 0
        with pytest.raises(json.JSONDecodeError):
            cut.json()
        sim.set_faults(None)
        assert client.get("/api/v2/products", params={"limit": 1}).status_code == 200
    assert sim.stats.faults == {"reset": 1, "truncated": 1}
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/api/v2/products", timeout=1)


def test_loopback_follows_next_links_and_small_replies_are_not_delayed(sim: MerchantProSimulator) -> None:
    sim.base_url = None  # links from the Host header
    with serve_in_thread(sim) as server, httpx.Client(auth=AUTH, timeout=5) as client:
        url: str | None = f"{server.url}/api/v2/products?limit=100&fields=id"
        seen = 0
        while url is not None:
            body = client.get(url).json()
            seen += len(body["data"])
            url = body["meta"]["links"]["next"]
        assert seen == 250
        # Small replies are not held back by Nagle + delayed ACK (~40 ms each) when the accepted sockets have
        # TCP_NODELAY: checked on the server's side of the kept-alive connection, not by timing it.
        sockets = server.open_sockets()
        assert sockets, "no open connection seen on the server"
        assert all(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) for s in sockets)


# --- seeding, scale, command line -----------------------------------------------------------------------------


def test_seeded_catalogue_is_deterministic_with_unique_skus() -> None:
    def shop(seed: int) -> MerchantProSimulator:
        s = MerchantProSimulator()
        s.seed_catalogue(400, seed=seed, multi_variant_share=0.25)
        return s

    a, b, c = shop(3), shop(3), shop(4)
    assert a.products == b.products and a.products != c.products
    units = [u for p in a.products.values() for u in (p, *p.get("variants", ()))]
    assert len({u["sku"] for u in units}) == len(units) == len({u["id"] for u in units})
    multis = [p for p in a.products.values() if p["type"] == "multi_variant"]
    assert 60 < len(multis) < 140 and all(2 <= len(p["variants"]) <= 4 for p in multis)
    basics = [p for p in a.products.values() if p["type"] == "basic"]
    assert all(0 <= p["stock"] <= 50 and p["tax_value"] in (19, 9) for p in basics)
    assert all(p["price_gross"] == gross_from_net(p["price_net"], p["tax_value"]) for p in basics)


def test_list_pages_at_100k_products() -> None:
    # What seeding and a page cost at this size is measured by `python -m bench simulator`, not asserted here.
    shop = MerchantProSimulator()
    shop.seed_catalogue(100_000)
    client = Api(shop, auth=("demo-key", "demo-secret"))
    try:
        for page in range(0, 99_901, 4_995):
            response = client.get("/api/v2/products", params={"start": page, "limit": 100, "fields": "id,sku,stock"})
            assert response.status_code == 200 and len(response.json()["data"]) == 100
        last = client.get("/api/v2/products", params={"start": 99_950, "limit": 100, "fields": "id"})
        assert last.status_code == 200 and len(last.json()["data"]) == 50
    finally:
        client.close()


def test_command_line_serves_a_seeded_shop() -> None:
    command = [sys.executable, "-m", "erpsync.testing.merchantpro", "--port", "0", "--products", "30", "--orders", "5"]
    process = subprocess.Popen([*command, "--key", KEY, "--secret", SECRET], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        url = banner.split()[2].removesuffix("/api/v2/")
        response = httpx.get(f"{url}/api/v2/orders", params={"limit": 100}, auth=AUTH, timeout=5)
        assert response.status_code == 200 and response.json()["meta"]["count"]["total"] == 5
        assert response.json()["meta"]["links"]["self"].startswith(url)
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_add_order_reads_naive_dates_as_shop_local_time(sim: MerchantProSimulator) -> None:
    sku = first_of_type(sim, "basic")["sku"]
    order = sim.add_order(
        {"id": "555.3", "date_created": "2026-07-01T10:00:00", "line_items": [{"product_sku": sku, "quantity": 1}]},
        adjust_stock=False,
    )
    assert order["date_created"] == order["date_modified"] == "2026-07-01T10:00:00+03:00"
    assert sim.orders["555.3"] is order


def test_out_of_band_stock_change_is_seen_by_the_next_read() -> None:
    sim = MerchantProSimulator(api_key="k", api_secret="s")
    sim.seed_catalogue(5, multi_variant_share=0.0, seed=2)
    sku = next(iter(sim.products.values()))["sku"]

    async def read() -> dict[str, object]:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=sim), base_url="http://shop.test", auth=("k", "s")
        ) as client:
            reply = await client.get("/api/v2/products", params={"fields": "id,sku,stock", "limit": 100})
            return {row["sku"]: row["stock"] for row in reply.json()["data"]}

    assert asyncio.run(read())[sku] != 999
    writes = sim.stats.writes
    sim.set_stock_out_of_band(sku, 999)
    assert asyncio.run(read())[sku] == 999
    assert sim.stats.writes == writes
