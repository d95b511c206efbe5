"""The product flow end to end.

Part 1 runs the real flow (Prefect harness, simulated shop over loopback) against the in-memory ERP
(``erpsync.testing.memory_erp``, products only) to pin the rules that need an ERP to misbehave (duplicate SKUs,
unreadable rows); part 2 runs it against the real Tryton (the session's server: every test creates its own
products, never touches the seeded ones) in each direction, and kills it mid-run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

import erpsync.runtime.store_runtime as runtime_module
from erpsync.app.flowrun import run_flow
from erpsync.core.models import Product, RowError, Variant
from erpsync.core.state import StateStore
from erpsync.core.summary import RunState, RunSummary
from erpsync.dev.stack import SimShop, Stack, start_shop, tryton_erp, write_config
from erpsync.dev.tryton import JsonRpcSession, TrytonServer
from erpsync.flows.products import product_sync
from erpsync.runtime.store_runtime import overrides
from erpsync.tasks.product_writes import CRASH_EXIT_CODE, CRASH_HOOK_ENV
from erpsync.tasks.products import ERP_CURSOR, PRODUCT, PUSHED_ERP, SHOP_CURSOR
from erpsync.testing._catalogue import iso
from erpsync.testing.memory_erp import PRODUCTS, MemoryErp
from tests.flows.run_helpers import artifact, expire_leases
from tests.tryton_fixture import create_stocked_product, unique_code

ROOT = Path(__file__).resolve().parents[2]
D = Decimal
DUMMY_ERP = {"type": "tryton", "url": "http://127.0.0.1:9", "database": "unused", "password": "literal:x"}


def run(full: bool = False) -> RunSummary:
    return run_flow(product_sync, "products", "main", {"full": full})


def shop_products(sim: Any) -> dict[str, dict[str, Any]]:
    """The simulated shop's products by SKU (a SKU listed twice would fail the test)."""
    counts = Counter(p["sku"] for p in sim.products.values())
    assert [sku for sku, n in counts.items() if n > 1] == []
    return {p["sku"]: p for p in sim.products.values()}


def edit_in_shop(sim: Any, sku: str, **fields: Any) -> None:
    """Change a product as a person would in the shop's admin (no API call counted), stamped now."""
    product = next(p for p in sim.products.values() if p["sku"] == sku)
    product.update(fields, date_modified=iso(sim.now()))
    sim._version += 1  # the simulator's cache of filtered lists


def delete_in_shop(shop: SimShop, sku: str) -> None:
    product = next(p for p in shop.sim.products.values() if p["sku"] == sku)
    reply = httpx.delete(f"{shop.url}/api/v2/products/{product['id']}", auth=(shop.api_key, shop.api_secret))
    assert reply.status_code == 204


# =============================================================================================== part 1


@dataclass
class MemoryStack:
    shop: SimShop
    erp: MemoryErp
    state_url: str

    @property
    def sim(self) -> Any:
        return self.shop.sim

    @property
    def state(self) -> StateStore:
        return runtime_module.state_store(self.state_url)


@pytest.fixture
def memory_stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_harness: None
) -> Iterator[Callable[..., MemoryStack]]:
    shops: list[SimShop] = []

    def make(**store: Any) -> MemoryStack:
        shop = start_shop("main")
        shops.append(shop)
        state_url = f"sqlite:///{tmp_path / f'state{len(shops)}.db'}"
        path = write_config(
            tmp_path / "erpsync.toml", erp=DUMMY_ERP, shops=[shop], state_url=state_url, stores={"main": store}
        )
        monkeypatch.setenv("ERPSYNC_CONFIG", str(path))
        erp = MemoryErp(capabilities=PRODUCTS)
        monkeypatch.setattr(runtime_module, "make_erp", lambda settings, **options: erp.fresh())
        monkeypatch.setattr(overrides, "unpaced", True)
        return MemoryStack(shop, erp, state_url)

    yield make
    for shop in shops:
        shop.stop()


def erp_product(sku: str, price: str = "10", vat: str = "19", **changes: Any) -> Product:
    values: dict[str, Any] = {
        "sku": sku,
        "name": f"Produs {sku}",
        "vat_rate": D(vat),
        "price_net": D(price),
        "description": f"descriere {sku}",
    }
    values.update(changes)
    return Product(**values)


