"""Issue 15, purchases -> the shop's promise, on the real Tryton (with trytond-purchase) and the simulated shop:
a purchase of 20 units of an out-of-stock SKU expected in 5 days makes the shop show it orderable with that
date; the receipt brings stock 20 and takes the promise back; the purchase view names the supplier."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal

from tests.flows.run_helpers import artifact
from tests.flows.test_orders_flow import TrytonStack, make_tryton_stack  # noqa: F401 (a fixture)


def _purchase(t: TrytonStack, product: int, quantity: int, expected: date) -> int:
    """A confirmed Tryton purchase from the seeded supplier into WH; its id."""
    ctx, manifest = t.session.context, t.manifest
    supplier = manifest["parties"]["supplier"]
    address = t.session.call("model.party.address.search", [("party", "=", supplier)], 0, 1, None, ctx)[0]
    line = {
        "product": product,
        "quantity": float(quantity),
        "unit": manifest["unit"],
        "unit_price": Decimal("10.00"),
        "delivery_date_edit": True,
        "delivery_date_store": expected,
    }
    purchase: int = t.session.call(
        "model.purchase.purchase.create",
        [
            {
                "party": supplier,
                "invoice_address": address,
                "warehouse": manifest["warehouses"]["WH"]["warehouse"],
                "currency": manifest["currency"],
                "lines": [["create", [line]]],
            }
        ],
        ctx,
    )[0]
    for button in ("quote", "confirm"):
        t.session.call_accepting_warnings(f"model.purchase.purchase.{button}", [purchase], ctx)
    return purchase


def _receive(t: TrytonStack, purchase: int) -> None:
    """The supplier's delivery: a supplier shipment of the purchase's moves, received and done."""
    ctx, zones = t.session.context, t.manifest["warehouses"]["WH"]
    moves = t.session.call("model.purchase.purchase.read", [purchase], ["moves"], ctx)[0]["moves"]
    shipment = t.session.call(
        "model.stock.shipment.in.create",
        [
            {
                "supplier": t.manifest["parties"]["supplier"],
                "warehouse": zones["warehouse"],
                "warehouse_input": zones["input"],
                "warehouse_storage": zones["storage"],
                "incoming_moves": [["add", moves]],
            }
        ],
        ctx,
    )[0]
    for button in ("receive", "do"):
        t.session.call_accepting_warnings(f"model.stock.shipment.in.{button}", [shipment], ctx)


def test_e2e_goods_on_the_way_make_the_sku_orderable_with_the_date_until_received(
    make_tryton_stack: Callable[..., TrytonStack],  # noqa: F811
) -> None:
    t = make_tryton_stack()
    config = t.stack.config_path
    config.write_text(config.read_text() + "\n[stores.purchases]\nenabled = true\nmax_lead_days = 30\n")
    sku = t.product("E2E-PUR", tryton_stock=0, shop_stock=3)
    assert t.run("stock", skus=[sku]).updated == 1  # the shop learns the SKU is out of stock
    shop_product = next(p for p in t.sim.products.values() if p["sku"] == sku)
    assert shop_product["stock"] == 0 and shop_product["allow_backorders"] is False

    product = t.session.call("model.product.product.search", [("code", "=", sku)], 0, 1, None, t.session.context)[0]
    expected = date.today() + timedelta(days=5)
    purchase = _purchase(t, product, 20, expected)
    promised = t.run("purchases")
    assert sku in promised.details["promised"], promised.details
    shop_product = t.sim.products[shop_product["id"]]
    assert shop_product["allow_backorders"] is True and shop_product["stock"] == 0
    assert shop_product["availability_text"] == f"Disponibil la comanda, livrare de la {expected:%d.%m.%Y}"
    view = {row["sku"]: row for row in json.loads(artifact("purchases-main-on-the-way").data)}
    number = t.session.call("model.purchase.purchase.read", [purchase], ["number"], t.session.context)[0]["number"]
    assert view[sku]["supplier"] == "Furnizor Demo SRL" and view[sku]["purchase"] == number
    assert (view[sku]["quantity"], view[sku]["expected"]) == ("20", expected.isoformat())

    again = t.run("purchases")
    assert sku not in again.details["promised"] and again.shop_writes == 0  # unchanged: no call

    _receive(t, purchase)
    received = t.run("receipts")
    assert sku in received.details["skus"], received.details
    shop_product = t.sim.products[shop_product["id"]]
    assert shop_product["stock"] == 20
    assert shop_product["allow_backorders"] is False and shop_product["availability_text"] is None
    after = t.run("purchases")
    assert sku not in after.details["promised"] and sku not in after.details["not_promised"]
