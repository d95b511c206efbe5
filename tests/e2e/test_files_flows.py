"""The files ERP through the real flows (Prefect harness, the MerchantPro simulator on loopback, the real GX
guard): a CP1250 export with decimal commas becomes the shop's stock; a second export with 3 changes makes 3
shop writes; a bad export is refused with its report and writes nothing; the reconciliation corrects drift from
the accepted file; a shop order becomes one file in the outbox, once, even when the run is killed."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from erpsync.core.summary import RunState
from erpsync.tasks.order_import import CRASH_EXIT_CODE, CRASH_HOOK_ENV
from tests.e2e.files_stack import CODES, STORE, FilesStack, files_stack_factory
from tests.files.exports import SAGA, csv_bytes, dbf_bytes, drop, stock_rows, xlsx_bytes
from tests.files.sftp_server import PASSWORD, SftpServer
from tests.flows.run_helpers import expire_leases

pytestmark = pytest.mark.prefect

ROOT = Path(__file__).resolve().parents[2]
FIRST = {sku: 5 + i for i, sku in enumerate(CODES)}


@pytest.fixture
def make_stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_harness: None
) -> Iterator[Callable[..., FilesStack]]:
    yield from files_stack_factory(tmp_path, monkeypatch)


def test_exports_drive_the_shop_stock_and_a_bad_one_writes_nothing(make_stack: Callable[..., FilesStack]) -> None:
    stack = make_stack()
    stack.export(FIRST, done=False)  # still being written: not read
    waiting = stack.run("stock")
    assert waiting.updated == 0 and stack.shop_stock() == dict.fromkeys(CODES, 0)

    (stack.inbox / "stoc.csv.done").write_bytes(b"")
    first = stack.run("stock")
    assert first.updated == 10 and first.failed == 0, first.message
    assert stack.shop_stock() == FIRST
    products = stack.run("products")  # names and prices from the same file (the winmentor preset maps them)
    assert products.updated == 10 and products.failed == 0, products.message
    shop = {p["sku"]: (p["price_gross"], p["name"]) for p in stack.sim.products.values()}
    assert shop["P-00"] == (12.5, "Cană ceramică") and shop["P-09"] == (21.5, "Pahar")

    second_export = {**FIRST, "P-01": 0, "P-04": 40, "P-07": 2}
    stack.export(second_export)
    stack.sim.stats.reset()
    second = stack.run("stock")
    assert (second.updated, second.unchanged) == (3, 7) and stack.sim.stats.writes == 3
    assert stack.shop_stock() == second_export

    stack.export(second_export, name="stoc-again.csv")  # the same file dropped twice: read once
    stack.sim.stats.reset()
    assert stack.run("stock").updated == 0 and stack.sim.stats.writes == 0
    assert [e.state for e in stack.state.file_entries("in", "stock")] == ["accepted", "accepted"]

    stack.export({**second_export, "P-02": -3, "P-05": 1})  # a negative quantity: refused whole
    stack.sim.stats.reset()
    refused = stack.run("stock", ok=False)
    assert refused.state is RunState.PARTIAL and stack.sim.stats.writes == 0
    assert stack.shop_stock() == second_export
    [report] = (stack.inbox / "rejected").glob("*.report.txt")
    assert "quantity_not_negative" in report.read_text() and "row 4" in report.read_text()
    assert any("quantity_not_negative" in f.error for f in stack.state.open_failures(STORE))

    rows = stock_rows(second_export)
    bad_files = {
        "sku_unique": csv_bytes([*rows, dict(rows[1])]),  # a SKU twice
        "columns_present": csv_bytes([{k: v for k, v in r.items() if k != "Stoc"} for r in rows]),  # no quantity
        "zero_share": csv_bytes([{**r, "Stoc": 0} if i < 4 else r for i, r in enumerate(rows)]),  # 4 of 10 to zero
    }
    for rule, data in bad_files.items():
        drop(stack.inbox, "stoc.csv", data)
        stack.sim.stats.reset()
        bad = stack.run("stock", ok=False)
        assert bad.state is RunState.PARTIAL and stack.sim.stats.writes == 0, rule
        assert any(rule in f.error for f in stack.state.open_failures(STORE)), rule
    assert stack.shop_stock() == second_export
    assert len(list((stack.inbox / "rejected").glob("*.report.txt"))) == 4

    stack.sim.products[next(k for k, p in stack.sim.products.items() if p["sku"] == "P-06")]["stock"] = 99
    stack.sim.stats.reset()
    reconciled = stack.run("reconcile")
    assert reconciled.updated == 1 and stack.sim.stats.writes == 1, reconciled.message
    assert stack.shop_stock() == second_export


def test_orders_go_out_as_one_file_each_exactly_once_under_a_killed_run(make_stack: Callable[..., FilesStack]) -> None:
    from prefect.settings import PREFECT_API_URL

    stack = make_stack()
    stack.export(FIRST)
    stack.run("stock")
    order_id = stack.order({"P-01": 2, "P-03": 1})
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value()), CRASH_HOOK_ENV: "1"}
    killed = subprocess.run(
        [sys.executable, "-m", "erpsync.app.cli", "run", "orders", "--store", STORE, "--json"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert killed.returncode == CRASH_EXIT_CODE, killed.stderr[-3000:]
    [written] = stack.outbox_files()  # the file is out ...
    entry = stack.state.journal_get(STORE, order_id)
    assert entry is not None and (entry.state, entry.erp_order_id) == ("pending", None)  # ... the journal not told

    expire_leases(stack.state)
    rerun = stack.run("orders")
    assert rerun.created == 1 and rerun.failed == 0, rerun.message
    assert stack.outbox_files() == [written]
    entry = stack.state.journal_get(STORE, order_id)
    assert entry is not None and entry.state == "created" and entry.erp_order_id == written.name

    second = stack.order({"P-05": 1})
    assert stack.run("orders").created == 1 and len(stack.outbox_files()) == 2
    assert stack.run("orders").created == 0 and len(stack.outbox_files()) == 2

    rows = [line.split(";") for line in written.read_text(encoding="utf-8").splitlines()]
    header, lines = rows[0], rows[1:]
    total = header.index("line_total")
    shop_total = Decimal(str(stack.sim.orders[order_id]["total_amount"]))
    assert sum(Decimal(r[total]) for r in lines) == shop_total == Decimal(lines[0][header.index("order_total")])
    assert [r[header.index("sku")] for r in lines] == ["P-01", "P-03", "TRANSPORT"]
    assert second != order_id


def test_xlsx_then_dbf_exports_and_an_order_over_sftp(
    make_stack: Callable[..., FilesStack], sftp_server: SftpServer
) -> None:
    inbox, inbox_url = sftp_server.folder("e2e-in")
    outbox, outbox_url = sftp_server.folder("e2e-out")
    stack = make_stack(
        inbox=inbox,
        outbox=outbox,
        erp={
            "inbox": inbox_url,
            "outbox": outbox_url,
            "password": f"literal:{PASSWORD}",
            "stock": {"pattern": "stoc*", "preset": "saga", "encoding": "cp1250"},
        },
    )
    drop(inbox, "stoc.xlsx", xlsx_bytes(stock_rows(FIRST, headers=SAGA)))
    first = stack.run("stock")
    assert first.updated == 10 and stack.shop_stock() == FIRST, first.message

    changed = {**FIRST, "P-00": 1, "P-05": 0, "P-09": 30}
    drop(inbox, "stoc.dbf", dbf_bytes(stock_rows(changed, headers=SAGA)))
    stack.sim.stats.reset()
    second = stack.run("stock")
    assert second.updated == 3 and stack.sim.stats.writes == 3 and stack.shop_stock() == changed

    order_id = stack.order({"P-02": 1})
    assert stack.run("orders").created == 1
    assert stack.run("orders").created == 0
    [written] = stack.outbox_files()
    assert stack.state.journal_get(STORE, order_id).erp_order_id == written.name  # type: ignore[union-attr]


def test_the_store_watcher_syncs_a_new_export_within_seconds(make_stack: Callable[..., FilesStack]) -> None:
    """``stock_changed_since`` on the files ERP = a file accepted since: the watcher polls the inbox (no shop call
    while nothing arrives) and runs the targeted sync when an export lands."""
    from erpsync.flows.watch import request_stop, store_watch
    from erpsync.runtime.watch_steps import STOCK_CURSOR

    stack = make_stack()
    stack.export(FIRST)
    stack.run("stock")
    result: list[Any] = []
    options = {"minutes": 2.0, "poll_seconds": 0.3, "batch_seconds": 0.3, "heartbeat_seconds": 1.0}
    thread = threading.Thread(
        target=lambda: result.append(store_watch(store=STORE, return_state=True, **options)), daemon=True
    )
    thread.start()
    try:
        _wait(lambda: stack.state.get_cursor(STORE, STOCK_CURSOR), "the watcher's first poll")
        time.sleep(1.0)  # the first poll re-reads the file accepted just before (its overlap): nothing to write
        stack.sim.stats.reset()
        time.sleep(1.0)
        assert stack.sim.stats.requests == 0  # idle: only the inbox is listed

        moved = {**FIRST, "P-02": 0, "P-08": 50}
        stack.export(moved)
        _wait(lambda: stack.shop_stock() == moved, "the new export in the shop")
        assert (stack.sim.stats.writes, stack.sim.stats.reads) == (2, 0)
    finally:
        request_stop(stack.state, STORE)
        thread.join(60)
    assert not thread.is_alive() and result[0].result().failed == 0


def _wait(condition: Callable[[], Any], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_a_status_export_brings_the_awb_and_invoice_back_to_the_shop(make_stack: Callable[..., FilesStack]) -> None:
    stack = make_stack(
        erp={"status": {"pattern": "status*.csv", "encoding": "cp1250"}},
        store={"orders": {"direction": "both"}},
    )
    stack.export(FIRST)
    stack.run("stock")
    order_id = stack.order({"P-04": 1})
    assert stack.run("orders").created == 1
    [written] = stack.outbox_files()
    reference = stack.state.journal_get(STORE, order_id)
    assert reference is not None and reference.erp_order_id == written.name
    export = f"reference;status;invoice;awb\r\n{order_id};Expediată;FCT 0007;AWB-555\r\n"
    drop(stack.inbox, "status.csv", export.encode("cp1250"))
    stack.run("orders")
    shop_order = stack.sim.orders[order_id]
    assert shop_order["shipping_status"] == "shipped" and shop_order["shipping_awb"] == "AWB-555", shop_order
    assert any("FCT 0007" in tag["name"] for tag in shop_order["tags"])
