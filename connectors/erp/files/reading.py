"""Reading a stock/price export: CSV (delimiter, decimal comma, thousands, any encoding incl. CP1250), XLSX
(openpyxl) and DBF (dbfread), into one parsed frame (``core.stock_file.PARSED_COLUMNS``) through the configured
column mapping. Headers match case-insensitively, spaces around them ignored. Nothing is validated here: values
that are not numbers become NaN beside their text, and the guard decides.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import is_numeric_dtype

from erpsync.core.config.files import REQUIRED_COLUMNS, StatusFileSettings, StockFileSettings
from erpsync.core.stock_file import PARSED_COLUMNS

FORMATS = {".csv": "csv", ".txt": "csv", ".xlsx": "xlsx", ".dbf": "dbf"}


class UnreadableFile(Exception):
    """The file cannot be read as the configured format (encoding, delimiter, a broken XLSX/DBF)."""


@dataclass
class ParsedFile:
    """A file read through the mapping: the parsed rows (None when a required column is missing)."""

    frame: pd.DataFrame | None
    mapping: dict[str, str]
    found: dict[str, str | None]  # canonical column -> the header found in the file (None: not there)
    by_warehouse: bool
    required: tuple[str, ...] = REQUIRED_COLUMNS  # sku, quantity and the columns mapped in the configuration

    @property
    def missing(self) -> list[str]:
        """Required columns the file does not have (a preset's other columns are used where they are there)."""
        return [name for name in self.required if not self.found.get(name)]


def file_format(name: str, settings: StockFileSettings | StatusFileSettings) -> str:
    """The format of a file: as configured, else by its extension."""
    if settings.format != "auto":
        return settings.format
    fmt = FORMATS.get(PurePath(name).suffix.lower())
    if fmt is None:
        raise UnreadableFile(f"cannot tell the format of {name!r} by its extension: set the file's format")
    return fmt


def read_table(data: bytes, fmt: str, settings: StockFileSettings | StatusFileSettings) -> pd.DataFrame:
    """The file's rows as a frame, every header as written (CSV values are text; XLSX and DBF keep their types)."""
    try:
        if fmt == "csv":
            return pd.read_csv(
                io.BytesIO(data),
                sep=settings.delimiter,
                dtype="str",
                keep_default_na=False,
                encoding=settings.encoding,
                engine="c",
            )
        if fmt == "xlsx":
            return pd.read_excel(io.BytesIO(data), sheet_name=settings.sheet or 0, dtype=object, engine="openpyxl")
        if fmt == "dbf":
            return _read_dbf(data, settings.encoding)
    except UnicodeDecodeError as exc:
        raise UnreadableFile(
            f"not {settings.encoding} text (byte {exc.start}): set the file's encoding (e.g. 'cp1250')"
        ) from None
    except (ValueError, KeyError, OSError, pd.errors.ParserError) as exc:
        raise UnreadableFile(f"cannot be read as {fmt.upper()}: {str(exc).splitlines()[0][:200]}") from None
    raise UnreadableFile(f"unknown format {fmt!r}")


def _read_dbf(data: bytes, encoding: str) -> pd.DataFrame:
    import tempfile

    from dbfread import DBF

    # dbfread reads from a path: the bytes (already taken whole from the inbox) go through a temporary file.
    with tempfile.NamedTemporaryFile(suffix=".dbf") as handle:
        handle.write(data)
        handle.flush()
        table = DBF(handle.name, encoding=encoding, char_decode_errors="strict", load=True)
        return pd.DataFrame(list(table.records), columns=list(table.field_names))


def _text(values: pd.Series, typed: bool) -> pd.Series:
    """Values as stripped text ("" for none); an integral number (an XLSX/DBF code) without ``.0``.

    Plain Python over the object array: ~10x faster than pandas' ``.str`` accessor on 100,000 rows."""
    if not typed:
        cells = values.to_numpy(dtype=object)
        try:
            return pd.Series([v.strip() for v in cells], dtype=object)  # a CSV read as text: every cell a str
        except AttributeError:
            return pd.Series([v.strip() if isinstance(v, str) else "" for v in cells], dtype=object)

    def one(value: Any) -> str:
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return ""
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value).strip()

    return pd.Series([one(v) for v in values.to_numpy(dtype=object)], dtype=object)


def _numbers(text: pd.Series, raw: pd.Series, typed: bool, decimal: str, thousands: str) -> pd.Series:
    """Numbers (float, NaN where none or not a number): typed cells as they are, text by the CSV's rules."""
    if typed and is_numeric_dtype(raw):
        return raw.astype("float64").reset_index(drop=True)
    values = list(text)
    if not typed and (thousands or decimal != "."):
        values = [
            v.replace(thousands, "").replace(decimal, ".") if thousands else v.replace(decimal, ".") for v in values
        ]
    return pd.to_numeric(pd.Series([v or None for v in values], dtype=object), errors="coerce").astype("float64")


def parse(table: pd.DataFrame, fmt: str, settings: StockFileSettings) -> ParsedFile:
    """The rows through the mapping: ``PARSED_COLUMNS`` (``frame`` None when a required column is missing)."""
    mapping = settings.mapping()
    headers = {str(h).strip().lower(): h for h in table.columns}
    found: dict[str, str | None] = {}
    for name in dict.fromkeys([*REQUIRED_COLUMNS, *mapping]):
        header = mapping.get(name, "")
        found[name] = headers.get(header.strip().lower()) if header else None
    by_warehouse = bool(found.get("warehouse"))
    required = tuple(dict.fromkeys([*REQUIRED_COLUMNS, *(k for k, v in settings.columns.items() if v.strip())]))
    parsed = ParsedFile(None, mapping, found, by_warehouse, required)
    if parsed.missing:
        return parsed
    typed = fmt != "csv"
    decimal, thousands = (settings.decimal, settings.thousands) if not typed else (".", "")
    size = len(table)
    first_line = 1 if fmt == "dbf" else 2  # CSV/XLSX: line 1 is the header

    def column(name: str) -> pd.Series | None:
        header = found.get(name)
        return None if header is None else table[header]

    def text_of(name: str) -> pd.Series:
        raw = column(name)
        return pd.Series([""] * size, dtype=object) if raw is None else _text(raw, typed)

    def number_of(name: str) -> pd.Series:
        raw = column(name)
        if raw is None:
            return pd.Series(np.full(size, np.nan))
        return _numbers(_text(raw, typed), raw, typed, decimal, thousands)

    sku = text_of("sku")
    warehouse = text_of("warehouse") if by_warehouse else pd.Series([settings.warehouse] * size, dtype=object)
    warehouse = warehouse.where(warehouse != "", settings.warehouse)
    reserved = number_of("reserved") if found.get("reserved") else pd.Series(np.zeros(size))
    quantity_text = text_of("quantity")
    frame = pd.DataFrame(
        {
            "row": np.arange(first_line, first_line + size, dtype="int64"),
            "sku": sku.where(sku != "", None).to_numpy(),
            "warehouse": warehouse.to_numpy(),
            "quantity_text": quantity_text.to_numpy(),
            "quantity_number": number_of("quantity").to_numpy(),
            "reserved_number": reserved.fillna(0.0).to_numpy(),
            "price_text": text_of("price").to_numpy(),
            "price_number": number_of("price").to_numpy(),
            "vat_number": number_of("vat").to_numpy(),
            "name": text_of("name").to_numpy(),
            "ean": text_of("ean").to_numpy(),
        },
        columns=PARSED_COLUMNS,
    )
    parsed.frame = frame
    return parsed
