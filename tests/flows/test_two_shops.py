"""Several shops, one ERP: two simulated MerchantPro shops on the real Tryton (issue 7).

Store ``bucuresti`` sells from warehouse WH at Tryton's list prices, SKUs as in Tryton, order references
``B-<shop order id>``; store ``cluj`` sells from WH2 under the seeded price list "Cluj" (list price x 0.95), SKUs
``CJ-<code>``, references ``C-<shop order id>``. The products, stock and order flows run for both; each shop gets
the catalogue under its own SKU scheme and prices, its own warehouse's stock, and an order with the SAME shop
order id in both shops becomes two sales that reserve in their own warehouse only. Re-runs write nothing.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from erpsync.app.flowrun import run_flow
from erpsync.core.models import gross_from_net
from erpsync.core.summary import RunState, RunSummary
from erpsync.dev import tryton_seed as seed
from erpsync.dev.stack import Stack
from erpsync.dev.tryton import JsonRpcSession, TrytonServer
from erpsync.runtime.store_runtime import overrides, state_store
from tests.tryton_fixture import create_stocked_product, unique_code

D = Decimal
CLUJ_LIST = seed.CLUJ_PRICE_LIST
STORES = {
    "bucuresti": {"warehouses": ["WH"], "orders": {"reference_prefix": "B-"}},
    "cluj": {
        "warehouses": ["WH2"],
        "sku_prefix": "CJ-",
        "price_list": CLUJ_LIST.name,
        "orders": {"reference_prefix": "C-"},
    },
}
PREFIX = {"bucuresti": "", "cluj": "CJ-"}
WAREHOUSE = {"bucuresti": "WH", "cluj": "WH2"}
BUYER = {
    "billing_type": "individual",
    "billing_name": "Ana Popescu",
    "billing_address": "Str. Lalelelor 4",
    "billing_city": "Cluj-Napoca",
    "billing_postal_code": "400001",
    "billing_country_code": "RO",
    "billing_phone": "0722000111",
    "shipping_as_billing": True,
}


@dataclass
class TwoShops:
    stack: Stack
    session: JsonRpcSession
    manifest: dict[str, Any]
    runs: list[tuple[str, RunSummary]]

    def sim(self, store: str) -> Any:
        return self.stack.shop(store).sim

    def run(self, flow: str, store: str, **params: Any) -> RunSummary:
        from erpsync.flows.registry import load_flow

        summary = run_flow(load_flow(flow), flow, store, params)
        self.runs.append((store, summary))
        assert summary.state is not RunState.FAILED, summary.message
        return summary

    def units(self, store: str) -> dict[str, dict[str, Any]]:
        """The shop's inventory units (basic products and variants) by SKU, read from the simulator."""
        found: dict[str, dict[str, Any]] = {}
        for product in self.sim(store).products.values():
            for unit in product.get("variants") or [product]:
                assert unit["sku"] not in found, f"SKU {unit['sku']} twice in {store}"
                found[unit["sku"]] = unit
        return found

    def sales(self, references: list[str]) -> dict[str, dict[str, Any]]:
        rows = self.session.call(
            "model.sale.sale.search_read",
            [("reference", "in", references)],
            0,
            None,
            None,
            [
                "reference",
                "state",
                "party",
                "warehouse",
                "price_list",
                "shipments",
                "lines.product",
                "lines.unit_price",
            ],
            self.session.context,
        )
        return {row["reference"]: row for row in rows}


@pytest.fixture
def two_shops(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    tryton_server: TrytonServer,
    prefect_harness: None,
) -> Iterator[TwoShops]:
    from tests.support.stack import build_stack

    builder = build_stack(tmp_path, monkeypatch, tryton_server, shop_names=("bucuresti", "cluj"), stores=STORES)
    stack = next(builder)
    monkeypatch.setattr(overrides, "unpaced", True)
    try:
        with tryton_server.session() as session:
            yield TwoShops(stack, session, tryton_server.manifest, [])
    finally:
        next(builder, None)  # stops the shops


def _figures(runs: list[tuple[str, RunSummary]]) -> str:
    return "\n".join(
        f"  {store:9} {s.flow:11} {s.seconds:6.2f} s  shop r/w {s.shop_reads:3}/{s.shop_writes:3}  "
        f"ERP r/w {s.erp_reads:3}/{s.erp_writes:2}  created {s.created}"
        for store, s in runs
    )


