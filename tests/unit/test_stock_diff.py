"""Change detection on frames (core.diff): what changed since the last push, what differs from the shop."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd

from erpsync.core.diff import changed, corrections, quantities, shop_stock, to_decimal, typed_shop, unknown_to_erp


def _expected(**values: float) -> pd.Series:
    return pd.Series(values, dtype="float64").rename_axis("sku")


def _shop(*rows: tuple[str, str, str | None, float | None, bool]) -> pd.DataFrame:
    frame = pd.DataFrame(
        [
            (sku, f"P-{sku}", pid, vid, np.nan if stock is None else stock, tracked)
            for sku, pid, vid, stock, tracked in [(r[0], r[1], r[2], r[3], r[4]) for r in rows]
        ],
        columns=["sku", "shop_sku", "product_id", "variant_id", "stock", "tracked"],
    )
    return typed_shop(frame)


def test_unchanged_skus_cost_nothing() -> None:
    expected = _expected(A=5, B=3)
    assert changed(expected, quantities({"A": Decimal(5), "B": Decimal("3.0000")})).empty


def test_changed_and_never_pushed_skus_are_written() -> None:
    expected = _expected(A=5, B=3, C=1, D=0)
    previous = quantities({"A": Decimal(4), "B": Decimal(3), "D": None})
    assert changed(expected, previous).to_dict() == {"A": 5.0, "C": 1.0, "D": 0.0}


def test_float_noise_below_four_decimals_is_no_change() -> None:
    expected = _expected(A=0.1 + 0.2)
    assert changed(expected, quantities({"A": Decimal("0.3")})).empty
    assert not changed(_expected(A=0.3001), quantities({"A": Decimal("0.3")})).empty


def test_pushed_skus_that_left_the_erp_read_are_not_changes() -> None:
    assert changed(_expected(A=1), quantities({"A": 1, "GONE": 7})).empty


def test_corrections_are_tracked_units_whose_stock_differs() -> None:
    shop = _shop(
        ("A", "1", None, 5, True),  # in sync
        ("B", "2", None, 9, True),  # drifted
        ("C", "3", "31", None, True),  # the shop reports no stock: corrected
        ("D", "4", None, 1, False),  # inventory not tracked: left alone
        ("X", "5", None, 3, True),  # unknown to the ERP: not a correction
    )
    result = corrections(_expected(A=5, B=2, C=4, D=0), shop)
    assert result[["sku", "product_id", "variant_id", "expected"]].to_dict("records") == [
        {"sku": "B", "product_id": "2", "variant_id": None, "expected": 2.0},
        {"sku": "C", "product_id": "3", "variant_id": "31", "expected": 4.0},
    ]
    assert result["stock"].tolist()[0] == 9.0 and np.isnan(result["stock"].tolist()[1])


def test_no_drift_no_corrections() -> None:
    shop = _shop(("A", "1", None, 5, True), ("B", "2", "21", 0, True))
    assert corrections(_expected(A=5, B=0), shop).empty


def test_unknown_to_erp_leaves_out_skus_the_erp_could_not_read() -> None:
    shop = _shop(("A", "1", None, 5, True), ("BAD", "2", None, 1, True), ("NEW", "3", None, 2, True))
    unknown = unknown_to_erp(shop, pd.Index(["A"]), unreadable=["BAD"])
    assert unknown["sku"].tolist() == ["NEW"]  # an unreadable ERP row is unknown, never "missing"


def test_shop_stock_by_sku() -> None:
    shop = _shop(("A", "1", None, 5, True), ("B", "2", "21", None, True))
    stock = shop_stock(shop)
    assert stock["A"] == 5.0 and np.isnan(stock["B"])


def test_quantities_are_written_as_plain_decimals() -> None:
    assert to_decimal(17.0) == Decimal(17) and str(to_decimal(17.0)) == "17"
    assert str(to_decimal(2.5)) == "2.5"
    assert str(to_decimal(0.1 + 0.2)) == "0.3"
    assert str(to_decimal(0.0)) == "0" and str(to_decimal(1e-9)) == "0"
