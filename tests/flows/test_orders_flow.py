"""The order flow end to end.

Part 1 runs the real flows (Prefect harness, simulated shop over loopback) against the in-memory ERP
(``erpsync.testing.memory_erp``, which passes the ERP contract suite) to pin every rule quickly; part 2 runs
them against the real Tryton (the session's server; every test creates its own products, buyers and order ids).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import erpsync.runtime.store_runtime as runtime_module
from erpsync.app.flowrun import run_flow
from erpsync.connectors.erp.base import Capabilities
from erpsync.connectors.http import RetryPolicy
from erpsync.core.models import Customer, Order, OrderLine, ShippingStatus
from erpsync.core.state import StateStore
from erpsync.core.summary import RunState, RunSummary
from erpsync.dev.stack import SimShop, Stack, start_shop, write_config
from erpsync.dev.tryton import JsonRpcSession, TrytonServer
from erpsync.runtime.store_runtime import open_runtime, overrides
from erpsync.tasks.order_import import CRASH_EXIT_CODE, CRASH_HOOK_ENV
from erpsync.testing.fault_proxy import FaultProxy
from erpsync.testing.faults import Faults
from erpsync.testing.memory_erp import ORDERS, SMARTBILL_LIKE, MemoryErp, MemoryErpData
from erpsync.testing.server import serve_in_thread
from tests.flows.run_helpers import expire_leases
from tests.tryton_fixture import create_stocked_product, unique_code, unique_ro_vat

ROOT = Path(__file__).resolve().parents[2]

PERSON = {
    "customer_email": "ana.popescu@example.ro",
    "billing_type": "individual",
    "billing_name": "Ana Popescu",
    "billing_address": "Str. Lalelelor 4",
    "billing_city": "Bucuresti",
    "billing_postal_code": "010101",
    "billing_country_code": "RO",
    "billing_phone": "0722000111",
    "shipping_as_billing": True,
}
COMPANY = {
    "customer_email": "achizitii@firma.ro",
    "billing_type": "company",
    "billing_name": "Ion Ionescu",
    "billing_company": "Firma Demo SRL",
    "billing_fiscal_code": "RO18547290",
    "billing_reg_no": "J12/345/2020",
    "billing_address": "Bd. Eroilor 10",
    "billing_city": "Cluj-Napoca",
    "billing_postal_code": "400129",
    "billing_country_code": "RO",
    "shipping_as_billing": False,
    "shipping_name": "Depozit Firma",
    "shipping_address": "Str. Fabricii 9",
    "shipping_city": "Cluj-Napoca",
    "shipping_postal_code": "400620",
    "shipping_country_code": "RO",
}


@dataclass
class FakeStack:
    shop: SimShop
    erp: MemoryErp
    state_url: str
    path: Path
    stock_calls: list[tuple[str, set[str]]] = field(default_factory=list)

    @property
    def sim(self) -> Any:
        return self.shop.sim

    @property
    def state(self) -> StateStore:
        return runtime_module.state_store(self.state_url)

    def product(self, sku: str, *, vat_tax_id: int = 1, stock: int = 50) -> None:
        self.sim.add_product(
            {"name": f"Produs {sku}", "sku": sku, "price_gross": 119, "tax_id": vat_tax_id, "stock": stock}
        )

    def order(
        self, sku: str, buyer: dict[str, Any] = PERSON, *, status: str = "awaiting", quantity: int = 1, **extra: Any
    ) -> str:
        payload = {
            **buyer,
            "payment_status": "paid",
            "payment_method_code": "wire",
            "shipping_status": status,
            "shipping_amount": 15,
            "line_items": [{"product_sku": sku, "quantity": quantity}],
            **extra,
        }
        return str(self.sim.add_order(payload)["id"])

    def run(self, flow: str = "orders", **params: Any) -> RunSummary:
        from erpsync.flows.registry import load_flow

        return run_flow(load_flow(flow), flow, "main", params)


@pytest.fixture
def make_stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_harness: None
) -> Iterator[Callable[..., FakeStack]]:
    shops: list[SimShop] = []

    def make(capabilities: Capabilities = ORDERS, **orders: Any) -> FakeStack:
        shop = start_shop("main")
        shops.append(shop)
        state_url = f"sqlite:///{tmp_path / 'state.db'}"
        path = write_config(
            tmp_path / "erpsync.toml",
            erp={"type": "tryton", "url": "http://127.0.0.1:9", "database": "fake", "password": "literal:fake-pw"},
            shops=[shop],
            state_url=state_url,
            stores={"main": {"orders": orders}} if orders else None,
        )
        # no catalogue in this ERP: every SKU sells, unless a test names the known ones
        erp = MemoryErp(MemoryErpData(known_skus=None), capabilities=capabilities)
        stack = FakeStack(shop, erp, state_url, path)
        monkeypatch.setenv("ERPSYNC_CONFIG", str(path))
        monkeypatch.setattr(runtime_module, "make_erp", lambda *_a, **_k: stack.erp)
        monkeypatch.setattr(overrides, "unpaced", True)

        def refresh_stock(store: str, skus: set[str]) -> str:
            if skus:
                stack.stock_calls.append((store, set(skus)))
            return ""

        monkeypatch.setattr("erpsync.flows.orders.refresh_stock", refresh_stock)
        monkeypatch.setattr("erpsync.flows.manual.refresh_stock", refresh_stock)
        return stack

    yield make
    for shop in shops:
        shop.stop()


# --------------------------------------------------------------------------- shop -> ERP


def test_orders_of_two_customers_arrive_once_and_a_rerun_adds_nothing(make_stack: Callable[..., FakeStack]) -> None:
    stack = make_stack()
    stack.product("SKU-A")
    stack.product("SKU-B")
    person = stack.order("SKU-A", PERSON, quantity=2)
    company = stack.order("SKU-B", COMPANY)
    temporary = stack.order("SKU-A", PERSON, status="temporary")

    first = stack.run()
    assert first.state is RunState.COMPLETED, first.message
    assert (first.created, first.skipped, first.failed) == (2, 1, 0)
    assert [len(stack.erp.data.sales_for(i)) for i in (person, company, temporary)] == [1, 1, 0]
    sale = stack.erp.data.sales_for(company)[0]
    party = stack.erp.data.parties[sale.customer_id or ""]
    assert (party.is_company, party.vat_code, party.company_name) == (True, "RO18547290", "Firma Demo SRL")
    assert sale.order.billing and sale.order.billing.street == "Bd. Eroilor 10"
    assert sale.order.shipping and sale.order.shipping.street == "Str. Fabricii 9"
    assert sale.order.payment_status == "paid" and sale.order.payment_method == "wire"
    assert [(ln.sku, ln.quantity) for ln in stack.erp.data.sales_for(person)[0].order.lines] == [("SKU-A", 2)]
    assert stack.stock_calls == [("main", {"SKU-A", "SKU-B"})]
    journal = {e.shop_order_id: e for e in stack.state.journal_entries("main")}
    sale_id = stack.erp.data.sales_for(person)[0].erp_id
    assert journal[person].state == "created" and journal[person].erp_order_id == sale_id
    assert stack.state.find_link("main", "order", shop_id=company) is not None

    calls = (stack.erp.counters.reads, stack.erp.counters.writes)
    again = stack.run()
    assert (again.created, again.failed, again.unchanged) == (0, 0, 2)
    assert len(stack.erp.data.sales) == 2 and again.shop_writes == 0
    assert (stack.erp.counters.reads, stack.erp.counters.writes) == calls  # unchanged orders: no ERP call

    stack.sim.add_order(
        {**PERSON, "shipping_status": "awaiting", "line_items": [{"product_sku": "SKU-B", "quantity": 1}]}
    )
    third = stack.run()
    assert third.created == 1 and len(stack.erp.data.sales) == 3
    assert len(stack.erp.data.parties) == 2  # the returning buyer was found through the link, not created again


def test_a_temporary_order_is_imported_once_it_is_placed(make_stack: Callable[..., FakeStack]) -> None:
    stack = make_stack()
    stack.product("SKU-A")
    order_id = stack.order("SKU-A", status="temporary")
    assert stack.run().skipped == 1 and not stack.erp.data.sales
    stack.shop.sim.orders[order_id]["shipping_status"] = "awaiting"
    assert stack.run().created == 1 and len(stack.erp.data.sales_for(order_id)) == 1


def test_bad_orders_fail_alone_are_retried_then_held_then_resent_by_hand(
    make_stack: Callable[..., FakeStack],
) -> None:
    stack = make_stack(max_attempts=2)
    stack.erp.data.known_skus = {"SKU-A", "SKU-B"}
    for sku in ("SKU-A", "SKU-B", "SKU-X"):
        stack.product(sku)
    stack.sim.add_product({"name": "Carte", "sku": "BOOK-24", "price_gross": 50, "tax_id": 1, "stock": 5})
    good = stack.order("SKU-A")
    unknown = stack.order("SKU-X")
    bad_vat = stack.order("BOOK-24", line_items=[{"product_sku": "BOOK-24", "quantity": 1, "product_tax_percent": 24}])
    refused = stack.order("SKU-B")
    stack.erp.data.refuse[refused] = "the customer's account is blocked"

    first = stack.run()
    assert first.state is RunState.PARTIAL and (first.created, first.failed) == (1, 3)
    failures = {f.key: f for f in stack.state.open_failures("main", "order")}
    assert set(failures) == {unknown, bad_vat, refused}
    assert "unknown SKU 'SKU-X'" in failures[unknown].error
    assert "VAT rate 24% of SKU 'BOOK-24' has no mapping" in failures[bad_vat].error
    assert "blocked" in failures[refused].error and failures[refused].payload["shop_id"] == refused
    assert not stack.erp.data.sales_for(bad_vat)  # refused before reaching the ERP
    assert len(stack.erp.data.sales_for(good)) == 1

    stack.run()  # second attempt of each (window and retry by id): still failing
    calls = len(stack.erp.data.create_calls)
    third = stack.run()
    assert third.details["held"] and set(third.details["held"]) == {unknown, bad_vat, refused}
    assert len(stack.erp.data.create_calls) == calls  # held: not sent again automatically
    assert {f.key: f.attempts for f in stack.state.open_failures("main", "order")} == {
        unknown: 2,
        bad_vat: 2,
        refused: 2,
    }

    del stack.erp.data.refuse[refused]  # a person fixed it in the ERP
    assert stack.run("resync-order", order_id=refused).created == 0  # held: the webhook's way does not force
    manual = stack.run("resync-order", order_id=refused, force=True)
    assert manual.created == 1 and len(stack.erp.data.sales_for(refused)) == 1
    assert stack.state.failure("main", "order", refused).resolved  # type: ignore[union-attr]
    stack.erp.data.known_skus.add("SKU-X")
    retried = stack.run("retry-failures", entity="order")
    assert retried.created == 1 and retried.failed == 1  # SKU-X now known; BOOK-24 still has no VAT mapping
    assert [f.key for f in stack.state.open_failures("main", "order")] == [bad_vat]


def test_transient_erp_trouble_uses_up_no_attempt_and_the_order_goes_later(
    make_stack: Callable[..., FakeStack],
) -> None:
    stack = make_stack(max_attempts=1)
    stack.product("SKU-A")
    order_id = stack.order("SKU-A")
    stack.erp.data.transient[order_id] = 3
    for _ in range(3):
        summary = stack.run()
        assert summary.failed == 1 and not summary.details["held"]
    assert stack.run().created == 1 and len(stack.erp.data.sales_for(order_id)) == 1


def test_cancelled_in_the_shop_after_import_is_cancelled_in_the_erp(make_stack: Callable[..., FakeStack]) -> None:
    stack = make_stack(max_attempts=2)
    stack.product("SKU-A")
    kept, cancelled, stuck = stack.order("SKU-A"), stack.order("SKU-A"), stack.order("SKU-A")
    stack.run()
    stack.erp.data.cancel_refused.add(stack.erp.data.sales_for(stuck)[0].erp_id)
    for order_id in (cancelled, stuck):
        stack.sim.orders[order_id]["shipping_status"] = "cancelled"
    summary = stack.run()
    assert summary.updated == 1 and summary.failed == 1
    assert stack.erp.data.sales_for(cancelled)[0].state == "cancelled"
    assert stack.erp.data.sales_for(kept)[0].state == "processing"
    assert "cannot be cancelled" in stack.state.failure("main", "order", stuck).error  # type: ignore[union-attr]
    assert stack.state.journal_get("main", cancelled).state == "cancelled"  # type: ignore[union-attr]
    assert stack.state.journal_get("main", stuck).state == "created"  # type: ignore[union-attr]  # still in the ERP
    assert stack.run().updated == 0  # done once; the refused one is retried, then held
    assert stuck in stack.run().details["held"]


@pytest.mark.parametrize("error_name", ["undefined_filter", "invalid_parameter", None])
def test_a_shop_without_the_modified_filter_is_read_by_creation_date(
    make_stack: Callable[..., FakeStack],
    monkeypatch: pytest.MonkeyPatch,
    error_name: str | None,
) -> None:
    from erpsync.connectors.errors import BadRequestError
    from erpsync.connectors.merchantpro.client import MerchantProClient

    stack = make_stack()
    stack.product("SKU-A")
    order_id = stack.order("SKU-A")
    original = MerchantProClient.iter_orders
    filters: list[str] = []

    def strict(self: MerchantProClient, **kw: Any) -> Any:
        filters.append(kw.get("date_filter", "created"))
        if kw.get("date_filter") == "modified":
            raise BadRequestError("merchantpro", "No such filter `modified` defined", status=400, error_name=error_name)
        return original(self, **kw)

    monkeypatch.setattr(MerchantProClient, "iter_orders", strict)
    assert stack.run().created == 1 and len(stack.erp.data.sales_for(order_id)) == 1
    assert stack.run().created == 0 and filters == ["modified", "created", "created"]  # remembered


# --------------------------------------------------------------------------- exactly once


def test_an_order_sent_before_is_looked_up_and_never_created_twice(make_stack: Callable[..., FakeStack]) -> None:
    stack = make_stack()
    stack.product("SKU-A")
    order_id = stack.order("SKU-A")
    # As if a run died right after the ERP created the sale: journal says sent, no ERP id.
    with open_runtime("main") as runtime:
        order = runtime.shop.get_order(order_id)
    erp_id = stack.erp.create_order(order, Customer(email="x@y.ro"))
    stack.state.journal_claim("main", order_id, None)
    stack.state.journal_update("main", order_id, attempts=1)

    summary = stack.run()
    assert summary.created == 1 and len(stack.erp.data.sales_for(order_id)) == 1
    assert stack.state.journal_get("main", order_id).erp_order_id == erp_id  # type: ignore[union-attr]


def test_an_erp_without_order_lookup_holds_an_in_doubt_order_for_a_person(
    make_stack: Callable[..., FakeStack],
) -> None:
    stack = make_stack(SMARTBILL_LIKE)
    stack.product("SKU-A")
    order_id = stack.order("SKU-A")
    stack.state.journal_claim("main", order_id, None)
    stack.state.journal_update("main", order_id, attempts=1)  # sent once, outcome unknown, registry empty

    summary = stack.run()
    assert summary.details["held"] == [order_id] and not stack.erp.data.create_calls
    failure = stack.state.failure("main", "order", order_id)
    assert failure is not None and "in doubt" in failure.error and "resync-order" in failure.error
    assert not stack.run().created and not stack.erp.data.create_calls  # still held on the next runs
    # A person checked the ERP (nothing there) and re-sends it.
    assert stack.run("resync-order", order_id=order_id).created == 0  # not without force
    assert stack.run("resync-order", order_id=order_id, force=True).created == 1
    assert len(stack.erp.data.sales_for(order_id)) == 1
    # Fresh orders go through normally with such an ERP (no customer step: the buyer travels in the order).
    other = stack.order("SKU-A")
    assert stack.run().created == 1 and len(stack.erp.data.sales_for(other)) == 1 and not stack.erp.data.parties


def test_two_overlapping_runs_make_one_erp_order_each(make_stack: Callable[..., FakeStack]) -> None:
    stack = make_stack()
    stack.erp.data.create_delay = 0.05
    stack.product("SKU-A")
    ids = [stack.order("SKU-A") for _ in range(6)]
    results: list[RunSummary] = []
    threads = [threading.Thread(target=lambda: results.append(stack.run())) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    states = sorted(r.state.value for r in results)
    assert states in (["completed", "skipped"], ["completed", "completed"])  # the lease: skip, or ran after
    assert all(len(stack.erp.data.sales_for(i)) == 1 for i in ids) and len(stack.erp.data.sales) == 6


def test_without_the_run_lease_the_journal_claim_still_makes_one_order(
    make_stack: Callable[..., FakeStack],
) -> None:
    from erpsync.tasks.order_import import import_batch

    stack = make_stack()
    stack.erp.data.create_delay = 0.05  # a racy check-then-create in the ERP: only the claim can save us
    stack.product("SKU-A")
    ids = [stack.order("SKU-A") for _ in range(8)]
    outcomes: list[Any] = []

    def worker() -> None:
        with open_runtime("main") as runtime:
            orders = [runtime.shop.get_order(i) for i in ids]
            outcomes.append(import_batch(runtime, orders, {}))

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(outcomes) == 3
    assert all(len(stack.erp.data.sales_for(i)) == 1 for i in ids)
    created = [i for o in outcomes for i in o.created]
    assert sorted(created) == sorted(ids)  # each order created by exactly one of the three
    busy = [i for o in outcomes for i in o.busy]
    unchanged = sum(o.unchanged for o in outcomes)
    assert len(busy) + unchanged == 2 * len(ids)  # the others found it claimed, or already done


# --------------------------------------------------------------------------- ERP -> shop


def test_erp_status_and_awb_come_back_written_only_on_change(make_stack: Callable[..., FakeStack]) -> None:
    stack = make_stack(direction="both")
    stack.product("SKU-A")
    order_id = stack.order("SKU-A")
    stack.run()
    sale = stack.erp.data.sales_for(order_id)[0]
    sale.invoice = "FACT-0042"
    summary = stack.run()
    assert summary.updated == 1 and stack.sim.orders[order_id]["shipping_status"] == "in_process"
    assert [t["name"] for t in stack.sim.orders[order_id]["tags"]] == ["Factura FACT-0042"]

    sale.shipped, sale.awb = True, "AWB123456"
    stack.sim.stats.reset()
    summary = stack.run()
    order = stack.sim.orders[order_id]
    assert (order["shipping_status"], order["shipping_awb"]) == ("shipped", "AWB123456")
    assert summary.details["status_writes"] == 2

    stack.sim.stats.reset()
    quiet = stack.run()
    assert quiet.details["status_writes"] == 0 and stack.sim.stats.writes == 0  # nothing changed: no write

    sale.delivered = True
    stack.sim.orders[order_id]["shipping_status"] = "delivered"  # the shop got there first
    stack.sim.stats.reset()
    stack.run()
    assert stack.sim.stats.writes == 0  # checked against the shop: already delivered


def test_an_erp_order_of_another_channel_appears_in_the_shop_once_and_never_goes_back(
    make_stack: Callable[..., FakeStack],
) -> None:
    stack = make_stack(direction="both", channels=["phone"])
    stack.product("SKU-A")
    stack.product("SKU-B")
    buyer = Customer(email="telefon@example.ro", name="Client Telefon")
    phone = Order(
        customer=buyer,
        lines=[OrderLine(sku="SKU-B", quantity=Decimal(3), unit_price_gross=Decimal("119"))],
        shipping_status=ShippingStatus.CONFIRMED,
        billing=None,
    )
    erp_id = stack.erp.data.add_channel_order(phone, "phone")
    stack.erp.data.add_channel_order(phone, "market")  # a channel this store does not take
    before = set(stack.sim.orders)

    first = stack.run()
    new = set(stack.sim.orders) - before
    assert first.created == 1 and len(new) == 1
    shop_id = new.pop()
    shop_order = stack.sim.orders[shop_id]
    assert shop_order["meta_fields"] == {"erp_reference": f"memory:{erp_id}"}
    assert [(ln["product_sku"], ln["quantity"]) for ln in shop_order["line_items"]] == [("SKU-B", 3)]
    assert stack.state.find_link("main", "order", shop_id=shop_id).erp_id == erp_id  # type: ignore[union-attr]
    assert stack.stock_calls[-1] == ("main", {"SKU-B"})

    for _ in range(2):
        again = stack.run()
        assert again.created == 0 and len(stack.sim.orders) == len(before) + 1
    assert not stack.erp.data.sales_for(shop_id)  # never echoed back into the ERP as a shop order
    assert len(stack.erp.data.sales) == 2


def test_a_lost_reply_to_the_shop_post_is_found_again_not_posted_twice(
    make_stack: Callable[..., FakeStack],
) -> None:
    stack = make_stack(direction="both", channels=["phone"])
    stack.product("SKU-A")
    phone = Order(
        customer=Customer(email="t@example.ro", name="T"),
        lines=[OrderLine(sku="SKU-A", quantity=Decimal(1))],
        shipping_status=ShippingStatus.CONFIRMED,
    )
    erp_id = stack.erp.data.add_channel_order(phone, "phone")
    before = len(stack.sim.orders)
    stack.sim.set_faults(Faults(reset_after_write=1.0, only_methods=frozenset({"POST"})))
    first = stack.run()
    stack.sim.set_faults(None)
    assert first.failed == 1 and len(stack.sim.orders) == before + 1  # applied, but the reply was lost
    second = stack.run()
    assert len(stack.sim.orders) == before + 1  # found by its ERP marker and linked, not POSTed again
    assert second.failed == 0
    link = stack.state.find_link("main", "order", erp_id=erp_id)
    assert link is not None and link.shop_id in stack.sim.orders
    assert not stack.state.open_failures("main", "erp_order")


# ===========================================================================================================
# Part 2: end to end with the real Tryton (its session server) and the simulated shop
# ===========================================================================================================


def unique_order_id() -> str:
    """A shop order id no other test on the session's Tryton uses (one in four with a ``.N`` suffix)."""
    number = uuid.uuid4().int
    base = str(10_000_000 + number % 89_999_999)
    return f"{base}.{number % 7 + 1}" if number % 4 == 0 else base