def test_bad_records_fail_alone_and_the_run_says_so(memory_stack: Callable[..., MemoryStack]) -> None:
    m = memory_stack()
    m.erp.data.put(erp_product("A-1"))
    m.erp.data.put(
        Product(
            sku="TS",
            name="Tricou",
            vat_rate=D("19"),
            variants=[
                Variant(sku="TS-S", price_net=D("50"), options={"Marime": "S"}),
                Variant(sku="TS-M", price_net=D("52"), options={"Marime": "M"}),
            ],
        )
    )
    m.erp.data.put(erp_product("D-1"))
    m.erp.data.put(erp_product("D-1", price="11"))  # a second ERP record with the same SKU
    m.erp.data.put(erp_product("N-1", price="-3"))
    m.erp.data.put(erp_product("V-1", vat="24"))
    unreadable = RowError(key="template:99", error="a product without a code (SKU)", payload={"id": 99})
    m.erp.data.unreadable_products = [unreadable]

    first = run()
    assert first.state is RunState.PARTIAL, first.message
    assert (first.created, first.failed) == (2, 4)
    assert set(shop_products(m.sim)) == {"A-1", "TS"}
    failures = {f.key: f.error for f in m.state.open_failures("main", PRODUCT)}
    assert set(failures) == {"D-1", "N-1", "V-1", "template:99"}
    assert "duplicate SKU in the ERP" in failures["D-1"]
    assert "negative price of N-1 -3.00" in failures["N-1"]
    assert "unknown VAT rate 24%" in failures["V-1"]
    assert "without a code" in failures["template:99"]
    table = artifact("products-main-failures")
    assert table is not None
    rows = json.loads(table.data) if isinstance(table.data, str) else table.data
    assert {row["sku"] for row in rows} == set(failures)
    # a failed record without a time holds the ERP cursor: nothing is skipped past it
    assert m.state.get_cursor("main", ERP_CURSOR) is None

    m.erp.data.edit("N-1", price_net=D("3"))
    m.erp.data.unreadable_products = []
    second = run()
    assert (second.created, second.failed, second.shop_writes) == (1, 2, 1)
    assert second.details["resolved_failures"] == 2
    assert {f.key for f in m.state.open_failures("main", PRODUCT)} == {"D-1", "V-1"}
    assert m.state.get_cursor("main", ERP_CURSOR) is not None  # held back to the oldest failed record only


def test_prefix_and_hook_apply_before_writing(memory_stack: Callable[..., MemoryStack]) -> None:
    m = memory_stack(sku_prefix="MP-", products={"hook": "tests.unit.test_product_mapping:charm_prices"})
    m.erp.data.put(erp_product("A-1", price="21"))
    m.erp.data.put(erp_product("B-2", name="DISCONTINUED b"))
    summary = run()
    assert summary.state is RunState.COMPLETED, summary.message
    products = shop_products(m.sim)
    assert set(products) == {"MP-A-1"}
    assert (products["MP-A-1"]["price_gross"], products["MP-A-1"]["price_net"]) == (24.9, 20.92)
    assert summary.skipped == 1 and summary.details["skipped"] == {"B-2": "left out by the hook"}
    units = {u.erp_id: u for u in m.state.links("main", "unit")}
    assert units["A-1"].sku == "MP-A-1"
    assert run().shop_writes == 0


def test_both_ways_each_side_keeps_its_fields(memory_stack: Callable[..., MemoryStack]) -> None:
    m = memory_stack(products={"direction": "both", "create_in_erp": True})
    m.erp.data.put(erp_product("A-1"))
    m.sim.add_product(
        {"name": "Din magazin", "sku": "S-1", "price_gross": 119, "tax_id": 1, "description": "<p>creat in magazin</p>"}
    )
    first = run()
    assert first.state is RunState.COMPLETED, first.message
    assert first.created == 2  # A-1 in the shop, S-1 in the ERP
    created_in_erp = m.erp.data.by_sku("S-1")
    assert created_in_erp is not None and created_in_erp.price_gross == D("119.00")
    assert created_in_erp.description == "<p>creat in magazin</p>"
    assert run().shop_writes == 0 and m.erp.counters.writes == 0

    # Both sides change the price (the ERP owns it) and the description (the shop owns it).
    shop_id = next(p["id"] for p in m.sim.products.values() if p["sku"] == "A-1")
    edit_in_shop(m.sim, "A-1", price_net=1.0, price_gross=1.19, description="<p>textul magazinului</p>")
    m.erp.data.edit("A-1", price_net=D("20"), price_gross=D("23.80"), description="text din ERP")
    settled = run()
    assert (settled.shop_writes, settled.erp_writes, settled.updated) == (1, 1, 2)
    in_shop = m.sim.products[shop_id]
    in_erp = m.erp.data.by_sku("A-1")
    assert in_erp is not None
    assert (in_shop["price_net"], in_shop["price_gross"], in_shop["description"]) == (
        20,
        23.8,
        "<p>textul magazinului</p>",
    )
    assert (in_erp.price_net, in_erp.description) == (D("20"), "<p>textul magazinului</p>")
    quiet = run()
    assert (quiet.shop_writes, quiet.erp_writes) == (0, 0)  # neither write echoes back as a change
    assert m.state.get_pushed("main", PUSHED_ERP).keys() >= {"A-1", "S-1"}


