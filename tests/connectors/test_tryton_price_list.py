"""The Tryton connector for several shops: a store's price list (module sale_price_list) and order references
carrying the store's prefix, against the real server.

Seeded records are only read; the price list whose edit is tested, the products, parties and sales are the
tests' own (unique codes).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from erpsync.connectors.erp.tryton import TrytonConnector
from erpsync.connectors.erp.tryton.rpc import to_utc
from erpsync.connectors.errors import FatalError
from erpsync.core.models import Address, Customer, Order, OrderLine, Product, gross_from_net, net_from_gross
from erpsync.dev import tryton_seed as seed
from erpsync.dev.tryton import JsonRpcSession, TrytonServer
from tests.tryton_fixture import create_stocked_product, unique_code

CLUJ, RETAIL = seed.CLUJ_PRICE_LIST, seed.RETAIL_PRICE_LIST


def _connector(server: TrytonServer, **options: Any) -> TrytonConnector:
    return TrytonConnector(server.url, server.database, server.username, server.password, page_size=200, **options)


@pytest.fixture
def connectors(tryton_server: TrytonServer) -> Iterator[dict[str, TrytonConnector]]:
    made = {name: _connector(tryton_server, price_list=name) for name in ("", CLUJ.name, RETAIL.name)}
    try:
        yield made
    finally:
        for connector in made.values():
            connector.close()


def _seeded(connector: TrytonConnector) -> dict[str, Product]:
    """Seeded products and their variants by SKU (a variant as a copy of its product with its own prices)."""
    found: dict[str, Product] = {}
    for page in connector.iter_products():
        for product in page.items:
            if not product.sku.startswith("TRY-"):
                continue
            found[product.sku] = product
            for variant in product.variants:
                found[variant.sku] = product.model_copy(
                    update={
                        "sku": variant.sku,
                        "price_net": variant.price_net,
                        "price_gross": variant.price_gross,
                        "variants": [],
                    }
                )
    return found


def test_a_store_price_list_gives_the_products_prices(connectors: dict[str, TrytonConnector]) -> None:
    plain, cluj, retail = (_seeded(connectors[name]) for name in ("", CLUJ.name, RETAIL.name))
    assert set(plain) == set(cluj) == set(retail) == set(seed.SEED_PRODUCTS_BY_SKU) | set(seed.VARIANT_TEMPLATE_CODES)
    for sku, spec in seed.SEED_PRODUCTS_BY_SKU.items():
        vat = Decimal(spec.vat)
        assert plain[sku].price_net == spec.list_price  # no price list: the list price, as before
        # "Cluj" is net: its price is the net price, the gross follows from the VAT rate
        assert (cluj[sku].price_net, cluj[sku].price_gross) == (
            CLUJ.price(spec.list_price),
            gross_from_net(CLUJ.price(spec.list_price), vat),
        ), sku
        # "Retail" includes VAT: its price is the gross price, the net follows
        assert (retail[sku].price_net, retail[sku].price_gross) == (
            net_from_gross(RETAIL.price(spec.list_price), vat),
            RETAIL.price(spec.list_price),
        ), sku
    # one case by hand: 30.90 x 0.95 = 29.355 -> 29.36 (half-up), gross at 19 % = 34.94
    assert (cluj["TRY-0003"].price_net, cluj["TRY-0003"].price_gross) == (Decimal("29.36"), Decimal("34.94"))
    # everything but the prices is the same product
    strip = {"price_net", "price_gross", "variants"}
    assert {s: p.model_dump(exclude=strip) for s, p in cluj.items()} == {
        s: p.model_dump(exclude=strip) for s, p in plain.items()
    }


def test_the_price_list_costs_one_call_per_connector(connectors: dict[str, TrytonConnector]) -> None:
    plain, cluj = connectors[""], connectors[CLUJ.name]
    for connector in (plain, cluj):
        list(connector.iter_products())
    first = cluj.counters.reads - plain.counters.reads
    list(cluj.iter_products())
    list(plain.iter_products())
    assert first == 1  # the look-up of the list by name, once; the prices come in the same variant reads
    assert cluj.counters.reads - plain.counters.reads == 1


def test_an_unknown_price_list_is_fatal_and_named(tryton_server: TrytonServer) -> None:
    with _connector(tryton_server, price_list="Constanta") as connector:
        with pytest.raises(FatalError) as caught:
            connector.check()
        assert "price list 'Constanta' not found in Tryton" in str(caught.value)
        assert "'Cluj'" in str(caught.value) and "'Retail'" in str(caught.value)  # the known ones are listed
        with pytest.raises(FatalError):
            next(connector.iter_products())
    with _connector(tryton_server, price_list=CLUJ.name) as connector:
        assert connector.check().endswith(", price list 'Cluj'")


def test_an_edited_price_list_makes_the_next_incremental_read_whole(
    tryton_server: TrytonServer,
    tryton_session: JsonRpcSession,
) -> None:
    """The products did not change, their prices did: an incremental read after a list edit reads them all."""
    ctx = tryton_session.context
    name = unique_code("PL")
    list_id = tryton_session.call(
        "model.product.price_list.create",
        [
            {
                "name": name,
                "price": "list_price",
                "lines": [["create", [{"formula": "list_price * 0.9"}]]],
            }
        ],
        ctx,
    )[0]
    stamp = tryton_session.call("model.product.price_list.read", [list_id], ["last_modified_at"], ctx)[0][
        "last_modified_at"
    ].replace(tzinfo=None)
    before, after = to_utc(stamp - timedelta(seconds=1)), to_utc(stamp + timedelta(seconds=1))
    assert before is not None and after is not None
    with _connector(tryton_server, price_list=name) as listed, _connector(tryton_server) as plain:

        def skus(connector: TrytonConnector, since: Any) -> set[str]:
            return {p.sku for page in connector.iter_products(changed_since=since) for p in page.items}

        assert "TRY-0001" in skus(listed, before)  # the list changed after `before`: every product is read
        assert "TRY-0001" not in skus(plain, before)  # without the list, only products that changed
        assert "TRY-0001" not in skus(listed, after)  # the list has not changed since `after`
        read = {p.sku: p for page in listed.iter_products() for p in page.items}
        assert read["TRY-0001"].price_net == (
            seed.SEED_PRODUCTS_BY_SKU["TRY-0001"].list_price * Decimal("0.9")
        ).quantize(Decimal("0.0001"))


def _order(sku: str, reference: str, shop_id: str) -> tuple[Order, Customer]:
    customer = Customer(email=f"pl-{uuid.uuid4().hex[:8]}@example.ro", name="Ana Pop")
    address = Address(name="Ana Pop", street="Str. Testului 9", city="Cluj-Napoca", postal_code="400001")
    order = Order(
        shop_id=shop_id,
        reference=reference,
        customer=customer,
        billing=address,
        shipping=address,
        lines=[
            OrderLine(
                sku=sku, name="Produs", quantity=Decimal(1), unit_price_net=Decimal("20.00"), vat_rate=Decimal(19)
            )
        ],
    )
    return order, customer


def test_sales_carry_the_store_price_list_and_the_prefixed_reference(
    tryton_server: TrytonServer,
    tryton_session: JsonRpcSession,
) -> None:
    sku = unique_code("E2E-PL")
    create_stocked_product(tryton_session, tryton_server.manifest, sku, {"WH": 5, "WH2": 5})
    shop_id = str(uuid.uuid4().int % 10**8)
    with (
        _connector(tryton_server, price_list=CLUJ.name, order_warehouse="WH2") as cluj,
        _connector(tryton_server, order_warehouse="WH") as bucuresti,
    ):
        sale_c = cluj.create_order(*_order(sku, f"C-{shop_id}", shop_id))
        assert bucuresti.find_order(f"B-{shop_id}") is None  # the other shop's sale is not found
        sale_b = bucuresti.create_order(*_order(sku, f"B-{shop_id}", shop_id))
        assert sale_b != sale_c
        assert (cluj.find_order(f"C-{shop_id}"), bucuresti.find_order(f"B-{shop_id}")) == (sale_c, sale_b)
        assert cluj.find_order(shop_id) is None  # the bare shop id is nobody's reference
    rows = {
        r["reference"]: r
        for r in tryton_session.call(
            "model.sale.sale.read",
            [int(sale_c), int(sale_b)],
            ["reference", "price_list", "warehouse", "comment", "lines.unit_price"],
            tryton_session.context,
        )
    }
    manifest = tryton_server.manifest
    assert rows[f"C-{shop_id}"]["price_list"] == manifest["price_lists"][CLUJ.name]
    assert rows[f"B-{shop_id}"]["price_list"] is None
    assert rows[f"C-{shop_id}"]["warehouse"] == manifest["warehouses"]["WH2"]["warehouse"]
    # the lines keep the shop's price; the comment names the shop order id
    assert [line["unit_price"] for line in rows[f"C-{shop_id}"]["lines."]] == [Decimal("20.0000")]
    assert f"(id {shop_id})" in rows[f"C-{shop_id}"]["comment"]
