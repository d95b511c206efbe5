"""Desktop ERP exports as the tests drop them: CSV (any encoding, delimiter, decimal mark), XLSX and DBF, each
written from the same rows, plus the ``.done`` companion of the complete-file rule."""

from __future__ import annotations

import io
import struct
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

Row = dict[str, Any]


def csv_bytes(rows: Sequence[Row], *, encoding: str = "cp1250", delimiter: str = ";", decimal: str = ",") -> bytes:
    """A CSV export: header + rows, numbers written with ``decimal``, CRLF lines as Windows programs write them."""
    headers = list(rows[0])
    lines = [delimiter.join(headers)]
    for row in rows:
        cells = []
        for header in headers:
            value = row[header]
            text = format(value, "f") if isinstance(value, Decimal) else str(value)
            if isinstance(value, Decimal | float):
                text = text.replace(".", decimal)
            cells.append(text)
        lines.append(delimiter.join(cells))
    return ("\r\n".join(lines) + "\r\n").encode(encoding)


def xlsx_bytes(rows: Sequence[Row]) -> bytes:
    """An XLSX export (openpyxl): numbers as numbers, text as text."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    headers = list(rows[0])
    sheet.append(headers)
    for row in rows:
        sheet.append([float(v) if isinstance(v, Decimal) else v for v in (row[h] for h in headers)])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def dbf_bytes(rows: Sequence[Row], *, encoding: str = "cp1250") -> bytes:
    """A dBase III table (what SAGA exports): character fields, numeric fields with 3 decimals."""
    headers = list(rows[0])
    fields: list[tuple[str, str, int, int]] = []
    for header in headers:
        numeric = all(isinstance(row[header], int | float | Decimal) for row in rows)
        if numeric:
            fields.append((header, "N", 14, 3))
        else:
            width = max(1, *(len(str(row[header]).encode(encoding)) for row in rows))
            fields.append((header, "C", width, 0))
    record_length = 1 + sum(f[2] for f in fields)
    header_length = 32 + 32 * len(fields) + 1
    today = date.today()
    out = io.BytesIO()
    out.write(
        struct.pack(
            "<BBBBIHH20x", 0x03, today.year - 1900, today.month, today.day, len(rows), header_length, record_length
        )
    )
    for name, kind, width, decimals in fields:
        out.write(struct.pack("<11sc4xBB14x", name.encode("ascii")[:10], kind.encode("ascii"), width, decimals))
    out.write(b"\r")
    for row in rows:
        out.write(b" ")
        for name, kind, width, decimals in fields:
            value = row[name]
            if kind == "N":
                out.write(f"{float(value):{width}.{decimals}f}".encode("ascii"))
            else:
                out.write(str(value).encode(encoding).ljust(width, b" "))
    out.write(b"\x1a")
    return out.getvalue()


def drop(folder: Path, name: str, data: bytes, *, done: bool = True) -> Path:
    """Put an export into the inbox; ``done``: its ``.done`` companion too (the file is complete)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(data)
    if done:
        (folder / f"{name}.done").write_bytes(b"")
    return path


WINMENTOR = ("CodExtern", "Denumire", "Stoc", "PretVanzare", "CotaTVA")  # the winmentor preset's headers
SAGA = ("COD", "DENUMIRE", "STOC", "PRET_VANZ", "TVA")  # the saga preset's (a DBF field name has <= 10 letters)


def stock_rows(quantities: dict[str, Any], *, price: str = "12,50", headers: Sequence[str] = WINMENTOR) -> list[Row]:
    """Rows of a stock/price export (SKU, name, quantity, price, VAT) with Romanian names (CP1250 letters)."""
    names = ["Cană ceramică", "Şervet bumbac", "Ţesătură in", "Farfurie întinsă", "Pahar"]
    sku, name, stock, sale_price, vat = headers
    return [
        {
            sku: code,
            name: names[index % len(names)],
            stock: quantity,
            sale_price: Decimal(price.replace(",", ".")) + index,
            vat: Decimal(21),
        }
        for index, (code, quantity) in enumerate(quantities.items())
    ]