def test_a_product_deleted_in_the_shop_is_created_again_once(memory_stack: Callable[..., MemoryStack]) -> None:
    m = memory_stack()
    m.erp.data.put(erp_product("A-1"))
    assert run().created == 1
    delete_in_shop(m.shop, "A-1")
    m.erp.data.edit("A-1", name="Cana noua")
    gone = run()
    assert gone.failed == 1 and gone.shop_writes == 1  # the PATCH answered 404
    [failure] = m.state.open_failures("main", PRODUCT)
    assert failure.key == "A-1" and "404" in failure.error
    assert m.state.links("main", PRODUCT) == [] and m.state.links("main", "unit") == []
    again = run()  # looked up by SKU first (not there), then created once
    assert (again.created, again.failed) == (1, 0), again.message
    [new] = shop_products(m.sim).values()
    assert new["name"] == "Cana noua"
    [link] = m.state.links("main", PRODUCT)
    assert link.shop_id == str(new["id"])
    assert m.state.open_failures("main", PRODUCT) == []


def test_a_failed_shop_product_is_retried_by_id_without_holding_the_shop_cursor(
    memory_stack: Callable[..., MemoryStack],
) -> None:
    m = memory_stack(sku_prefix="MP-", products={"direction": "both", "create_in_erp": True})
    m.sim.add_product(
        {
            "name": "Tricou",
            "sku": "MP-TS",
            "type": "multi_variant",
            "tax_id": 1,
            "variants": [
                {"sku": "MP-TS-S", "price_gross": 50, "variant_options": [{"name": "Marime", "value": "S"}]},
                {"sku": "TS-M", "price_gross": 50, "variant_options": [{"name": "Marime", "value": "M"}]},
            ],
        }
    )
    first = run()
    assert first.failed == 1 and m.erp.data.by_sku("TS") is None
    [failure] = m.state.open_failures("main", PRODUCT)
    assert failure.key == "TS" and "TS-M does not carry the store's SKU prefix 'MP-'" in failure.error
    assert m.state.get_cursor("main", SHOP_CURSOR) is not None  # the failed product does not hold it

    product = next(iter(m.sim.products.values()))
    product["date_modified"] = "2025-01-01T10:00:00+02:00"  # out of the next read's window
    m.sim._version += 1
    again = run()  # read again by id, still failing
    assert again.failed == 1 and again.details["shop_products_read"] == 1
    assert m.state.open_failures("main", PRODUCT)[0].attempts == 2

    product["variants"][1]["sku"] = "MP-TS-M"
    m.sim._sku["MP-TS-M"] = m.sim._sku.pop("TS-M")
    fixed = run()
    assert (fixed.failed, fixed.created) == (0, 1), fixed.message
    created = m.erp.data.by_sku("TS")
    assert created is not None and [v.sku for v in created.variants] == ["TS-S", "TS-M"]
    assert m.state.open_failures("main", PRODUCT) == []


