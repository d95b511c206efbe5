"""Issue 15, the movement trail, on the real Tryton and the simulated shop: after a sale, a goods receipt and a
reconciliation correction, ``erpsync stock-history SKU`` lists the three causes with their ERP documents, and
the ``prune`` flow deletes what is older than the kept period."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from typer.testing import CliRunner

from erpsync.app.cli import app
from erpsync.core.state import MOVEMENTS
from tests.flows.test_orders_flow import TrytonStack, make_tryton_stack  # noqa: F401 (a fixture)
from tests.tryton_fixture import create_supplier_shipment


def test_e2e_stock_history_lists_sale_receipt_and_reconciliation_with_erp_documents(
    make_tryton_stack: Callable[..., TrytonStack],  # noqa: F811
) -> None:
    t = make_tryton_stack()
    sku = t.product("E2E-TRAIL", tryton_stock=20, shop_stock=50)
    order_id = t.order(sku, t.buyer(), quantity=3)
    assert t.run("orders").created == 1
    sale_id = t.sales(order_id)[0]["id"]
    ctx = t.session.context
    product = t.session.call("model.product.product.search", [("code", "=", sku)], 0, 1, None, ctx)[0]
    shipment = create_supplier_shipment(t.session, t.manifest, product, 12)
    t.session.call_accepting_warnings("model.stock.shipment.in.receive", [shipment], ctx)
    t.session.call_accepting_warnings("model.stock.shipment.in.do", [shipment], ctx)
    [nir] = t.session.call("model.stock.shipment.in.read", [shipment], ["reference"], ctx)
    assert t.run("receipts").updated == 1
    t.sim.set_stock_out_of_band(sku, 5)  # drift: someone changed the shop's stock by hand
    corrected = t.run("reconcile")
    assert corrected.updated == 1, corrected.message

    shown = CliRunner().invoke(app, ["stock-history", sku, "--store", "main", "--json", "-c", str(t.stack.config_path)])
    assert shown.exit_code == 0, shown.output
    rows = json.loads(shown.output)
    assert [(r["cause"], r["previous"], r["quantity"]) for r in rows] == [
        ("reconciliation", "5", "29"),  # the shop had drifted to 5 (what this run read) and is put back
        ("receipt", "17", "29"),  # 32 on hand - 3 reserved
        ("sale", None, "17"),  # never pushed before: the shop's value was not known
    ]
    assert rows[2]["erp_ref"] == f"sale {sale_id} (order {order_id})"
    assert rows[1]["erp_ref"] == f"receipt {nir['reference']}"
    assert rows[0]["erp_ref"] is None  # drift has no ERP document
    assert all(r["run_id"] for r in rows)
    table = CliRunner().invoke(app, ["stock-history", sku, "-c", str(t.stack.config_path)])
    assert "reconciliation" in table.output and f"sale {sale_id}" in table.output and "3 movement(s)" in table.output

    # Kept for [state] movement_days (90): two movements aged past it are pruned, the newest stays.
    old = datetime.now(UTC) - timedelta(days=91)
    with t.state.engine.begin() as conn:
        conn.execute(
            update(MOVEMENTS).where(MOVEMENTS.c.sku == sku, MOVEMENTS.c.cause != "reconciliation").values(at=old)
        )
    pruned = t.run("prune")
    assert pruned.details["deleted"] == 2, pruned
    assert [m.cause for m in t.state.movements(sku, store="main")] == ["reconciliation"]
