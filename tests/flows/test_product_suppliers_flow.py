"""The product flow sends a product's main ERP supplier to the store's ``supplier_field``, and only then.

The simulated shop, like a shop without the field, drops it (the request carries ``ignore_nonexistent_fields=1``)
and never returns it; it keeps what was sent in ``sim.ignored_product_fields`` for these tests. Part 1: the
in-memory ERP (suppliers changed at will); part 2: the real Tryton and its seeded supplier.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import erpsync.runtime.store_runtime as runtime_module
from erpsync.core.models import Product, ProductSupplier
from erpsync.core.summary import RunState
from erpsync.dev import tryton_seed as seed
from erpsync.dev.stack import SimShop, start_shop, write_config
from erpsync.runtime.store_runtime import overrides
from erpsync.testing.memory_erp import PRODUCTS, MemoryErp
from tests.flows.test_products_flow import DUMMY_ERP, TrytonStack, run, shop_products
from tests.flows.test_products_flow import tryton_stack as tryton_stack

D = Decimal
FURNIZOR = ProductSupplier(erp_id="7", name="Furnizor Demo SRL")
ALT = ProductSupplier(erp_id="8", name="Alt Furnizor SA")


def sent(sim: Any) -> dict[str, dict[str, Any]]:
    """What the shop was sent beyond the fields it knows, by SKU."""
    skus = {p["id"]: p["sku"] for p in sim.products.values()}
    return {skus[pid]: fields for pid, fields in sim.ignored_product_fields.items()}


# =============================================================================================== part 1


@pytest.fixture
def supplier_stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_harness: None
) -> Iterator[Callable[[str], tuple[SimShop, MemoryErp]]]:
    """``configure(supplier_field)``: one simulated shop and one ERP that links products to suppliers (kept
    across calls: a call only rewrites the configuration)."""
    shop = start_shop("main")
    erp = MemoryErp(capabilities=replace(PRODUCTS, product_suppliers=True))
    state_url = f"sqlite:///{tmp_path / 'state.db'}"
    monkeypatch.setattr(runtime_module, "make_erp", lambda settings, **options: erp.fresh())
    monkeypatch.setattr(overrides, "unpaced", True)

    def configure(supplier_field: str) -> tuple[SimShop, MemoryErp]:
        stores = {"main": {"products": {"supplier_field": supplier_field}}}
        path = write_config(tmp_path / "erpsync.toml", erp=DUMMY_ERP, shops=[shop], state_url=state_url, stores=stores)
        monkeypatch.setenv("ERPSYNC_CONFIG", str(path))
        return shop, erp

    yield configure
    shop.stop()


def product(sku: str, supplier: ProductSupplier | None) -> Product:
    return Product(sku=sku, name=f"Produs {sku}", vat_rate=D("19"), price_net=D("10"), supplier=supplier)


def test_the_supplier_goes_to_the_shop_only_when_configured_and_when_it_changed(
    supplier_stack: Callable[[str], tuple[SimShop, MemoryErp]],
) -> None:
    shop, erp = supplier_stack("")
    erp.data.put(product("A-1", FURNIZOR))
    erp.data.put(product("B-2", None))
    first = run()
    assert first.state is RunState.COMPLETED and first.created == 2, first.message
    assert sent(shop.sim) == {}  # not configured: never sent

    supplier_stack("manufacturer")
    shop.sim.stats.reset()
    configured = run(full=True)  # the shop's products are read back: they do not carry the field
    assert configured.state is RunState.COMPLETED, configured.message
    assert sent(shop.sim) == {"A-1": {"manufacturer": "Furnizor Demo SRL"}}  # B-2 has none: nothing to send
    assert shop.sim.stats.count("PATCH /products/{id}") == 1 and configured.updated == 1

    shop.sim.stats.reset()
    assert run(full=True).shop_writes == 0  # decided from what was pushed, not from the shop's read
    assert shop.sim.stats.writes == 0

    erp.data.edit("A-1", supplier=ALT)
    erp.data.put(product("C-3", FURNIZOR))
    shop.sim.stats.reset()
    changed = run()
    assert (changed.updated, changed.created) == (1, 1), changed.details
    assert sent(shop.sim)["A-1"] == {"manufacturer": "Alt Furnizor SA"}
    assert sent(shop.sim)["C-3"] == {"manufacturer": "Furnizor Demo SRL"}  # with the create itself
    assert shop.sim.stats.count("POST /products") == 1 and shop.sim.stats.count("PATCH /products/{id}") == 1
    assert shop_products(shop.sim)["A-1"]["name"] == "Produs A-1"  # the rest of the product is untouched

    erp.data.edit("A-1", supplier=None)
    assert run().updated == 1 and sent(shop.sim)["A-1"] == {"manufacturer": ""}  # removed in the ERP: cleared


# =============================================================================================== part 2


def test_e2e_tryton_products_carry_the_seeded_supplier_into_the_shop(tryton_stack: TrytonStack) -> None:
    t = tryton_stack
    t.configure(products={"supplier_field": "manufacturer"})
    first = run()
    assert first.created >= 33, first.message
    shown = sent(t.sim)
    for sku in seed.SUPPLIED_SKUS:
        assert shown.get(sku) == {"manufacturer": seed.SUPPLIER.name}, sku
    assert "TRY-0026" not in shown and "TRY-TSHIRT" not in shown  # no supplier: nothing sent
    t.sim.stats.reset()
    assert run(full=True).shop_writes == 0 and t.sim.stats.writes == 0
