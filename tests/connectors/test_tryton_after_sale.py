"""After the import, on the real Tryton: cancels (reservations freed), returns (stock back, credit notes), edits of
quotations, and the shipments and invoices order_statuses reports back."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from erpsync.connectors.erp.base import NeedsReturn
from erpsync.connectors.erp.tryton import TrytonConnector
from erpsync.connectors.errors import RecordError
from erpsync.core.models import Address, Customer, Order, OrderLine, ReturnLine
from erpsync.dev.tryton import JsonRpcSession, TrytonServer
from erpsync.dev.tryton_seed import company_today
from tests.tryton_fixture import create_stocked_product, unique_code

pytestmark = pytest.mark.tryton

INVOICE_URL = "https://erp.example.ro/invoice/{id}?n={number}"


def _connector(server: TrytonServer, **options: Any) -> TrytonConnector:
    return TrytonConnector(server.url, server.database, server.username, server.password, **options)


@pytest.fixture
def tryton(tryton_server: TrytonServer) -> Iterator[TrytonConnector]:
    with _connector(tryton_server, invoice_url=INVOICE_URL) as connector:
        yield connector


@pytest.fixture
def quoting(tryton_server: TrytonServer) -> Iterator[TrytonConnector]:
    """Orders stay quotations (``[stores.orders] confirm = false``)."""
    with _connector(tryton_server, confirm_orders=False) as connector:
        yield connector


def _order(lines: list[tuple[str, int]], *, price: Decimal = Decimal("119.00")) -> Order:
    """An order of ``(sku, quantity)`` lines at ``price`` gross each (19 % VAT), its total the shop's."""
    customer = Customer(email=f"retur-{uuid.uuid4().hex[:8]}@example.com", name="Client Retur")
    address = Address(name=customer.name, street="Str. Întoarcerii 3", city="Iași", postal_code="700001")
    return Order(
        shop_id=unique_code("SHOP"),
        public_code="#" + uuid.uuid4().hex[:6],
        customer=customer,
        billing=address,
        shipping=address,
        lines=[
            OrderLine(
                sku=sku, name=f"Produs {sku}", quantity=Decimal(qty), unit_price_gross=price, vat_rate=Decimal(19)
            )
            for sku, qty in lines
        ],
        total=sum((price * qty for _, qty in lines), Decimal(0)),
    )


def _stock(tryton: TrytonConnector, sku: str) -> tuple[Decimal, Decimal]:
    """(on hand, reserved) of ``sku`` in WH, as the stock sync reads it."""
    [level] = [level for page in tryton.iter_stock(["WH"], skus=[sku]) for level in page.items]
    return level.on_hand, level.reserved