def test_a_sku_taken_by_another_erp_record_is_a_duplicate_until_the_old_one_is_gone(
    memory_stack: Callable[..., MemoryStack],
) -> None:
    m = memory_stack()
    yesterday = datetime.now(UTC) - timedelta(days=1)
    m.erp.data.clock = lambda: yesterday  # the old record last changed before the runs' windows
    old = m.erp.data.put(erp_product("A-1"))
    m.erp.data.clock = lambda: datetime.now(UTC)
    assert run().created == 1
    shop_id = str(next(iter(m.sim.products)))
    new = m.erp.data.put(erp_product("A-1", price="99"))  # a second ERP record with the SKU; the old one unchanged
    clash = run()
    assert clash.failed == 1 and clash.shop_writes == 0 and clash.details["erp_catalogue_read_to_compare"]
    assert "duplicate SKU in the ERP" in m.state.open_failures("main", PRODUCT)[0].error
    assert next(iter(m.sim.products.values()))["price_net"] == 10  # the shop product was not overwritten

    del m.erp.data.products[old.erp_id or ""]  # the old record is gone: the SKU now belongs to the new one
    m.erp.data.edit("A-1", name="Cana noua")
    moved = run()
    assert (moved.failed, moved.updated, moved.created) == (0, 1, 0), moved.message
    product = next(iter(m.sim.products.values()))
    assert (product["name"], product["price_net"]) == ("Cana noua", 99)
    [link] = m.state.links("main", PRODUCT)
    assert (link.shop_id, link.erp_id) == (shop_id, new.erp_id)
    assert m.state.open_failures("main", PRODUCT) == []


def test_a_create_the_shop_refuses_fails_alone(memory_stack: Callable[..., MemoryStack]) -> None:
    m = memory_stack()
    m.sim.add_product({"name": "Tricou vechi", "sku": "TS-S", "price_gross": 10, "tax_id": 1})
    m.erp.data.put(
        Product(
            sku="TS",
            name="Tricou",
            vat_rate=D("19"),
            variants=[Variant(sku="TS-S", price_net=D("50")), Variant(sku="TS-M", price_net=D("50"))],
        )
    )
    m.erp.data.put(erp_product("B-1"))
    summary = run()
    assert (summary.created, summary.failed, summary.state) == (1, 1, RunState.PARTIAL)
    [failure] = m.state.open_failures("main", PRODUCT)
    assert failure.key == "TS" and "already used by another product" in failure.error
    assert set(shop_products(m.sim)) == {"TS-S", "B-1"}


# =============================================================================================== part 2


@dataclass
class TrytonStack:
    stack: Stack
    session: JsonRpcSession
    manifest: dict[str, Any]

    @property
    def shop(self) -> SimShop:
        return self.stack.shop()

    @property
    def sim(self) -> Any:
        return self.shop.sim

    @property
    def state(self) -> StateStore:
        return runtime_module.state_store(self.stack.settings.state.url.get())

    def configure(self, **store: Any) -> None:
        """Rewrite the stack's configuration with these keys for store "main"."""
        assert self.stack.tryton is not None
        write_config(
            self.stack.config_path,
            erp=tryton_erp(self.stack.tryton),
            shops=list(self.stack.shops.values()),
            state_url=self.stack.settings.state.url.get(),
            stores={"main": store},
        )

    def call(self, method: str, *params: Any) -> Any:
        return self.session.call(method, *params, self.session.context)

    def basic(self, price: str = "25.00") -> str:
        """A new basic product of our own in Tryton (VAT 19 %); its SKU."""
        sku = unique_code("PRD")
        create_stocked_product(self.session, self.manifest, sku, {}, D(price))
        return sku

    def template(self, sizes: tuple[str, ...] = ("S", "M"), price: str = "40.00") -> str:
        """A new template of our own with one variant per size (codes SKU-S, SKU-M ...); its SKU."""
        code, unit = unique_code("TPL"), self.manifest["unit"]
        self.call(
            "model.product.template.create",
            [
                {
                    "name": f"Tricou {code}",
                    "code": code,
                    "type": "goods",
                    "salable": True,
                    "purchasable": True,
                    "default_uom": unit,
                    "sale_uom": unit,
                    "purchase_uom": unit,
                    "list_price": D(price),
                    "account_category": self.manifest["account_categories"]["19"],
                    "products": [["create", [{"suffix_code": f"-{size}"} for size in sizes]]],
                }
            ],
        )
        return code

    def template_id(self, code: str) -> int:
        return int(self.call("model.product.template.search", [("code", "=", code)], 0, 1, None)[0])

    def variants(self, code: str) -> list[dict[str, Any]]:
        return list(
            self.call(
                "model.product.product.search_read",
                [("code", "like", f"{code}%")],
                0,
                None,
                [("code", "ASC")],
                ["code", "description", "list_price_used"],
            )
        )


@pytest.fixture
def tryton_stack(
    stack: Stack, tryton_server: TrytonServer, prefect_harness: None, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TrytonStack]:
    monkeypatch.setattr(overrides, "unpaced", True)
    yield TrytonStack(stack, tryton_server.session(), tryton_server.manifest)


