"""The ERP matrix of ``test_every_erp*.py``: each result (scenario x ERP) is collected as it is reported and written
to ``.pytest_cache/erp-matrix.md`` at the end of the session (passed / n/a: the capability that rules it out /
FAILED)."""

from __future__ import annotations

import re

import pytest

_RESULTS: dict[str, dict[str, str]] = {}  # scenario -> ERP -> result, in the order reported
_NODE = re.compile(r"test_every_erp[^:]*\.py::test_(?P<scenario>\w+)\[(?P<erp>\w+)\]$")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    match = _NODE.search(report.nodeid)
    if match is None or (report.when != "call" and report.passed):
        return
    from tests.flows.erp_matrix import MATRIX_KEY

    cell = "passed"
    if report.failed:
        cell = "FAILED" if report.when == "call" else f"ERROR ({report.when})"
    elif report.skipped:
        cell = "SKIPPED"  # no test of these modules skips: this would be a bug in the test
    else:
        cell = next((str(value) for key, value in report.user_properties if key == MATRIX_KEY), cell)
    row = _RESULTS.setdefault(match["scenario"], {})
    if row.get(match["erp"], "passed") == "passed" or cell != "passed":
        row[match["erp"]] = cell


def pytest_sessionfinish(session: pytest.Session) -> None:
    if not _RESULTS:
        return
    from tests.flows.erp_matrix import ERPS

    lines = ["| scenario | " + " | ".join(ERPS) + " |", "| --- |" + " --- |" * len(ERPS)]
    for scenario, row in _RESULTS.items():
        lines.append(f"| {scenario} | " + " | ".join(row.get(erp, "not run") for erp in ERPS) + " |")
    target = session.config.rootpath / ".pytest_cache" / "erp-matrix.md"
    target.parent.mkdir(exist_ok=True)
    target.write_text("\n".join(lines) + "\n")
