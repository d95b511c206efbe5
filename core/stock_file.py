"""A stock/price file from a desktop ERP, as the guard sees it: pure pandas, no I/O.

``guard_frame`` adds to the parsed file the columns the ``stock_file`` suite (``expectations/stock_file.json``)
checks: the key that must be unique (SKU, or SKU + warehouse when the file has warehouses), whether a value that
is there could not be read as a number, the key's quantity in the last accepted file and whether it dropped to
zero since. ``file_bounds`` turns the last accepted file's row count and the settings into suite parameters.
``FileVerdict`` is what a validator answers; the connector only needs that shape (the GX run lives in
``expectations``, which connectors may not import).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

# The columns of a parsed stock file (connectors.erp.files.reading builds it).
PARSED_COLUMNS = [
    "row",  # the row's line in the file (CSV/XLSX: the header is line 1; DBF: the record number)
    "sku",
    "warehouse",
    "quantity_text",
    "quantity_number",
    "reserved_number",
    "price_text",
    "price_number",
    "vat_number",
    "name",
    "ean",
]
STOCK_FILE_SUITE = "stock_file"
COLUMNS_SUITE = "stock_file_columns"


@dataclass(frozen=True)
class FileBounds:
    """What the suite accepts, from the last accepted file (its row count) and the settings."""

    min_rows: int
    max_rows: int | None
    keep_share: float
    previous_rows: int | None = None

    def parameters(self) -> dict[str, Any]:
        return {"min_rows": self.min_rows, "max_rows": self.max_rows, "keep_share": self.keep_share}


def file_bounds(previous_rows: int | None, row_count_band: float, max_zero_share: float) -> FileBounds:
    """Row count within ``row_count_band`` of the last accepted file (at least one row, always)."""
    keep = round(1.0 - max_zero_share, 6)
    if not previous_rows:
        return FileBounds(1, None, keep, previous_rows)
    low = max(1, math.ceil(previous_rows * (1.0 - row_count_band) - 1e-9))
    high = math.floor(previous_rows * (1.0 + row_count_band) + 1e-9)
    return FileBounds(low, high, keep, previous_rows)


def row_keys(parsed: pd.DataFrame, by_warehouse: bool) -> pd.Series:
    """The key each row must hold alone: the SKU, or ``SKU @ warehouse`` when the file lists warehouses."""
    sku = parsed["sku"]
    if not by_warehouse:
        return sku
    return sku.where(sku.isna(), sku.astype("str") + " @ " + parsed["warehouse"].astype("str"))


def guard_frame(parsed: pd.DataFrame, previous: pd.Series | None, *, by_warehouse: bool) -> pd.DataFrame:
    """The columns the ``stock_file`` suite checks, one row per file row (the index is the row's position).

    ``quantity_number`` is NaN where the quantity is missing or not a number; ``price_unreadable`` is 1 where a
    price is written but is not a number; ``previous_quantity`` is the key's quantity in the last accepted file;
    ``dropped_to_zero`` is 1 when it was above zero then and is at or below zero now, 0 when it stayed above,
    NaN when it was not above zero then (new keys do not count in the share).
    """
    keys = row_keys(parsed, by_warehouse)
    quantity = parsed["quantity_number"].to_numpy(dtype="float64")
    price_text = parsed["price_text"].fillna("").astype("str")
    price_unreadable = (price_text.str.len() > 0) & parsed["price_number"].isna()
    if previous is None or previous.empty:
        before = np.full(len(parsed), np.nan)
    else:
        before = previous.reindex(keys.fillna("").to_numpy()).to_numpy(dtype="float64")
    with np.errstate(invalid="ignore"):
        dropped = (quantity <= 0).astype("float64")
    return pd.DataFrame(
        {
            "row": parsed["row"].to_numpy(),
            "sku": parsed["sku"].to_numpy(),
            "key": keys.to_numpy(),
            "quantity": parsed["quantity_text"].to_numpy(),
            "quantity_number": quantity,
            "price": price_text.to_numpy(),
            "price_number": parsed["price_number"].to_numpy(dtype="float64"),
            "price_unreadable": price_unreadable.astype("float64").to_numpy(),
            "previous_quantity": before,
            "dropped_to_zero": np.where(before > 0, dropped, np.nan),
        },
        index=parsed.index,
    )


def previous_quantities(parsed: pd.DataFrame, by_warehouse: bool) -> pd.Series:
    """Quantity by key of an accepted file: what the next file is compared with."""
    keys = row_keys(parsed, by_warehouse)
    series = pd.Series(parsed["quantity_number"].to_numpy(dtype="float64"), index=pd.Index(keys.to_numpy()))
    return series[~series.index.duplicated(keep="first")]


def columns_frame(mapping: dict[str, str], found: dict[str, str | None], required: tuple[str, ...]) -> pd.DataFrame:
    """One row per required column (sku, quantity and those the configuration maps): its canonical name, the
    header looked for, and whether the file has it (1/0)."""
    names = list(dict.fromkeys(required))
    return pd.DataFrame(
        {
            "column": names,
            "header": [mapping.get(name, "") for name in names],
            "found": [1.0 if found.get(name) else 0.0 for name in names],
        }
    )


@dataclass(frozen=True)
class RuleFailure:
    """One rule the file broke: its name, what it means, what was observed, and rows that break it."""

    rule: str
    description: str
    detail: str
    rows: list[dict[str, Any]] = field(default_factory=list)

    def line(self) -> str:
        return f"{self.rule} ({self.detail})"


@dataclass(frozen=True)
class FileVerdict:
    """A validator's answer on one file."""

    passed: bool
    failures: list[RuleFailure] = field(default_factory=list)
    seconds: float = 0.0

    def describe(self) -> str:
        return "; ".join(f.line() for f in self.failures) or "every rule held"


# A validator: (columns frame, guard frame or None when required columns are missing, bounds) -> verdict.
Validator = Callable[[pd.DataFrame, pd.DataFrame | None, FileBounds], FileVerdict]
