"""The Oblio connector against the simulator: token renewal, pace, the lock, stock pages, idempotent invoices,
totals to the ban, storno, returns, statuses, preflight (docs/oblio.md)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from erpsync.connectors.asgi import SyncASGITransport
from erpsync.connectors.erp.base import Needs
from erpsync.connectors.erp.oblio import OblioConnector, classify_oblio
from erpsync.connectors.errors import AuthError, RateLimitedError, RecordError
from erpsync.connectors.http import reset_shared_limiters
from erpsync.core.models import Address, Customer, Order, OrderLine, ReturnLine
from erpsync.testing.oblio import OblioSimulator
from erpsync.testing.server import serve_in_thread

CIF = "RO12345678"
EMAIL, SECRET = "office@example.ro", "oblio-secret-0001"


@pytest.fixture(autouse=True)
def _fresh_limiters() -> Iterator[None]:
    reset_shared_limiters()
    yield
    reset_shared_limiters()


@pytest.fixture
def sim() -> OblioSimulator:
    return OblioSimulator(cif=CIF, managements={"Depozit": {"A": 10, "B": 5}, "Magazin": {"A": 2}})


def _connector(sim: OblioSimulator, **options: Any) -> OblioConnector:
    options.setdefault("requests_per_second", 3)
    return OblioConnector(
        "http://oblio.test/api",
        EMAIL,
        SECRET,
        CIF,
        order_warehouse="Depozit",
        transport=SyncASGITransport(sim),
        **options,
    )


def _order(reference: str, *lines: OrderLine, total: str, shipping: str = "0") -> Order:
    address = Address(name="Ion Pop", street="Str. Lunga 1", city="Cluj-Napoca", postal_code="400001")
    return Order(
        shop_id=reference,
        reference=reference,
        customer=Customer(email="ion@example.com", name="Ion Pop"),
        billing=address,
        shipping=address,
        lines=list(lines),
        shipping_amount=Decimal(shipping),
        total=Decimal(total),
    )


def _line(sku: str, quantity: int, price: str) -> OrderLine:
    return OrderLine(
        sku=sku, name=f"Produs {sku}", quantity=Decimal(quantity), unit_price_gross=Decimal(price), vat_rate=Decimal(21)
    )


def test_an_expired_token_is_renewed_once_and_the_call_succeeds(sim: OblioSimulator) -> None:
    erp = _connector(sim)
    assert "Magazin Demo SRL" in erp.check()
    sim.expire_tokens()
    levels = [level for page in erp.iter_stock(["Depozit"]) for level in page.items]
    assert {(lv.sku, lv.on_hand) for lv in levels} == {("A", Decimal(10)), ("B", Decimal(5))}
    assert sim.stats.tokens_issued == 2 and erp.client.tokens_fetched == 2
    assert sim.stats.auth_failures == 1  # the one refused call, then the same call with the new token


def test_bad_secret_is_one_auth_error_not_retried(sim: OblioSimulator) -> None:
    erp = OblioConnector("http://oblio.test/api", EMAIL, "wrong", CIF, transport=SyncASGITransport(sim))
    with pytest.raises(AuthError):
        erp.check()
    assert erp.counters.as_dict()["reads"] == 1 and erp.counters.retries == 0


def test_a_burst_of_20_reads_never_exceeds_3_calls_in_any_second() -> None:
    sim = OblioSimulator(cif=CIF, managements={"Depozit": {"A": 1}})
    with serve_in_thread(sim) as server:
        first = OblioConnector(f"{server.url}/api", EMAIL, SECRET, CIF, requests_per_second=3)
        second = OblioConnector(f"{server.url}/api", EMAIL, SECRET, CIF, requests_per_second=3)  # same token pace
        for _ in range(10):
            for erp in (first, second):
                erp._managements = None
                assert erp.managements() == ["Depozit"]
        first.close()
        second.close()
    assert sim.stats.by_route["nomenclature/management"] == 20
    assert sim.stats.locks == 0 and sim.stats.rate_limited == 0
    assert sim.stats.max_in_window(1.0) <= 3


def test_the_lock_is_one_clear_error_and_no_call_is_made_while_it_lasts(sim: OblioSimulator) -> None:
    erp = _connector(sim)
    erp.check()
    token = erp.client.token()
    raw = httpx.Client(base_url="http://oblio.test/api/", transport=SyncASGITransport(sim))
    for _ in range(4):  # someone else bursts with the same token
        raw.get("nomenclature/series", params={"cif": CIF}, headers={"Authorization": f"Bearer {token}"})
    assert sim.stats.locks == 1
    before = sim.stats.requests
    with pytest.raises(RateLimitedError) as locked:
        list(erp.iter_stock(["Depozit"]))
    assert "locked" in str(locked.value) and locked.value.system == "oblio"
    assert erp.counters.retries == 0 and sim.stats.requests == before + 1
    with pytest.raises(RateLimitedError) as again:
        erp.check()
    assert again.value.not_sent and sim.stats.requests == before + 1  # not retried into a longer lock


def test_stock_of_600_products_is_read_in_3_pages() -> None:
    sim = OblioSimulator(cif=CIF)
    sim.seed_generated(600, "Depozit")
    erp = _connector(sim)
    pages = list(erp.iter_stock(["Depozit"]))
    assert [len(page.items) for page in pages] == [250, 250, 100]
    assert sim.stats.by_route["nomenclature/products"] == 3
    assert sum((lv.on_hand for page in pages for lv in page.items), Decimal(0)) == sum(i % 50 for i in range(1, 601))


def test_the_same_order_twice_and_a_lost_reply_make_one_invoice(sim: OblioSimulator) -> None:
    erp = _connector(sim, sleep=lambda s: None)
    order = _order("WEB-100", _line("A", 2, "11.90"), total="23.80")
    sim.inject("docs/invoice", status=500, after=True)  # processed, the reply lost: the POST is repeated
    first = erp.create_order(order, order.customer)
    assert erp.create_order(order, order.customer) == first == "FCT-0001"
    fresh = _connector(sim)  # the registry lost too: the idempotency key still finds the invoice
    assert fresh.create_order(order, order.customer) == first
    assert len(sim.invoices()) == 1 and sim.quantity("Depozit", "A") == Decimal(8)
    assert sim.docs["FCT-0001"].idempotency_key == "WEB-100"


def test_totals_to_the_ban_with_a_discount_and_shipping(sim: OblioSimulator) -> None:
    erp = _connector(sim)
    voucher = OrderLine(
        sku="",
        kind="discount",
        name="VOUCHER10",
        quantity=Decimal(1),
        unit_price_gross=Decimal("-10.00"),
        vat_rate=Decimal(21),
    )
    order = _order("WEB-101", _line("A", 2, "33.33"), _line("B", 1, "19.99"), voucher, total="92.64", shipping="15.99")
    order.shipping_vat_rate = Decimal(21)
    erp_id = erp.create_order(order, order.customer)
    assert sim.docs[erp_id].total == Decimal("92.64")
    rows = sim.docs[erp_id].products
    assert [r.get("discount") for r in rows if "discount" in r] == [10.0] and rows[-2]["productType"] == "Serviciu"
    wrong = _order("WEB-102", _line("A", 1, "33.33"), total="30.00")
    with pytest.raises(RecordError, match="total mismatch"):
        erp.create_order(wrong, wrong.customer)
    assert len(sim.invoices()) == 1


def test_a_company_travels_with_its_cui(sim: OblioSimulator) -> None:
    erp = _connector(sim)
    order = _order("WEB-103", _line("B", 1, "10.00"), total="10.00")
    company = Customer(email="x@firma.ro", is_company=True, company_name="Firma SRL", vat_code="RO44278913")
    erp_id = erp.create_order(order, company)
    assert sim.docs[erp_id].client["cif"] == "RO44278913" and sim.docs[erp_id].client["vatPayer"] == 1


def test_unknown_sku_is_a_record_error_naming_it(sim: OblioSimulator) -> None:
    erp = _connector(sim)
    order = _order("WEB-104", _line("A", 1, "10.00"), _line("NOPE-1", 1, "5.00"), total="15.00")
    with pytest.raises(RecordError, match="NOPE-1"):
        erp.create_order(order, order.customer)
    assert sim.invoices() == [] and sim.quantity("Depozit", "A") == Decimal(10)


def test_cancel_is_one_storno_and_statuses_carry_number_date_link(sim: OblioSimulator) -> None:
    erp = _connector(sim)
    order = _order("WEB-105", _line("A", 3, "10.00"), total="30.00")
    erp_id = erp.create_order(order, order.customer)
    status = erp.order_statuses([erp_id])[0]
    invoice = status.invoices[0]
    assert (status.state, invoice.number, invoice.issued is not None) == ("invoiced", "FCT 0001", True)
    assert invoice.url and invoice.url.startswith("https://www.oblio.eu/")
    done = erp.cancel_order(erp_id, reference="WEB-105")
    assert done.kind == "storno" and done.erp_id == "FCT-0002"
    assert erp.cancel_order(erp_id, reference="WEB-105") == done
    assert len(sim.stornos(erp_id)) == 1 and sim.quantity("Depozit", "A") == Decimal(10)
    status = erp.order_statuses([erp_id])[0]
    assert status.cancelled and [i.credit for i in status.invoices] == [False, True]


def test_a_partial_return_is_a_negative_invoice_and_over_return_is_refused(sim: OblioSimulator) -> None:
    erp = _connector(sim)
    order = _order("WEB-106", _line("A", 3, "10.00"), _line("B", 1, "5.00"), total="35.00")
    erp_id = erp.create_order(order, order.customer)
    back = erp.return_order(erp_id, [ReturnLine(sku="A", quantity=Decimal(2))], reference="WEB-106/R1")
    assert back.kind == "return" and sim.docs[str(back.erp_id)].total == Decimal(-20)
    assert sim.quantity("Depozit", "A") == Decimal(9)
    with pytest.raises(RecordError, match="over-return"):
        erp.return_order(erp_id, [ReturnLine(sku="A", quantity=Decimal(2))], reference="WEB-106/R2")
    with pytest.raises(RecordError, match="has returns"):
        erp.cancel_order(erp_id, reference="WEB-106")


def test_a_proforma_moves_no_stock_and_is_cancelled(sim: OblioSimulator) -> None:
    erp = _connector(sim, document="proforma", invoice_series="PR")
    order = _order("WEB-107", _line("A", 1, "10.00"), total="10.00")
    erp_id = erp.create_order(order, order.customer)
    assert erp_id == "proforma:PR-0001" and sim.quantity("Depozit", "A") == Decimal(10)
    assert erp.cancel_order(erp_id, reference="WEB-107").kind == "cancelled"
    assert sim.docs["PR-0001"].canceled and erp.order_statuses([erp_id])[0].cancelled


def test_preflight_probes_credentials_series_managements_and_vat(sim: OblioSimulator) -> None:
    erp = _connector(sim, invoice_series="WEB")
    probes = {p.target: p for p in erp.preflight([Needs(store="s", warehouses=("Depozit", "Nope"), vat_rates=("21",))])}
    assert probes["erp credentials and CIF"].ok and probes["erp warehouse Depozit"].ok and probes["erp VAT rates"].ok
    assert not probes["erp invoice series"].ok and "'FCT'" in probes["erp invoice series"].detail
    assert not probes["erp warehouse Nope"].ok and "'Depozit'" in probes["erp warehouse Nope"].detail


def test_classify_reads_the_envelope() -> None:
    request = httpx.Request("POST", "https://www.oblio.eu/api/docs/invoice")
    refused = httpx.Response(400, json={"status": 400, "statusMessage": "Stoc insuficient"}, request=request)
    error = classify_oblio(refused, system="oblio", record_key="WEB-1")
    assert isinstance(error, RecordError) and "Stoc insuficient" in error.message
    locked = httpx.Response(401, json={"status": 401, "statusMessage": "Token blocat 10 minute"}, request=request)
    lock = classify_oblio(locked, system="oblio")
    assert isinstance(lock, RateLimitedError) and lock.retry_after == 600
    inner = httpx.Response(200, json={"status": 400, "statusMessage": "Serie invalida"}, request=request)
    assert isinstance(classify_oblio(inner, system="oblio", record_key="WEB-1"), RecordError)
    ok = httpx.Response(200, json={"status": 200, "statusMessage": "Success", "data": {}}, request=request)
    assert classify_oblio(ok, system="oblio") is None


def test_the_window_counts_from_replies_so_uneven_latency_cannot_lock_the_token() -> None:
    # Oblio counts calls when they arrive. A call whose request is slow to arrive (here: 0.3 s) and a fast one
    # sent 1 s after it would share Oblio's second if the window were kept on send times.
    sim = OblioSimulator(cif=CIF, managements={"Depozit": {"A": 1}})
    slow = {"next": True}

    def uneven(request: httpx.Request) -> httpx.Response:
        if slow["next"]:
            time.sleep(0.3)  # the request travels slowly: it reaches Oblio 0.3 s after it was sent
        slow["next"] = not slow["next"]
        return SyncASGITransport(sim).handle_request(request)

    erp = OblioConnector(
        "http://oblio.test/api", EMAIL, SECRET, CIF, requests_per_second=3, transport=httpx.MockTransport(uneven)
    )
    erp.client.token()
    started = time.monotonic()
    for _ in range(12):
        erp._managements = None
        assert erp.managements() == ["Depozit"]
    elapsed = time.monotonic() - started
    assert sim.stats.locks == 0 and sim.stats.max_in_window(1.0) <= 3
    assert elapsed < 12 / 3 * 1.6  # and no slower than the latency itself makes it