@dataclass
class TrytonStack:
    stack: Stack
    session: JsonRpcSession
    manifest: dict[str, Any]
    state_url: str

    @property
    def sim(self) -> Any:
        return self.stack.shop().sim

    @property
    def state(self) -> StateStore:
        return runtime_module.state_store(self.state_url)

    def product(self, prefix: str = "E2E-ORD", *, tryton_stock: int = 20, shop_stock: int = 50) -> str:
        """A product with a fresh SKU in Tryton (stock in WH) and in the shop."""
        sku = unique_code(prefix)
        create_stocked_product(self.session, self.manifest, sku, {"WH": tryton_stock})
        self.sim.add_product(
            {"name": f"Produs {sku}", "sku": sku, "price_gross": 29.75, "tax_id": 1, "stock": shop_stock}
        )
        return sku

    def buyer(self, company: bool = False) -> dict[str, Any]:
        tag = uuid.uuid4().hex[:8]
        if company:
            return {**COMPANY, "customer_email": f"firma-{tag}@example.ro", "billing_fiscal_code": unique_ro_vat()}
        return {**PERSON, "customer_email": f"ana-{tag}@example.ro"}

    def order(self, sku: str, buyer: dict[str, Any], *, quantity: int = 1, status: str = "awaiting") -> str:
        order_id = unique_order_id()
        self.sim.add_order(
            {
                **buyer,
                "id": order_id,
                "payment_status": "awaiting",
                "payment_method_code": "cash_delivery",
                "shipping_status": status,
                "shipping_amount": 15,
                "line_items": [{"product_sku": sku, "quantity": quantity}],
            }
        )
        return order_id

    def sales(self, reference: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.session.call(
            "model.sale.sale.search_read",
            [("reference", "=", reference)],
            0,
            None,
            None,
            ["state", "party", "shipments", "invoices", "description"],
            self.session.context,
        )
        return rows

    def run(self, flow: str = "orders", **params: Any) -> RunSummary:
        from erpsync.flows.registry import load_flow

        return run_flow(load_flow(flow), flow, "main", params)

    def phone_sale(self, sku: str, quantity: int = 2) -> int:
        """A confirmed Tryton sale of the channel "phone" (description ``channel:phone``) for this SKU."""
        ctx, manifest = self.session.context, self.manifest
        product_id = self.session.call("model.product.product.search", [("code", "=", sku)], 0, 1, None, ctx)[0]
        party = manifest["parties"]["client_person"]
        address = self.session.call("model.party.address.search", [("party", "=", party)], 0, 1, None, ctx)[0]
        sale: int = self.session.call(
            "model.sale.sale.create",
            [
                {
                    "party": party,
                    "invoice_address": address,
                    "shipment_address": address,
                    "description": "channel:phone",
                    "warehouse": manifest["warehouses"]["WH"]["warehouse"],
                    "reference": unique_code("PHONE"),
                    "lines": [
                        [
                            "create",
                            [
                                {
                                    "type": "line",
                                    "product": product_id,
                                    "quantity": float(quantity),
                                    "unit": manifest["unit"],
                                    "unit_price": Decimal("25"),
                                    "description": "telefonic",
                                }
                            ],
                        ]
                    ],
                }
            ],
            ctx,
        )[0]
        for button in ("quote", "confirm"):
            self.session.call(f"model.sale.sale.{button}", [sale], ctx)
        return sale

    def ship_and_invoice(self, order_id: str, awb: str) -> str:
        """Ship the order's sale in Tryton with this AWB and post its invoice; the invoice number."""
        sale, ctx = self.sales(order_id)[0], self.session.context
        self.session.call("model.stock.shipment.out.write", sale["shipments"], {"reference": awb}, ctx)
        for button in ("assign_try", "pick", "pack", "ship", "do"):
            self.session.call(f"model.stock.shipment.out.{button}", sale["shipments"], ctx)
        self.session.call("model.account.invoice.post", sale["invoices"], ctx)
        number: str = self.session.call("model.account.invoice.read", sale["invoices"], ["number"], ctx)[0]["number"]
        return number

    def shop_copies(self, erp_sale: int) -> list[str]:
        """Shop orders that carry this Tryton sale's marker."""
        marker = {"erp_reference": f"tryton:{erp_sale}"}
        return [i for i, o in self.sim.orders.items() if o.get("meta_fields") == marker]


@pytest.fixture
def make_tryton_stack(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    tryton_server: TrytonServer,
    prefect_harness: None,
) -> Iterator[Callable[..., TrytonStack]]:
    from tests.support.stack import build_stack

    builders: list[Iterator[Stack]] = []
    sessions: list[Any] = []

    def make(*, erp_url: str | None = None, shop_options: dict[str, Any] | None = None, **orders: Any) -> TrytonStack:
        builder = build_stack(
            tmp_path, monkeypatch, tryton_server, stores={"main": {"orders": orders}}, shop_options=shop_options
        )
        builders.append(builder)
        stack = next(builder)
        if erp_url is not None:  # through the fault proxy
            text = stack.config_path.read_text().replace(f'url = "{tryton_server.url}"', f'url = "{erp_url}"')
            stack.config_path.write_text(text)
        session_cm = tryton_server.session()
        session = session_cm.__enter__()
        sessions.append(session_cm)
        monkeypatch.setattr(overrides, "unpaced", True)
        return TrytonStack(stack, session, tryton_server.manifest, stack.settings.state.url.get())

    yield make
    for session_cm in sessions:
        session_cm.__exit__(None, None, None)
    for builder in builders:
        with contextlib.suppress(StopIteration):
            next(builder)


def test_e2e_orders_of_two_customers_arrive_once_and_move_the_stock(
    make_tryton_stack: Callable[..., TrytonStack],
) -> None:
    t = make_tryton_stack()
    sku_a, sku_b = t.product(), t.product()
    person, company = t.buyer(), t.buyer(company=True)
    ids = [t.order(sku_a, person, quantity=2), t.order(sku_b, company), t.order(sku_a, person)]

    first = t.run()
    assert first.state is RunState.COMPLETED, first.message
    assert first.created == 3 and first.failed == 0
    sales = {i: t.sales(i) for i in ids}
    assert all(len(rows) == 1 and rows[0]["state"] == "processing" for rows in sales.values())
    assert sales[ids[0]][0]["party"] == sales[ids[2]][0]["party"]  # one party for the returning buyer
    company_party = t.session.call(
        "model.party.party.read",
        [sales[ids[1]][0]["party"]],
        ["name", "identifiers.code", "addresses.street"],
        t.session.context,
    )[0]
    assert company_party["name"] == "Firma Demo SRL"
    # the CUI and (issue 15) the trade register number
    assert [i["code"] for i in company_party["identifiers."]] == [company["billing_fiscal_code"], "J12/345/2020"]
    assert sorted(a["street"] for a in company_party["addresses."]) == ["Bd. Eroilor 10", "Str. Fabricii 9"]
    # The stock effect: the stock sync ran for the orders' SKUs; the shop now shows Tryton's on hand - reserved.
    assert first.details["stock_skus"] == sorted({sku_a, sku_b})
    shop_stock = {p["sku"]: p["stock"] for p in t.sim.products.values() if p["sku"] in (sku_a, sku_b)}
    assert shop_stock == {sku_a: 17, sku_b: 19}

    again = t.run()
    assert (again.created, again.failed, again.unchanged) == (0, 0, 3)
    assert again.erp_writes == 0 and again.erp_reads == 0  # nothing new: the ERP is not even asked
    assert all(len(t.sales(i)) == 1 for i in ids)


def test_e2e_killed_right_after_the_erp_create_still_one_sale(
    make_tryton_stack: Callable[..., TrytonStack],
) -> None:
    from prefect.settings import PREFECT_API_URL

    t = make_tryton_stack()
    order_id = t.order(t.product(), t.buyer())
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value()), CRASH_HOOK_ENV: "1"}
    killed = subprocess.run(
        [sys.executable, "-m", "erpsync.app.cli", "run", "orders", "--store", "main", "--json"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert killed.returncode == CRASH_EXIT_CODE, killed.stderr[-3000:]
    assert len(t.sales(order_id)) == 1  # the ERP has the sale ...
    entry = t.state.journal_get("main", order_id)
    assert entry is not None and (entry.state, entry.attempts, entry.erp_order_id) == ("pending", 1, None)

    expire_leases(t.state)
    rerun = t.run()
    assert rerun.created == 1 and rerun.failed == 0
    sales = t.sales(order_id)
    assert len(sales) == 1
    entry = t.state.journal_get("main", order_id)
    assert entry is not None and entry.state == "created" and entry.erp_order_id == str(sales[0]["id"])
    assert t.run().created == 0 and len(t.sales(order_id)) == 1


def test_e2e_two_overlapping_runs_one_sale_per_order_with_and_without_the_lease(
    make_tryton_stack: Callable[..., TrytonStack],
) -> None:
    from erpsync.tasks.order_import import import_batch

    t = make_tryton_stack()
    sku = t.product()
    ids = [t.order(sku, t.buyer()) for _ in range(4)]
    results: list[RunSummary] = []
    threads = [threading.Thread(target=lambda: results.append(t.run())) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert sorted(r.state.value for r in results) in (["completed", "skipped"], ["completed", "completed"])
    assert [len(t.sales(i)) for i in ids] == [1] * 4

    # The lease out of the way: three workers import the same new orders at once.
    more = [t.order(sku, t.buyer()) for _ in range(4)]
    outcomes: list[Any] = []

    def worker() -> None:
        with open_runtime("main") as runtime:
            orders = [runtime.shop.get_order(i) for i in more]
            outcomes.append(import_batch(runtime, orders, {}))

    workers = [threading.Thread(target=worker) for _ in range(3)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(timeout=300)
    assert len(outcomes) == 3
    created = [i for o in outcomes for i in o.created]
    assert len(created) == len(set(created))  # no order created by two workers
    assert all(len(t.sales(i)) <= 1 for i in more)
    # Tryton on SQLite may refuse one of two parties created at the same instant ("code must be unique"):
    # that order failed cleanly and goes with the next run.
    t.run()
    assert [len(t.sales(i)) for i in more] == [1] * 4


def test_e2e_status_and_awb_flow_back_to_the_shop(make_tryton_stack: Callable[..., TrytonStack]) -> None:
    t = make_tryton_stack(direction="both")
    order_id = t.order(t.product(), t.buyer())
    t.run()
    number = t.ship_and_invoice(order_id, "AWB-E2E-777")

    back = t.run()
    shop_order = t.sim.orders[order_id]
    assert (shop_order["shipping_status"], shop_order["shipping_awb"]) == ("shipped", "AWB-E2E-777")
    assert [tag["name"] for tag in shop_order["tags"]] == [f"Factura {number}"]
    assert shop_order["meta_fields"]["erp_invoice_number"] == number  # with its date (docs/orders.md)
    assert back.details["status_writes"] == 4 and back.updated == 1  # status, AWB, tag, invoice meta fields
    t.sim.stats.reset()
    quiet = t.run()
    assert quiet.details["status_writes"] == 0 and t.sim.stats.writes == 0  # written only on change


def test_e2e_an_erp_order_of_another_channel_appears_in_the_shop_once(
    make_tryton_stack: Callable[..., TrytonStack],
) -> None:
    t = make_tryton_stack(direction="both", channels=["phone"])
    sku = t.product()
    phone_sale = t.phone_sale(sku)
    before = set(t.sim.orders)

    first = t.run()
    new = sorted(set(t.sim.orders) - before)
    assert first.created == 1 and len(new) == 1, first
    shop_order = t.sim.orders[new[0]]
    assert shop_order["meta_fields"] == {"erp_reference": f"tryton:{phone_sale}"}
    assert [(ln["product_sku"], ln["quantity"]) for ln in shop_order["line_items"]] == [(sku, 2)]
    for _ in range(2):
        assert t.run().created == 0
    assert sorted(set(t.sim.orders) - before) == new  # once
    assert t.sales(new[0]) == []  # never echoed back into Tryton as a shop order
    link = t.state.find_link("main", "order", shop_id=new[0])
    assert link is not None and link.erp_id == str(phone_sale)


def test_e2e_twenty_percent_faults_on_both_sides_every_order_exactly_once(
    make_tryton_stack: Callable[..., TrytonStack],
    tryton_server: TrytonServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(RetryPolicy, "backoff", lambda self, attempt, rng: 0.01)  # fast retries, same logic
    # the stock flow is not under test
    monkeypatch.setattr("erpsync.flows.orders.refresh_stock", lambda store, skus: "")
    proxy = FaultProxy(tryton_server.url, Faults(error_500=0.1, reset_after_write=0.1, seed=7))
    proxy.enabled = False
    server = serve_in_thread(proxy)
    try:
        t = make_tryton_stack(erp_url=server.url, direction="both", channels=["phone"])
        sku = t.product(tryton_stock=40)
        ids = [t.order(sku, t.buyer(company=n % 3 == 0)) for n in range(6)]
        phone_sales = [t.phone_sale(sku), t.phone_sale(sku, 1)]
        proxy.enabled = True
        t.sim.set_faults(
            Faults(
                error_500=0.05,
                error_429=0.02,
                reset=0.04,
                reset_after_write=0.05,
                truncated=0.02,
                timeout=0.02,
                hang_seconds=0.05,
                seed=11,
            )
        )

        def settled(runs: list[RunSummary], done: Callable[[], bool]) -> None:
            for _ in range(30):
                runs.append(t.run())
                if done() and runs[-1].failed == 0:
                    return

        runs: list[RunSummary] = []
        settled(
            runs,
            lambda: (
                all(t.state.find_link("main", "order", shop_id=i) for i in ids)
                and all(t.shop_copies(s) for s in phone_sales)
            ),
        )
        # Statuses under faults too: two imported orders shipped and invoiced in Tryton.
        awbs = {ids[0]: "AWB-F-1", ids[1]: "AWB-F-2"}
        for order_id, awb in awbs.items():
            t.ship_and_invoice(order_id, awb)
        settled(runs, lambda: all(t.sim.orders[i].get("shipping_awb") == a for i, a in awbs.items()))
        t.sim.set_faults(None)
        proxy.enabled = False

        assert proxy.counts["error_500"] and proxy.counts["reset_after_write"]
        assert t.sim.stats.faults["reset_after_write"] and sum(t.sim.stats.faults.values()) >= 5
        assert any(r.failed for r in runs) and all(r.state is not RunState.FAILED for r in runs), [
            r.line() for r in runs
        ]
        final = t.run()
        assert (final.created, final.failed, final.details["status_writes"]) == (0, 0, 0)
        assert [len(t.sales(i)) for i in ids] == [1] * len(ids), [r.line() for r in runs]
        assert [len(t.shop_copies(s)) for s in phone_sales] == [1, 1]
        assert all(not t.sales(copy) for s in phone_sales for copy in t.shop_copies(s))  # never echoed
        for order_id, awb in awbs.items():
            assert (t.sim.orders[order_id]["shipping_status"], t.sim.orders[order_id]["shipping_awb"]) == (
                "shipped",
                awb,
            )
            assert len(t.sim.orders[order_id]["tags"]) == 1
        emails = sorted({t.sim.orders[i]["customer_email"] for i in ids})
        parties = t.session.call(
            "model.party.contact_mechanism.search_read",
            [("type", "=", "email"), ("value", "in", emails)],
            0,
            None,
            None,
            ["party"],
            t.session.context,
        )
        assert len(parties) == len(emails)  # no buyer created twice either
        print(f"\n{len(runs)} runs; ERP proxy {dict(proxy.counts)}; shop faults {dict(t.sim.stats.faults)}")
    finally:
        server.stop()


def test_resync_order_sends_the_orders_a_webhook_burst_merged(make_stack: Callable[..., FakeStack]) -> None:
    """The webhook receiver's merged run: one resync-order run imports every order it names, once."""
    stack = make_stack()
    stack.product("SKU-A")
    ids = [stack.order("SKU-A") for _ in range(3)]
    merged = stack.run("resync-order", order_id=ids[0], also=ids[1:])
    assert merged.created == 3 and merged.details["order_ids"] == ids
    assert all(len(stack.erp.data.sales_for(i)) == 1 for i in ids)
    assert stack.run("resync-order", order_id=ids[0], also=ids[1:]).created == 0  # nothing twice