def my_failures(state: StateStore, skus: set[str]) -> list[Any]:
    """Open product failures of our own SKUs (other tests' products in the shared Tryton are not ours)."""
    return [f for f in state.open_failures("main", PRODUCT) if f.key in skus]


def test_e2e_erp_to_shop_creates_updates_adds_variants_and_then_writes_nothing(tryton_stack: TrytonStack) -> None:
    t = tryton_stack
    sku, code = t.basic("25.00"), t.template(("S", "M"), "40.00")
    first = run()
    assert first.created >= 2 + 33  # ours and the seeded catalogue (other tests' products too)
    products = shop_products(t.sim)
    basic = products[sku]
    assert (basic["type"], basic["name"], basic["price_net"], basic["price_gross"], basic["tax_id"]) == (
        "basic",
        f"Produs test {sku}",
        25,
        29.75,
        1,
    )
    template_id = t.template_id(sku)
    assert basic["ext_ref"] == str(template_id)
    shirt = products[code]
    assert shirt["type"] == "multi_variant" and shirt["price_net"] is None
    assert [(v["sku"], v["price_net"], v["price_gross"]) for v in shirt["variants"]] == [
        (f"{code}-S", 40, 47.6),
        (f"{code}-M", 40, 47.6),
    ]
    assert [o["value"] for v in shirt["variants"] for o in v["variant_options"]] == ["S", "M"]
    assert products["TRY-0030"]["status"] == "inactive"
    assert len(products["TRY-TSHIRT"]["variants"]) == 3
    link = t.state.find_link("main", PRODUCT, erp_id=str(template_id))
    assert link is not None and link.shop_id == str(basic["id"]) and link.sku == sku
    units = {u.erp_id: u.shop_id for u in t.state.links("main", "unit")}
    assert units[sku] == str(basic["id"])
    assert units[f"{code}-M"] == f"{shirt['id']}:{shirt['variants'][1]['id']}"
    assert my_failures(t.state, {sku, code}) == []

    quiet = run()
    assert (quiet.shop_writes, quiet.created, quiet.updated) == (0, 0, 0), quiet.details

    # Tryton changes: the basic product's name and price; the template gets a third size.
    t.call("model.product.template.write", [template_id], {"name": "Cana mare", "list_price": D("27.50")})
    t.call("model.product.product.create", [{"template": t.template_id(code), "suffix_code": "-L"}])
    t.sim.stats.reset()
    changed = run()
    assert (changed.shop_writes, changed.updated, changed.created) == (2, 2, 0), changed.details
    assert t.sim.stats.count("PATCH /products/{id}") == 2 and t.sim.stats.count("POST /products") == 0
    products = shop_products(t.sim)
    assert (products[sku]["name"], products[sku]["price_net"], products[sku]["price_gross"]) == (
        "Cana mare",
        27.5,
        32.73,
    )  # 27.50 x 1.19 = 32.725, rounded half-up
    assert [v["sku"] for v in products[code]["variants"]] == [f"{code}-S", f"{code}-M", f"{code}-L"]
    units = {u.erp_id: u.shop_id for u in t.state.links("main", "unit")}
    assert units[f"{code}-L"] == f"{products[code]['id']}:{products[code]['variants'][2]['id']}"

    assert run().shop_writes == 0  # what was just written is not read back as a change


def test_e2e_a_shop_whose_replies_lack_tax_value_is_not_rewritten(tryton_stack: TrytonStack) -> None:
    """VAT from the shop: no vat_taxes configured, product replies with tax_id only (an independent implementation
    of the API omits tax_value): the rates come through the shop's tax table, read once per run."""
    t = tryton_stack
    t.sim.omit_tax_value = True
    sku = t.basic("25.00")
    linked = t.basic("30.00")
    t.sim.add_product({"sku": linked, "name": f"Produs test {linked}", "price_gross": 35.7, "tax_id": 1})
    t.sim.stats.reset()
    first = run()
    assert first.created >= 1 + 33 and my_failures(t.state, {sku, linked}) == [], first.details
    assert t.sim.stats.count("GET /taxonomy/taxes") == 1
    products = shop_products(t.sim)
    assert (products[sku]["tax_id"], products[sku]["price_gross"]) == (1, 29.75)  # 19 % -> the shop's tax id 1
    assert t.state.find_link("main", PRODUCT, erp_id=str(t.template_id(linked))) is not None

    t.sim.stats.reset()
    again = run()  # every product was modified today: all read back, each without tax_value
    assert again.details["shop_products_read"] >= 35
    assert (again.shop_writes, again.created, again.updated) == (0, 0, 0), again.details
    assert t.sim.stats.count("PATCH /products/{id}") == 0 and t.sim.stats.count("GET /taxonomy/taxes") == 1


