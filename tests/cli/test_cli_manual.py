"""erpsync failures list|retry and erpsync resync-order: listing with held marks, JSON, filters, retries and
re-sends through the real flows (simulated shop, in-memory ERP), exit codes, and a light import."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

import erpsync.runtime.store_runtime as runtime_module
from erpsync.app.manual import register_manual_commands
from erpsync.core.order_rules import IN_DOUBT_REASON
from erpsync.core.state import StateStore
from erpsync.dev.stack import SimShop, start_shop, write_config
from erpsync.runtime.store_runtime import overrides
from erpsync.testing.memory_erp import ORDERS, MemoryErp, MemoryErpData

ROOT = Path(__file__).resolve().parents[2]


def make_app() -> typer.Typer:
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

    @app.callback()
    def main() -> None:
        """erpsync (test copy)"""

    register_manual_commands(app)
    return app


@dataclass
class Setup:
    path: Path
    state: StateStore
    shop: SimShop | None = None
    erp: MemoryErp | None = None

    def invoke(self, *args: str) -> Any:
        return CliRunner().invoke(make_app(), [*args, "--config", str(self.path)])


def write(tmp_path: Path, shop: SimShop | None = None, max_attempts: int = 3) -> Path:
    if shop is None:
        text = (
            f"[state]\nurl = 'sqlite:///{tmp_path / 'state.db'}'\n"
            "[erp]\ntype = 'tryton'\ndatabase = 'x'\npassword = 'literal:pw'\n"
            "[[stores]]\nname = 'main'\nurl = 'https://shop.example.ro'\napi_key = 'k'\napi_secret = 'literal:s'\n"
            f"[stores.orders]\nmax_attempts = {max_attempts}\n"
        )
        path = tmp_path / "erpsync.toml"
        path.write_text(text)
        return path
    return write_config(
        tmp_path / "erpsync.toml",
        erp={"type": "tryton", "url": "http://127.0.0.1:9", "database": "fake", "password": "literal:fake-pw"},
        shops=[shop],
        state_url=f"sqlite:///{tmp_path / 'state.db'}",
        stores={"main": {"orders": {"max_attempts": max_attempts}}},
    )


@pytest.fixture
def offline(tmp_path: Path) -> Iterator[Setup]:
    path = write(tmp_path)
    state = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
    yield Setup(path, state)
    state.close()


def test_list_marks_held_failures_filters_and_prints_json(offline: Setup) -> None:
    state = offline.state
    for _ in range(3):
        state.record_failure("main", "order", "42209911", "tryton: 42209911: unknown SKU 'X'", {"id": "42209911"})
    state.record_failure("main", "order", "95750870.3", IN_DOUBT_REASON)
    for _ in range(4):
        state.record_failure("main", "order", "111", "transient: tryton did not answer")
    state.record_failure("main", "stock", "SKU-1", "negative quantity")
    state.record_failure("main", "order", "done", "x")
    state.resolve_failure("main", "order", "done")

    result = offline.invoke("failures", "list")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:5] == ["store", "entity", "key", "attempts", "state"]
    by_key = {line.split()[2]: line.split() for line in lines[1:-1]}
    assert set(by_key) == {"42209911", "95750870.3", "111", "SKU-1"}  # resolved ones are not listed
    assert by_key["42209911"][4] == "held" and by_key["95750870.3"][4] == "held"
    assert by_key["111"][4] == "retrying"  # transient trouble never holds an order
    assert by_key["SKU-1"][4] == "retrying"
    assert lines[-1].startswith("4 open failure(s), 2 held")

    result = offline.invoke("failures", "list", "--entity", "order", "--json", "--store", "main")
    rows = json.loads(result.output)
    assert [r["key"] for r in rows] == ["42209911", "95750870.3", "111"]
    assert rows[0]["attempts"] == 3 and rows[0]["held"] is True and "unknown SKU" in rows[0]["error"]


def test_list_with_nothing_open_and_an_unknown_store(offline: Setup) -> None:
    assert offline.invoke("failures", "list").output.strip() == "no open failures"
    result = offline.invoke("failures", "list", "--store", "nope")
    assert result.exit_code == 2 and "no store named 'nope'" in result.output


@pytest.fixture
def online(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_harness: None) -> Iterator[Setup]:
    shop = start_shop("main")
    path = write(tmp_path, shop, max_attempts=1)
    erp = MemoryErp(MemoryErpData(known_skus=None), capabilities=ORDERS)
    monkeypatch.setenv("ERPSYNC_CONFIG", str(path))
    monkeypatch.setattr(runtime_module, "make_erp", lambda *_a, **_k: erp)
    monkeypatch.setattr(overrides, "unpaced", True)
    monkeypatch.setattr("erpsync.flows.orders.refresh_stock", lambda store, skus: "")
    monkeypatch.setattr("erpsync.flows.manual.refresh_stock", lambda store, skus: "")
    try:
        yield Setup(path, runtime_module.state_store(f"sqlite:///{tmp_path / 'state.db'}"), shop, erp)
    finally:
        shop.stop()


def test_retry_and_resync_order_resend_held_orders_with_exit_codes(online: Setup) -> None:
    from erpsync.app.flowrun import run_flow
    from erpsync.flows.registry import load_flow

    assert online.shop is not None and online.erp is not None
    sim = online.shop.sim
    sim.add_product({"name": "P", "sku": "SKU-A", "price_gross": 119, "tax_id": 1, "stock": 10})
    ids = [
        str(
            sim.add_order(
                {
                    "customer_email": f"b{n}@example.ro",
                    "billing_name": "B",
                    "shipping_status": "awaiting",
                    "line_items": [{"product_sku": "SKU-A", "quantity": 1}],
                }
            )["id"]
        )
        for n in range(3)
    ]
    for order_id in ids:
        online.erp.data.refuse[order_id] = "blocked customer"
    first = run_flow(load_flow("orders"), "orders", "main", {})
    assert first.failed == 3
    assert json.loads(online.invoke("failures", "list", "--json").output)[0]["held"] is True  # max_attempts 1

    still = online.invoke("resync-order", ids[0], "--store", "main")
    assert still.exit_code == 3, still.output  # partially failed: refused again
    assert "resync-order [main] partially_failed" in still.output

    online.erp.data.refuse.clear()
    resent = online.invoke("resync-order", ids[0], "--store", "main", "--json")
    assert resent.exit_code == 0, resent.output
    summary = json.loads(resent.output.strip().splitlines()[-1])
    assert (summary["flow"], summary["created"]) == ("resync-order", 1)
    assert len(online.erp.data.sales_for(ids[0])) == 1

    retried = online.invoke("failures", "retry", ids[1], "--store", "main")
    assert retried.exit_code == 0 and "created 1" in retried.output
    assert len(online.erp.data.sales_for(ids[1])) == 1 and not online.erp.data.sales_for(ids[2])  # only the key given
    everything = online.invoke("failures", "retry", "--entity", "order")
    assert everything.exit_code == 0 and "created 1" in everything.output
    assert all(len(online.erp.data.sales_for(i)) == 1 for i in ids)
    assert online.invoke("failures", "list").output.strip() == "no open failures"
    assert online.invoke("resync-order", ids[0], "--store", "main").exit_code == 0  # done already: unchanged
    assert len(online.erp.data.sales_for(ids[0])) == 1


def test_importing_the_commands_stays_light() -> None:
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, erpsync.app.manual; "
            "print(','.join(m for m in ('prefect', 'sqlalchemy', 'pandas', 'httpx') if m in sys.modules))",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip() == ""
