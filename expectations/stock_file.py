"""The validator of the file ERP's stock/price files: the ``stock_file_columns`` suite, then (when every column
is there) the ``stock_file`` suite, answered as a ``core.stock_file.FileVerdict`` naming rules and rows."""

from __future__ import annotations

import time

import pandas as pd

from erpsync.core.stock_file import COLUMNS_SUITE, STOCK_FILE_SUITE, FileBounds, FileVerdict, RuleFailure
from erpsync.expectations import runner
from erpsync.expectations.runner import Validation

REPORT_ROWS = 20  # rows named per broken rule (Great Expectations samples at most 20)
_SHOWN = ("row", "sku", "quantity", "price", "previous_quantity", "header", "column")


def validate_stock_file(columns: pd.DataFrame, frame: pd.DataFrame | None, bounds: FileBounds) -> FileVerdict:
    """Validate a parsed stock file; ``frame`` is None when its columns are not all there (nothing else checked)."""
    started = time.perf_counter()
    validations = [runner.validate(COLUMNS_SUITE, columns, sample_rows=REPORT_ROWS)]
    if frame is not None and validations[0].success:
        validations.append(runner.validate(STOCK_FILE_SUITE, frame, bounds.parameters(), sample_rows=REPORT_ROWS))
    failures = [failure for validation in validations for failure in _failures(validation)]
    return FileVerdict(
        passed=all(v.success for v in validations) and frame is not None,
        failures=failures,
        seconds=round(time.perf_counter() - started, 3),
    )


def _failures(validation: Validation) -> list[RuleFailure]:
    return [
        RuleFailure(
            rule=failed.name,
            description=failed.description,
            detail=failed.detail,
            rows=[{k: v for k, v in row.items() if k in _SHOWN} for row in failed.sample],
        )
        for failed in validation.failed
    ]
