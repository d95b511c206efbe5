"""SmartBill after the import, against the simulator: storno on cancel (once, write-ahead), partial returns as
negative invoices, over-returns refused, statuses with number, date and link from the registry, PDFs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from erpsync.connectors.asgi import SyncASGITransport
from erpsync.connectors.erp.base import NotSupported
from erpsync.connectors.erp.smartbill import MemoryIssuedRegistry, SmartBillConnector, StateIssuedRegistry
from erpsync.connectors.errors import RecordError
from erpsync.connectors.http import reset_shared_limiters
from erpsync.core.models import Address, Customer, Order, OrderLine, ReturnLine
from erpsync.testing.smartbill import SmartBillSimulator

URL = "http://smartbill.test/SBORO/api"
CIF = "RO12345678"
USER, TOKEN = "shop@example.com", "sb-token-0001"
NOW = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
TODAY = date(2026, 11, 28)
Factory = Callable[..., SmartBillConnector]


@pytest.fixture(autouse=True)
def _fresh_limiters() -> Iterator[None]:
    reset_shared_limiters()
    yield
    reset_shared_limiters()


@pytest.fixture
def sim() -> SmartBillSimulator:
    return SmartBillSimulator(cif=CIF, users={USER: TOKEN}, warehouses={"Depozit": {"A1": 10, "B2": 5}})


@pytest.fixture
def make(sim: SmartBillSimulator) -> Iterator[Factory]:
    made: list[SmartBillConnector] = []

    def factory(**options: Any) -> SmartBillConnector:
        settings: dict[str, Any] = {
            "transport": SyncASGITransport(sim),
            "now": lambda: NOW,
            "order_warehouse": "Depozit",
            "window_margin_seconds": 0.0,
        }
        connector = SmartBillConnector(URL, USER, TOKEN, CIF, **(settings | options))
        made.append(connector)
        return connector

    yield factory
    for connector in made:
        connector.close()


@pytest.fixture
def sb(make: Factory) -> SmartBillConnector:
    return make()


def an_order(shop_id: str = "1001") -> Order:
    billing = Address(name="Ion Pop", street="Str. Lunga 1", city="Cluj-Napoca", region="Cluj")
    lines = [
        OrderLine(sku="A1", name="Cana", quantity=Decimal(3), unit_price_gross=Decimal("24.99"), vat_rate=Decimal(21)),
        OrderLine(sku="B2", name="Farfurie", quantity=Decimal(1), unit_price_gross=Decimal(10), vat_rate=Decimal(21)),
    ]
    customer = Customer(email="ion@example.ro", name="Ion Pop", billing=billing)
    return Order(shop_id=shop_id, customer=customer, billing=billing, lines=lines, shipping_amount=Decimal(15))


def issue(sb: SmartBillConnector, shop_id: str = "1001") -> str:
    order = an_order(shop_id)
    return sb.create_order(order, order.customer)


# --------------------------------------------------------------------------- storno on cancel


def test_cancel_makes_exactly_one_storno_even_when_called_twice(
    sb: SmartBillConnector, sim: SmartBillSimulator
) -> None:
    erp_id = issue(sb)
    assert sim.quantity("Depozit", "A1") == 7
    first = sb.cancel_order(erp_id, reference="1001")
    second = sb.cancel_order(erp_id, reference="1001")
    assert first == second
    assert (first.kind, first.erp_id, first.credit_note) == ("storno", "WEB-0002", "WEB 0002")
    assert [s.key for s in sim.stornos()] == ["WEB-0002"] and sim.stats.by_route["invoice/reverse"] == 1
    assert sim.invoices["WEB-0002"].total == -sim.invoices[erp_id].total
    assert (sim.quantity("Depozit", "A1"), sim.quantity("Depozit", "B2")) == (10, 5)
    # another reference for the same invoice finds the recorded storno, without a call
    assert sb.cancel_order(erp_id, reference="1001-again") == first
    assert sim.stats.by_route["invoice/reverse"] == 1


def test_a_storno_whose_reply_was_lost_is_in_doubt_and_never_sent_again(
    sb: SmartBillConnector, sim: SmartBillSimulator
) -> None:
    erp_id = issue(sb)
    sim.inject("invoice/reverse", status=502, after=True)  # issued, but the client sees a 502
    with pytest.raises(RecordError, match="may have been issued") as lost:
        sb.cancel_order(erp_id, reference="1001")
    assert lost.value.key == "1001"
    with pytest.raises(RecordError, match="outcome is unknown"):
        sb.cancel_order(erp_id, reference="1001")
    assert len(sim.stornos()) == 1 and sim.stats.by_route["invoice/reverse"] == 1
    assert sb.issued.is_sent("1001")


def test_a_refused_storno_leaves_no_mark_and_a_provably_unsent_one_may_be_retried(
    sb: SmartBillConnector, sim: SmartBillSimulator
) -> None:
    erp_id = issue(sb)
    sim.inject("invoice/reverse", status=200, error_text="Serviciul este indisponibil.")
    with pytest.raises(RecordError, match="indisponibil"):
        sb.cancel_order(erp_id, reference="1001")
    assert not sb.issued.is_sent("1001") and not sim.stornos()
    assert sb.cancel_order(erp_id, reference="1001").erp_id == "WEB-0002"


def test_the_storno_falls_back_to_put_when_post_is_405(sb: SmartBillConnector, sim: SmartBillSimulator) -> None:
    erp_id = issue(sb)
    sim.inject("invoice/reverse", status=405)
    assert sb.cancel_order(erp_id, reference="1001").erp_id == "WEB-0002"
    assert sim.stats.by_route["invoice/reverse"] == 2 and len(sim.stornos()) == 1


def test_a_storno_made_in_smartbill_by_hand_reads_as_done_without_a_second(
    sb: SmartBillConnector, sim: SmartBillSimulator
) -> None:
    erp_id = issue(sb)
    with httpx.Client(base_url=URL, auth=(USER, TOKEN), transport=SyncASGITransport(sim)) as http:
        http.post("/invoice/reverse", json={"companyVatCode": CIF, "seriesName": "WEB", "number": "0001"})
    done = sb.cancel_order(erp_id, reference="1001")
    assert done.kind == "storno" and done.erp_id is None and "already has a storno" in done.detail
    assert len(sim.stornos()) == 1


def test_an_unknown_invoice_is_a_record_error_keyed_by_the_reference(sb: SmartBillConnector) -> None:
    with pytest.raises(RecordError, match="nu exista") as refused:
        sb.cancel_order("WEB-0099", reference="1099")
    assert refused.value.key == "1099" and not sb.issued.is_sent("1099")


# --------------------------------------------------------------------------- partial returns


def test_a_partial_return_is_one_negative_invoice_of_that_line_with_stock_back(
    sb: SmartBillConnector, sim: SmartBillSimulator
) -> None:
    erp_id = issue(sb)
    done = sb.return_order(erp_id, [ReturnLine(sku="A1", quantity=Decimal(1))], reference="1001/R1")
    again = sb.return_order(erp_id, [ReturnLine(sku="A1", quantity=Decimal(1))], reference="1001/R1")
    assert done == again and (done.kind, done.erp_id, done.credit_note) == ("return", "WEB-0002", "WEB 0002")
    back = sim.invoices["WEB-0002"]
    assert [(p["code"], p["quantity"], p["price"], p["warehouseName"]) for p in back.products] == [
        ("A1", Decimal(-1), Decimal("24.99"), "Depozit")
    ]
    assert back.use_stock and back.total == Decimal("-24.99") and "WEB 0001" in back.mentions
    assert back.client["name"] == "Ion Pop"
    assert sim.quantity("Depozit", "A1") == 8 and sim.quantity("Depozit", "B2") == 4
    assert len(sim.invoices) == 2 and not sim.stornos()


def test_an_over_return_is_refused_before_any_call(sb: SmartBillConnector, sim: SmartBillSimulator) -> None:
    erp_id = issue(sb)
    sb.return_order(erp_id, [ReturnLine(sku="A1", quantity=Decimal(2))], reference="1001/R1")
    calls = sim.stats.calls
    with pytest.raises(RecordError, match=r"over-return of SKU 'A1'.*invoiced 3, returned already 2, asked 2"):
        sb.return_order(erp_id, [ReturnLine(sku="A1", quantity=Decimal(2))], reference="1001/R2")
    with pytest.raises(RecordError, match="not on invoice"):
        sb.return_order(erp_id, [ReturnLine(sku="ZZ", quantity=Decimal(1))], reference="1001/R2")
    with pytest.raises(RecordError, match="above 0"):
        sb.return_order(erp_id, [ReturnLine(sku="B2", quantity=Decimal(0))], reference="1001/R2")
    assert sim.stats.calls == calls and not sb.issued.is_sent("1001/R2")
    sb.return_order(erp_id, [ReturnLine(sku="A1", quantity=Decimal(1))], reference="1001/R2")  # the rest is fine
    assert sim.quantity("Depozit", "A1") == 10


def test_a_return_after_a_storno_and_a_storno_after_a_return_are_refused(
    sb: SmartBillConnector, sim: SmartBillSimulator
) -> None:
    stornoed = issue(sb, "1001")
    sb.cancel_order(stornoed, reference="1001")
    with pytest.raises(RecordError, match="reversed whole"):
        sb.return_order(stornoed, [ReturnLine(sku="A1", quantity=Decimal(1))], reference="1001/R1")
    returned = issue(sb, "1002")
    sb.return_order(returned, [ReturnLine(sku="B2", quantity=Decimal(1))], reference="1002/R1")
    with pytest.raises(RecordError, match="credit them twice"):
        sb.cancel_order(returned, reference="1002")
    assert len(sim.stornos()) == 1


def test_a_return_of_an_invoice_without_registered_lines_is_refused(make: Factory, sim: SmartBillSimulator) -> None:
    sb = make(issued=MemoryIssuedRegistry({"1001": "WEB-0001"}))
    with pytest.raises(RecordError, match="not registered"):
        sb.return_order("WEB-0001", [ReturnLine(sku="A1", quantity=Decimal(1))], reference="1001/R1")
    assert sim.stats.calls == 0


# --------------------------------------------------------------------------- statuses, PDF


def test_statuses_carry_number_date_url_and_credits_without_a_call(
    sb: SmartBillConnector, sim: SmartBillSimulator
) -> None:
    returned = issue(sb, "1001")
    sb.return_order(returned, [ReturnLine(sku="A1", quantity=Decimal(1))], reference="1001/R1")
    stornoed = issue(sb, "1002")
    sb.cancel_order(stornoed, reference="1002")
    calls = sim.stats.calls
    first, second = sb.order_statuses([returned, stornoed])
    assert sim.stats.calls == calls
    assert (first.invoiced, first.invoice_number, first.cancelled, first.state) == (True, "WEB 0001", False, "invoiced")
    assert [(i.erp_id, i.number, i.issued, i.credit) for i in first.invoices] == [
        ("WEB-0001", "WEB 0001", TODAY, False),
        ("WEB-0002", "WEB 0002", TODAY, True),
    ]
    assert first.invoices[0].url == sim.invoices["WEB-0001"].url and first.invoices[0].url
    assert (second.cancelled, second.state) == (True, "cancelled")
    assert [(i.number, i.credit) for i in second.invoices] == [("WEB 0003", False), ("WEB 0004", True)]


def test_an_invoice_the_registry_knows_nothing_of_still_reads_as_invoiced(make: Factory) -> None:
    [status] = make(issued=MemoryIssuedRegistry({"1001": "WEB-0007"})).order_statuses(["WEB-0007"])
    assert (status.invoiced, status.invoice_number, status.cancelled) == (True, "WEB 0007", False)
    assert [(i.number, i.issued, i.url) for i in status.invoices] == [("WEB 0007", None, None)]


def test_pdfs_of_the_invoice_and_its_storno_are_pdf_bytes(sb: SmartBillConnector) -> None:
    erp_id = issue(sb)
    storno = sb.cancel_order(erp_id, reference="1001")
    assert sb.invoice_pdf(erp_id).startswith(b"%PDF-")
    assert sb.invoice_pdf(storno.erp_id or "").startswith(b"%PDF-")
    with pytest.raises(RecordError, match="nu exista"):
        sb.invoice_pdf("WEB-0042")


def test_update_order_is_not_supported(sb: SmartBillConnector) -> None:
    assert not sb.capabilities.orders_update
    with pytest.raises(NotSupported):
        sb.update_order("WEB-0001", an_order(), an_order().customer)


def test_the_state_registry_keeps_stornos_returns_and_details_across_connectors(
    make: Factory, sim: SmartBillSimulator, tmp_path: Path
) -> None:
    from erpsync.core.state import StateStore

    with StateStore.open(f"sqlite:///{tmp_path / 'state.db'}") as state:
        one = make(issued=StateIssuedRegistry(state, "shop1"))
        erp_id = issue(one)
        one.return_order(erp_id, [ReturnLine(sku="B2", quantity=Decimal(1))], reference="1001/R1")
        two = make(issued=StateIssuedRegistry(state, "shop1"))
        again = two.return_order(erp_id, [ReturnLine(sku="B2", quantity=Decimal(1))], reference="1001/R1")
        assert again.erp_id == "WEB-0002" and len(sim.invoices) == 2
        with pytest.raises(RecordError, match="over-return"):
            two.return_order(erp_id, [ReturnLine(sku="B2", quantity=Decimal(1))], reference="1001/R2")
        [status] = two.order_statuses([erp_id])
        assert [(i.number, i.credit, i.issued) for i in status.invoices] == [
            ("WEB 0001", False, TODAY),
            ("WEB 0002", True, TODAY),
        ]
        assert state.find_link("shop1", "smartbill_credit", shop_id="1001/R1") is not None
        assert state.find_link("shop1", "smartbill_credit_sent", shop_id="1001/R1") is None