def test_e2e_first_run_links_existing_shop_products_by_sku_without_rewriting(tryton_stack: TrytonStack) -> None:
    t = tryton_stack
    t.configure(products={"create_in_shop": False})
    equal, different = t.basic("25.00"), t.basic("30.00")
    t.sim.add_product(
        {
            "sku": equal,
            "name": f"Produs test {equal}",
            "price_net": 25,
            "price_gross": 29.75,
            "tax_id": 1,
            "description": "<p>textul magazinului</p>",
        }
    )
    t.sim.add_product({"sku": different, "name": f"Produs test {different}", "price_gross": 40, "tax_id": 1})
    t.sim.stats.reset()
    first = run()
    assert first.created == 0 and first.updated == 1 and first.shop_writes == 1, first.details
    assert t.sim.stats.count("PATCH /products/{id}") == 1
    products = shop_products(t.sim)
    assert (products[different]["price_net"], products[different]["price_gross"]) == (30, 35.7)
    assert products[equal]["description"] == "<p>textul magazinului</p>"  # the shop owns the description
    assert "TRY-0001" not in products and first.details["skipped"]["TRY-0001"].startswith("not in the shop")
    for sku in (equal, different):
        link = t.state.find_link("main", PRODUCT, sku=sku)
        assert link is not None and link.shop_id == str(products[sku]["id"])
        assert t.state.find_link("main", "unit", erp_id=sku) is not None
    assert run().shop_writes == 0


def test_e2e_both_ways_with_tryton(tryton_stack: TrytonStack) -> None:
    t = tryton_stack
    t.configure(products={"direction": "both", "create_in_erp": True})
    sku = t.basic("25.00")
    from_shop = unique_code("SHOP")
    t.sim.add_product(
        {
            "sku": from_shop,
            "name": "Creat in magazin",
            "price_gross": 119,
            "tax_id": 1,
            "description": "<p>din magazin</p>",
        }
    )
    first = run()
    assert from_shop not in {f.key for f in t.state.open_failures("main", PRODUCT)}
    [created] = t.variants(from_shop)
    assert (created["code"], created["description"], created["list_price_used"]) == (
        from_shop,
        "<p>din magazin</p>",
        D("100"),
    )
    assert first.erp_writes >= 1 and sku in shop_products(t.sim)
    assert t.state.find_link("main", PRODUCT, sku=from_shop) is not None

    # The price changes in Tryton (it owns it) and in the shop; the description in the shop (it owns it)
    # and in Tryton: each field ends with its owner's value.
    edit_in_shop(t.sim, sku, price_net=1, price_gross=1.19, description="<p>textul magazinului</p>")
    t.call("model.product.template.write", [t.template_id(sku)], {"list_price": D("31.00")})
    [variant] = t.variants(sku)
    t.call(
        "model.product.product.write",
        [t.call("model.product.product.search", [("code", "=", sku)], 0, 1, None)[0]],
        {"description": "scris in Tryton"},
    )
    assert variant["code"] == sku
    settled = run()
    assert (settled.shop_writes, settled.erp_writes) == (1, 1), settled.details
    assert my_failures(t.state, {sku, from_shop}) == []
    product = shop_products(t.sim)[sku]
    assert (product["price_net"], product["price_gross"], product["description"]) == (
        31,
        36.89,
        "<p>textul magazinului</p>",
    )
    assert t.variants(sku)[0]["description"] == "<p>textul magazinului</p>"
    quiet = run()
    assert (quiet.shop_writes, quiet.erp_writes) == (0, 0)


