"""A desktop-ERP stack for the files tests: a simulated MerchantPro shop on loopback, an inbox and an outbox on
disk (or on an SFTP server), and an ``erpsync.toml`` with ``[erp] type = "files"`` that ERPSYNC_CONFIG names."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import erpsync.runtime.store_runtime as runtime_module
from erpsync.app.flowrun import run_flow
from erpsync.connectors.http import reset_shared_limiters
from erpsync.core.state import StateStore
from erpsync.core.summary import RunState, RunSummary
from erpsync.dev.stack import SimShop, _toml_value, start_shop, write_config
from erpsync.runtime.store_runtime import overrides
from tests.files.exports import csv_bytes, drop, stock_rows

STORE = "main"
VAT_21 = 5  # the simulated shop's "TVA 21%"
CODES = [f"P-{i:02d}" for i in range(10)]
BUYER = {
    "customer_email": "ana.popescu@example.ro",
    "billing_type": "individual",
    "billing_name": "Ana Popescu",
    "billing_address": "Str. Lalelelor 4",
    "billing_city": "Bucuresti",
    "billing_postal_code": "010101",
    "billing_country_code": "RO",
    "billing_phone": "0722000111",
    "shipping_as_billing": True,
}


@dataclass
class FilesStack:
    shop: SimShop
    inbox: Path  # where the test drops exports (the local inbox, or the SFTP server's folder on disk)
    outbox: Path
    state_url: str
    config_path: Path

    @property
    def sim(self) -> Any:
        return self.shop.sim

    @property
    def state(self) -> StateStore:
        return runtime_module.state_store(self.state_url)

    def run(self, flow: str = "stock", *, ok: bool = True, **params: Any) -> RunSummary:
        from erpsync.flows.registry import load_flow

        summary = run_flow(load_flow(flow), flow, STORE, params)
        if ok:
            assert summary.state is RunState.COMPLETED, summary.message
        return summary

    def export(self, quantities: Mapping[str, Any], name: str = "stoc.csv", *, done: bool = True) -> Path:
        """The ERP's export: CP1250, ';', decimal commas, WinMentor's headers."""
        return drop(self.inbox, name, csv_bytes(stock_rows(dict(quantities))), done=done)

    def shop_stock(self) -> dict[str, Any]:
        return {p["sku"]: p.get("stock") for p in self.sim.products.values() if p.get("sku") in CODES}

    def order(self, lines: Mapping[str, int]) -> str:
        payload = {
            **BUYER,
            "payment_status": "paid",
            "payment_method_code": "wire",
            "shipping_status": "awaiting",
            "shipping_amount": 15,
            "line_items": [{"product_sku": sku, "quantity": qty} for sku, qty in lines.items()],
        }
        order_id = str(self.sim.add_order(payload)["id"])
        self.sim.orders[order_id] = {**self.sim.orders[order_id], "shipping_tax_percent": 21}
        return order_id

    def outbox_files(self) -> list[Path]:
        return sorted(p for p in self.outbox.iterdir() if p.is_file() and not p.name.startswith("."))


def files_stack_factory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., FilesStack]]:
    """``make(erp=..., inbox=..., outbox=...)``: ``erp`` extra ``[erp]`` keys; ``inbox``/``outbox`` the folders the
    test sees (default ``tmp_path/inbox`` and ``/outbox``, also what the config names unless ``erp`` says)."""
    shops: list[SimShop] = []
    reset_shared_limiters()

    def make(
        *,
        erp: Mapping[str, Any] | None = None,
        inbox: Path | None = None,
        outbox: Path | None = None,
        store: Mapping[str, Any] | None = None,
    ) -> FilesStack:
        shop = start_shop(STORE)
        shops.append(shop)
        for sku in CODES:
            shop.sim.add_product(
                {"name": f"Produs {sku}", "sku": sku, "price_gross": 121, "tax_id": VAT_21, "stock": 0}
            )
        inbox = inbox or tmp_path / "inbox"
        outbox = outbox or tmp_path / "outbox"
        inbox.mkdir(parents=True, exist_ok=True)
        outbox.mkdir(parents=True, exist_ok=True)
        state_url = f"sqlite:///{tmp_path / 'state.db'}"
        keys = {
            "type": "files",
            "inbox": str(inbox),
            "outbox": str(outbox),
            "cache_dir": str(tmp_path / "cache"),
            "stock": {"pattern": "stoc*.csv", "preset": "winmentor", "encoding": "cp1250", "decimal": ","},
            **(erp or {}),
        }
        tables = {k: keys.pop(k) for k in ("stock", "orders", "status") if k in keys}
        path = write_config(
            tmp_path / "erpsync.toml",
            erp=keys,
            shops=[shop],
            state_url=state_url,
            stores={STORE: {"warehouses": ["WH"], **(store or {})}},
        )
        # write_config nests "stock"/"orders" under [stores]: the [erp] sub-tables go in as inline tables
        inline = "".join(f"{key} = {_toml_value(value)}\n" for key, value in tables.items())
        path.write_text(path.read_text().replace("[erp]\n", f"[erp]\n{inline}", 1))
        monkeypatch.setenv("ERPSYNC_CONFIG", str(path))
        monkeypatch.setattr(overrides, "unpaced", True)
        return FilesStack(shop, inbox, outbox, state_url, path)

    yield make
    for shop in shops:
        shop.stop()
    reset_shared_limiters()
