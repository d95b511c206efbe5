"""The MerchantPro client against the simulator: in-process (SyncASGITransport) and over a loopback server."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest

from erpsync.connectors.asgi import SyncASGITransport
from erpsync.connectors.errors import AuthError, RecordError, RetriableError
from erpsync.connectors.http import RetryPolicy, reset_shared_limiters
from erpsync.connectors.merchantpro import MerchantProClient, StockWrite
from erpsync.testing.merchantpro import Faults, MerchantProSimulator
from erpsync.testing.server import serve_in_thread

KEY, SECRET = "sim-key", "sim-secret-0001"


@pytest.fixture
def sim() -> MerchantProSimulator:
    simulator = MerchantProSimulator(api_key=KEY, api_secret=SECRET)
    simulator.seed_catalogue(260, multi_variant_share=0.2, seed=7)
    simulator.seed_orders(255, seed=7)
    return simulator


@pytest.fixture
def client(sim: MerchantProSimulator) -> Iterator[MerchantProClient]:
    with MerchantProClient(
        "http://shop.test",
        KEY,
        SECRET,
        transport=SyncASGITransport(sim),
        requests_per_second=None,
        retry=RetryPolicy(max_retries=4, backoff_base=0.001),
    ) as shop:
        yield shop


def test_pages_through_260_products_with_variants(client: MerchantProClient, sim: MerchantProSimulator) -> None:
    pages = list(client.iter_products())
    products = [p for page in pages for p in page.items]
    assert len(pages) == 3 and [len(p.items) for p in pages] == [100, 100, 60]
    assert len(products) == 260 and not any(page.errors for page in pages)
    assert len({p.shop_id for p in products}) == 260
    multi = [p for p in products if p.is_multi_variant]
    assert multi and all(len(p.variants) >= 2 for p in multi)
    assert {p.sku for p in products} == {row["sku"] for row in sim.products.values()}
    assert client.counters.reads == 3


def test_inventory_snapshot_covers_every_unit(client: MerchantProClient, sim: MerchantProSimulator) -> None:
    units = [u for page in client.iter_inventory() for u in page.items]
    expected = sum(len(p["variants"]) if p["type"] == "multi_variant" else 1 for p in sim.products.values())
    assert len(units) == expected
    assert len({u.sku for u in units}) == expected


def test_pages_through_255_orders_and_keeps_the_suffixed_id(client: MerchantProClient) -> None:
    orders = [o for page in client.iter_orders() for o in page.items]
    assert len(orders) == 255 and len({o.shop_id for o in orders}) == 255
    suffixed = [o for o in orders if o.shop_id and "." in o.shop_id]
    assert len(suffixed) == 1 and suffixed[0].shop_id is not None and suffixed[0].shop_id.endswith(".3")
    order_id = suffixed[0].shop_id
    assert client.get_order(order_id).shop_id == order_id
    client.set_awb(order_id, "AWB123")
    client.set_order_status(order_id, "shipped")
    again = client.get_order(order_id)
    assert again.awb == "AWB123" and again.shipping_status.value == "shipped"


def test_variant_stock_is_written_on_the_variants(client: MerchantProClient, sim: MerchantProSimulator) -> None:
    parent = next(p for p in sim.products.values() if p["type"] == "multi_variant")
    basic = next(p for p in sim.products.values() if p["type"] == "basic")
    first, second = parent["variants"][0], parent["variants"][1]
    untouched = {v["id"]: v["stock"] for v in parent["variants"][2:]}
    writes_before = sim.stats.writes
    results = client.set_stock(
        [
            StockWrite(first["sku"], str(parent["id"]), str(first["id"]), Decimal(11)),
            StockWrite(second["sku"], str(parent["id"]), str(second["id"]), Decimal(0)),
            StockWrite(basic["sku"], str(basic["id"]), None, Decimal(42)),
        ]
    )
    assert all(r.ok for r in results)
    assert sim.stats.writes - writes_before == 2  # one PATCH for the parent, one for the basic product
    stored = {v["id"]: v["stock"] for v in sim.products[parent["id"]]["variants"]}
    assert Decimal(str(stored[first["id"]])) == 11 and Decimal(str(stored[second["id"]])) == 0
    assert all(stored[vid] == stock for vid, stock in untouched.items())
    assert Decimal(str(sim.products[basic["id"]]["stock"])) == 42


def test_stock_on_a_multi_variant_parent_is_refused_per_record(
    client: MerchantProClient, sim: MerchantProSimulator
) -> None:
    parent = next(p for p in sim.products.values() if p["type"] == "multi_variant")
    before = [dict(v) for v in parent["variants"]]
    results = client.set_stock([StockWrite(parent["sku"], str(parent["id"]), None, Decimal(5))])
    assert not results[0].ok and isinstance(results[0].error, RecordError)
    assert results[0].error.status == 400
    assert sim.products[parent["id"]]["variants"] == before


def test_bad_secret_is_an_auth_error(sim: MerchantProSimulator) -> None:
    with (
        MerchantProClient(
            "http://shop.test", KEY, "wrong", transport=SyncASGITransport(sim), requests_per_second=None
        ) as shop,
        pytest.raises(AuthError),
    ):
        shop.check()


def test_faults_are_retried_until_the_read_succeeds(sim: MerchantProSimulator) -> None:
    sim.set_faults(Faults(error_500=0.15, error_429=0.1, reset=0.05, truncated=0.05, seed=3))
    with MerchantProClient(
        "http://shop.test",
        KEY,
        SECRET,
        transport=SyncASGITransport(sim),
        requests_per_second=None,
        retry=RetryPolicy(max_retries=8, backoff_base=0.001, backoff_max=0.01),
    ) as shop:
        products = [p for page in shop.iter_products() for p in page.items]
        assert len(products) == 260
        assert shop.counters.retries > 0


def test_a_hang_is_a_timeout_not_a_stall(sim: MerchantProSimulator) -> None:
    sim.set_faults(Faults(timeout=1.0, hang_seconds=2.0, seed=1))
    with MerchantProClient(
        "http://shop.test",
        KEY,
        SECRET,
        transport=SyncASGITransport(sim),
        requests_per_second=None,
        read_timeout=0.2,
        retry=RetryPolicy(max_retries=1, backoff_base=0.001),
    ) as shop:
        # A reply that never comes is a read timeout (the hang would answer after 2 s and the call would
        # succeed): the error is the proof, no wall-clock bound needed.
        with pytest.raises(RetriableError, match="timed out"):
            shop.check()
        assert sim.stats.faults.get("timeout", 0) >= 1


def test_over_loopback_with_pacing() -> None:
    reset_shared_limiters()
    simulator = MerchantProSimulator(api_key=KEY, api_secret=SECRET, base_url=None, rate_per_second=20)
    simulator.seed_catalogue(250, seed=1)
    with (
        serve_in_thread(simulator) as server,
        MerchantProClient(server.url, KEY, SECRET, requests_per_second=20, retry=RetryPolicy(max_retries=2)) as shop,
    ):
        started = time.monotonic()
        for _ in range(3):
            assert len([p for page in shop.iter_products() for p in page.items]) == 250
        elapsed = time.monotonic() - started
    # 9 reads at 20/s: paced (>= 8 intervals of 50 ms), and the simulator never had to refuse one
    assert elapsed >= 8 / 20 - 0.01
    assert simulator.stats.rate_limited == 0
    assert shop.counters.rate_limited == 0
    reset_shared_limiters()


def test_transport_errors_surface_as_httpx_errors(sim: MerchantProSimulator) -> None:
    sim.set_faults(Faults(reset=1.0, seed=1))
    transport = SyncASGITransport(sim)
    with (
        httpx.Client(transport=transport, base_url="http://shop.test", auth=(KEY, SECRET)) as raw,
        pytest.raises(httpx.ReadError),
    ):
        raw.get("/api/v2/products")


def test_an_order_of_another_channel_is_created_with_a_string_id(
    client: MerchantProClient, sim: MerchantProSimulator
) -> None:
    from erpsync.connectors.merchantpro.mapping import order_from_shop

    template = next(iter(sim.orders.values()))
    order = order_from_shop(template).model_copy(update={"shop_id": None, "reference": "ERP-SO-1"})
    new_id = client.create_order(order)
    assert isinstance(new_id, str) and new_id in sim.orders
    created = client.get_order(new_id)
    assert [(line.sku, line.quantity) for line in created.lines] == [(line.sku, line.quantity) for line in order.lines]
    assert created.customer.email == order.customer.email


def test_inventory_look_up_by_sku_and_single_products(client: MerchantProClient, sim: MerchantProSimulator) -> None:
    parent = next(p for p in sim.products.values() if p["type"] == "multi_variant")
    variant = parent["variants"][0]
    unit = client.inventory_by_sku(variant["sku"])
    assert unit is not None and str(unit["id"]) == str(variant["id"])
    assert client.inventory_by_sku("NO-SUCH-SKU") is None
    product = client.get_product(str(parent["id"]))
    assert product.is_multi_variant and {v.sku for v in product.variants} == {v["sku"] for v in parent["variants"]}


def test_categories_and_customers_on_a_configurable_path(sim: MerchantProSimulator) -> None:
    requested: list[str] = []

    class Recording(SyncASGITransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            requested.append(request.url.path)
            return super().handle_request(request)

    with MerchantProClient(
        "http://shop.test",
        KEY,
        SECRET,
        transport=Recording(sim),
        requests_per_second=None,
        customers_path="/api/v2/customers",
    ) as shop:
        before = sum(len(page) for page in shop.iter_categories())
        created = shop.create_category("Reduceri")
        assert created["name"] == "Reduceri"
        assert sum(len(page) for page in shop.iter_categories()) == before + 1
        customers = [c for page in shop.iter_customers() for c in page]
        assert len(customers) == len(sim.customers) > 0  # the seeded orders' buyers
        assert shop.get_customer(str(customers[0]["id"]))["id"] == customers[0]["id"]
    assert "/api/v2/customers" in requested and "/api/v2/categories" in requested
