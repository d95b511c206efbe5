"""Issue 11, parts 2 and 3, on the real Tryton (the session's server) and simulated shops.

Part 2: an order billed to a country Tryton lacks fails alone — the orders before and after it are booked, it
is in ``erpsync failures list`` with a reason naming what to create, the run ends Partially failed (exit 3);
once the country exists, ``erpsync failures retry`` books it exactly once.

Part 3: ``erpsync check`` names every missing thing the flows will need (shipping product, the currency the
shop sells in, a country its orders go to, a warehouse, a payment term), one FAIL line each, and exits 1. The
session's Tryton is shared, so nothing is deleted: the configuration names records that are not there.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

from erpsync.dev.stack import start_shop, tryton_erp, write_config
from erpsync.dev.tryton import TrytonServer
from tests.flows.test_orders_flow import PERSON, TrytonStack, make_tryton_stack  # noqa: F401 (a fixture)

ROOT = Path(__file__).resolve().parents[2]
ERPSYNC = [sys.executable, "-m", "erpsync.app.cli"]
ABSENT_COUNTRY = "MD"  # the seeded Tryton has only RO (erpsync/dev/tryton_seeding.py); this test creates MD


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    return subprocess.run([*ERPSYNC, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_e2e_an_order_billed_to_a_country_missing_in_tryton_fails_alone_then_is_retried_once(
    make_tryton_stack: Callable[..., TrytonStack],  # noqa: F811
) -> None:
    t = make_tryton_stack()
    # VAT mapped explicitly (the rates of the shop's orders, old and new), so that only the country can fail
    config = t.stack.config_path
    config.write_text(
        config.read_text() + '\n[stores.products]\nvat_taxes = { "19" = 1, "21" = 1, "11" = 2, "0" = 4 }\n'
    )
    sku = t.product()
    abroad = {**PERSON, "customer_email": f"md-{uuid.uuid4().hex[:8]}@example.md", "billing_country_code": "MD"}
    first, middle, last = t.order(sku, t.buyer()), t.order(sku, abroad), t.order(sku, t.buyer())
    ctx = t.session.context
    assert not t.session.call("model.country.country.search", [("code", "=", ABSENT_COUNTRY)], 0, 1, None, ctx)

    run = _cli("run", "orders", "--store", "main")
    assert run.returncode == 3, run.stdout[-2000:] + run.stderr[-3000:]  # Partially failed
    assert len(t.sales(first)) == 1 and len(t.sales(last)) == 1  # the orders after it were not stalled
    assert t.sales(middle) == []

    listed = _cli("failures", "list", "--store", "main", "--json")
    assert listed.returncode == 0, listed.stderr[-2000:]
    reason = (
        "country 'MD' is not in Tryton: create it under Party > Configuration > Countries (or load the country "
        f"module's data), then `erpsync failures retry --store main {middle}`"
    )
    [row] = [r for r in json.loads(listed.stdout) if r["key"] == middle]
    assert row["entity"] == "order" and row["attempts"] == 1 and not row["held"]
    assert row["error"].endswith(reason), row["error"]
    assert [r["key"] for r in json.loads(listed.stdout)] == [middle]  # the others did not fail

    # A second run before the fix: the order fails again (an attempt more), the others are not touched.
    again = _cli("run", "orders", "--store", "main")
    assert again.returncode == 3
    assert [len(t.sales(i)) for i in (first, middle, last)] == [1, 0, 1]

    t.session.call("model.country.country.create", [{"name": "Moldova", "code": ABSENT_COUNTRY}], ctx)
    retried = _cli("failures", "retry", "--store", "main", middle)
    assert retried.returncode == 0, retried.stdout[-2000:] + retried.stderr[-3000:]
    assert len(t.sales(middle)) == 1 and t.sales(middle)[0]["state"] == "processing"
    assert not [f for f in t.state.open_failures("main", "order") if f.key == middle]
    assert _cli("run", "orders", "--store", "main").returncode == 0
    assert [len(t.sales(i)) for i in (first, middle, last)] == [1, 1, 1]  # exactly once


def test_check_names_each_missing_record_the_flows_need_and_exits_1(
    tmp_path: Path, tryton_server: TrytonServer
) -> None:
    shop = start_shop("main")
    try:
        # The shop sells in USD and ships to Ukraine; neither is in the seeded Tryton (RON and RO only).
        shop.sim.add_product({"name": "Produs", "sku": "SKU-X", "price_gross": 29.75, "tax_id": 1, "stock": 5})
        shop.sim.add_order(
            {
                **PERSON,
                "currency": "USD",
                "billing_country_code": "UA",
                "payment_status": "awaiting",
                "payment_method_code": "cash_delivery",
                "shipping_status": "awaiting",
                "line_items": [{"product_sku": "SKU-X", "quantity": 1}],
            },
            adjust_stock=False,
        )
        config = write_config(
            tmp_path / "erpsync.toml",
            erp=tryton_erp(tryton_server),
            shops=[shop],
            state_url=f"sqlite:///{tmp_path / 'state.db'}",
            stores={
                "main": {
                    "warehouses": ["WH", "NOWH"],
                    "orders": {"shipping_sku": "NO-SUCH-SHIPPING", "payment_methods": {"cash_delivery": "Ramburs"}},
                }
            },
        )
        result = _cli("check", "--config", str(config))
        print(result.stdout, result.stderr)
    finally:
        shop.stop()
    assert result.returncode == 1, result.stdout + result.stderr
    out: dict[str, str] = {}
    for line in result.stdout.splitlines():
        mark, _, rest = line.partition(" ")
        for target in (
            "state",
            "erp (tryton)",
            "store main",
            "erp shipping product",
            "erp currency",
            "erp countries",
            "erp warehouses",
            "erp payment terms",
        ):
            if rest.strip().startswith(target + " ") and target not in out:
                out[target] = mark + " " + rest.strip()[len(target) :].strip()
    # the lines check printed before stay as they were (state, ERP, shop) and say ok
    assert all(out[t].startswith("ok") for t in ("state", "erp (tryton)", "store main")), result.stdout
    assert out["erp shipping product"].startswith("FAIL 'NO-SUCH-SHIPPING'"), result.stdout
    assert "create it as a salable service product" in out["erp shipping product"]
    assert out["erp currency"].startswith("FAIL 'USD'") and "Currency > Currencies" in out["erp currency"]
    assert out["erp countries"].startswith("FAIL 'UA' not in Tryton: create it under Party > Configuration")
    assert out["erp warehouses"].startswith("FAIL warehouse code 'NOWH'"), result.stdout
    assert out["erp payment terms"].startswith("FAIL 'Ramburs'"), result.stdout
    assert "checks failed" in result.stderr
