"""ERP preflight probes (``erpsync check``) of the connectors that cannot need the real Tryton: SmartBill over
its simulator (invoice series, VAT rates), the in-memory ERP, and a connector without the method."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from erpsync.connectors.asgi import SyncASGITransport
from erpsync.connectors.erp.base import Needs, Preflight, preflight
from erpsync.connectors.erp.smartbill import SmartBillConnector
from erpsync.connectors.http import reset_shared_limiters
from erpsync.testing.memory_erp import MemoryErp
from erpsync.testing.smartbill import SmartBillSimulator

CIF, USER, TOKEN = "RO12345678", "ana@firma.ro", "sb-token-123"


@pytest.fixture(autouse=True)
def _fresh_limiters() -> Iterator[None]:
    reset_shared_limiters()
    yield
    reset_shared_limiters()


def _smartbill(series: str) -> SmartBillConnector:
    sim = SmartBillSimulator(cif=CIF, users={USER: TOKEN}, series=("WEB", "AVZ"))
    return SmartBillConnector(
        "https://ws.smartbill.ro/SBORO/api", USER, TOKEN, CIF, invoice_series=series, transport=SyncASGITransport(sim)
    )


def test_smartbill_probes_its_invoice_series_and_the_vat_rates_the_stores_use() -> None:
    with _smartbill("WEB") as good:
        probes = {p.target: p for p in preflight(good, [Needs("main", vat_rates=("21", "11"))])}
    assert {"erp invoice series", "erp VAT rates"} <= set(probes)
    assert probes["erp invoice series"].ok and "'WEB' present" in probes["erp invoice series"].detail
    assert probes["erp VAT rates"].ok, probes["erp VAT rates"].detail

    with _smartbill("FACT") as wrong:
        probes = {p.target: p for p in preflight(wrong, [Needs("main", vat_rates=("21", "7"))])}
    series, rates = probes["erp invoice series"], probes["erp VAT rates"]
    assert not series.ok and "'FACT' is not an invoice series of CIF RO12345678 (known: 'WEB', 'AVZ')" in series.detail
    assert "set [erp] invoice_series" in series.detail
    assert not rates.ok and "no tax for 7%" in rates.detail


def test_the_in_memory_erp_has_nothing_to_create_and_a_connector_without_preflight_nothing_to_probe() -> None:
    erp = MemoryErp()
    assert isinstance(erp, Preflight)
    [probe] = preflight(erp, [Needs("main"), Needs("cluj")])
    assert probe.ok and probe.target == "erp books" and "main, cluj" in probe.detail
    assert erp.counters.reads == 1

    class Bare:
        system = "bare"

    assert preflight(Bare(), [Needs("main")]) == []
