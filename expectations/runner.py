"""Great Expectations, applied: one ephemeral context per process; suites kept as JSON files beside it.

``validate(suite, frame, parameters)`` loads ``expectations/<suite>.json`` into the process's context (get or
add: the context, its pandas data source, one dataframe asset and validation definition per suite are built
once and reused), validates the frame and returns a plain ``Validation``: success, the failed expectations by
name with what was observed, and sample offending rows. ``$PARAMETER`` values come in ``parameters``.

Great Expectations is imported here only, and only when a validation runs (or ``prepare()`` is called): it
costs ~6 s and ~220 MB to import. Progress bars are off.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd

log = logging.getLogger("erpsync.expectations")

SUITES_DIR = Path(__file__).resolve().parent
DATA_SOURCE = "erpsync"
BATCH = "whole"
SAMPLE_ROWS = 10

_lock = threading.RLock()
_context: Any = None
_definitions: dict[str, Any] = {}


@dataclass(frozen=True)
class FailedExpectation:
    """One expectation that did not hold: its name in the suite, what was observed, some offending rows."""

    name: str
    expectation: str
    description: str
    column: str | None
    detail: str
    unexpected: int = 0
    sample: list[dict[str, Any]] = field(default_factory=list)

    def line(self) -> str:
        """``name (detail)``."""
        return f"{self.name} ({self.detail})"


@dataclass(frozen=True)
class Validation:
    """The outcome of validating one frame against one suite."""

    suite: str
    success: bool
    evaluated: int
    rows: int
    failed: list[FailedExpectation]
    seconds: float

    @property
    def names(self) -> list[str]:
        """The names of the failed expectations."""
        return [f.name for f in self.failed]

    def describe(self) -> str:
        """One line: the failed expectations with what was observed, or that all held."""
        if self.success:
            return f"{self.suite}: all {self.evaluated} expectations held on {self.rows} rows"
        return f"{self.suite}: " + "; ".join(f.line() for f in self.failed)

    def sample_rows(self) -> list[dict[str, Any]]:
        """The offending rows of every failed expectation, each tagged with the expectation's name."""
        return [{"expectation": f.name, **row} for f in self.failed for row in f.sample]


def suite_path(suite: str) -> Path:
    """Where a suite's JSON lives."""
    return SUITES_DIR / f"{suite}.json"


def load_suite(suite: str) -> dict[str, Any]:
    """A suite's JSON (``name``, ``expectations``: ``type``, ``kwargs``, ``meta``) without ``id`` fields."""
    data: dict[str, Any] = json.loads(suite_path(suite).read_text(encoding="utf-8"))
    data.pop("id", None)
    for expectation in data.get("expectations", []):
        expectation.pop("id", None)
    return data


def _gx_context() -> Any:
    """The process's ephemeral GX context (built on first use; GX is imported here)."""
    global _context
    with _lock:
        if _context is None:
            os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
            import great_expectations as gx
            from great_expectations.data_context.types.base import ProgressBarsConfig

            # GX sets this logger to INFO itself and announces its temporary docs folder on every context.
            logging.getLogger("great_expectations.data_context.types.base").setLevel(logging.WARNING)
            context = gx.get_context(mode="ephemeral")
            context.variables.progress_bars = ProgressBarsConfig(globally=False)
            _context = context
        return _context


def _get_or_add(get: Any, add: Any) -> Any:
    try:
        return get()
    except Exception:  # GX raises several kinds of "not found"; adding is the answer to each
        return add()


def _definition(suite: str) -> Any:
    """The validation definition of a suite in the process's context, built once (get or add)."""
    with _lock:
        if suite in _definitions:
            return _definitions[suite]
        import great_expectations as gx

        context = _gx_context()
        source = _get_or_add(
            lambda: context.data_sources.get(DATA_SOURCE), lambda: context.data_sources.add_pandas(DATA_SOURCE)
        )
        asset = _get_or_add(lambda: source.get_asset(suite), lambda: source.add_dataframe_asset(suite))
        batch = _get_or_add(
            lambda: asset.get_batch_definition(BATCH), lambda: asset.add_batch_definition_whole_dataframe(BATCH)
        )
        data = load_suite(suite)
        expectation_suite = _get_or_add(
            lambda: context.suites.get(data["name"]), lambda: context.suites.add(gx.ExpectationSuite(**data))
        )
        definition = _get_or_add(
            lambda: context.validation_definitions.get(suite),
            lambda: context.validation_definitions.add(
                gx.ValidationDefinition(name=suite, data=batch, suite=expectation_suite)
            ),
        )
        _definitions[suite] = definition
        return definition


