"""The files connector on local folders with the real Great Expectations validator (no Prefect): the
complete-file rule, read once, the guard's rejections with their reports, and orders out written once."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from erpsync.connectors.erp.base import Needs, preflight
from erpsync.connectors.erp.files import FilesConnector, LocalFolder, MemoryFileJournal, order_file_name
from erpsync.connectors.errors import RecordError
from erpsync.connectors.http import Counters
from erpsync.core.config import OrderFileSettings, StatusFileSettings, StockFileSettings
from erpsync.core.models import Address, Customer, Order, OrderLine
from erpsync.core.order_totals import TOTAL_MISMATCH
from erpsync.expectations.stock_file import validate_stock_file
from tests.files.exports import csv_bytes, drop, stock_rows

STOCK = StockFileSettings(pattern="stoc*.csv", preset="winmentor", encoding="cp1250", decimal=",")
TEN = {f"P-{i:02d}": 5 + i for i in range(10)}


class Box:
    """An inbox and an outbox on disk, and a connector over them."""

    def __init__(self, root: Path) -> None:
        self.inbox, self.outbox = root / "inbox", root / "outbox"
        self.inbox.mkdir()
        self.outbox.mkdir()
        self.root = root
        self.journal = MemoryFileJournal()

    def connector(self) -> FilesConnector:
        counters = Counters()
        return FilesConnector(
            LocalFolder(self.inbox, counters),
            LocalFolder(self.outbox, counters),
            stock=STOCK,
            orders=OrderFileSettings(prefix="cmd-"),
            cache_dir=self.root / "cache",
            journal=self.journal,
            validator=validate_stock_file,
            order_warehouse="WH",
            counters=counters,
        )

    def stock(self, connector: FilesConnector) -> tuple[dict[str, Decimal], list[str]]:
        levels, errors = {}, []
        for page in connector.iter_stock(["WH"]):
            levels.update({level.sku: level.on_hand for level in page.items})
            errors += [error.error for error in page.errors]
        return levels, errors

    def reports(self) -> list[str]:
        return sorted(p.read_text() for p in (self.inbox / "rejected").glob("*.report.txt"))


@pytest.fixture
def box(tmp_path: Path) -> Box:
    return Box(tmp_path)


def test_a_complete_cp1250_file_is_read_and_moved_a_half_written_one_waits(box: Box) -> None:
    connector = box.connector()
    drop(box.inbox, "stoc.csv", csv_bytes(stock_rows(TEN)), done=False)  # the ERP is still writing it
    assert box.stock(connector) == ({}, [])
    assert (box.inbox / "stoc.csv").exists()

    (box.inbox / "stoc.csv.done").write_bytes(b"")
    levels, errors = box.stock(connector)
    assert errors == [] and levels == {sku: Decimal(q) for sku, q in TEN.items()}
    assert sorted(p.name for p in box.inbox.iterdir() if p.is_file()) == []
    assert len(list((box.inbox / "processed").iterdir())) == 1
    assert box.stock(box.connector()) == (levels, [])  # a new process answers the same, from the journal


def test_the_same_file_dropped_twice_is_read_once(box: Box) -> None:
    connector = box.connector()
    data = csv_bytes(stock_rows(TEN))
    drop(box.inbox, "stoc.csv", data)
    box.stock(connector)
    drop(box.inbox, "stoc-copie.csv", data)  # same content, another name
    levels, errors = box.stock(connector)
    assert errors == [] and len(levels) == 10
    assert [e.state for e in box.journal.entries.values()] == ["accepted"]
    assert not (box.inbox / "stoc-copie.csv").exists()


@pytest.mark.parametrize(
    ("case", "change", "rule", "row"),
    [
        ("duplicate", lambda rows: [*rows, dict(rows[3])], "sku_unique", "row 5"),
        ("negative", lambda rows: [*rows[:2], {**rows[2], "Stoc": -4}, *rows[3:]], "quantity_not_negative", "row 4"),
        (
            "missing column",
            lambda rows: [{k: v for k, v in r.items() if k != "Stoc"} for r in rows],
            "columns_present",
            "Stoc",
        ),
        (
            "40 % to zero",
            lambda rows: [{**r, "Stoc": 0} if i < 4 else r for i, r in enumerate(rows)],
            "zero_share",
            "row 2",
        ),
    ],
)
def test_a_bad_file_is_rejected_with_its_report_and_the_last_good_one_stays(
    box: Box, case: str, change: Callable[[list[dict]], list[dict]], rule: str, row: str
) -> None:
    connector = box.connector()
    drop(box.inbox, "stoc.csv", csv_bytes(stock_rows(TEN)))
    good, _ = box.stock(connector)
    drop(box.inbox, "stoc.csv", csv_bytes(change(stock_rows(TEN))))
    levels, errors = box.stock(connector)
    assert levels == good  # nothing of the bad file is answered
    assert len(errors) == 1 and rule in errors[0] and "rejected" in errors[0]
    [report] = box.reports()
    assert rule in report and row in report
    rejected = [p.name for p in (box.inbox / "rejected").iterdir() if not p.name.endswith(".report.txt")]
    assert len(rejected) == 1 and rejected[0].endswith("stoc.csv")
    assert box.stock(connector) == (good, [])  # reported once; the journal knows it


def _order(reference: str, sku: str, total: str = "26.00") -> Order:
    address = Address(name="Ana Pop", street="Str. Lalelelor 4", city="Cluj-Napoca", postal_code="400001")
    return Order(
        shop_id=reference,
        reference=reference,
        customer=Customer(email="ana@example.ro", name="Ana Pop"),
        billing=address,
        lines=[OrderLine(sku=sku, quantity=Decimal(2), unit_price_gross=Decimal("5.50"), vat_rate=Decimal(21))],
        shipping_amount=Decimal(15),
        total=Decimal(total),
    )


def test_an_order_becomes_one_file_once_with_the_shops_total(box: Box) -> None:
    connector = box.connector()
    drop(box.inbox, "stoc.csv", csv_bytes(stock_rows(TEN)))
    box.stock(connector)
    order = _order("SHOP-1001", "P-01")
    name = connector.create_order(order, order.customer)
    assert name == order_file_name(OrderFileSettings(prefix="cmd-"), "SHOP-1001") == "cmd-SHOP-1001.csv"
    assert connector.create_order(order, order.customer) == name
    assert box.connector().find_order("SHOP-1001") == name  # the journal, from another process
    assert [p.name for p in box.outbox.iterdir()] == [name]
    lines = (box.outbox / name).read_text(encoding="utf-8").splitlines()
    assert len(lines) == 3  # header, the product, shipping
    totals = [Decimal(line.split(";")[-2]) for line in lines[1:]]
    assert sum(totals) == Decimal("26.00") and {line.split(";")[-1] for line in lines[1:]} == {"26.00"}

    with pytest.raises(RecordError) as wrong:
        connector.create_order(_order("SHOP-1002", "P-01", total="30.00"), order.customer)
    assert TOTAL_MISMATCH in wrong.value.message
    with pytest.raises(RecordError, match="NOPE"):
        connector.create_order(_order("SHOP-1003", "NOPE"), order.customer)
    assert [p.name for p in box.outbox.iterdir()] == [name]


def test_a_write_killed_before_its_rename_is_written_once_on_the_retry(
    box: Box, monkeypatch: pytest.MonkeyPatch
) -> None:
    connector = box.connector()
    order = _order("SHOP-2001", "P-01")

    def killed(name: str, data: bytes) -> None:
        (box.outbox / f".erpsync-{name}.tmp").write_bytes(data[:10])  # half a temporary file, never renamed
        raise KeyboardInterrupt

    monkeypatch.setattr(connector.outbox, "publish", killed)
    with pytest.raises(KeyboardInterrupt):
        connector.create_order(order, order.customer)
    retry = box.connector()
    assert retry.find_order("SHOP-2001") is None  # not in the outbox: it was never published
    name = retry.create_order(order, order.customer)
    assert retry.create_order(order, order.customer) == name
    assert sorted(p.name for p in box.outbox.iterdir() if not p.name.startswith(".")) == [name]


def test_changed_since_answers_nothing_until_a_new_file_is_accepted(box: Box) -> None:
    connector = box.connector()
    drop(box.inbox, "stoc.csv", csv_bytes(stock_rows(TEN)))
    box.stock(connector)
    since = datetime.now(UTC)
    quiet = [level for page in connector.iter_stock(["WH"], changed_since=since) for level in page.items]
    assert quiet == []  # a watcher's poll: one inbox listing, nothing to sync
    drop(box.inbox, "stoc.csv", csv_bytes(stock_rows({**TEN, "P-03": 0})))
    moved = {lvl.sku: lvl.on_hand for page in connector.iter_stock(["WH"], changed_since=since) for lvl in page.items}
    assert moved["P-03"] == 0 and len(moved) == 10  # the accepted file's rows: the flow diffs them


def test_a_status_export_tells_each_order_files_invoice_awb_and_state(box: Box) -> None:
    connector = box.connector()
    connector.status = StatusFileSettings(pattern="status*.csv", encoding="cp1250")
    connector.capabilities = replace(connector.capabilities, orders_read_status=True)
    drop(box.inbox, "stoc.csv", csv_bytes(stock_rows(TEN)))
    box.stock(connector)
    shipped, waiting = _order("SHOP-3001", "P-01"), _order("SHOP-3002", "P-02")
    first = connector.create_order(shipped, shipped.customer)
    second = connector.create_order(waiting, waiting.customer)
    export = "reference;status;invoice;awb;carrier\r\nSHOP-3001;Expediată;FCT 0042;AWB123;Fan Courier\r\n"
    drop(box.inbox, "status.csv", export.encode("cp1250"))
    before, after, unknown = connector.order_statuses([first, second, "cmd-NOPE.csv"])
    assert (before.state, before.shipped, before.awb, before.invoice_number) == ("shipped", True, "AWB123", "FCT 0042")
    assert before.invoiced and before.shipments[0].carrier == "Fan Courier" and before.reference == "SHOP-3001"
    assert (after.state, after.invoiced, after.shipped) == ("sent", False, False)
    assert unknown.state == "missing"
    assert box.stock(connector)[1] == []  # the status export is not taken for a stock file
    assert (box.inbox / "status.csv").exists() is False


def test_check_probes_the_folders_the_waiting_exports_and_each_stores_warehouses(box: Box) -> None:
    connector = box.connector()
    needs = [Needs(store="main", warehouses=("WH",)), Needs(store="outlet", warehouses=("Depozit",))]
    drop(box.inbox, "stoc.csv", csv_bytes(stock_rows(TEN)), done=False)
    before = {p.target: p for p in connector.preflight(needs)}
    assert before["files inbox"].ok and "without their .done yet" in before["files inbox"].detail
    assert not before["files stock file"].ok and "no stock export accepted yet" in before["files stock file"].detail
    assert (box.inbox / "stoc.csv").exists()  # a check takes nothing in

    (box.inbox / "stoc.csv.done").write_bytes(b"")
    box.stock(connector)
    after = {p.target: p for p in preflight(connector, needs)}
    assert after["files outbox"].ok and after["files stock file"].detail == "stoc.csv: 10 rows, 10 SKUs"
    assert after["store main warehouses"].ok
    assert (
        not after["store outlet warehouses"].ok and "Depozit not in stoc.csv" in after["store outlet warehouses"].detail
    )


def test_a_file_another_run_is_checking_is_left_to_it_until_that_run_is_overdue(
    box: Box, monkeypatch: pytest.MonkeyPatch
) -> None:
    from erpsync.connectors.erp.files import connector as module

    data = csv_bytes(stock_rows(TEN))
    drop(box.inbox, "stoc.csv", data)
    digest = hashlib.sha256(data).hexdigest()
    assert box.journal.file_claim("in", "stock", digest, name="stoc.csv", state="checking")  # another run has it
    assert box.stock(box.connector()) == ({}, [])
    assert (box.inbox / "stoc.csv").exists()
    monkeypatch.setattr(module, "CHECKING_TTL", timedelta(0))  # that run died: the file is taken again
    levels, errors = box.stock(box.connector())
    assert errors == [] and len(levels) == 10 and box.journal.file_get("in", "stock", digest).state == "accepted"


def test_stock_levels_built_without_validation_equal_validated_ones() -> None:
    from erpsync.connectors.erp.files import connector as module
    from erpsync.core.models import StockLevel

    built = module._level("A-1", "WH", Decimal("2.5"), Decimal(0))
    assert built == StockLevel(sku="A-1", warehouse="WH", on_hand=Decimal("2.5"))
    assert built.model_dump() == module._constructed("A-1", "WH", Decimal("2.5"), Decimal(0)).model_dump()
    assert module._level is module._assembled  # the fast path holds on this pydantic (else model_construct)
