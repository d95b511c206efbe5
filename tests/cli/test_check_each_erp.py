"""`erpsync check` with SmartBill and with Oblio as the configured ERP (served simulators on loopback): every probe
passes on a right set-up; a mistyped series or warehouse is one FAIL line naming it with its fix, and the command
exits non-zero."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from erpsync.app.probe import probe_all
from erpsync.connectors.http import reset_shared_limiters
from erpsync.core.config import load_config
from erpsync.dev.stack import SimShop, start_shop, write_config
from erpsync.testing.oblio import OblioSimulator
from erpsync.testing.server import RunningServer, serve_in_thread
from erpsync.testing.smartbill import SmartBillSimulator

ROOT = Path(__file__).resolve().parents[2]
CIF = "RO12345678"


@pytest.fixture
def running(tmp_path: Path) -> Iterator[dict[str, Any]]:
    reset_shared_limiters()
    shop = start_shop("main")
    sb = serve_in_thread(
        SmartBillSimulator(
            cif=CIF, users={"office@example.ro": "sb-token"}, series=("WEB",), warehouses={"Depozit": {"A": 1}}
        )
    )
    oblio = serve_in_thread(
        OblioSimulator(cif=CIF, users={"office@example.ro": "oblio-secret"}, managements={"Depozit": {"A": 1}})
    )
    yield {"shop": shop, "smartbill": sb, "oblio": oblio, "tmp": tmp_path}
    for server in (sb, oblio):
        server.stop()
    shop.stop()
    reset_shared_limiters()


def _erp(kind: str, server: RunningServer, series: str) -> dict[str, Any]:
    if kind == "smartbill":
        return {
            "type": "smartbill",
            "url": f"{server.url}/SBORO/api",
            "username": "office@example.ro",
            "token": "literal:sb-token",
            "cif": CIF,
            "invoice_series": series,
        }
    return {
        "type": "oblio",
        "url": f"{server.url}/api",
        "email": "office@example.ro",
        "secret": "literal:oblio-secret",
        "cif": CIF,
        "invoice_series": series,
    }


def _config(running: dict[str, Any], kind: str, *, series: str, warehouse: str) -> Path:
    shop: SimShop = running["shop"]
    tmp: Path = running["tmp"]
    return write_config(
        tmp / f"{kind}.toml",
        erp=_erp(kind, running[kind], series),
        shops=[shop],
        state_url=f"sqlite:///{tmp / 'state.db'}",
        stores={"main": {"warehouses": [warehouse]}},
    )


GOOD_SERIES = {"smartbill": "WEB", "oblio": "FCT"}


@pytest.mark.parametrize("kind", ["smartbill", "oblio"])
def test_a_right_set_up_passes_every_probe(running: dict[str, Any], kind: str) -> None:
    config = _config(running, kind, series=GOOD_SERIES[kind], warehouse="Depozit")
    results = {r.target: r for r in probe_all(load_config(config))}
    assert all(r.ok for r in results.values()), [f"{r.target}: {r.detail}" for r in results.values() if not r.ok]
    erp_targets = [t for t in results if t.startswith("erp")]
    # credentials (and the CIF), the series, the warehouse named in the config: each its own line
    assert any("series" in t for t in erp_targets), erp_targets
    assert any("Depozit" in t for t in erp_targets), erp_targets
    assert any("credentials" in t for t in erp_targets), erp_targets


@pytest.mark.parametrize("kind", ["smartbill", "oblio"])
def test_a_mistyped_series_and_warehouse_fail_their_own_lines(running: dict[str, Any], kind: str) -> None:
    config = _config(running, kind, series="XYZ", warehouse="depozit")
    results = {r.target: r for r in probe_all(load_config(config))}
    failed = {t: r.detail for t, r in results.items() if not r.ok}
    series = [d for t, d in failed.items() if "series" in t]
    warehouse = [d for t, d in failed.items() if "depozit" in t]
    assert len(series) == 1 and "XYZ" in series[0] and "invoice_series" in series[0], failed
    assert len(warehouse) == 1 and "depozit" in warehouse[0], failed
    assert set(failed) == {t for t in failed if "series" in t or "depozit" in t}, failed  # nothing else fails
    assert all(results[t].ok for t in results if "credentials" in t)


def test_the_command_prints_one_line_per_probe_and_exits_non_zero_on_oblio(running: dict[str, Any]) -> None:
    config = _config(running, "oblio", series="XYZ", warehouse="Depozit")
    result = subprocess.run(
        [sys.executable, "-m", "erpsync.app.cli", "check", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "ERPSYNC_CONFIG": ""},
        cwd=ROOT,
    )
    assert result.returncode != 0, result.stdout
    lines = result.stdout.splitlines()
    assert [line for line in lines if line.startswith("FAIL")] == [
        next(line for line in lines if "series" in line and line.startswith("FAIL"))
    ], result.stdout
    assert any(line.startswith("ok") and "Depozit" in line for line in lines), result.stdout
    assert "1 of" in result.stderr and "checks failed" in result.stderr, result.stderr
    assert "oblio-secret" not in result.stdout + result.stderr
