"""Benchmark of the files ERP's intake: ``python -m bench files [--rows N] [--change F] [--budget S]``.

A desktop ERP's stock/price export of ``rows`` rows (CSV, CP1250, ';', decimal commas, WinMentor's headers) is
accepted once; then a second export with ``change`` of the quantities moved (a few of them to zero) is taken in
the way a stock run takes it: read, parsed through the column mapping, validated by the ``stock_file`` Great
Expectations suites against the first file (row band, zero share), and diffed: the connector's stock pages
become the levels frame, availability, and the SKUs whose quantity differs from what was pushed. The timed part
is that second intake; Great Expectations' one-off import is timed apart. Peak RSS is this process's.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._shop import peak_rss_mb

BUDGET_SECONDS = 3.0


def export(quantities: list[int], seed: int = 7) -> bytes:
    """A WinMentor-like CSV export in CP1250 with decimal commas."""
    rng = random.Random(seed)
    lines = ["CodExtern;Denumire;Stoc;PretVanzare;CotaTVA"]
    for index, quantity in enumerate(quantities):
        price = f"{rng.randint(100, 99999) / 100:.2f}".replace(".", ",")
        lines.append(f"SKU-{index:06d};Produs ţesătură {index};{quantity};{price};21")
    return ("\r\n".join(lines) + "\r\n").encode("cp1250")


def run(rows: int, change: float, workdir: Path) -> dict[str, Any]:
    """Accept a first export, then time the intake + diff of a second one."""
    import pandas as pd

    from erpsync.connectors.erp.files import FilesConnector, LocalFolder, MemoryFileJournal, parse, read_table
    from erpsync.connectors.http import Counters
    from erpsync.core.availability import compute_availability, levels_frame
    from erpsync.core.config import StockFileSettings
    from erpsync.core.diff import changed
    from erpsync.core.stock_file import columns_frame, file_bounds, guard_frame, previous_quantities
    from erpsync.expectations.stock_file import validate_stock_file

    settings = StockFileSettings(pattern="stoc*.csv", preset="winmentor", encoding="cp1250", decimal=",")
    inbox, outbox = workdir / "inbox", workdir / "outbox"
    inbox.mkdir()
    outbox.mkdir()
    counters = Counters()
    connector = FilesConnector(
        LocalFolder(inbox, counters),
        LocalFolder(outbox, counters),
        stock=settings,
        cache_dir=workdir / "cache",
        journal=MemoryFileJournal(),
        validator=validate_stock_file,
        counters=counters,
    )
    rng = random.Random(11)
    first = [rng.randint(1, 500) for _ in range(rows)]
    moved = set(rng.sample(range(rows), int(rows * change)))
    second = [(0 if i % 10 == 0 else q + 7) if i in moved else q for i, q in enumerate(first)]

    started = time.perf_counter()
    validate_stock_file(
        pd.DataFrame({"column": ["sku"], "header": ["x"], "found": [1.0]}), None, file_bounds(None, 0.2, 0.2)
    )
    gx_import = time.perf_counter() - started

    def drop(name: str, data: bytes) -> None:
        (inbox / name).write_bytes(data)
        (inbox / f"{name}.done").write_bytes(b"")

    drop("stoc-1.csv", export(first))
    started = time.perf_counter()
    assert connector.take_in() == [], "the first export was refused"
    first_intake = time.perf_counter() - started
    accepted = connector.current()
    assert accepted is not None
    pushed = pd.Series(
        accepted.frame["quantity_number"].to_numpy(), index=pd.Index(accepted.frame["sku"], dtype="str", name="sku")
    )

    data = export(second)
    drop("stoc-2.csv", data)
    # the parts, on the same bytes, for the breakdown (not counted in the total below)
    t0 = time.perf_counter()
    parsed = parse(read_table(data, "csv", settings), "csv", settings)
    t1 = time.perf_counter()
    assert parsed.frame is not None
    frame = guard_frame(parsed.frame, previous_quantities(accepted.frame, False), by_warehouse=False)
    bounds = file_bounds(len(accepted.frame), settings.row_count_band, settings.max_zero_share)
    verdict = validate_stock_file(columns_frame(parsed.mapping, parsed.found, parsed.required), frame, bounds)
    t2 = time.perf_counter()

    started = time.perf_counter()
    levels = levels_frame(level for page in connector.iter_stock(["WH"]) for level in page.items)  # takes it in
    intake_and_levels = time.perf_counter() - started
    availability = compute_availability(levels, ["WH"], 0)
    writes = changed(availability.available, pushed)
    total = time.perf_counter() - started
    return {
        "rows": rows,
        "bytes": len(data),
        "gx_import": gx_import,
        "first_intake": first_intake,
        "parse": t1 - t0,
        "validate": t2 - t1,
        "passed": verdict.passed,
        "intake_and_levels": intake_and_levels,
        "total": total,
        "changed": len(writes),
        "expected_changed": len(moved),
        "accepted": connector.current() is not None and connector.current().name == "stoc-2.csv",  # type: ignore[union-attr]
    }


def _load() -> str:
    import os

    return " ".join(f"{value:.1f}" for value in os.getloadavg())


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench files", description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--change", type=float, default=0.01, help="share of quantities moved in the second export")
    parser.add_argument("--budget", type=float, default=BUDGET_SECONDS, help="seconds the second intake may take")
    parser.add_argument("--repeat", type=int, default=3, help="runs (the machine is shared: best and median shown)")
    args = parser.parse_args(argv)
    results = []
    for _ in range(max(1, args.repeat)):
        with tempfile.TemporaryDirectory(prefix="bench-files-") as folder:
            results.append(run(args.rows, args.change, Path(folder)))
    gx_import = results[0]["gx_import"]
    results.sort(key=lambda r: r["total"])
    result = results[0]
    median = results[len(results) // 2]["total"]
    print(f"files: {result['rows']:,} rows, {result['bytes'] / 1e6:.1f} MB CSV (CP1250, ';', decimal comma)")
    print(f"  Great Expectations import (once per process, first run): {gx_import:.2f} s")
    print(f"  first export accepted (nothing to compare with): {result['first_intake']:.2f} s")
    print(
        f"  second export: parse {result['parse']:.2f} s, validate (GX, band + zero share vs the first) "
        f"{result['validate']:.2f} s [{'passed' if result['passed'] else 'REFUSED'}]"
    )
    print(
        f"  second export taken in by a stock read + levels {result['intake_and_levels']:.2f} s; "
        f"with availability and diff: {result['total']:.2f} s (budget {args.budget:.1f} s)"
    )
    print(f"  of {len(results)} runs: best {result['total']:.2f} s, median {median:.2f} s, load average {_load()}")
    print(f"  SKUs to write: {result['changed']:,} (moved in the export: {result['expected_changed']:,})")
    print(f"  peak RSS: {peak_rss_mb():.0f} MB")
    ok = all(r["passed"] and r["accepted"] and r["changed"] == r["expected_changed"] for r in results)
    ok = ok and result["total"] <= args.budget
    print("  OK" if ok else "  OVER BUDGET OR WRONG")
    return 0 if ok else 1
