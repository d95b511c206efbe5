"""Shared set-up of the stock and reconcile flow tests: a simulated shop + the in-memory ERP."""

from __future__ import annotations

from collections.abc import Generator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from erpsync.core.config import load_config
from erpsync.core.state import StateStore
from erpsync.dev.stack import SimShop, start_shop, write_config
from erpsync.testing.memory_erp import STOCK, MemoryErp

STORE = "main"
FAKE_ERP = {"type": "tryton", "url": "http://127.0.0.1:9", "database": "unused", "password": "literal:unused"}


@dataclass
class FakeStack:
    """One simulated shop and the in-memory ERP, with a config file ERPSYNC_CONFIG points at."""

    shop: SimShop
    erp: MemoryErp
    config_path: Path

    def state(self) -> StateStore:
        from erpsync.runtime.store_runtime import state_store

        return state_store(load_config(self.config_path).state.url.get())

    def shop_stock(self, sku: str) -> Any:
        """The simulator's stock of one unit (basic product or variant), read without an API call."""
        sim = self.shop.sim
        for product in sim.products.values():
            for unit in product.get("variants") or [product]:
                if unit.get("sku") == sku:
                    return unit.get("stock")
        raise KeyError(sku)


def build_fake_stack(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    store: Mapping[str, Any] | None = None,
    **sim_options: Any,
) -> Generator[FakeStack, None, None]:
    """Start the shop, write the config (fresh SQLite state), make every runtime use the in-memory ERP."""
    shop = start_shop(STORE, **sim_options)
    erp = MemoryErp(capabilities=STOCK, page_size=100)
    try:
        path = write_config(
            tmp_path / "erpsync.toml",
            erp=FAKE_ERP,
            shops=[shop],
            state_url=f"sqlite:///{tmp_path / 'state.db'}",
            stores={STORE: dict(store or {})},
        )
        monkeypatch.setenv("ERPSYNC_CONFIG", str(path))
        monkeypatch.setattr("erpsync.runtime.store_runtime.make_erp", lambda _settings, **_options: erp.session())
        yield FakeStack(shop, erp, path)
    finally:
        shop.stop()


def add_basic(shop: SimShop, sku: str, stock: float, **fields: Any) -> str:
    """A basic product in the simulated shop; its id."""
    product = shop.sim.add_product(
        {"name": f"Produs {sku}", "sku": sku, "type": "basic", "stock": stock, "price_gross": 10, **fields}
    )
    return str(product["id"])


def add_multi(shop: SimShop, sku: str, variants: Mapping[str, float]) -> str:
    """A multi-variant product (variant SKU -> stock) in the simulated shop; its id."""
    product = shop.sim.add_product(
        {
            "name": f"Produs {sku}",
            "sku": sku,
            "type": "multi_variant",
            "variants": [
                {"sku": vsku, "stock": stock, "price_gross": 10, "variant_options": [{"name": "Mărime", "value": vsku}]}
                for vsku, stock in variants.items()
            ],
        }
    )
    return str(product["id"])
