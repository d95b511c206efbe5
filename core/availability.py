"""Available stock per SKU: on hand − reserved (open orders) − safety buffer, over a store's warehouses.

Pure pandas, no I/O. Never on hand alone: pushing on hand without the reservations is the oversell bug of
older connectors. A negative result is clamped at 0 and reported (the caller logs the warning), and a SKU
that the ERP returned twice for one warehouse is ambiguous: it is left out (unknown, never zero), reported.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

import pandas as pd

from erpsync.core.models import StockLevel

LEVEL_COLUMNS = ["sku", "warehouse", "on_hand", "reserved"]
CLAMPED_COLUMNS = ["sku", "on_hand", "reserved", "buffer", "computed"]
DECIMALS = 4  # the pushed table keeps quantities as NUMERIC(18, 4)


def levels_frame(levels: Iterable[StockLevel]) -> pd.DataFrame:
    """Stock levels as a frame: sku, warehouse, on_hand, reserved (floats)."""
    rows = [(level.sku, level.warehouse, float(level.on_hand), float(level.reserved)) for level in levels]
    return typed_levels(pd.DataFrame.from_records(rows, columns=LEVEL_COLUMNS))


def typed_levels(frame: pd.DataFrame) -> pd.DataFrame:
    """A levels frame with its column types fixed (an empty frame keeps them too)."""
    return frame.astype({"sku": "str", "warehouse": "str", "on_hand": "float64", "reserved": "float64"})


def empty_levels() -> pd.DataFrame:
    """A levels frame without rows."""
    return typed_levels(pd.DataFrame(columns=LEVEL_COLUMNS))


@dataclass(frozen=True)
class Availability:
    """What a store may sell of each SKU, the SKUs clamped at 0, and those the ERP gave ambiguously."""

    available: pd.Series  # float by SKU (index name "sku"), >= 0, rounded to DECIMALS
    clamped: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=CLAMPED_COLUMNS))
    duplicates: list[str] = field(default_factory=list)

    def clamped_rows(self) -> list[dict[str, object]]:
        """The clamped SKUs as plain rows (for a log line or a table artifact)."""
        return [
            {key: (value if key == "sku" else float(value)) for key, value in row.items()}
            for row in self.clamped.to_dict("records")
        ]


def compute_availability(levels: pd.DataFrame, warehouses: Sequence[str], buffer: Decimal | float = 0) -> Availability:
    """Available per SKU = Σ on hand − Σ reserved − buffer over ``warehouses``, clamped at 0.

    Levels of other warehouses are ignored; a warehouse missing for a SKU counts as 0 there. A SKU that
    appears twice for the same warehouse is left out of ``available`` and listed in ``duplicates``.
    """
    in_set = levels[levels["warehouse"].isin(list(warehouses))]
    repeated = in_set.duplicated(["sku", "warehouse"], keep=False)
    duplicates = sorted(str(sku) for sku in in_set.loc[repeated, "sku"].unique())
    clean = in_set[~in_set["sku"].isin(duplicates)] if duplicates else in_set
    totals = clean.groupby("sku", sort=True)[["on_hand", "reserved"]].sum()
    margin = float(buffer)
    computed = (totals["on_hand"] - totals["reserved"] - margin).round(DECIMALS)
    negative = computed < 0
    clamped = pd.DataFrame(
        {
            "sku": totals.index[negative].astype(str),
            "on_hand": totals.loc[negative, "on_hand"].to_numpy(),
            "reserved": totals.loc[negative, "reserved"].to_numpy(),
            "buffer": margin,
            "computed": computed[negative].to_numpy(),
        },
        columns=CLAMPED_COLUMNS,
    )
    available = computed.clip(lower=0) + 0.0  # + 0.0 turns -0.0 into 0.0
    available.index.name = "sku"
    available.name = "available"
    return Availability(available=available, clamped=clamped.reset_index(drop=True), duplicates=duplicates)
