"""Pytest fixtures for the real Tryton server, loaded by `tests/conftest.py` as a plugin
(`pytest_plugins = ["tests.tryton_fixture"]`), so every test folder can request them.

`tryton_server` starts ONE trytond per test session on a private copy of the cached seeded database
(first run ever: ~30 s to build the cache; then ~2-3 s). A server that cannot start makes the tests error,
never skip. All tests share that server, so a test that writes must not change what other tests read:
it works on records it creates itself (`create_stocked_product` gives it a product with its own SKU and
stock) and never on the seeded SKUs, whose quantities stay exactly as in `erpsync.dev.tryton_seed`.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from erpsync.dev.tryton import DEFAULT_CACHE_DIR, JsonRpcSession, TrytonServer, start_tryton

CACHE_DIR_ENV = "ERPSYNC_TRYTON_CACHE_DIR"


@pytest.fixture(scope="session")
def tryton_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrytonServer]:
    """One running dev Tryton for the whole session (cache dir: $ERPSYNC_TRYTON_CACHE_DIR or .cache/tryton)."""
    cache_dir = Path(os.environ.get(CACHE_DIR_ENV) or DEFAULT_CACHE_DIR)
    server = start_tryton(tmp_path_factory.mktemp("tryton"), cache_dir=cache_dir)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def tryton_session(tryton_server: TrytonServer) -> Iterator[JsonRpcSession]:
    """A fresh logged-in admin JSON-RPC session (its `context` holds the company and employee)."""
    with tryton_server.session() as session:
        yield session


def unique_code(prefix: str = "E2E") -> str:
    """A SKU/reference no other test (or earlier run on the same server) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10].upper()}"


def unique_ro_vat() -> str:
    """A valid Romanian VAT code (RO + CUI with its check digit) that no other test uses."""
    body = str(uuid.uuid4().int % 10**7 + 10**7)
    padded = body.rjust(9, "0")
    check = sum(int(d) * int(k) for d, k in zip(padded, "753217532", strict=True)) * 10 % 11 % 10
    return f"RO{body}{check}"


def create_stocked_product(
    session: JsonRpcSession,
    manifest: dict[str, Any],
    sku: str,
    stock: dict[str, int],
    list_price: Decimal = Decimal("25.00"),
    vat: int = 19,
) -> int:
    """Create a salable goods product `sku` (VAT `vat` %: a seeded account category's) and put `stock`
    ({warehouse code: qty}) on hand; its id."""
    ctx = session.context
    template_id: int = session.call(
        "model.product.template.create",
        [
            {
                "name": f"Produs test {sku}",
                "code": sku,
                "type": "goods",
                "salable": True,
                "purchasable": True,
                # without a client's on_change, the sale/purchase units must be given explicitly
                "default_uom": manifest["unit"],
                "sale_uom": manifest["unit"],
                "purchase_uom": manifest["unit"],
                "list_price": list_price,
                "account_category": manifest["account_categories"][str(vat)],
                "products": [["create", [{"cost_price": list_price / 2}]]],
            }
        ],
        ctx,
    )[0]
    product_id: int = session.call("model.product.product.search", [("template", "=", template_id)], 0, 1, None, ctx)[0]
    for warehouse_code, quantity in stock.items():
        storage = manifest["warehouses"][warehouse_code]["storage"]
        inventory_id = session.call(
            "model.stock.inventory.create",
            [
                {
                    "location": storage,
                    "lines": [["create", [{"product": product_id, "quantity": float(quantity)}]]],
                }
            ],
            ctx,
        )[0]
        session.call("model.stock.inventory.confirm", [inventory_id], ctx)
    return product_id


def create_supplier_shipment(session: JsonRpcSession, manifest: dict[str, Any], product: int, quantity: int) -> int:
    """A draft supplier shipment of ``quantity`` of ``product`` into WH (receive and do it to book it)."""
    zones = manifest["warehouses"]["WH"]
    shipment: int = session.call(
        "model.stock.shipment.in.create",
        [
            {
                "supplier": manifest["parties"]["supplier"],
                "reference": unique_code("NIR"),
                "warehouse": zones["warehouse"],
                "warehouse_input": zones["input"],
                "warehouse_storage": zones["storage"],
                "incoming_moves": [
                    [
                        "create",
                        [
                            {
                                "product": product,
                                "quantity": float(quantity),
                                "unit": manifest["unit"],
                                "from_location": manifest["locations"]["supplier"],
                                "to_location": zones["input"],
                                "unit_price": Decimal("10.00"),
                                "currency": manifest["currency"],
                            }
                        ],
                    ]
                ],
            }
        ],
        session.context,
    )[0]
    return shipment
