"""The SmartBill connector against the SmartBill simulator (in-process). Its pure parts are table-tested in
``test_smartbill_client.py`` (errorText classification), ``test_smartbill_mapping.py`` and
``test_smartbill_invoices.py``."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from erpsync.connectors.asgi import SyncASGITransport
from erpsync.connectors.erp.base import ErpConnector, NotSupported
from erpsync.connectors.erp.smartbill import MemoryIssuedRegistry, SmartBillConnector, StateIssuedRegistry
from erpsync.connectors.errors import (
    AuthError,
    BadRequestError,
    FatalError,
    RateLimitedError,
    RecordError,
    RetriableError,
)
from erpsync.connectors.http import reset_shared_limiters
from erpsync.core.models import Address, Customer, Order, OrderLine, StockLevel
from erpsync.core.redact import redact
from erpsync.testing.smartbill import SmartBillSimulator

URL = "http://smartbill.test/SBORO/api"
CIF = "RO12345678"
USER, TOKEN = "shop@example.com", "sb-token-0001"
NOW = datetime(2026, 11, 28, 23, 30, tzinfo=UTC)  # already the 29th in Bucharest


class FakeClock:
    """Monotonic time that only moves when something sleeps (limiter, retries) or a test advances it."""

    def __init__(self) -> None:
        self.now = 5000.0
        self.slept = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.slept += seconds


@pytest.fixture(autouse=True)
def _fresh_limiters() -> Iterator[None]:
    reset_shared_limiters()
    yield
    reset_shared_limiters()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sim(clock: FakeClock) -> SmartBillSimulator:
    return SmartBillSimulator(
        cif=CIF,
        users={USER: TOKEN},
        warehouses={"Depozit": {"A1": 10, "B2": 3}, "Magazin": {"A1": 4, "C3": 7}},
        clock=clock,
    )


Factory = Callable[..., SmartBillConnector]


@pytest.fixture
def make(sim: SmartBillSimulator, clock: FakeClock) -> Iterator[Factory]:
    made: list[SmartBillConnector] = []

    def factory(username: str = USER, token: str = TOKEN, **options: Any) -> SmartBillConnector:
        settings: dict[str, Any] = {
            "transport": SyncASGITransport(sim),
            "clock": clock,
            "sleep": clock.sleep,
            "now": lambda: NOW,
            "order_warehouse": "Depozit",
        }
        connector = SmartBillConnector(URL, username, token, CIF, **(settings | options))
        made.append(connector)
        return connector

    yield factory
    for connector in made:
        connector.close()


@pytest.fixture
def sb(make: Factory) -> SmartBillConnector:
    return make()


def an_order(shop_id: str = "95750870.3", *lines: OrderLine, shipping: Decimal = Decimal(0)) -> Order:
    billing = Address(name="Ion Pop", street="Str. Lunga 1", city="Cluj-Napoca", region="Cluj", phone="0722000000")
    customer = Customer(email="Ion@Example.ro", name="Ion Pop", billing=billing)
    lines = lines or (
        OrderLine(sku="A1", name="Cana", quantity=Decimal(2), unit_price_gross=Decimal("24.99"), vat_rate=Decimal(21)),
    )
    return Order(shop_id=shop_id, customer=customer, billing=billing, lines=list(lines), shipping_amount=shipping)


def a_line(sku: str, **fields: Any) -> OrderLine:
    values: dict[str, Any] = {"quantity": Decimal(1), "unit_price_gross": Decimal(5), "vat_rate": Decimal(21)}
    return OrderLine(sku=sku, **(values | fields))


def stock_of(page_items: list[StockLevel]) -> dict[tuple[str, str], Decimal]:
    return {(s.warehouse, s.sku): s.on_hand for s in page_items}


# --------------------------------------------------------------------------- protocol, check


def test_is_an_erp_connector_with_the_smartbill_capabilities(sb: SmartBillConnector) -> None:
    assert isinstance(sb, ErpConnector)
    assert sb.system == "smartbill"
    assert sorted(sb.capabilities.names()) == [
        "invoices",
        "orders_cancel",
        "orders_create",
        "orders_read_status",
        "orders_return",
        "stock_read",
    ]


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.iter_products(),
        lambda c: c.create_product(None),
        lambda c: c.update_product(None, set()),
        lambda c: c.find_customer(None),
        lambda c: c.create_customer(None),
        lambda c: c.iter_orders(),
        lambda c: c.iter_goods_receipts(NOW, ["Depozit"]),
        lambda c: c.iter_suppliers(),
        lambda c: c.iter_stock(["Depozit"], changed_since=NOW),
    ],
)
def test_what_smartbill_cannot_do_raises_not_supported_at_once(
    sb: SmartBillConnector, sim: SmartBillSimulator, call: Callable[[SmartBillConnector], Any]
) -> None:
    with pytest.raises(NotSupported, match="smartbill"):
        call(sb)
    assert sim.stats.requests == 0


def test_check_is_one_authenticated_call(sb: SmartBillConnector, sim: SmartBillSimulator) -> None:
    assert sb.check() == f"SmartBill, CIF {CIF}, 3 VAT rates"
    assert sim.stats.by_route == {"tax": 1}
    assert sb.counters.reads == 1


def test_bad_credentials_give_one_auth_error_naming_smartbill(make: Factory, sim: SmartBillSimulator) -> None:
    wrong = "sb-wrong-token-42"
    sb = make(token=wrong)
    with pytest.raises(AuthError) as raised:
        sb.check()
    assert str(raised.value).startswith("smartbill GET")
    assert raised.value.status == 401
    assert wrong not in str(raised.value)
    assert redact(f"token={wrong}") == "token=***"
    assert sim.stats.auth_failures == 1  # not retried


def test_a_cif_without_rights_is_an_auth_error_although_http_200(make: Factory, sim: SmartBillSimulator) -> None:
    sim.cif = "RO999"
    with pytest.raises(AuthError, match="drepturi de acces"):
        make().iter_stock(["Depozit"]).__next__()
    assert sim.stats.calls == 1


# --------------------------------------------------------------------------- stock


def test_stock_is_one_call_for_all_warehouses_dated_today_in_bucharest(
    sb: SmartBillConnector, sim: SmartBillSimulator
) -> None:
    pages = list(sb.iter_stock(["Depozit", "Magazin"]))
    assert len(pages) == 1
    assert pages[0].errors == []
    assert stock_of(pages[0].items) == {
        ("Depozit", "A1"): 10,
        ("Depozit", "B2"): 3,
        ("Magazin", "A1"): 4,
        ("Magazin", "C3"): 7,
    }
    assert all(s.reserved == 0 for s in pages[0].items)
    assert sim.stats.by_route == {"stocks": 1}
    assert sim.stats.last_params["stocks"] == {"cif": CIF, "date": "2026-11-29"}


def test_stock_keeps_only_the_requested_warehouses_and_skus(sb: SmartBillConnector) -> None:
    page = next(sb.iter_stock(["Magazin"]))
    assert stock_of(page.items) == {("Magazin", "A1"): 4, ("Magazin", "C3"): 7}
    page = next(sb.iter_stock(["Depozit", "Magazin"], skus=["A1"]))
    assert stock_of(page.items) == {("Depozit", "A1"): 10, ("Magazin", "A1"): 4}


def test_a_configured_warehouse_missing_from_the_reply_is_a_row_error(sb: SmartBillConnector) -> None:
    page = next(sb.iter_stock(["Depozit", "magazin"]))
    assert stock_of(page.items) == {("Depozit", "A1"): 10, ("Depozit", "B2"): 3}
    [error] = page.errors
    assert error.key == "warehouse:magazin"
    assert "did you mean 'Magazin'" in error.error


def test_bad_rows_become_row_errors_and_the_rest_is_read(sb: SmartBillConnector, sim: SmartBillSimulator) -> None:
    sim.add_raw_row("Depozit", {"productName": "fara cod", "quantity": 2, "measuringUnit": "buc"})
    sim.add_raw_row("Depozit", {"productCode": "B2", "quantity": "n/a", "measuringUnit": "buc"})
    sim.add_raw_row("Depozit", {"productCode": "A1", "quantity": 5, "measuringUnit": "buc"})  # a second lot
    sim.add_raw_row("Magazin", {"productCode": "C3", "quantity": 1, "measuringUnit": "kg"})
    page = next(sb.iter_stock(["Depozit", "Magazin"]))
    assert stock_of(page.items) == {("Depozit", "A1"): 15, ("Magazin", "A1"): 4}
    errors = {e.key: e.error for e in page.errors}
    assert set(errors) == {"Depozit#2", "B2", "C3"}
    assert "without productCode" in errors["Depozit#2"]
    assert "'n/a'" in errors["B2"] and "not a number" in errors["B2"]
    assert "two measuring units" in errors["C3"]


def test_a_non_auth_errortext_on_a_read_is_a_bad_request(sb: SmartBillConnector, sim: SmartBillSimulator) -> None:
    sim.inject("stocks", error_text="Eroare la calculul stocului.")
    with pytest.raises(BadRequestError, match=r"smartbill GET .* -> 200: Eroare la calculul stocului"):
        next(sb.iter_stock(["Depozit"]))
    assert sim.stats.calls == 1


def test_a_transient_errortext_and_a_5xx_on_a_read_are_retried(sb: SmartBillConnector, sim: SmartBillSimulator) -> None:
    sim.inject("stocks", error_text="Serviciul este temporar indisponibil.")
    sim.inject("stocks", status=503)
    page = next(sb.iter_stock(["Depozit"]))
    assert len(page.items) == 2
    assert sb.counters.retries == 2
    assert sim.stats.by_route["stocks"] == 3


# --------------------------------------------------------------------------- orders as invoices


def test_create_order_issues_an_invoice_that_takes_stock_out(sb: SmartBillConnector, sim: SmartBillSimulator) -> None:
    erp_id = sb.create_order(an_order(), an_order().customer)
    assert erp_id == "WEB-0001"
    assert sim.quantity("Depozit", "A1") == 8
    invoice = sim.invoices["WEB-0001"]
    assert invoice.use_stock
    assert invoice.client["name"] == "Ion Pop"
    assert invoice.client["email"] == "ion@example.ro"
    assert invoice.client["county"] == "Cluj" and invoice.client["country"] == "Romania"
    [line] = invoice.products
    assert line["code"] == "A1" and line["name"] == "Cana"
    assert (line["price"], line["quantity"], line["isTaxIncluded"]) == (Decimal("24.99"), 2, True)
    assert (line["taxName"], line["taxPercentage"], line["warehouseName"]) == ("Normala", 21, "Depozit")
    assert sb.find_order("95750870.3") == "WEB-0001"
    assert sb.counters.writes == 1


def test_create_order_twice_with_the_same_shop_id_issues_one_invoice(
    sb: SmartBillConnector, sim: SmartBillSimulator
) -> None:
    order = an_order("1001")
    first = sb.create_order(order, order.customer)
    second = sb.create_order(order, order.customer)
    assert first == second == "WEB-0001"
    assert list(sim.invoices) == ["WEB-0001"]
    assert sim.stats.by_route.get("invoice") == 1
    assert sim.quantity("Depozit", "A1") == 8


def test_net_prices_company_client_and_shipping_as_a_service_line(
    sb: SmartBillConnector, sim: SmartBillSimulator
) -> None:
    order = an_order(
        "1002",
        OrderLine(sku="B2", quantity=Decimal(1), unit_price_net=Decimal("10.00"), vat_rate=Decimal(11)),
        shipping=Decimal("15.99"),
    )
    company = Customer(
        email="office@firma.ro",
        name="Ana",
        is_company=True,
        company_name="Firma SRL",
        vat_code="RO765432",
        registration_number="J12/1/2020",
    )
    sb.create_order(order, company)
    invoice = sim.invoices["WEB-0001"]
    assert invoice.client["name"] == "Firma SRL"
    assert invoice.client["vatCode"] == "RO765432" and invoice.client["isTaxPayer"] is True
    product, shipping = invoice.products
    assert (product["name"], product["price"], product["taxName"]) == ("B2", Decimal("11.10"), "Redusa")
    assert shipping["isService"] is True
    assert (shipping["name"], shipping["price"], shipping["taxPercentage"]) == ("Transport", Decimal("15.99"), 21)
    assert "warehouseName" not in shipping
    assert sim.quantity("Depozit", "B2") == 2


@pytest.mark.parametrize("errors_as_200", [set(), {"invoice"}], ids=["http-400", "http-200"])
def test_an_unknown_sku_is_a_record_error_naming_it(
    sb: SmartBillConnector, sim: SmartBillSimulator, errors_as_200: set[str]
) -> None:
    sim.errors_as_200 = errors_as_200
    order = an_order("1003", a_line("A1"), a_line("NOPE-9"))
    with pytest.raises(RecordError) as raised:
        sb.create_order(order, order.customer)
    assert raised.value.key == "1003"
    assert "SKU 'NOPE-9' refused by SmartBill" in str(raised.value)
    assert str(raised.value).startswith("smartbill POST")
    assert sb.find_order("1003") is None
    assert sim.invoices == {}
    assert sim.stats.by_route["invoice"] == 1


def test_a_product_code_that_looks_like_an_auth_word_is_still_a_record_error(
    sb: SmartBillConnector, sim: SmartBillSimulator
) -> None:
    sim.errors_as_200 = {"invoice"}
    order = an_order("1004", a_line("TOKEN-INVALID-ACCES"))
    with pytest.raises(RecordError, match="TOKEN-INVALID-ACCES"):
        sb.create_order(order, order.customer)


@pytest.mark.parametrize(
    ("line", "words"),
    [
        (
            OrderLine(sku="A1", quantity=Decimal(1), unit_price_gross=Decimal(5), vat_rate=Decimal(19)),
            "VAT rate 19% is not defined",
        ),
        (OrderLine(sku="A1", quantity=Decimal(1), unit_price_gross=Decimal(5)), "has no VAT rate"),
        (OrderLine(sku="A1", quantity=Decimal(1), vat_rate=Decimal(21)), "has no price"),
        (OrderLine(sku=" ", quantity=Decimal(1), unit_price_gross=Decimal(5), vat_rate=Decimal(21)), "no SKU"),
    ],
)
def test_lines_smartbill_would_refuse_are_refused_before_any_invoice_call(
    sb: SmartBillConnector, sim: SmartBillSimulator, line: OrderLine, words: str
) -> None:
    with pytest.raises(RecordError, match=words) as raised:
        sb.create_order(an_order("1005", line), an_order().customer)
    assert raised.value.key == "1005"
    assert "invoice" not in sim.stats.by_route


def test_a_voucher_order_is_issued_at_the_shops_total_and_a_mismatch_is_never_sent(
    sb: SmartBillConnector, sim: SmartBillSimulator
) -> None:
    product = a_line("A1", quantity=Decimal(4), unit_price_gross=Decimal("25.00"))
    voucher = OrderLine(
        sku="", kind="discount", name="VARA10", quantity=Decimal(1), unit_price_gross=Decimal(-10), vat_rate=Decimal(21)
    )
    order = an_order("1010", product, voucher).model_copy(update={"total": Decimal("90.00")})
    assert sb.create_order(order, order.customer) == "WEB-0001"
    assert sim.invoices["WEB-0001"].total == Decimal("90.00")  # SmartBill's own total is the shop's
    assert sim.quantity("Depozit", "A1") == 6

    wrong = an_order("1011", product, voucher).model_copy(update={"total": Decimal("100.00")})
    with pytest.raises(RecordError, match=r"total mismatch: .* 90\.00, the shop's total is 100\.00") as raised:
        sb.create_order(wrong, wrong.customer)
    assert raised.value.key == "1011" and sb.find_order("1011") is None
    assert sim.stats.by_route.get("invoice") == 1  # refused before any call


def test_a_timeout_after_sending_is_not_retried_and_is_reported_in_doubt(
    make: Factory, sim: SmartBillSimulator
) -> None:
    sb = make(timeout_seconds=0.2)
    sim.inject("invoice", after=True, delay=1.0)  # SmartBill issues the invoice, the reply never comes in time
    order = an_order("1006")
    with pytest.raises(RecordError, match="may have reached SmartBill") as raised:
        sb.create_order(order, order.customer)
    assert raised.value.key == "1006"
    assert list(sim.invoices) == ["WEB-0001"]  # the in-doubt window: issued, not recorded
    assert sim.stats.by_route["invoice"] == 1
    assert sb.find_order("1006") is None


def test_a_5xx_on_the_invoice_is_not_retried(sb: SmartBillConnector, sim: SmartBillSimulator) -> None:
    sim.inject("invoice", status=502)
    order = an_order("1007")
    with pytest.raises(RecordError, match="may have reached SmartBill"):
        sb.create_order(order, order.customer)
    assert sim.stats.by_route["invoice"] == 1
    assert sim.invoices == {}


def test_a_failed_vat_read_before_the_invoice_is_not_sent_so_the_order_is_not_in_doubt(
    sb: SmartBillConnector, sim: SmartBillSimulator
) -> None:
    sim.inject("tax", status=503, count=10)  # every attempt of the VAT-rate read fails
    order = an_order("1008")
    with pytest.raises(RetriableError) as failed:
        sb.create_order(order, order.customer)
    assert failed.value.not_sent  # the import then keeps the order's attempt count: retried, never held in doubt
    assert "invoice" not in sim.stats.by_route and sim.invoices == {}


def test_a_registry_that_cannot_remember_fails_fast_with_the_invoice_id(make: Factory) -> None:
    class Broken(MemoryIssuedRegistry):
        def put(self, reference: str, erp_id: str, details: Mapping[str, Any] | None = None) -> None:
            raise OSError("disk full")

    sb = make(issued=Broken())
    with pytest.raises(FatalError, match=r"invoice WEB-0001 issued for order 1008 but not recorded \(disk full\)"):
        sb.create_order(an_order("1008"), an_order().customer)


def test_no_order_warehouse_is_a_configuration_error(make: Factory, sim: SmartBillSimulator) -> None:
    with pytest.raises(FatalError, match="order_warehouse"):
        make(order_warehouse=None).create_order(an_order(), an_order().customer)
    assert sim.stats.requests == 0


def test_cancel_is_a_storno_that_puts_the_stock_back_once(sb: SmartBillConnector, sim: SmartBillSimulator) -> None:
    erp_id = sb.create_order(an_order(), an_order().customer)
    first = sb.cancel_order(erp_id, reference="95750870.3")
    again = sb.cancel_order(erp_id, reference="95750870.3")
    assert first == again and first.kind == "storno" and first.erp_id == "WEB-0002"
    assert [s.key for s in sim.stornos(erp_id)] == ["WEB-0002"] and not sim.invoices[erp_id].cancelled
    assert sim.quantity("Depozit", "A1") == 10
    with pytest.raises(RecordError, match="nu exista") as raised:
        sb.cancel_order("WEB-0099", reference="1099")
    assert raised.value.key == "1099"


def test_order_statuses_and_pdf(sb: SmartBillConnector, sim: SmartBillSimulator) -> None:
    erp_id = sb.create_order(an_order(), an_order().customer)
    calls = sim.stats.calls
    [status] = sb.order_statuses([erp_id])
    assert (status.erp_id, status.state, status.invoiced, status.invoice_number) == (
        erp_id,
        "invoiced",
        True,
        "WEB 0001",
    )
    assert sim.stats.calls == calls
    assert sb.invoice_pdf(erp_id).startswith(b"%PDF")


def test_the_state_store_registry_survives_the_connector(
    make: Factory, sim: SmartBillSimulator, tmp_path: Path
) -> None:
    from erpsync.core.state import StateStore

    with StateStore.open(f"sqlite:///{tmp_path / 'state.db'}") as state:
        order = an_order("95750870.3")
        first = make(issued=StateIssuedRegistry(state, "shop1")).create_order(order, order.customer)
        again = make(issued=StateIssuedRegistry(state, "shop1")).create_order(order, order.customer)
        assert first == again == "WEB-0001"
        assert sim.stats.by_route["invoice"] == 1
        link = state.find_link("shop1", "smartbill_invoice", shop_id="95750870.3")
        assert link is not None and link.erp_id == "WEB-0001"
        assert StateIssuedRegistry(state, "shop2").get("95750870.3") is None


def test_from_settings(sim: SmartBillSimulator) -> None:
    from erpsync.core.config import SmartBillSettings

    settings = SmartBillSettings.model_validate(
        {
            "type": "smartbill",
            "url": "https://ws.smartbill.ro/SBORO/api",
            "username": USER,
            "token": f"literal:{TOKEN}",
            "cif": CIF,
            "invoice_series": "WEB",
            "requests_per_10s": 20,
        }
    )
    with SmartBillConnector.from_settings(settings, transport=SyncASGITransport(sim)) as sb:
        assert sb.check().startswith("SmartBill, CIF RO12345678")
        assert sb.invoice_series == "WEB"
        assert getattr(sb.limiter, "max_calls", None) == 20


# --------------------------------------------------------------------------- the rate limit


def naive_burst(sim: SmartBillSimulator, calls: int) -> list[int]:
    """Plain httpx, no limiter: what a client that does not pace itself gets."""
    with httpx.Client(base_url=URL, auth=(USER, TOKEN), transport=SyncASGITransport(sim)) as http:
        return [http.get("/tax", params={"cif": CIF}).status_code for _ in range(calls)]


def test_a_naive_burst_locks_the_token_but_the_connector_never_does(
    make: Factory, sim: SmartBillSimulator, clock: FakeClock
) -> None:
    statuses = naive_burst(sim, 40)
    assert statuses[:30] == [200] * 30
    assert statuses[30:] == [429] * 10
    assert sim.stats.lockouts == 1

    fresh = SmartBillSimulator(cif=CIF, users={USER: TOKEN}, clock=clock)
    first, second = make(transport=SyncASGITransport(fresh)), make(transport=SyncASGITransport(fresh))
    assert first.limiter is second.limiter  # one window per credential
    started = clock.now
    for i in range(100):
        (first if i % 2 else second).check()
    assert fresh.stats.lockouts == 0 and fresh.stats.rate_limited == 0
    assert fresh.stats.calls == 100
    assert fresh.stats.max_in_window(10) <= 30
    assert fresh.stats.max_in_window(11) <= 30  # the safety margin: 30 per 11 s
    assert clock.now - started >= 3 * 11


def test_a_429_is_not_retried_and_the_locked_token_is_left_alone(
    sb: SmartBillConnector, sim: SmartBillSimulator, clock: FakeClock
) -> None:
    naive_burst(sim, 31)
    requests = sim.stats.requests
    with pytest.raises(RateLimitedError) as raised:
        sb.check()
    assert raised.value.retry_after == 600
    assert sim.stats.requests == requests + 1
    with pytest.raises(RateLimitedError, match="not calling"):
        next(sb.iter_stock(["Depozit"]))
    order = an_order("1009")
    with pytest.raises(RateLimitedError):
        sb.create_order(order, order.customer)
    assert sim.stats.requests == requests + 1  # nothing more reached the locked token
    clock.sleep(601)
    assert sb.check().startswith("SmartBill")


def test_real_time_pacing_never_trips_the_lock_out(sim: SmartBillSimulator) -> None:
    """40 calls from 4 threads through two connectors with one credential, against a 10-per-0.5-s limit."""
    live = SmartBillSimulator(cif=CIF, users={USER: TOKEN}, rate_limit=10, rate_window=0.5, clock=time.monotonic)
    options: dict[str, Any] = {"requests_per_10s": 10, "window_seconds": 0.5, "window_margin_seconds": 0.1}
    connectors = [
        SmartBillConnector(URL, USER, TOKEN, CIF, transport=SyncASGITransport(live), **options) for _ in range(2)
    ]
    failures: list[BaseException] = []

    def worker(connector: SmartBillConnector) -> None:
        try:
            for _ in range(10):
                connector.check()
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=worker, args=(connectors[i % 2],)) for i in range(4)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    elapsed = time.monotonic() - started
    for connector in connectors:
        connector.close()
    assert failures == []
    assert live.stats.calls == 40
    assert live.stats.lockouts == 0 and live.stats.rate_limited == 0
    assert live.stats.max_in_window(0.5) <= 10
    assert elapsed >= 3 * 0.6 - 0.05  # calls 11, 21 and 31 each waited for a window of 0.6 s