def test_e2e_shop_to_erp_creates_and_updates_in_tryton_and_writes_nothing_to_the_shop(
    tryton_stack: TrytonStack,
) -> None:
    t = tryton_stack
    t.configure(products={"direction": "shop_to_erp", "create_in_erp": True})
    sku = t.basic("25.00")
    t.sim.add_product(
        {
            "sku": sku,
            "name": "Alt nume in magazin",
            "price_gross": 50,
            "tax_id": 1,
            "description": "<p>descriere din magazin</p>",
        }
    )
    shirt = unique_code("SHOPTS")
    sizes = [(f"{shirt}-S", 59.5, "S"), (f"{shirt}-M", 71.4, "M")]
    t.sim.add_product(
        {
            "sku": shirt,
            "name": "Tricou din magazin",
            "type": "multi_variant",
            "tax_id": 1,
            "description": "<p>tricou</p>",
            "variants": [
                {"sku": code, "price_gross": gross, "variant_options": [{"name": "Marime", "value": size}]}
                for code, gross, size in sizes
            ],
        }
    )
    t.sim.stats.reset()
    first = run()
    assert t.sim.stats.writes == 0 and first.shop_writes == 0  # nothing goes to the shop in this direction
    assert first.created == 1 and first.updated == 1 and my_failures(t.state, {sku, shirt}) == []
    [variant] = t.variants(sku)
    assert variant["description"] == "<p>descriere din magazin</p>"
    assert variant["list_price_used"] == D("25")  # the ERP owns the price: not taken from the shop
    assert t.call("model.product.template.read", [t.template_id(sku)], ["name"])[0]["name"] == f"Produs test {sku}"
    made = t.variants(shirt)
    assert [(v["code"], v["list_price_used"], v["description"]) for v in made] == [
        (f"{shirt}-M", D("60"), "<p>tricou</p>"),
        (f"{shirt}-S", D("50"), "<p>tricou</p>"),
    ]
    units = {u.erp_id for u in t.state.links("main", "unit")}
    assert {sku, f"{shirt}-S", f"{shirt}-M"} <= units
    assert run().erp_writes == 0

    edit_in_shop(t.sim, shirt, description="<p>tricou nou</p>")
    changed = run()
    assert changed.updated == 1 and changed.shop_writes == 0
    assert {v["description"] for v in t.variants(shirt)} == {"<p>tricou nou</p>"}
    assert run().erp_writes == 0


def _kill_after_writes(t: TrytonStack, writes: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    from prefect.settings import PREFECT_API_URL

    full_env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value()), **env}
    process = subprocess.Popen(
        [sys.executable, "-m", "erpsync.app.cli", "run", "products", "--store", "main"],
        env=full_env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    return process


def _converged(t: TrytonStack, skus: set[str]) -> dict[str, dict[str, Any]]:
    products = shop_products(t.sim)  # fails on a SKU listed twice
    assert skus <= set(products)
    for sku in skus:
        link = t.state.find_link("main", PRODUCT, sku=sku)
        assert link is not None and link.shop_id == str(products[sku]["id"])
    return products


def test_e2e_killed_mid_run_then_a_rerun_converges_without_duplicates(tryton_stack: TrytonStack) -> None:
    t = tryton_stack
    mine = {t.basic() for _ in range(3)} | {t.template(("S", "M", "L"))}
    process = _kill_after_writes(t, 5, {})
    deadline = time.monotonic() + 120
    while t.sim.stats.applied_writes < 5:
        assert process.poll() is None, process.stderr.read().decode()[-3000:] if process.stderr else ""
        assert time.monotonic() < deadline, "the run made no writes in time"
        time.sleep(0.002)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    if process.stderr:
        process.stderr.close()
    written = len(t.sim.products)
    assert 5 <= written < 33, f"killed too late to prove anything: {written} products in the shop"

    expire_leases(t.state)
    rerun = run()
    products = _converged(t, mine | {"TRY-0001", "TRY-TSHIRT"})
    assert rerun.created == len(products) - written  # the products made before the kill were linked, not made again
    assert run().shop_writes == 0


def test_e2e_killed_between_a_create_and_its_link_converges(tryton_stack: TrytonStack) -> None:
    t = tryton_stack
    mine = {t.basic(), t.template()}
    process = _kill_after_writes(t, 3, {CRASH_HOOK_ENV: "3"})
    code = process.wait(timeout=180)
    error = process.stderr.read().decode()[-3000:] if process.stderr else ""
    if process.stderr:
        process.stderr.close()
    assert code == CRASH_EXIT_CODE, error
    assert len(t.sim.products) == 3 and len(t.state.links("main", PRODUCT)) == 2  # the 3rd was made, not linked

    expire_leases(t.state)
    rerun = run()
    products = _converged(t, mine)
    assert rerun.created == len(products) - 3
    assert len(t.state.links("main", PRODUCT)) == len(products)
    assert run().shop_writes == 0
