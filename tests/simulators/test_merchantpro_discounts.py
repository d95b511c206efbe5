"""The MerchantPro simulator's orders carry voucher, discount and fee lines and an order-level discount
(*inference* of the encoding, docs/simulators.md); total_amount = products + fees - discounts + shipping, and the
order reads back through the client to a canonical order whose booked total is the shop's, to the ban."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from erpsync.connectors.asgi import SyncASGITransport
from erpsync.connectors.http import RetryPolicy
from erpsync.connectors.merchantpro import MerchantProClient
from erpsync.core.models import Customer, Order, OrderLine
from erpsync.core.order_totals import booked_total, erp_lines, total_problem
from erpsync.testing._mp_rules import ApiError
from erpsync.testing.merchantpro import MerchantProSimulator

KEY, SECRET = "sim-key", "sim-secret-0001"
D = Decimal


@pytest.fixture
def sim() -> MerchantProSimulator:
    simulator = MerchantProSimulator(api_key=KEY, api_secret=SECRET)
    simulator.seed_catalogue(12, multi_variant_share=0.0, seed=3)
    return simulator


@pytest.fixture
def client(sim: MerchantProSimulator) -> Iterator[MerchantProClient]:
    with MerchantProClient(
        "http://shop.test",
        KEY,
        SECRET,
        transport=SyncASGITransport(sim),
        requests_per_second=None,
        retry=RetryPolicy(max_retries=1, backoff_base=0.001),
    ) as shop:
        yield shop


def basics(sim: MerchantProSimulator, n: int) -> list[dict[str, Any]]:
    return [p for p in sim.products.values() if p["type"] == "basic"][:n]


def payload(*lines: dict[str, Any], **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"customer_email": "ana@example.ro", "billing_name": "Ana Pop", "shipping_as_billing": True}
    body.update(fields, line_items=list(lines))
    return body


def test_an_order_with_a_voucher_line_round_trips_with_its_total(
    sim: MerchantProSimulator, client: MerchantProClient
) -> None:
    (a,) = basics(sim, 1)
    voucher = {"item_type": "discount", "product_name": "VARA10", "unit_price_gross": -10.0}
    fee = {
        "item_type": "payment_fee",
        "product_name": "Taxa ramburs",
        "unit_price_gross": 5.0,
        "product_tax_percent": 21,
    }
    row = sim.add_order(
        payload({"product_sku": a["sku"], "quantity": 1, "unit_price_gross": 100.0}, voucher, fee, shipping_amount=15.0)
    )
    assert row["total_amount"] == 110.0  # 100 + 5 - 10 + 15
    assert [line["item_type"] for line in row["line_items"]] == ["product", "discount", "payment_fee"]
    discount_line = row["line_items"][1]
    assert discount_line["line_subtotal_gross"] == -10.0 and discount_line["product_sku"] is None
    assert discount_line["product_tax_percent"] is None and discount_line["id"] is not None
    assert sim.products[a["id"]]["stock"] == a["stock"] - 1  # only the product line moves stock

    order = client.get_order(row["id"])
    assert [line.kind for line in order.lines] == ["product", "discount", "fee"]
    assert order.total == D("110.00") and booked_total(order) == D("110.00") and total_problem(order) is None
    booked = erp_lines(order)
    assert [(line.kind, line.vat_rate, line.unit_price_gross) for line in booked.lines if line.kind == "discount"] == [
        ("discount", D(str(a["tax_value"])), D("-10.00"))
    ]


def test_a_voucher_over_two_rates_and_an_order_level_discount(
    sim: MerchantProSimulator, client: MerchantProClient
) -> None:
    a, b = basics(sim, 2)
    lines = [
        {"product_sku": a["sku"], "quantity": 2, "unit_price_gross": 50.0, "product_tax_percent": 21},
        {"product_sku": b["sku"], "quantity": 1, "unit_price_gross": 50.0, "product_tax_percent": 11},
        {"item_type": "voucher", "product_name": "X10", "unit_price_gross": 10.0},  # stored negative
    ]
    row = sim.add_order(payload(*lines, discount_amount=3.0, shipping_amount=0))
    assert row["line_items"][2]["unit_price_gross"] == -10.0
    assert row["discount_amount"] == 3.0 and row["total_amount"] == 137.0
    # net: 82.64 (100 at 21 %) + 45.05 (50 at 11 %) - 8.51 (the voucher: -6.67 at 21 %, -3.33 at 11 %) = 119.18;
    # the order-level 3.00 (2.00 at 21 %, 1.00 at 11 %) is 2.55 net: 119.18 - 2.55 + tax 20.37 = 137.00
    assert row["subtotal_including_tax"] == 140.0 and row["subtotal_excluding_tax"] == 119.18
    assert row["tax_amount"] == 20.37

    order = client.get_order(row["id"])
    assert order.discount_amount == D("3.00") and order.total == D("137.00")
    assert total_problem(order) is None
    spread = [(line.vat_rate, line.unit_price_gross) for line in erp_lines(order).lines if line.kind == "discount"]
    assert spread == [(D(21), D("-6.67")), (D(11), D("-3.33")), (D(21), D("-2.00")), (D(11), D("-1.00"))]


def test_post_orders_accepts_discount_lines_and_patch_keeps_them(sim: MerchantProSimulator) -> None:
    (a,) = basics(sim, 1)
    row = sim.add_order(
        payload(
            {"product_sku": a["sku"], "quantity": 1, "unit_price_gross": 40.0},
            {"item_type": "coupon", "product_name": "C5", "unit_price_gross": -5.0, "product_tax_percent": 21},
        )
    )
    assert row["total_amount"] == 35.0
    assert row["line_items"][1]["unit_price_net"] == -4.13 and row["line_items"][1]["line_tax_amount"] == -0.87


def test_a_non_product_line_needs_a_price(sim: MerchantProSimulator) -> None:
    (a,) = basics(sim, 1)
    with pytest.raises(ApiError, match="unit_price_gross"):
        sim.add_order(payload({"product_sku": a["sku"], "quantity": 1}, {"item_type": "discount"}))
    with pytest.raises(ApiError, match="discount_amount"):
        sim.add_order(payload({"product_sku": a["sku"], "quantity": 1}, discount_amount=-1))


def test_an_order_of_another_channel_goes_to_the_shop_with_its_discount_and_fee(
    sim: MerchantProSimulator, client: MerchantProClient
) -> None:
    (a,) = basics(sim, 1)
    order = Order(
        customer=Customer(email="ion@example.ro", name="Ion"),
        lines=[
            OrderLine(sku=a["sku"], quantity=D(2), unit_price_gross=D("30.00"), vat_rate=D(21)),
            OrderLine(
                sku="", kind="discount", name="Fidelitate", quantity=D(1), unit_price_gross=D("-6.00"), vat_rate=D(21)
            ),
            OrderLine(sku="", kind="fee", name="Ambalare", quantity=D(1), unit_price_gross=D("2.50"), vat_rate=D(21)),
        ],
        discount_amount=D("1.50"),
        shipping_amount=D("10.00"),
    )
    shop_id = client.create_order(order)
    row = sim.orders[shop_id]
    assert [line["item_type"] for line in row["line_items"]] == ["product", "discount", "fee"]
    assert row["total_amount"] == 65.0 == float(booked_total(order))  # 60 - 6 + 2.50 - 1.50 + 10
    back = client.get_order(shop_id)
    assert [(line.kind, line.name, line.unit_price_gross) for line in back.lines][1:] == [
        ("discount", "Fidelitate", D("-6.00")),
        ("fee", "Ambalare", D("2.50")),
    ]
    assert back.discount_amount == D("1.50") and total_problem(back) is None
