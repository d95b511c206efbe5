"""``erpsync check`` on SmartBill (``preflight``, ``checks.py``) against the simulator: one line per probe
(credentials, CIF, document series, VAT rates, each warehouse), the fix in the line when it fails."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from erpsync.connectors.asgi import SyncASGITransport
from erpsync.connectors.erp.base import Needs, Probe, preflight
from erpsync.connectors.erp.smartbill import SmartBillConnector
from erpsync.connectors.http import reset_shared_limiters
from erpsync.testing.smartbill import SmartBillSimulator

CIF, USER, TOKEN = "RO12345678", "ana@firma.ro", "sb-token-123"
NEEDS = [Needs("main", warehouses=("Depozit",), vat_rates=("21",)), Needs("cluj", warehouses=("Magazin Cluj",))]


@pytest.fixture(autouse=True)
def _fresh_limiters() -> Iterator[None]:
    reset_shared_limiters()
    yield
    reset_shared_limiters()


def _sim() -> SmartBillSimulator:
    return SmartBillSimulator(
        cif=CIF, users={USER: TOKEN}, series=("WEB",), warehouses={"Depozit": {"A": 1}, "Magazin Cluj": {"A": 2}}
    )


def _probes(sim: SmartBillSimulator, needs: list[Needs] = NEEDS, **options: Any) -> dict[str, Probe]:
    settings: dict[str, Any] = {"invoice_series": "WEB", "transport": SyncASGITransport(sim), **options}
    token = settings.pop("token", TOKEN)
    cif = settings.pop("cif", CIF)
    with SmartBillConnector("https://ws.smartbill.ro/SBORO/api", USER, token, cif, **settings) as connector:
        return {p.target: p for p in preflight(connector, needs)}


def test_everything_present_is_one_ok_line_each_in_three_calls() -> None:
    sim = _sim()
    probes = _probes(sim)
    assert list(probes) == [
        "erp credentials",
        "erp CIF",
        "erp invoice series",
        "erp VAT rates",
        "erp warehouse 'Depozit'",
        "erp warehouse 'Magazin Cluj'",
    ]
    assert all(p.ok for p in probes.values()), probes
    assert sim.stats.by_route == {"tax": 1, "series": 1, "stocks": 1}


def test_a_wrong_token_fails_the_credentials_and_probes_nothing_else() -> None:
    probes = _probes(_sim(), token="wrong")
    credentials = probes["erp credentials"]
    assert not credentials.ok and "[erp] token" in credentials.detail and "Integrari" in credentials.detail
    assert "wrong" not in credentials.detail  # the token never appears
    assert all(
        not p.ok and p.detail == "not probed: credentials refused" for t, p in probes.items() if t != "erp credentials"
    )


def test_a_cif_the_user_has_no_rights_on_fails_the_cif() -> None:
    probes = _probes(_sim(), cif="RO99999999")
    assert probes["erp credentials"].ok
    assert not probes["erp CIF"].ok and "no rights on CIF RO99999999" in probes["erp CIF"].detail
    assert "set [erp] cif" in probes["erp CIF"].detail
    assert probes["erp invoice series"].detail == "not probed: CIF refused"


def test_a_missing_series_and_a_warehouse_of_another_case_name_their_fix() -> None:
    needs = [Needs("main", warehouses=("depozit", "Online"), vat_rates=("21", "7"))]
    probes = _probes(_sim(), needs, invoice_series="FACT")
    series = probes["erp invoice series"]
    assert not series.ok and "'FACT' is not an invoice series of CIF RO12345678 (known: 'WEB')" in series.detail
    assert not probes["erp VAT rates"].ok and "no tax for 7%" in probes["erp VAT rates"].detail
    wrong_case, absent = probes["erp warehouse 'depozit'"], probes["erp warehouse 'Online'"]
    assert not wrong_case.ok and "did you mean 'Depozit'? names are case-sensitive" in wrong_case.detail
    assert not absent.ok and "known: 'Depozit', 'Magazin Cluj'" in absent.detail and "did you mean" not in absent.detail


def test_estimates_probe_the_estimate_series() -> None:
    sim = _sim()
    assert _probes(sim, document="estimate", invoice_series="PRF")["erp invoice series"].ok
    assert sim.stats.last_params["series"]["type"] == "p"
    probe = _probes(_sim(), document="estimate", invoice_series="WEB")["erp invoice series"]
    assert not probe.ok and "not an estimate series" in probe.detail


def test_a_locked_token_says_so_and_probes_nothing_else() -> None:
    sim = _sim()
    sim.inject("tax", status=429, count=3)  # every attempt refused
    probes = _probes(sim)
    assert not probes["erp credentials"].ok and "rate limit" in probes["erp credentials"].detail
    assert probes["erp CIF"].detail == "not probed: rate limited"
