"""The files connector over a real SFTP server (asyncssh on loopback, ``sftp_server``): configured by URL with
the password or the private key as secret references; exports taken whole and once, moved on the server; an
order published atomically into the outbox; a refused login is one AuthError naming the files ERP."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from erpsync.connectors.erp import make_erp
from erpsync.connectors.erp.files import FilesConnector
from erpsync.connectors.errors import AuthError, FatalError
from erpsync.core.config import FilesSettings
from erpsync.core.models import Customer, Order, OrderLine
from erpsync.expectations.stock_file import validate_stock_file
from tests.files.exports import csv_bytes, drop, stock_rows
from tests.files.sftp_server import PASSWORD, SftpServer

STOCK = {"pattern": "stoc*.csv", "preset": "winmentor", "encoding": "cp1250", "decimal": ","}


def _settings(server: SftpServer, tmp_path: Path, **keys: object) -> tuple[FilesSettings, Path, Path]:
    inbox, inbox_url = server.folder("inbox")
    outbox, outbox_url = server.folder("outbox")
    settings = FilesSettings.model_validate(
        {
            "type": "files",
            "inbox": inbox_url,
            "outbox": outbox_url,
            "cache_dir": str(tmp_path / "cache"),
            "stock": STOCK,
            **keys,
        }
    )
    return settings, inbox, outbox


def _connector(settings: FilesSettings) -> FilesConnector:
    connector = make_erp(settings, validator=validate_stock_file, order_warehouse="WH")
    assert isinstance(connector, FilesConnector)
    return connector


def test_exports_in_and_an_order_out_over_sftp_with_a_password_reference(
    sftp_server: SftpServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ERP_SFTP_PASSWORD", PASSWORD)
    settings, inbox, outbox = _settings(sftp_server, tmp_path, password="env:ERP_SFTP_PASSWORD")
    assert "sftp-pass" not in repr(settings) and "sftp-pass" not in settings.model_dump_json()
    with _connector(settings) as connector:
        assert "(0 file(s) waiting)" in connector.check()
        drop(inbox, "stoc.csv", csv_bytes(stock_rows({"A": 3, "B": Decimal("1.5")})), done=False)
        assert [level for page in connector.iter_stock(["WH"]) for level in page.items] == []  # not complete yet
        (inbox / "stoc.csv.done").write_bytes(b"")
        levels = {lvl.sku: lvl.on_hand for page in connector.iter_stock(["WH"]) for lvl in page.items}
        assert levels == {"A": Decimal(3), "B": Decimal("1.5")}
        assert sorted(p.name for p in inbox.iterdir() if p.is_file()) == []  # moved to processed/ on the server
        assert len(list((inbox / "processed").iterdir())) == 1

        order = Order(
            shop_id="7001",
            reference="7001",
            customer=Customer(email="ana@example.ro", name="Ana"),
            lines=[OrderLine(sku="A", quantity=Decimal(1), unit_price_gross=Decimal("12.50"), vat_rate=Decimal(21))],
            total=Decimal("12.50"),
        )
        name = connector.create_order(order, order.customer)
        assert connector.create_order(order, order.customer) == name
        assert [p.name for p in outbox.iterdir()] == [name]  # the temporary name was renamed away
        assert "12.50" in (outbox / name).read_text()


def test_a_private_key_and_known_hosts_log_in_a_wrong_password_is_one_auth_error(
    sftp_server: SftpServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(sftp_server.host_key_line)
    monkeypatch.setenv("ERP_SFTP_KEY", sftp_server.client_key)
    settings, _, _ = _settings(sftp_server, tmp_path, private_key="env:ERP_SFTP_KEY", known_hosts=str(known_hosts))
    with _connector(settings) as connector:
        assert "waiting" in connector.check()

    monkeypatch.setenv("ERP_SFTP_PASSWORD", "not-the-password")
    settings, _, _ = _settings(sftp_server, tmp_path, password="env:ERP_SFTP_PASSWORD")
    with _connector(settings) as connector, pytest.raises(AuthError) as refused:
        connector.check()
    assert str(refused.value).startswith("files") and "not-the-password" not in str(refused.value)
    assert connector.counters.reads + connector.counters.writes == 1

    other = tmp_path / "other_hosts"
    other.write_text(f"[127.0.0.1]:{sftp_server.port} ssh-ed25519 " + "AAAAC3NzaC1lZDI1NTE5AAAAI" + "A" * 43 + "\n")
    monkeypatch.setenv("ERP_SFTP_PASSWORD", PASSWORD)
    settings, _, _ = _settings(sftp_server, tmp_path, password="env:ERP_SFTP_PASSWORD", known_hosts=str(other))
    with _connector(settings) as connector, pytest.raises(FatalError, match="host key"):
        connector.check()