def prepare(*suites: str) -> threading.Thread:
    """Build the context (and the suites' definitions) in a background thread: the import overlaps I/O."""

    def build() -> None:
        try:
            for suite in suites:
                _definition(suite)
            _gx_context()
        except Exception:  # validate() builds again and reports the problem where it matters
            log.warning("preparing Great Expectations in the background failed", exc_info=True)

    thread = threading.Thread(target=build, name="gx-prepare", daemon=True)
    thread.start()
    return thread


def validate(
    suite: str,
    frame: pd.DataFrame,
    parameters: Mapping[str, Any] | None = None,
    *,
    sample_rows: int = SAMPLE_ROWS,
) -> Validation:
    """Validate ``frame`` (its index is used to pick sample rows) against ``suite``."""
    started = time.perf_counter()
    values = dict(parameters or {})
    with _lock:
        definition = _definition(suite)
        result = definition.run(
            batch_parameters={"dataframe": frame},
            expectation_parameters=values,
            result_format={"result_format": "SUMMARY"},
        )
    failed = [_failed(item, frame, values, sample_rows) for item in result.results if not item.success]
    return Validation(
        suite=suite,
        success=bool(result.success),
        evaluated=len(result.results),
        rows=len(frame),
        failed=failed,
        seconds=round(time.perf_counter() - started, 3),
    )


def _resolve(value: Any, parameters: Mapping[str, Any]) -> Any:
    if isinstance(value, Mapping) and "$PARAMETER" in value:
        return parameters.get(str(value["$PARAMETER"]))
    return value


def _failed(item: Any, frame: pd.DataFrame, parameters: Mapping[str, Any], sample_rows: int) -> FailedExpectation:
    config = item.expectation_config
    meta = dict(config.meta or {})
    kwargs = {k: _resolve(v, parameters) for k, v in dict(config.kwargs).items()}
    name = str(meta.get("name") or config.type)
    column = kwargs.get("column")
    outcome: dict[str, Any] = dict(item.result or {})
    error = _exception(item.exception_info)
    indexes: list[Any]
    if error is not None:
        detail, unexpected, indexes = f"could not be checked: {error}", 0, []
    elif "observed_value" in outcome and column is None:
        low, high = kwargs.get("min_value"), kwargs.get("max_value")
        expected = f"{low if low is not None else 0}..{high if high is not None else 'any'}"
        detail, unexpected, indexes = f"{outcome['observed_value']} rows, expected {expected}", 0, []
    else:
        unexpected = int(outcome.get("unexpected_count") or 0)
        counted = int(outcome.get("element_count") or 0) - int(outcome.get("missing_count") or 0)
        detail = f"{unexpected} of {counted} rows"
        mostly = kwargs.get("mostly")
        if isinstance(mostly, int | float) and mostly < 1:
            share = 100.0 * unexpected / counted if counted else 0.0
            detail += f" = {share:.1f} %, at most {100.0 * (1 - mostly):.1f} % allowed"
        indexes = list(outcome.get("partial_unexpected_index_list") or [])
    return FailedExpectation(
        name=name,
        expectation=str(config.type),
        description=str(meta.get("description") or ""),
        column=str(column) if column is not None else None,
        detail=detail,
        unexpected=unexpected,
        sample=_rows(frame, indexes[:sample_rows]),
    )


def _exception(info: Any) -> str | None:
    """The first line of the exception an expectation raised (GX nests it per metric), or None."""
    if not isinstance(info, Mapping):
        return None
    found = [info] if "raised_exception" in info else [v for v in info.values() if isinstance(v, Mapping)]
    for entry in found:
        if entry.get("raised_exception"):
            return str(entry.get("exception_message") or "error").strip().splitlines()[0]
    return None


def _rows(frame: pd.DataFrame, indexes: list[Any]) -> list[dict[str, Any]]:
    present = [i for i in indexes if i in frame.index]
    if not present:
        return []
    return [{str(k): _plain(v) for k, v in row.items()} for row in frame.loc[present].to_dict("records")]


def _plain(value: Any) -> Any:
    """A JSON-friendly scalar (NaN and missing become None)."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
        if isinstance(value, float) and math.isnan(value):
            return None
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value if isinstance(value, str | int | float | bool) else str(value)
