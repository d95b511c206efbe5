"""Totals to the ban on the real Tryton: discount and fee lines are booked at their own VAT rate, and a sale
whose Tryton total is not the shop's is never booked (docs/tryton.md, "Discount and fee lines")."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from erpsync.connectors.erp.base import Needs
from erpsync.connectors.erp.tryton import TrytonConnector
from erpsync.connectors.errors import RecordError
from erpsync.core.models import Address, Customer, Order, OrderLine
from erpsync.core.order_totals import TOTAL_MISMATCH
from erpsync.dev import tryton_seed as seed
from erpsync.dev.tryton import JsonRpcSession, TrytonServer
from tests.tryton_fixture import create_stocked_product, unique_code

pytestmark = pytest.mark.tryton


@pytest.fixture
def tryton(tryton_server: TrytonServer) -> Iterator[TrytonConnector]:
    connector = TrytonConnector(
        tryton_server.url, tryton_server.database, tryton_server.username, tryton_server.password
    )
    try:
        yield connector
    finally:
        connector.close()


def _voucher_order(sku: str, *, total: Decimal | None, extra: list[OrderLine] | None = None) -> Order:
    """One 100.00 product line at 21 % and a -10.00 voucher at 21 % (the shop's total: ``total``)."""
    customer = Customer(email=f"{sku.lower()}@example.com", name="Client Voucher")
    address = Address(name=customer.name, street="Str. Reducerii 10", city="Cluj-Napoca", postal_code="400002")
    return Order(
        shop_id=unique_code("SHOP"),
        public_code="#" + uuid.uuid4().hex[:6],
        customer=customer,
        billing=address,
        shipping=address,
        lines=[
            OrderLine(
                sku=sku, name="Produs", quantity=Decimal(1), unit_price_gross=Decimal("100.00"), vat_rate=Decimal(21)
            ),
            OrderLine(
                sku="",
                kind="discount",
                name="Voucher VARA10",
                quantity=Decimal(1),
                unit_price_gross=Decimal("-10.00"),
                vat_rate=Decimal(21),
            ),
            *(extra or []),
        ],
        total=total,
    )


def _sale(session: JsonRpcSession, sale_id: str) -> dict[str, Any]:
    return session.call(
        "model.sale.sale.read",
        [int(sale_id)],
        ["state", "untaxed_amount", "tax_amount", "total_amount", "lines"],
        session.context,
    )[0]


def _lines(session: JsonRpcSession, ids: list[int]) -> list[tuple[str, str, Decimal, float, list[int]]]:
    rows = session.call(
        "model.sale.line.read", ids, ["product.code", "description", "unit_price", "quantity", "taxes"], session.context
    )
    return [(r["product."]["code"], r["description"], r["unit_price"], r["quantity"], r["taxes"]) for r in rows]


def _sales_with_reference(session: JsonRpcSession, reference: str) -> list[int]:
    ids: list[int] = session.call(
        "model.sale.sale.search", [("reference", "=", reference)], 0, None, None, session.context
    )
    return ids


def test_voucher_is_booked_at_its_rate_and_the_sale_totals_the_shops_total(
    tryton: TrytonConnector, tryton_server: TrytonServer, tryton_session: JsonRpcSession
) -> None:
    session, manifest = tryton_session, tryton_server.manifest
    sku = unique_code("E2E-VOU")
    create_stocked_product(session, manifest, sku, {"WH": 5}, vat=21)
    order = _voucher_order(sku, total=Decimal("90.00"))
    since = datetime.now(UTC) - timedelta(seconds=1)

    sale_id = tryton.create_order(order, order.customer)

    sale = _sale(session, sale_id)
    assert sale["state"] == "processing"
    # 82.6446 -> 82.64 and -8.2645 -> -8.26: 74.38 net, 21 % of it 15.62, 90.00 to the ban
    assert (sale["untaxed_amount"], sale["tax_amount"], sale["total_amount"]) == (
        Decimal("74.38"),
        Decimal("15.62"),
        Decimal("90.00"),
    )
    tax_21 = manifest["taxes"]["customer_21"]
    assert sorted(_lines(session, sale["lines"])) == [
        (seed.DISCOUNT_SKU, "Voucher VARA10", Decimal("-8.2645"), 1.0, [tax_21]),
        (sku, "Produs", Decimal("82.6446"), 1.0, [tax_21]),
    ]
    read = {o.erp_id: o for page in tryton.iter_orders(changed_since=since) for o in page.items}[sale_id]
    assert [(ln.kind, ln.sku, ln.name, ln.unit_price_net, ln.vat_rate) for ln in read.lines] == [
        ("product", sku, "Produs", Decimal("82.6446"), Decimal(21)),
        ("discount", "", "Voucher VARA10", Decimal("-8.2645"), Decimal(21)),
    ]
    assert read.total == Decimal("90.00")
    assert tryton.create_order(order, order.customer) == sale_id  # found by reference, nothing new
    assert _sales_with_reference(session, order.reference or order.shop_id or "") == [int(sale_id)]


def test_fee_line_is_booked_on_the_fee_product_at_its_own_rate(
    tryton: TrytonConnector, tryton_server: TrytonServer, tryton_session: JsonRpcSession
) -> None:
    session, manifest = tryton_session, tryton_server.manifest
    sku = unique_code("E2E-FEE")
    create_stocked_product(session, manifest, sku, {"WH": 5}, vat=21)
    fee = OrderLine(
        sku="",
        kind="fee",
        name="Taxă ramburs",
        quantity=Decimal(1),
        unit_price_gross=Decimal("5.45"),
        vat_rate=Decimal(9),  # not the FEE product's category (19 %): the line's own rate wins
    )
    order = _voucher_order(sku, total=Decimal("95.45"), extra=[fee])

    sale = _sale(session, tryton.create_order(order, order.customer))

    assert sale["total_amount"] == Decimal("95.45")
    lines = {code: (description, price, taxes) for code, description, price, _, taxes in _lines(session, sale["lines"])}
    assert lines[seed.FEE_SKU] == ("Taxă ramburs", Decimal("5.0000"), [manifest["taxes"]["customer_9"]])


def test_many_units_at_a_gross_price_total_the_shops_gross_to_the_ban(
    tryton: TrytonConnector, tryton_server: TrytonServer, tryton_session: JsonRpcSession
) -> None:
    """10 x 24.99 at 21 %: the shop's net 20.65 would make 206.50 + 43.37 = 249.87; the fitted 20.6530 makes
    206.53 + 43.37 = 249.90, the shop's total."""
    sku = unique_code("E2E-QTY")
    create_stocked_product(tryton_session, tryton_server.manifest, sku, {"WH": 20}, vat=21)
    order = _voucher_order(sku, total=Decimal("249.90"))
    order.lines = [
        OrderLine(
            sku=sku,
            name="Produs",
            quantity=Decimal(10),
            unit_price_net=Decimal("20.65"),
            unit_price_gross=Decimal("24.99"),
            vat_rate=Decimal(21),
        )
    ]

    sale = _sale(tryton_session, tryton.create_order(order, order.customer))

    assert sale["total_amount"] == Decimal("249.90")
    assert [price for _, _, price, _, _ in _lines(tryton_session, sale["lines"])] == [Decimal("20.6530")]


def test_an_order_whose_lines_cannot_reach_the_shops_total_is_not_booked(
    tryton: TrytonConnector, tryton_server: TrytonServer, tryton_session: JsonRpcSession
) -> None:
    session = tryton_session
    sku = unique_code("E2E-MIS")
    create_stocked_product(session, tryton_server.manifest, sku, {"WH": 5}, vat=21)
    order = _voucher_order(sku, total=Decimal("100.00"))  # the shop says 100.00, the lines make 90.00

    with pytest.raises(RecordError) as refused:
        tryton.create_order(order, order.customer)

    reference = order.reference or order.shop_id or ""
    assert refused.value.key == reference
    assert TOTAL_MISMATCH in refused.value.message
    assert "90.00" in refused.value.message and "100.00" in refused.value.message
    assert _sales_with_reference(session, reference) == []  # the draft was deleted: nothing is booked
    assert tryton.find_order(reference) is None


def test_a_discount_at_a_rate_tryton_has_no_tax_for_is_refused_naming_it(
    tryton: TrytonConnector, tryton_server: TrytonServer, tryton_session: JsonRpcSession
) -> None:
    sku = unique_code("E2E-R24")
    create_stocked_product(tryton_session, tryton_server.manifest, sku, {"WH": 5}, vat=21)
    order = _voucher_order(sku, total=Decimal("90.00"))
    order.lines[1] = order.lines[1].model_copy(update={"vat_rate": Decimal(24)})

    with pytest.raises(RecordError, match="24%") as refused:
        tryton.create_order(order, order.customer)

    assert refused.value.key == order.shop_id
    assert _sales_with_reference(tryton_session, order.shop_id or "") == []


def test_erpsync_check_probes_the_discount_and_fee_products(tryton: TrytonConnector) -> None:
    probes = {p.target: p for p in tryton.preflight([Needs("main"), Needs("cluj", discount_sku="REDUCERE")])}
    charges = probes["erp discount and fee products"]
    assert not charges.ok
    assert charges.detail == (
        "'REDUCERE' (discount_sku of store cluj) is not in Tryton: create it as a salable service product "
        "(Product > Products, code 'REDUCERE') or set [stores.orders] discount_sku; every order with a discount "
        "line fails the run without it"
    )
    seeded = {p.target: p for p in tryton.preflight([Needs("main")])}["erp discount and fee products"]
    assert seeded.ok and seeded.detail == "'DISCOUNT' salable, 'FEE' salable"


def test_erpsync_check_probes_the_vat_rates_the_stores_map(tryton: TrytonConnector) -> None:
    seeded = {p.target: p for p in tryton.preflight([Needs("main", vat_rates=("21", "11", "19"))])}["erp VAT rates"]
    assert seeded.ok and seeded.detail == "21%, 11%, 19% each have a customer tax"
    probes = {p.target: p for p in tryton.preflight([Needs("main", vat_rates=("21",)), Needs("b", vat_rates=("24",))])}
    rates = probes["erp VAT rates"]
    assert not rates.ok
    assert rates.detail.startswith("24% (store b) has no customer tax in Tryton: create the tax")
    assert "(Tryton has: " in rates.detail and "21" in rates.detail.split("(Tryton has: ")[1]
    # a store that takes its rates from the shop's tax table has nothing to probe here
    assert "erp VAT rates" not in {p.target for p in tryton.preflight([Needs("main")])}
