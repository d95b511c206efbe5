"""The reconciliation's guard in pure pandas: the frames the Great Expectations suites check, their bounds.

Great Expectations has no "compared with the previous snapshot" expectation, so the comparison is computed
here into columns (``previous_quantity``, ``dropped_to_zero``), and the bounds derived from the last accepted
snapshot and the store's settings become suite parameters (``$PARAMETER`` in ``expectations/*.json``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from erpsync.core.config import ReconcileSettings

SNAPSHOT_COLUMNS = ["sku", "quantity", "reserved"]
ERP_SUITE = "erp_stock"
COVERAGE_SUITE = "shop_coverage"


def erp_snapshot(levels: pd.DataFrame, warehouses: Sequence[str]) -> pd.DataFrame:
    """One row per SKU over ``warehouses``: ``quantity`` (Σ on hand) and ``reserved`` (Σ reserved).

    A SKU the ERP returned twice for one warehouse keeps two rows, so that the uniqueness check sees it.
    """
    in_set = levels[levels["warehouse"].isin(list(warehouses))]
    occurrence = in_set.groupby(["sku", "warehouse"], dropna=False, sort=False).cumcount()
    grouped = (
        in_set.assign(_occurrence=occurrence)
        .groupby(["sku", "_occurrence"], dropna=False, sort=True)[["on_hand", "reserved"]]
        .sum()
        .reset_index()
    )
    return pd.DataFrame(
        {"sku": grouped["sku"], "quantity": grouped["on_hand"], "reserved": grouped["reserved"]},
        columns=SNAPSHOT_COLUMNS,
    )


def _clean_skus(values: pd.Series) -> pd.Series:
    text = values.astype("str").str.strip()
    return text.where(values.notna() & (text != ""), None)


def guard_frame(
    snapshot: pd.DataFrame, previous: pd.Series | None = None, sold: Iterable[str] | None = None
) -> pd.DataFrame:
    """The ERP snapshot with the columns the ``erp_stock`` suite checks.

    ``quantity_number`` / ``reserved_number``: the values as numbers (NaN when they are not numbers);
    ``previous_quantity``: the SKU's quantity in the last accepted snapshot; ``dropped_to_zero``: 1 when it
    was above zero then and is at or below zero now, 0 when it stayed above, NaN when it was not above zero
    then (new SKUs and SKUs that were already at zero do not count in the share). With ``sold`` (the SKUs the
    shop sells, in ERP terms) only those count: an ERP catalogue ten times the shop's must not dilute the
    share until most of the shop can be emptied unnoticed.
    """
    frame = snapshot.reset_index(drop=True).copy()
    frame["sku"] = _clean_skus(frame["sku"])
    frame["quantity_number"] = pd.to_numeric(frame["quantity"], errors="coerce").astype("float64")
    frame["reserved_number"] = pd.to_numeric(frame["reserved"], errors="coerce").astype("float64")
    if previous is None or previous.empty:
        before = np.full(len(frame), np.nan)
    else:
        before = previous.reindex(frame["sku"].fillna("")).to_numpy(dtype="float64")
    frame["previous_quantity"] = before
    with np.errstate(invalid="ignore"):
        dropped = (frame["quantity_number"].to_numpy() <= 0).astype("float64")
    counted = before > 0
    if sold is not None:
        counted &= frame["sku"].isin(pd.Index(list(sold), dtype="str")).to_numpy()
    frame["dropped_to_zero"] = np.where(counted, dropped, np.nan)
    return frame


def coverage_frame(
    shop: pd.DataFrame, erp_skus: Iterable[str] | pd.Index, unreadable: Iterable[str] = ()
) -> pd.DataFrame:
    """The shop's SKUs with ``in_erp`` = 1 when the ERP snapshot has them (or could not read them), else 0."""
    known = pd.Index(erp_skus).union(pd.Index(list(unreadable), dtype="str"))
    skus = shop["sku"].drop_duplicates().reset_index(drop=True)
    return pd.DataFrame({"sku": skus, "in_erp": skus.isin(known).astype("float64")})


@dataclass(frozen=True)
class GuardBounds:
    """What the suites accept, derived from the last accepted snapshot and the store's settings."""

    min_rows: int
    max_rows: int | None
    keep_share: float  # at least this share of SKUs above zero last time must still be above zero
    covered_share: float  # at least this share of the shop's SKUs must be in the ERP snapshot
    previous_rows: int | None = None

    def parameters(self) -> dict[str, Any]:
        """The suite parameters (``$PARAMETER`` names in ``expectations/*.json``)."""
        return {
            "min_rows": self.min_rows,
            "max_rows": self.max_rows,
            "keep_share": self.keep_share,
            "covered_share": self.covered_share,
        }


def guard_bounds(settings: ReconcileSettings, previous_rows: int | None) -> GuardBounds:
    """Row count within ``row_count_band`` of the last accepted snapshot (at least one row, always)."""
    keep = round(1.0 - settings.max_zero_share, 6)
    covered = round(1.0 - settings.max_missing_share, 6)
    if not previous_rows:
        return GuardBounds(1, None, keep, covered, previous_rows)
    low = max(1, math.ceil(previous_rows * (1.0 - settings.row_count_band) - 1e-9))
    high = math.floor(previous_rows * (1.0 + settings.row_count_band) + 1e-9)
    return GuardBounds(low, high, keep, covered, previous_rows)


def _share(part: int, whole: int) -> float:
    return round(part / whole, 6) if whole else 0.0


def snapshot_metrics(guard: pd.DataFrame, coverage: pd.DataFrame) -> dict[str, Any]:
    """What is remembered of an accepted snapshot for the next comparison (and shown in the summary)."""
    rows = len(guard)
    quantities = guard["quantity_number"]
    eligible = int(guard["dropped_to_zero"].notna().sum())
    dropped = int((guard["dropped_to_zero"] == 1).sum())
    shop_skus = len(coverage)
    missing = int((coverage["in_erp"] == 0).sum())
    return {
        "row_count": rows,
        "zero_count": int((quantities <= 0).sum()),
        "total_quantity": round(float(quantities.sum()), 4),
        "dropped_to_zero": dropped,
        "dropped_to_zero_share": _share(dropped, eligible),
        "shop_skus": shop_skus,
        "missing_from_erp": missing,
        "missing_from_erp_share": _share(missing, shop_skus),
    }


def previous_to_keep(guard: pd.DataFrame) -> pd.Series:
    """The per-SKU quantities to remember for the next comparison (one value per SKU, numbers only)."""
    rows = guard.dropna(subset=["sku", "quantity_number"]).drop_duplicates("sku")
    index = pd.Index(rows["sku"], name="sku")
    return pd.Series(rows["quantity_number"].to_numpy(), index=index, dtype="float64")
