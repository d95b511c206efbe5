"""``[erp] type = "files"``: the settings refuse what cannot work, one line naming the key."""

from __future__ import annotations

import pytest

from erpsync.core.config import ConfigError, settings_from_dict

STORE = {"name": "main", "url": "https://www.example.ro", "api_key": "literal:k", "api_secret": "literal:s"}


def _erp(**keys: object) -> dict[str, object]:
    return {"erp": {"type": "files", "inbox": "/srv/in", "outbox": "/srv/out", **keys}, "stores": [STORE]}


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"inbox": "sftp://erp@10.0.0.5/export"}, "erp.inbox: an sftp:// folder needs [erp] password or private_key"),
        ({"inbox": "sftp://erp:hunter2@10.0.0.5/x", "password": "literal:x"}, "erp.inbox: must not contain a password"),
        ({"inbox": "ftp://erp@10.0.0.5/x"}, "erp.inbox: must be a local folder or an sftp://"),
        ({"stock": {"encoding": "cp9999"}}, "erp.stock.encoding: unknown encoding 'cp9999'"),
        ({"stock": {"columns": {"qty": "Stoc"}}}, "erp.stock.columns.qty: unknown column 'qty'"),
        ({"stock": {"decimal": ",", "thousands": ","}}, "erp.stock.thousands: thousands separator ',' is also"),
        ({"stock": {"decimal": ",", "delimiter": ","}}, "erp.stock.delimiter: delimiter ',' is also the decimal mark"),
    ],
)
def test_bad_files_settings_are_one_line_naming_the_key(keys: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        settings_from_dict(_erp(**keys))
    text = str(refused.value)
    assert message in text and "\n" not in text and "hunter2" not in text


def test_a_good_files_section_with_a_preset_and_an_override() -> None:
    settings = settings_from_dict(
        _erp(
            inbox="sftp://erp@10.0.0.5:2222/export",
            password="literal:pw",
            stock={"preset": "saga", "columns": {"quantity": "STOC_FIN"}},
        )
    )
    assert settings.erp.type == "files"
    mapping = settings.erp.stock.mapping()
    assert mapping["sku"] == "COD" and mapping["quantity"] == "STOC_FIN"
    assert "pw" not in settings.model_dump_json()
