"""Orders through the real ``orders`` flow on SmartBill with the ``[erp]`` options ``document = "estimate"`` (an
order becomes a proforma, ``POST /estimate``, no stock moves) and ``payments`` (a paid order's payment booked
against its invoice, ``POST /payment``, once: at import for orders already paid, later when the shop marks one
paid)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from erpsync.runtime.store_runtime import open_runtime
from tests.flows.smartbill_stack import STORE, WAREHOUSE, SmartBillStack, sb_stack_factory, set_status

pytestmark = pytest.mark.prefect


@pytest.fixture
def make_sb_stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_harness: None
) -> Iterator[Callable[..., SmartBillStack]]:
    yield from sb_stack_factory(tmp_path, monkeypatch)


def test_document_estimate_makes_each_order_one_proforma_and_moves_no_stock(
    make_sb_stack: Callable[..., SmartBillStack],
) -> None:
    stack = make_sb_stack(erp={"document": "estimate", "invoice_series": "PRF"}, orders={"direction": "both"})
    order_id = stack.order({"SKU-A": 2})
    first = stack.run()
    assert (first.created, first.failed) == (1, 0), first.message
    assert stack.sb.invoices == {} and list(stack.sb.estimates) == ["PRF-0001"]
    assert stack.sb.quantity(WAREHOUSE, "SKU-A") == 10  # a proforma takes no stock out
    estimate = stack.sb.estimates["PRF-0001"]
    assert order_id in estimate.mentions and estimate.total == Decimal("257.00")  # 2 x 121 + shipping 15
    assert stack.state.journal_get(STORE, order_id).erp_order_id == "PRF-0001"  # type: ignore[union-attr]
    assert stack.sb.stats.by_route == {"tax": 1, "estimate": 1}
    meta = stack.sim.orders[order_id].get("meta_fields") or {}
    assert "erp_invoice_number" not in meta  # a proforma is no invoice: nothing is written back as one

    again = stack.run()
    assert (again.created, again.erp_writes) == (0, 0) and len(stack.sb.estimates) == 1

    set_status(order_id, "cancelled")  # the shop cancels it: the proforma is cancelled (it moved no stock)
    undone = stack.run()
    assert estimate.cancelled and stack.sb.invoices == {} and stack.sb.quantity(WAREHOUSE, "SKU-A") == 10
    rows = [(r["order"], r["what"]) for r in undone.details["after_import"]]
    assert rows == [(order_id, "cancelled")] and stack.sb.stats.by_route["estimate/cancel"] == 1
    assert stack.state.journal_get(STORE, order_id).state == "cancelled"  # type: ignore[union-attr]
    quiet = stack.run()
    assert quiet.details["after_import"] == [] and quiet.erp_writes == 0


def test_a_collected_payment_is_booked_once_against_the_invoice(make_sb_stack: Callable[..., SmartBillStack]) -> None:
    stack = make_sb_stack(erp={"payments": {"wire": "Ordin plata", "cash_delivery": "Alta incasare"}})
    paid = stack.order({"SKU-A": 1})  # paid by wire at import
    cod = stack.order({"SKU-B": 1}, payment_status="awaiting", payment_method_code="cash_delivery")
    unmapped = stack.order({"SKU-A": 1}, payment_method_code="card")  # paid, but no SmartBill type mapped
    first = stack.run()
    assert (first.created, first.failed) == (3, 0), first.message
    invoices = {i.mentions.rsplit(" ", 1)[-1]: i for i in stack.invoices()}
    assert [(p.type, p.value, p.invoices) for p in stack.sb.payments] == [
        ("Ordin plata", Decimal("136.00"), [invoices[paid].key])
    ]
    assert invoices[paid].total == Decimal("136.00")  # the payment is the order's total, the invoice's too
    rows = [(r["order"], r["what"], r["ERP document"]) for r in first.details["after_import"]]
    assert rows == [(paid, "payment", "Ordin plata 136.00 on WEB 0001")]
    assert stack.sb.stats.by_route["payment"] == 1
    events = {e.reference: e.state for e in stack.state.order_events(STORE, unmapped) if e.kind == "payment"}
    assert events == {f"{unmapped}/P1": "done"}  # settled as "nothing to book": never asked again

    with open_runtime(STORE) as runtime:
        runtime.shop.patch_order(cod, {"payment_status": "paid"})  # the courier brought the cash
    second = stack.run()
    assert [(p.type, p.invoices) for p in stack.sb.payments][1:] == [("Alta incasare", [invoices[cod].key])]
    assert [(r["order"], r["what"]) for r in second.details["after_import"]] == [(cod, "payment")]

    stack.sb.stats.by_route.clear()
    for _ in range(2):
        quiet = stack.run()
        assert quiet.details["after_import"] == [] and quiet.erp_writes == 0
    assert len(stack.sb.payments) == 2 and "payment" not in stack.sb.stats.by_route


def test_a_payment_refused_by_smartbill_is_its_own_failure_never_the_orders(
    make_sb_stack: Callable[..., SmartBillStack],
) -> None:
    stack = make_sb_stack(erp={"payments": {"wire": "Ordin plata"}})
    order_id = stack.order({"SKU-A": 1})
    stack.sb.inject("payment", error_text="Factura nu poate fi incasata.")
    first = stack.run()
    assert first.created == 1 and stack.sb.payments == []
    assert [(r["order"], r["what"]) for r in first.details["after_import"]] == [(order_id, "payment refused")]
    failures = [(f.entity, f.key) for f in stack.state.open_failures(STORE)]
    assert failures == [("order_payment", order_id)]
    assert stack.state.journal_get(STORE, order_id).state == "created"  # type: ignore[union-attr]
