"""Reading exports, no I/O beyond bytes: CSV in CP1250 with decimal commas, XLSX and DBF read alike, headers
matched case-insensitively, numbers that are not numbers kept as text beside NaN."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from erpsync.connectors.erp.files import UnreadableFile, parse, read_table
from erpsync.core.config import StockFileSettings
from tests.files.exports import SAGA, csv_bytes, dbf_bytes, stock_rows, xlsx_bytes

WINMENTOR_CSV = StockFileSettings(preset="winmentor", encoding="cp1250", delimiter=";", decimal=",")
WINMENTOR_TYPED = StockFileSettings(preset="winmentor", encoding="cp1250")
SAGA_DBF = StockFileSettings(preset="saga", encoding="cp1250")
QUANTITIES = {"A-1": Decimal("3.5"), "B-2": 0, "C-3": 12}
ROWS = stock_rows(QUANTITIES)


def _read(data: bytes, fmt: str, settings: StockFileSettings) -> list[tuple[object, ...]]:
    parsed = parse(read_table(data, fmt, settings), fmt, settings)
    assert parsed.frame is not None, parsed.missing
    columns = ["sku", "warehouse", "quantity_number", "price_number", "vat_number", "name"]
    return [tuple(row) for row in parsed.frame[columns].itertuples(index=False, name=None)]


def test_csv_cp1250_xlsx_and_dbf_read_alike() -> None:
    from_csv = _read(csv_bytes(ROWS), "csv", WINMENTOR_CSV)
    assert from_csv == [
        ("A-1", "WH", 3.5, 12.5, 21.0, "Cană ceramică"),
        ("B-2", "WH", 0.0, 13.5, 21.0, "Şervet bumbac"),
        ("C-3", "WH", 12.0, 14.5, 21.0, "Ţesătură in"),
    ]
    assert _read(xlsx_bytes(ROWS), "xlsx", WINMENTOR_TYPED) == from_csv
    assert _read(dbf_bytes(stock_rows(QUANTITIES, headers=SAGA)), "dbf", SAGA_DBF) == from_csv


def test_a_cp1250_file_read_as_utf8_is_unreadable_naming_the_setting() -> None:
    with pytest.raises(UnreadableFile, match="encoding"):
        read_table(csv_bytes(ROWS), "csv", StockFileSettings(preset="winmentor", encoding="utf-8"))


def test_thousands_separator_and_text_that_is_not_a_number() -> None:
    data = "Cod;Cantitate;Pret\r\nX1;1.234,5;10,00\r\nX2;abc;\r\n".encode("cp1250")
    settings = StockFileSettings(
        preset="", columns={"sku": "cod", "quantity": "CANTITATE", "price": "pret"}, decimal=",", thousands="."
    )
    parsed = parse(read_table(data, "csv", settings), "csv", settings)
    assert parsed.frame is not None
    frame = parsed.frame
    assert frame["quantity_number"].iloc[0] == 1234.5
    assert np.isnan(frame["quantity_number"].iloc[1]) and frame["quantity_text"].iloc[1] == "abc"
    assert frame["row"].tolist() == [2, 3]  # the header is line 1


def test_a_missing_column_is_named_and_no_rows_are_parsed() -> None:
    data = "CodExtern;Denumire\r\nA;x\r\n".encode("cp1250")
    parsed = parse(read_table(data, "csv", WINMENTOR_CSV), "csv", WINMENTOR_CSV)
    assert parsed.frame is None
    assert "quantity" in parsed.missing