def _read(session: JsonRpcSession, model: str, ids: list[int], fields: list[str]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = session.call(f"model.{model}.read", ids, fields, session.context)
    return rows


def _ship_and_invoice(session: JsonRpcSession, sale_id: str, awb: str) -> dict[str, Any]:
    """Do the sale's shipments (AWB = their reference) and post its invoices, as a person in Tryton would."""
    ctx = session.context
    sale = _read(session, "sale.sale", [int(sale_id)], ["shipments", "invoices"])[0]
    session.call("model.stock.shipment.out.write", sale["shipments"], {"reference": awb}, ctx)
    for button in ("assign_try", "pick", "pack", "do"):
        session.call(f"model.stock.shipment.out.{button}", sale["shipments"], ctx)
    session.call("model.account.invoice.post", sale["invoices"], ctx)
    return sale


def _sales_like(session: JsonRpcSession, prefix: str) -> list[int]:
    ids: list[int] = session.call(
        "model.sale.sale.search", [("reference", "like", prefix + "%")], 0, None, None, session.context
    )
    return ids


def _lines(session: JsonRpcSession, sale_id: int | str) -> list[tuple[str, float, Decimal]]:
    """(SKU, quantity, unit price) of a sale's lines."""
    rows = session.call(
        "model.sale.line.search_read",
        [("sale", "=", int(sale_id))],
        0,
        None,
        [("id", "ASC")],
        ["product.code", "quantity", "unit_price"],
        session.context,
    )
    return [(r["product."]["code"], r["quantity"], r["unit_price"]) for r in rows]


def test_cancel_before_shipping_frees_the_reservation(
    tryton: TrytonConnector, tryton_server: TrytonServer, tryton_session: JsonRpcSession
) -> None:
    session = tryton_session
    sku = unique_code("AS-CAN")
    create_stocked_product(session, tryton_server.manifest, sku, {"WH": 10})
    before = _stock(tryton, sku)
    order = _order([(sku, 3)])
    sale_id = tryton.create_order(order, order.customer)
    assert _stock(tryton, sku) == (before[0], before[1] + 3)  # reserved by the processing sale

    writes, reads = tryton.counters.writes, tryton.counters.reads
    result = tryton.cancel_order(sale_id, reference=order.shop_id or "")
    assert result.kind == "cancelled" and result.erp_id is None
    assert tryton.counters.writes - writes + tryton.counters.reads - reads <= 10

    assert _stock(tryton, sku) == before
    sale = _read(session, "sale.sale", [int(sale_id)], ["state", "shipment_state", "invoice_state"])[0]
    # Tryton 8.2 cannot cancel a processing sale: it ends done, with its shipments cancelled and nothing invoiced
    assert (sale["state"], sale["shipment_state"], sale["invoice_state"]) == ("done", "none", "none")
    status = tryton.order_statuses([sale_id])[0]
    assert status.cancelled and not status.shipped and not status.invoiced and not status.editable
    assert [s.state for s in status.shipments] == ["cancelled"]

    writes = tryton.counters.writes
    assert tryton.cancel_order(sale_id, reference=order.shop_id or "").kind == "cancelled"  # again: no write
    assert tryton.counters.writes == writes


def test_cancel_of_a_quotation_and_of_a_confirmed_sale(
    quoting: TrytonConnector, tryton_server: TrytonServer, tryton_session: JsonRpcSession
) -> None:
    sku = unique_code("AS-CQ")
    create_stocked_product(tryton_session, tryton_server.manifest, sku, {"WH": 5})
    order = _order([(sku, 1)])
    sale_id = quoting.create_order(order, order.customer)
    assert _read(tryton_session, "sale.sale", [int(sale_id)], ["state"])[0]["state"] == "quotation"
    assert quoting.cancel_order(sale_id, reference=order.shop_id or "").kind == "cancelled"
    assert _read(tryton_session, "sale.sale", [int(sale_id)], ["state"])[0]["state"] == "cancelled"
    assert quoting.order_statuses([sale_id])[0].cancelled


def test_cancel_after_shipping_needs_a_return(
    tryton: TrytonConnector, tryton_server: TrytonServer, tryton_session: JsonRpcSession
) -> None:
    sku = unique_code("AS-SHP")
    create_stocked_product(tryton_session, tryton_server.manifest, sku, {"WH": 10})
    order = _order([(sku, 2)])
    sale_id = tryton.create_order(order, order.customer)
    _ship_and_invoice(tryton_session, sale_id, "AWB-SHP")

    writes = tryton.counters.writes
    with pytest.raises(NeedsReturn, match="left the warehouse") as refused:
        tryton.cancel_order(sale_id, reference=order.shop_id or "")
    assert refused.value.key == sale_id
    assert tryton.counters.writes == writes  # nothing written
    assert _read(tryton_session, "sale.sale", [int(sale_id)], ["state"])[0]["state"] == "processing"


def test_return_of_every_line_brings_the_stock_back_with_a_credit_note(
    tryton: TrytonConnector, tryton_server: TrytonServer, tryton_session: JsonRpcSession
) -> None:
    session = tryton_session
    sku, sku2 = unique_code("AS-RA"), unique_code("AS-RB")
    for code in (sku, sku2):
        create_stocked_product(session, tryton_server.manifest, code, {"WH": 10})
    before = {code: _stock(tryton, code) for code in (sku, sku2)}
    since = datetime.now(UTC) - timedelta(seconds=1)
    order = _order([(sku, 2), (sku2, 1)])
    sale_id = tryton.create_order(order, order.customer)
    _ship_and_invoice(session, sale_id, "AWB-RA")
    assert _stock(tryton, sku) == (before[sku][0] - 2, before[sku][1])  # left the warehouse

    reference = f"{order.shop_id}/R1"
    calls = tryton.counters.reads + tryton.counters.writes
    result = tryton.return_order(
        sale_id,
        [ReturnLine(sku=sku, quantity=Decimal(2)), ReturnLine(sku=sku2, quantity=Decimal(1))],
        reference=reference,
    )
    assert tryton.counters.reads + tryton.counters.writes - calls <= 12

    assert result.kind == "return" and result.erp_id and result.erp_id != sale_id and result.credit_note
    assert {code: _stock(tryton, code) for code in (sku, sku2)} == before  # back on hand
    back = _read(
        session,
        "sale.sale",
        [int(result.erp_id)],
        ["reference", "description", "origin", "state", "party", "shipment_returns.state", "invoices.number"],
    )[0]
    original = _read(session, "sale.sale", [int(sale_id)], ["number", "party"])[0]
    assert back["reference"] == reference and back["description"] == f"erpsync-return:{original['number']}"
    assert back["origin"] == f"sale.sale,{sale_id}" and back["party"] == original["party"]
    assert [s["state"] for s in back["shipment_returns."]] == ["done"]
    assert _lines(session, result.erp_id) == [(sku, -2.0, Decimal("100.0000")), (sku2, -1.0, Decimal("100.0000"))]
    [credit] = session.call(
        "model.account.invoice.search_read",
        [("number", "=", result.credit_note)],
        0,
        None,
        None,
        ["state", "total_amount"],
        session.context,
    )
    assert credit["state"] == "posted" and credit["total_amount"] == Decimal("-357.00")
    credit_note = result.credit_note

    reads = tryton.counters.reads
    status = tryton.order_statuses([sale_id])[0]
    assert tryton.counters.reads - reads == 3  # the sale, its returns' credit notes; once: is there a carrier
    assert [(i.number, i.credit) for i in status.invoices] == [(status.invoice_number, False), (credit_note, True)]
    assert status.invoiced and status.shipped and not status.cancelled  # the sale's own status is unchanged

    read = {o.erp_id for page in tryton.iter_orders(changed_since=since) for o in page.items}
    assert sale_id in read and result.erp_id not in read  # a return is not an order to bring to the shop


def test_partial_return_is_idempotent_and_never_takes_back_more_than_was_sold(
    tryton: TrytonConnector, tryton_server: TrytonServer, tryton_session: JsonRpcSession
) -> None:
    session = tryton_session
    sku, sku2 = unique_code("AS-PA"), unique_code("AS-PB")
    for code in (sku, sku2):
        create_stocked_product(session, tryton_server.manifest, code, {"WH": 10})
    order = _order([(sku, 2), (sku2, 1)])
    sale_id = tryton.create_order(order, order.customer)
    _ship_and_invoice(session, sale_id, "AWB-PA")
    shipped = {code: _stock(tryton, code) for code in (sku, sku2)}

    first = tryton.return_order(sale_id, [ReturnLine(sku=sku, quantity=Decimal(1))], reference=f"{order.shop_id}/R1")
    assert first.erp_id is not None
    assert _lines(session, first.erp_id) == [(sku, -1.0, Decimal("100.0000"))]  # only that line
    assert _stock(tryton, sku) == (shipped[sku][0] + 1, shipped[sku][1])
    assert _stock(tryton, sku2) == shipped[sku2]
    sales = _sales_like(session, order.shop_id or "")

    writes = tryton.counters.writes
    again = tryton.return_order(sale_id, [ReturnLine(sku=sku, quantity=Decimal(1))], reference=f"{order.shop_id}/R1")
    assert (again.erp_id, again.credit_note) == (first.erp_id, first.credit_note)
    assert tryton.counters.writes == writes and _sales_like(session, order.shop_id or "") == sales
    assert _stock(tryton, sku) == (shipped[sku][0] + 1, shipped[sku][1])

    with pytest.raises(RecordError, match=rf"{sku}.*2 to return.*1 left") as over:
        tryton.return_order(sale_id, [ReturnLine(sku=sku, quantity=Decimal(2))], reference=f"{order.shop_id}/R2")
    assert over.value.key == f"{order.shop_id}/R2"
    with pytest.raises(RecordError, match="NOT-SOLD"):
        tryton.return_order(sale_id, [ReturnLine(sku="NOT-SOLD", quantity=Decimal(1))], reference=f"{order.shop_id}/R2")
    assert tryton.counters.writes == writes and _sales_like(session, order.shop_id or "") == sales

    rest = tryton.return_order(sale_id, [ReturnLine(sku=sku, quantity=Decimal(1))], reference=f"{order.shop_id}/R2")
    assert rest.erp_id not in (None, first.erp_id)
    assert _stock(tryton, sku) == (shipped[sku][0] + 2, shipped[sku][1])


def test_update_of_a_quotation_replaces_its_lines_and_keeps_it_a_quotation(
    quoting: TrytonConnector, tryton: TrytonConnector, tryton_server: TrytonServer, tryton_session: JsonRpcSession
) -> None:
    session = tryton_session
    sku, sku2 = unique_code("AS-UA"), unique_code("AS-UB")
    for code in (sku, sku2):
        create_stocked_product(session, tryton_server.manifest, code, {"WH": 10})
    order = _order([(sku, 1)])
    sale_id = quoting.create_order(order, order.customer)
    assert quoting.create_order(order, order.customer) == sale_id  # a quotation is left as it is
    sale = _read(session, "sale.sale", [int(sale_id)], ["state", "total_amount", "number"])[0]
    assert (sale["state"], sale["total_amount"]) == ("quotation", Decimal("119.00"))
    assert quoting.order_statuses([sale_id])[0].editable
    assert _stock(quoting, sku) == (Decimal(10), Decimal(0))  # a quotation reserves nothing

    changed = order.model_copy(
        update={
            "lines": [
                OrderLine(
                    sku=sku2,
                    name="Alt produs",
                    quantity=Decimal(2),
                    unit_price_gross=Decimal("59.50"),
                    vat_rate=Decimal(19),
                ),
                OrderLine(
                    sku=sku,
                    name="Produs",
                    quantity=Decimal(3),
                    unit_price_gross=Decimal("119.00"),
                    vat_rate=Decimal(19),
                ),
            ],
            "total": Decimal("476.00"),
            "shipping": Address(name="Client Retur", street="Str. Nouă 9", city="Iași", postal_code="700002"),
        }
    )
    assert quoting.update_order(sale_id, changed, changed.customer) is True
    sale = _read(session, "sale.sale", [int(sale_id)], ["state", "total_amount", "number", "shipment_address.street"])[
        0
    ]
    assert (sale["state"], sale["total_amount"]) == ("quotation", Decimal("476.00"))
    assert sale["shipment_address."]["street"] == "Str. Nouă 9"
    assert sorted(_lines(session, sale_id)) == sorted(
        [(sku2, 2.0, Decimal("50.0000")), (sku, 3.0, Decimal("100.0000"))]
    )

    wrong = changed.model_copy(update={"total": Decimal("999.00")})
    with pytest.raises(RecordError, match="the sale was left as it was"):
        quoting.update_order(sale_id, wrong, wrong.customer)
    sale = _read(session, "sale.sale", [int(sale_id)], ["state", "total_amount"])[0]
    assert (sale["state"], sale["total_amount"]) == ("quotation", Decimal("476.00"))

    processing = _order([(sku, 1)])
    processing_id = tryton.create_order(processing, processing.customer)
    lines = _lines(session, processing_id)
    writes = tryton.counters.writes
    assert tryton.update_order(processing_id, changed, changed.customer) is False
    assert tryton.counters.writes == writes and _lines(session, processing_id) == lines
    assert not tryton.order_statuses([processing_id])[0].editable


def test_statuses_of_a_shipped_and_invoiced_sale(
    tryton: TrytonConnector, tryton_server: TrytonServer, tryton_session: JsonRpcSession
) -> None:
    sku = unique_code("AS-ST")
    create_stocked_product(tryton_session, tryton_server.manifest, sku, {"WH": 10})
    order = _order([(sku, 1)])
    sale_id = tryton.create_order(order, order.customer)
    pending = tryton.order_statuses([sale_id])[0]
    assert [(s.state, s.shipped, s.awb) for s in pending.shipments] == [("waiting", False, None)]
    assert pending.invoices == [] and not pending.editable and not pending.cancelled

    sale = _ship_and_invoice(tryton_session, sale_id, "AWB-777")
    reads = tryton.counters.reads
    status, missing = tryton.order_statuses([sale_id, "999999"])
    assert tryton.counters.reads - reads == 2  # the sales, their returns' credit notes
    assert missing.state == "missing"
    assert (status.state, status.shipped, status.invoiced, status.awb) == ("processing", True, True, "AWB-777")
    assert [(s.erp_id, s.state, s.shipped, s.awb, s.carrier) for s in status.shipments] == [
        (str(sale["shipments"][0]), "done", True, "AWB-777", None)
    ]
    [invoice] = status.invoices
    invoice_id = sale["invoices"][0]
    assert (invoice.erp_id, invoice.number, invoice.issued, invoice.credit) == (
        str(invoice_id),
        status.invoice_number,
        company_today(),
        False,
    )
    assert invoice.url == f"https://erp.example.ro/invoice/{invoice_id}?n={invoice.number}"


def test_a_return_not_received_at_once_leaves_the_stock_to_the_person_who_receives_it(
    tryton_server: TrytonServer, tryton_session: JsonRpcSession
) -> None:
    sku = unique_code("AS-NR")
    create_stocked_product(tryton_session, tryton_server.manifest, sku, {"WH": 10})
    with _connector(tryton_server, receive_returns=False) as tryton:
        order = _order([(sku, 2)])
        sale_id = tryton.create_order(order, order.customer)
        _ship_and_invoice(tryton_session, sale_id, "AWB-NR")
        shipped = _stock(tryton, sku)
        everything = [ReturnLine(sku=sku, quantity=Decimal(2))]
        result = tryton.return_order(sale_id, everything, reference=f"{order.shop_id}/R1")
        assert result.erp_id is not None and result.credit_note
        back = _read(tryton_session, "sale.sale", [int(result.erp_id)], ["shipment_returns.state"])[0]
        assert [s["state"] for s in back["shipment_returns."]] == ["draft"]
        assert _stock(tryton, sku)[0] == shipped[0]  # on hand only when a person receives the parcel


def test_an_invoiced_sale_not_yet_shipped_needs_a_return_that_waits_for_the_goods_to_leave(
    tryton: TrytonConnector, tryton_server: TrytonServer, tryton_session: JsonRpcSession
) -> None:
    sku = unique_code("AS-INV")
    create_stocked_product(tryton_session, tryton_server.manifest, sku, {"WH": 10})
    order = _order([(sku, 1)])
    sale_id = tryton.create_order(order, order.customer)
    invoices = _read(tryton_session, "sale.sale", [int(sale_id)], ["invoices"])[0]["invoices"]
    tryton_session.call("model.account.invoice.post", invoices, tryton_session.context)

    writes = tryton.counters.writes
    with pytest.raises(NeedsReturn, match="an invoice was posted"):
        tryton.cancel_order(sale_id, reference=order.shop_id or "")
    with pytest.raises(RecordError, match="only 0 of it left the warehouse"):
        tryton.return_order(sale_id, [ReturnLine(sku=sku, quantity=Decimal(1))], reference=f"{order.shop_id}/R1")
    assert tryton.counters.writes == writes
    assert _sales_like(tryton_session, order.shop_id or "") == [int(sale_id)]
