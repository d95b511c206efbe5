"""SmartBill ``record_payment`` (``POST /payment`` against the order's invoice, idempotent on the reference,
write-ahead) and ``document = "estimate"`` (``POST /estimate``) against the simulator, in-process."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest

from erpsync.connectors.asgi import SyncASGITransport
from erpsync.connectors.erp.base import NotSupported
from erpsync.connectors.erp.smartbill import SmartBillConnector
from erpsync.connectors.errors import RecordError
from erpsync.connectors.http import reset_shared_limiters
from erpsync.core.models import Order
from erpsync.testing.smartbill import SmartBillSimulator
from tests.connectors.test_smartbill import CIF, NOW, TOKEN, URL, USER, FakeClock, an_order

Factory = Callable[..., SmartBillConnector]
PAYMENTS = {"card": "Card", "cash_delivery": "Alta incasare", "cash": "Chitanta"}


@pytest.fixture(autouse=True)
def _fresh_limiters() -> Iterator[None]:
    reset_shared_limiters()
    yield
    reset_shared_limiters()


@pytest.fixture
def sim() -> SmartBillSimulator:
    return SmartBillSimulator(cif=CIF, users={USER: TOKEN}, warehouses={"Depozit": {"A1": 10}}, clock=FakeClock())


@pytest.fixture
def make(sim: SmartBillSimulator) -> Iterator[Factory]:
    made: list[SmartBillConnector] = []

    def factory(**options: Any) -> SmartBillConnector:
        clock = FakeClock()
        settings: dict[str, Any] = {
            "transport": SyncASGITransport(sim),
            "clock": clock,
            "sleep": clock.sleep,
            "now": lambda: NOW,
            "order_warehouse": "Depozit",
            "payments": PAYMENTS,
        }
        connector = SmartBillConnector(URL, USER, TOKEN, CIF, **(settings | options))
        made.append(connector)
        return connector

    yield factory
    for connector in made:
        connector.close()


def _paid(method: str = "card", shop_id: str = "1001") -> Order:
    order = an_order(shop_id)  # 2 x 24.99
    return order.model_copy(update={"payment_method": method, "total": Decimal("49.98")})


def test_capabilities_follow_the_document_and_the_payment_mapping(make: Factory) -> None:
    assert make().capabilities.payments_record and make().capabilities.orders_cancel
    assert not make(payments={}).capabilities.payments_record
    estimate = make(document="estimate").capabilities
    assert sorted(estimate.names()) == ["orders_cancel", "orders_create", "orders_read_status", "stock_read"]


def test_a_payment_is_booked_once_against_the_invoice(make: Factory, sim: SmartBillSimulator) -> None:
    sb = make()
    order = _paid()
    invoice = sb.create_order(order, order.customer)
    document = sb.record_payment(invoice, order, reference="1001/P1")
    assert document == "Card 49.98 on WEB 0001"
    (payment,) = sim.payments
    assert (payment.type, payment.value, payment.invoices) == ("Card", Decimal("49.98"), ["WEB-0001"])
    assert sim.invoices["WEB-0001"].total == Decimal("49.98")
    calls = sim.stats.calls
    assert sb.record_payment(invoice, order, reference="1001/P1") == document  # recorded: no call
    assert sim.stats.calls == calls and len(sim.payments) == 1


def test_an_unmapped_method_books_nothing_and_makes_no_call(make: Factory, sim: SmartBillSimulator) -> None:
    sb = make()
    order = _paid("wire")
    invoice = sb.create_order(order, order.customer)
    calls = sim.stats.calls
    assert sb.record_payment(invoice, order, reference="1001/P1") == ""
    assert sim.stats.calls == calls and sim.payments == []


def test_a_payment_whose_outcome_is_unknown_is_never_sent_again(make: Factory, sim: SmartBillSimulator) -> None:
    sb = make()
    order = _paid()
    invoice = sb.create_order(order, order.customer)
    sim.inject("payment", status=500, after=True)  # booked in SmartBill, the client sees a 500
    with pytest.raises(RecordError, match="may have been issued"):
        sb.record_payment(invoice, order, reference="1001/P1")
    calls = sim.stats.calls
    with pytest.raises(RecordError, match="outcome is unknown"):
        sb.record_payment(invoice, order, reference="1001/P1")
    assert sim.stats.calls == calls and len(sim.payments) == 1


def test_a_refused_payment_clears_its_mark_and_may_be_sent_again(make: Factory, sim: SmartBillSimulator) -> None:
    sb = make()
    order = _paid()
    invoice = sb.create_order(order, order.customer)
    sim.inject("payment", error_text="Factura nu poate fi incasata.")
    with pytest.raises(RecordError, match="nu poate fi incasata"):
        sb.record_payment(invoice, order, reference="1001/P1")
    assert sb.record_payment(invoice, order, reference="1001/P1") == "Card 49.98 on WEB 0001"
    assert len(sim.payments) == 1


def test_cash_documents_and_orders_without_total_are_refused_before_any_call(
    make: Factory, sim: SmartBillSimulator
) -> None:
    sb = make()
    order = _paid("cash")
    invoice = sb.create_order(order, order.customer)
    calls = sim.stats.calls
    with pytest.raises(RecordError, match="cash document"):
        sb.record_payment(invoice, order, reference="1001/P1")
    with pytest.raises(RecordError, match="no total"):
        sb.record_payment(invoice, _paid().model_copy(update={"total": None}), reference="1001/P2")
    assert sim.stats.calls == calls and not sb.issued.is_sent("1001/P1")


def test_an_estimate_is_a_proforma_that_moves_no_stock(make: Factory, sim: SmartBillSimulator) -> None:
    sb = make(document="estimate", invoice_series="PRF")
    order = _paid()
    erp_id = sb.create_order(order, order.customer)
    assert erp_id == "PRF-0001" and sim.invoices == {} and list(sim.estimates) == ["PRF-0001"]
    assert sim.quantity("Depozit", "A1") == 10
    assert sim.stats.by_route == {"tax": 1, "estimate": 1}
    assert sb.create_order(order, order.customer) == erp_id and len(sim.estimates) == 1
    (status,) = sb.order_statuses([erp_id])
    assert (status.state, status.invoiced, status.invoice_number, status.invoices) == ("estimate", False, None, [])
    with pytest.raises(NotSupported):
        sb.record_payment(erp_id, order, reference="1001/P1")

    undone = sb.cancel_order(erp_id, reference="1001/R1")  # PUT /estimate/cancel: nothing to give back
    assert (undone.kind, undone.erp_id, undone.detail) == ("cancelled", None, "estimate PRF 0001 cancelled")
    assert sim.estimates["PRF-0001"].cancelled and sim.stats.by_route["estimate/cancel"] == 1
    assert sb.cancel_order(erp_id, reference="1001/R1") == undone and sim.stats.by_route["estimate/cancel"] == 1
    assert sb.order_statuses([erp_id])[0].state == "cancelled"
    sim.estimates["PRF-0001"].cancelled = False
    sim.inject("estimate/cancel", error_text="Proforma PRF0001 este deja anulata.")  # cancelled by hand
    assert sb.cancel_order(erp_id, reference="1001/R2").kind == "cancelled"