def test_two_shops_share_one_tryton(two_shops: TwoShops) -> None:
    t = two_shops
    started = time.monotonic()
    # Our own products: stocks that differ between the warehouses (seeded records are never changed).
    mixed, only_wh = unique_code("E2E-2S"), unique_code("E2E-2S")
    create_stocked_product(t.session, t.manifest, mixed, {"WH": 12, "WH2": 5}, list_price=D("25.00"))
    create_stocked_product(t.session, t.manifest, only_wh, {"WH": 3}, list_price=D("40.00"))

    # ---- products: the catalogue under each shop's SKU scheme and prices
    for store in STORES:
        first = t.run("products", store)
        assert first.created > 30 and first.shop_writes >= first.created and first.erp_writes == 0
    units = {store: t.units(store) for store in STORES}
    assert all(sku.startswith("CJ-") for sku in units["cluj"])
    assert not any(sku.startswith("CJ-") for sku in units["bucuresti"])
    for store in STORES:
        prefix, priced = PREFIX[store], store == "cluj"
        for sku, list_price, vat in [
            (mixed, D("25.00"), D(19)),
            (only_wh, D("40.00"), D(19)),
            *((s.sku, s.list_price, D(s.vat)) for s in seed.SEED_PRODUCTS),
        ]:
            net = CLUJ_LIST.price(list_price) if priced else list_price
            unit = units[store][prefix + sku]
            assert (D(str(unit["price_net"])), D(str(unit["price_gross"]))) == (net, gross_from_net(net, vat)), (
                store,
                sku,
            )
    assert units["cluj"]["CJ-" + mixed]["price_net"] == 23.75  # 25.00 x 0.95
    assert units["cluj"]["CJ-TRY-SHOE-44"]["price_net"] == 284.53  # a variant's own list price 299.50 x 0.95

    # ---- stock: each shop sees its own warehouse only
    for store in STORES:
        t.run("stock", store)
    units = {store: t.units(store) for store in STORES}
    for store in STORES:
        expected = {mixed: 12, only_wh: 3} if store == "bucuresti" else {mixed: 5, only_wh: 0}
        expected |= {
            s.sku: (s.stock_wh if store == "bucuresti" else s.stock_wh2) for s in seed.SEED_PRODUCTS if s.active
        }
        assert {sku: units[store][PREFIX[store] + sku]["stock"] for sku in expected} == expected, store

    # ---- orders: the same shop order id in both shops
    order_id = str(10_000_000 + uuid.uuid4().int % 89_999_999)
    email = f"ana-{uuid.uuid4().hex[:8]}@example.ro"
    for store, quantity in (("bucuresti", 2), ("cluj", 1)):
        # adjust_stock=False: the shop's stock moves only through the sync, so what it shows proves the ERP
        t.sim(store).add_order(
            {
                **BUYER,
                "id": order_id,
                "customer_email": email,
                "shipping_amount": 15,
                "line_items": [{"product_sku": PREFIX[store] + mixed, "quantity": quantity}],
            },
            adjust_stock=False,
        )
    # cluj's order as if an earlier run had sent it and died before the answer: the run looks it up first, by
    # ITS reference - bucuresti's sale, imported just before, must not be taken for it
    state = state_store(t.stack.settings.state.url.get())
    state.journal_claim("cluj", order_id, None)
    state.journal_update("cluj", order_id, attempts=1, state="pending")
    for store in STORES:
        placed = t.run("orders", store)
        assert (placed.created, placed.failed) == (1, 0), placed.message
        assert placed.details["stock_skus"] == [mixed]  # the stock sub-flow ran for the order's SKU
    references = [f"B-{order_id}", f"C-{order_id}"]
    sales = t.sales([*references, order_id])
    assert sorted(sales) == references  # two sales, none under the bare shop order id
    wh = {code: t.manifest["warehouses"][code] for code in ("WH", "WH2")}
    product_id = t.session.call("model.product.product.search", [("code", "=", mixed)], 0, 1, None, t.session.context)[
        0
    ]
    for store, reference in zip(STORES, references, strict=True):
        sale, zone = sales[reference], wh[WAREHOUSE[store]]
        assert sale["state"] == "processing" and sale["warehouse"] == zone["warehouse"]
        # the reservation: the shipment's move out of that warehouse's storage zone (the other one is untouched)
        shipments = t.session.call(
            "model.stock.shipment.out.read",
            sale["shipments"],
            ["warehouse", "inventory_moves.product", "inventory_moves.from_location"],
            t.session.context,
        )
        assert [
            (s["warehouse"], [(m["product"], m["from_location"]) for m in s["inventory_moves."]]) for s in shipments
        ] == [(zone["warehouse"], [(product_id, zone["storage"])])]
        line = next(line for line in sale["lines."] if line["product"] == product_id)
        assert line["unit_price"] == (CLUJ_LIST.price(D("25.00")) if store == "cluj" else D("25.00"))
        journal = state.journal_get(store, order_id)
        assert journal is not None and journal.erp_order_id == str(sale["id"])  # keyed by the shop order id
    assert sales[references[1]]["price_list"] == t.manifest["price_lists"][CLUJ_LIST.name]
    assert sales[references[0]]["price_list"] is None
    assert sales[references[0]]["party"] == sales[references[1]]["party"]  # one buyer, one party in the ERP
    # after the stock sync each shop's stock dropped by its own order only
    units = {store: t.units(store) for store in STORES}
    assert (units["bucuresti"][mixed]["stock"], units["cluj"]["CJ-" + mixed]["stock"]) == (12 - 2, 5 - 1)
    assert (units["bucuresti"][only_wh]["stock"], units["cluj"]["CJ-" + only_wh]["stock"]) == (3, 0)

    # ---- re-runs write nothing, on either side
    for store in STORES:
        for flow in ("products", "stock", "orders"):
            again = t.run(flow, store)
            assert (again.shop_writes, again.erp_writes, again.created) == (0, 0, 0), (store, flow, again.details)
    assert sorted(t.sales(references)) == references
    print(f"\ntwo shops, one Tryton: {time.monotonic() - started:.1f} s\n{_figures(t.runs)}")
