"""Available = on hand − reserved − buffer over the store's warehouses, clamped at 0 (core.availability)."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
import pytest

from erpsync.core.availability import compute_availability, empty_levels, levels_frame
from erpsync.core.models import StockLevel


def _levels(*rows: tuple[str, str, float, float]) -> pd.DataFrame:
    return levels_frame(
        StockLevel(sku=sku, warehouse=wh, on_hand=Decimal(str(on_hand)), reserved=Decimal(str(reserved)))
        for sku, wh, on_hand, reserved in rows
    )


def test_reservations_are_subtracted_never_on_hand_alone() -> None:
    result = compute_availability(_levels(("A", "WH", 20, 3)), ["WH"])
    assert result.available.to_dict() == {"A": 17.0}  # 20 on hand, 3 promised to open orders


def test_sums_over_the_store_warehouses_only() -> None:
    levels = _levels(("A", "WH", 10, 1), ("A", "WH2", 5, 2), ("A", "WH3", 100, 0), ("B", "WH2", 4, 0))
    result = compute_availability(levels, ["WH", "WH2"])
    assert result.available.to_dict() == {"A": 12.0, "B": 4.0}  # WH3 belongs to another store
    only_first = compute_availability(levels, ["WH"])
    assert only_first.available.to_dict() == {"A": 9.0}


def test_safety_buffer_is_held_back_per_sku() -> None:
    levels = _levels(("A", "WH", 10, 2), ("B", "WH", 3, 0))
    result = compute_availability(levels, ["WH"], Decimal("2.5"))
    assert result.available.to_dict() == {"A": 5.5, "B": 0.5}


def test_negative_results_are_clamped_at_zero_and_listed() -> None:
    levels = _levels(("A", "WH", 2, 5), ("B", "WH", 1, 0), ("C", "WH", 9, 0))
    result = compute_availability(levels, ["WH"], 2)
    assert result.available.to_dict() == {"A": 0.0, "B": 0.0, "C": 7.0}
    assert result.clamped_rows() == [
        {"sku": "A", "on_hand": 2.0, "reserved": 5.0, "buffer": 2.0, "computed": -5.0},
        {"sku": "B", "on_hand": 1.0, "reserved": 0.0, "buffer": 2.0, "computed": -1.0},
    ]
    assert (result.available >= 0).all() and str(result.available["A"]) == "0.0"  # no -0.0 either


def test_a_sku_given_twice_for_one_warehouse_is_left_out_not_zeroed() -> None:
    levels = _levels(("A", "WH", 5, 0), ("A", "WH", 5, 0), ("A", "WH2", 1, 0), ("B", "WH", 3, 0))
    result = compute_availability(levels, ["WH", "WH2"])
    assert result.duplicates == ["A"]
    assert "A" not in result.available.index  # unknown, so nothing is written for it
    assert result.available.to_dict() == {"B": 3.0}


def test_fractions_are_kept_to_four_decimals() -> None:
    levels = _levels(("KG", "WH", 0.1, 0), ("KG", "WH2", 0.2, 0))
    result = compute_availability(levels, ["WH", "WH2"])
    assert result.available["KG"] == 0.3  # 0.1 + 0.2 without the float tail


def test_no_levels_no_availability() -> None:
    result = compute_availability(empty_levels(), ["WH"], 1)
    assert result.available.empty and result.clamped.empty and result.duplicates == []


@pytest.mark.parametrize("buffer", [0, Decimal(0), 0.0])
def test_buffer_of_any_numeric_type(buffer: object) -> None:
    result = compute_availability(_levels(("A", "WH", 1, 0)), ["WH"], buffer)  # type: ignore[arg-type]
    assert result.available.to_dict() == {"A": 1.0}
