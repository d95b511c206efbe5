"""The reconciliation's guard on frames: the suites in expectations/ through expectations.runner (no Prefect).

Every broken snapshot below must be refused, naming the expectation that caught it, with sample rows: a
refused snapshot is what makes the reconcile flow apply nothing (tests/flows/test_reconcile_flow.py shows it).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from erpsync.core.availability import typed_levels
from erpsync.core.config import ReconcileSettings
from erpsync.core.snapshot import (
    COVERAGE_SUITE,
    ERP_SUITE,
    coverage_frame,
    erp_snapshot,
    guard_bounds,
    guard_frame,
    previous_to_keep,
    snapshot_metrics,
)
from erpsync.expectations import runner
from erpsync.expectations.runner import Validation

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = ReconcileSettings()  # band 0.2, max zero share 0.2, max missing share 0.05
N = 1000


def _levels(n: int = N, quantity: float = 10.0, warehouses: tuple[str, ...] = ("WH",)) -> pd.DataFrame:
    rows = [(f"SKU-{i:05d}", wh, quantity, 0.0) for i in range(n) for wh in warehouses]
    return typed_levels(pd.DataFrame(rows, columns=["sku", "warehouse", "on_hand", "reserved"]))


def _previous(n: int = N, quantity: float = 10.0) -> pd.Series:
    return previous_to_keep(guard_frame(erp_snapshot(_levels(n, quantity), ["WH"])))


def _check(snapshot: pd.DataFrame, previous: pd.Series | None = None, previous_rows: int | None = N) -> Validation:
    bounds = guard_bounds(SETTINGS, previous_rows)
    return runner.validate(ERP_SUITE, guard_frame(snapshot, previous), bounds.parameters())


def _healthy() -> pd.DataFrame:
    return erp_snapshot(_levels(), ["WH"])


def test_a_healthy_snapshot_passes() -> None:
    result = _check(_healthy(), _previous())
    assert result.success and result.failed == [] and result.evaluated == 8 and result.rows == N


def test_empty_erp_snapshot_is_refused_even_without_history() -> None:
    empty = erp_snapshot(_levels(0), ["WH"])
    for previous_rows in (N, None):
        result = _check(empty, None, previous_rows)
        assert not result.success and "row_count_in_band" in result.names
    detail = _check(empty, None, N).failed[0].detail
    assert detail == "0 rows, expected 800..1200"


def test_forty_percent_suddenly_at_zero_is_refused_with_sample_rows() -> None:
    levels = _levels()
    levels.loc[levels.index < 400, "on_hand"] = 0.0
    result = _check(erp_snapshot(levels, ["WH"]), _previous())
    assert result.names == ["zero_share"]
    failed = result.failed[0]
    assert failed.unexpected == 400 and failed.detail == "400 of 1000 rows = 40.0 %, at most 20.0 % allowed"
    assert len(failed.sample) == runner.SAMPLE_ROWS
    assert failed.sample[0] == {
        "sku": "SKU-00000",
        "quantity": 0.0,
        "reserved": 0.0,
        "quantity_number": 0.0,
        "reserved_number": 0.0,
        "previous_quantity": 10.0,
        "dropped_to_zero": 1.0,
    }
    json.dumps(result.sample_rows())  # plain values: fit for an artifact


def test_ten_percent_at_zero_is_within_the_threshold() -> None:
    levels = _levels()
    levels.loc[levels.index < 100, "on_hand"] = 0.0
    assert _check(erp_snapshot(levels, ["WH"]), _previous()).success


def test_skus_already_at_zero_or_new_do_not_count_as_dropped() -> None:
    levels = _levels(quantity=0.0)  # everything was at zero last time too: nothing dropped
    assert _check(erp_snapshot(levels, ["WH"]), _previous(quantity=0.0)).success
    assert _check(erp_snapshot(levels, ["WH"]), None).success  # no history: no drop to measure


def test_duplicate_skus_are_refused() -> None:
    levels = pd.concat([_levels(), _levels(3)], ignore_index=True)  # three SKUs read twice for WH
    result = _check(erp_snapshot(levels, ["WH"]), _previous())
    assert result.names == ["sku_unique"]
    assert result.failed[0].unexpected == 6 and {r["sku"] for r in result.failed[0].sample} == {
        "SKU-00000",
        "SKU-00001",
        "SKU-00002",
    }


def test_a_sku_in_two_warehouses_is_one_row_not_a_duplicate() -> None:
    snapshot = erp_snapshot(_levels(warehouses=("WH", "WH2")), ["WH", "WH2"])
    assert len(snapshot) == N and snapshot["quantity"].eq(20.0).all()
    assert _check(snapshot, None).success


def test_negative_and_non_numeric_quantities_are_refused() -> None:
    snapshot = _healthy()
    snapshot["quantity"] = snapshot["quantity"].astype(object)
    snapshot.loc[5, "quantity"] = -3
    snapshot.loc[6, "quantity"] = "12 buc"
    snapshot.loc[7, "quantity"] = None
    snapshot.loc[8, "reserved"] = -1.0
    result = _check(snapshot, _previous())
    assert set(result.names) == {"quantity_numeric", "quantity_not_negative", "reserved_not_negative"}
    by_name = {f.name: f for f in result.failed}
    assert [r["sku"] for r in by_name["quantity_numeric"].sample] == ["SKU-00006", "SKU-00007"]
    assert by_name["quantity_numeric"].sample[0]["quantity"] == "12 buc"
    assert [r["sku"] for r in by_name["quantity_not_negative"].sample] == ["SKU-00005"]


def test_a_halved_row_count_is_refused() -> None:
    result = _check(erp_snapshot(_levels(N // 2), ["WH"]), _previous())
    assert result.names == ["row_count_in_band"]
    assert result.failed[0].detail == "500 rows, expected 800..1200"


def test_a_row_count_inside_the_band_passes() -> None:
    assert _check(erp_snapshot(_levels(850), ["WH"]), _previous()).success
    assert _check(erp_snapshot(_levels(1200), ["WH"]), _previous()).success
    assert not _check(erp_snapshot(_levels(1201), ["WH"]), _previous()).success


def test_missing_sku_is_refused() -> None:
    snapshot = _healthy()
    snapshot.loc[3, "sku"] = None
    snapshot.loc[4, "sku"] = "  "
    result = _check(snapshot, _previous())
    assert result.names == ["sku_present"] and result.failed[0].unexpected == 2


def test_shop_skus_missing_from_the_erp_above_the_threshold_are_refused() -> None:
    shop = pd.DataFrame({"sku": [f"SKU-{i:05d}" for i in range(100)]})
    bounds = guard_bounds(SETTINGS, N).parameters()
    few = runner.validate(COVERAGE_SUITE, coverage_frame(shop, [f"SKU-{i:05d}" for i in range(95)]), bounds)
    assert few.success  # 5 % missing: at the limit
    many = runner.validate(COVERAGE_SUITE, coverage_frame(shop, [f"SKU-{i:05d}" for i in range(90)]), bounds)
    assert many.names == ["missing_share"]
    assert many.failed[0].detail == "10 of 100 rows = 10.0 %, at most 5.0 % allowed"
    skus = [f"SKU-{i:05d}" for i in range(100)]
    unreadable = coverage_frame(shop, skus[:90], skus[90:])
    assert runner.validate(COVERAGE_SUITE, unreadable, bounds).success  # unreadable is not missing


def test_thresholds_come_from_the_store_settings() -> None:
    strict = ReconcileSettings(max_zero_share=0.05, row_count_band=0.01)
    bounds = guard_bounds(strict, N)
    assert (bounds.min_rows, bounds.max_rows, bounds.keep_share) == (990, 1010, 0.95)
    levels = _levels()
    levels.loc[levels.index < 100, "on_hand"] = 0.0
    frame = guard_frame(erp_snapshot(levels, ["WH"]), _previous())
    result = runner.validate(ERP_SUITE, frame, bounds.parameters())
    assert result.names == ["zero_share"]  # 10 % passes the default, not this store's 5 %


def test_the_zero_share_counts_the_skus_the_shop_sells() -> None:
    # An ERP catalogue of 1,000 goods of which the shop sells 50: 40 of those 50 at zero is 4 % of the catalogue
    # (passes a whole-catalogue share) but 80 % of the shop, which the guard must refuse.
    levels = _levels()
    levels.loc[levels.index < 40, "on_hand"] = 0.0
    snapshot = erp_snapshot(levels, ["WH"])
    sold = [f"SKU-{i:05d}" for i in range(50)]
    bounds = guard_bounds(SETTINGS, N).parameters()
    assert runner.validate(ERP_SUITE, guard_frame(snapshot, _previous()), bounds).success
    shop_scoped = runner.validate(ERP_SUITE, guard_frame(snapshot, _previous(), sold=sold), bounds)
    assert shop_scoped.names == ["zero_share"]
    # goods the shop does not sell may all go to zero: that empties nothing
    levels = _levels()
    levels.loc[levels.index >= 50, "on_hand"] = 0.0
    assert runner.validate(ERP_SUITE, guard_frame(erp_snapshot(levels, ["WH"]), _previous(), sold=sold), bounds).success


def test_metrics_remembered_for_the_next_comparison() -> None:
    levels = _levels()
    levels.loc[levels.index < 30, "on_hand"] = 0.0
    frame = guard_frame(erp_snapshot(levels, ["WH"]), _previous())
    shop = pd.DataFrame({"sku": ["SKU-00001", "ELSEWHERE"]})
    metrics = snapshot_metrics(frame, coverage_frame(shop, frame["sku"]))
    assert metrics == {
        "row_count": 1000,
        "zero_count": 30,
        "total_quantity": 9700.0,
        "dropped_to_zero": 30,
        "dropped_to_zero_share": 0.03,
        "shop_skus": 2,
        "missing_from_erp": 1,
        "missing_from_erp_share": 0.5,
    }


def test_a_missing_column_is_a_failed_expectation_not_a_crash() -> None:
    frame = guard_frame(_healthy(), None).drop(columns=["dropped_to_zero"])
    result = runner.validate(ERP_SUITE, frame, guard_bounds(SETTINGS, None).parameters())
    assert result.names == ["zero_share"] and result.failed[0].detail.startswith("could not be checked")


def test_one_context_per_process_and_suites_without_ids() -> None:
    assert runner._gx_context() is runner._gx_context()
    assert runner._definition(ERP_SUITE) is runner._definition(ERP_SUITE)
    from great_expectations.data_context.types.base import ProgressBarsConfig

    bars = runner._gx_context().variables.progress_bars
    assert isinstance(bars, ProgressBarsConfig) and bars.globally is False
    for suite in (ERP_SUITE, COVERAGE_SUITE):
        data = runner.load_suite(suite)
        assert data["name"] == suite and "id" not in data
        assert all("id" not in e and e["meta"]["name"] for e in data["expectations"])


def test_great_expectations_is_imported_only_by_a_validation() -> None:
    code = (
        "import sys, erpsync.expectations.runner, erpsync.core.snapshot, erpsync.tasks.reconcile, "
        "erpsync.flows.reconcile, erpsync.flows.stock; "
        "print('great_expectations' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "False"


@pytest.mark.parametrize("band", [0.0, 1.0])
def test_band_edges(band: float) -> None:
    bounds = guard_bounds(ReconcileSettings(row_count_band=band), 10)
    assert (bounds.min_rows, bounds.max_rows) == ((10, 10) if band == 0 else (1, 20))
    assert np.isclose(guard_bounds(ReconcileSettings(), 0).min_rows, 1)  # an accepted empty snapshot: no band
