"""The same flow-level scenarios on every ERP (issue 13): the real Tryton, SmartBill and Oblio (their simulators),
through the adapter of ``erp_matrix`` — products ERP -> shop, the stock sync, the guarded reconciliation, orders
exactly once, orders under 20 % ERP faults, two shops on one ERP. A scenario an ERP's capabilities rule out is
not skipped: it asserts what the flow does instead and is recorded "n/a: <capability>" in the matrix
(``.pytest_cache/erp-matrix.md``, written by ``tests/flows/conftest.py``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from erpsync.connectors.http import RetryPolicy
from erpsync.core.summary import RunState, RunSummary
from erpsync.testing.faults import Faults
from tests.flows.erp_matrix import (
    ERPS,
    ErpUnderTest,
    buyer,
    completed,
    faults_on_create,
    not_applicable,
    shop_order_id,
    stack_factory,
)

pytestmark = pytest.mark.prefect

MakeErp = Callable[..., ErpUnderTest]


@pytest.fixture(params=ERPS)
def make_erp(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_harness: None
) -> Iterator[MakeErp]:
    yield from stack_factory(request.param, request, tmp_path, monkeypatch)


# --------------------------------------------------------------------------------------------- products


def test_products_erp_to_shop(make_erp: MakeErp, request: pytest.FixtureRequest) -> None:
    e = make_erp()
    if not e.capabilities.products_read:
        e.sim().stats.reset()
        skipped = e.run("products")
        assert skipped.state is RunState.SKIPPED, skipped.message
        assert "products_read" in skipped.message, skipped.message  # the reason names what is missing
        assert (skipped.erp_reads, skipped.erp_writes, skipped.shop_writes) == (0, 0, 0)
        assert e.sim().stats.writes == 0 and e.sim().products == {}
        not_applicable(request, "products_read")
        return
    sku = e.catalogue_product()
    first = completed(e.run("products"))
    assert first.created >= 1 and first.failed == 0, first.details
    shop = {p["sku"]: p for p in e.sim().products.values()}
    product = shop[sku]
    assert (product["name"], product["price_gross"], product["tax_id"]) == (
        e.seeder.product_name(sku),
        e.seeder.shop_product["price_gross"],
        e.seeder.shop_product["tax_id"],
    )
    assert e.state.find_link("main", "product", sku=sku) is not None
    e.sim().stats.reset()
    quiet = completed(e.run("products"))
    assert (quiet.created, quiet.updated, quiet.shop_writes, quiet.erp_writes) == (0, 0, 0, 0), quiet.details
    assert e.sim().stats.writes == 0


# --------------------------------------------------------------------------------------------- stock


def test_stock_sync(make_erp: MakeErp, request: pytest.FixtureRequest) -> None:
    e = make_erp()
    capabilities = e.capabilities
    assert capabilities.stock_read  # every ERP here reads stock (else: the flow fails with NotSupported)
    skus = [e.stocked(10 + i, shop_stock=0) for i in range(3)]
    first = completed(e.run("stock"))
    assert (first.updated, first.failed) == (3, 0), first.message
    assert [e.shop_stock(s) for s in skus] == [10, 11, 12]

    e.set_stock(skus[1], 40)  # a receipt, a count: the ERP's quantity moves for one SKU
    e.sim().stats.reset()
    second = completed(e.run("stock"))
    assert second.details["mode"] == ("incremental" if capabilities.stock_changed_since else "full")
    assert (second.updated, second.failed, second.erp_writes) == (1, 0, 0), second.message
    assert e.sim().stats.writes == 1 and e.sim().stats.count("PATCH /products/{id}") == 1  # only the changed SKU
    assert [e.shop_stock(s) for s in skus] == [10, 40, 12]

    e.sim().stats.reset()
    quiet = completed(e.run("stock"))
    assert quiet.updated == 0 and e.sim().stats.writes == 0


# --------------------------------------------------------------------------------------------- reconcile


def test_reconcile(make_erp: MakeErp) -> None:
    e = make_erp()
    skus = [e.stocked(10 + i, shop_stock=10 + i) for i in range(10)]
    # The ERP holds many more goods than these 10 (Tryton: the seeded catalogue and other tests' products); the
    # guard's zero share counts only what the shop sells, so 8 of the shop's 10 at zero is 80 %, not a few %.
    others = [e.catalogue_product() for _ in range(3)]  # ERP goods the shop does not sell
    e.sim().set_stock_out_of_band(skus[0], 999)  # drift: what someone typed in the shop's admin
    e.sim().stats.reset()
    good = completed(e.run("reconcile"))
    assert (good.updated, good.failed) == (1, 0) and good.details["accepted_by"] == "guard", good.message
    assert e.shop_stock(skus[0]) == 10 and e.sim().stats.writes == 1

    for sku in others:
        e.set_stock(sku, 0)  # goods the shop does not sell may all go to zero: that empties nothing
    e.sim().set_stock_out_of_band(skus[1], 555)
    e.sim().stats.reset()
    other_goods = completed(e.run("reconcile"))
    assert (other_goods.updated, other_goods.failed) == (1, 0) and e.shop_stock(skus[1]) == 11, other_goods.message

    e.sim().set_stock_out_of_band(skus[1], 777)  # a drift a passing run would correct
    for sku in skus[2:]:
        e.set_stock(sku, 0)  # the ERP suddenly answers zero for most of the shop's SKUs
    e.sim().stats.reset()
    bad = e.run("reconcile")
    assert bad.state is RunState.FAILED and "refused by the guard" in bad.message, bad.message
    assert "zero_share" in bad.message, bad.message
    assert e.sim().stats.writes == 0  # nothing applied: not even the real drift
    assert [e.shop_stock(s) for s in skus] == [10, 777, *range(12, 20)]


# --------------------------------------------------------------------------------------------- orders


def test_orders_exactly_once(make_erp: MakeErp) -> None:
    e = make_erp()
    a, b = e.stocked(20), e.stocked(20)
    person, company = buyer("person"), buyer("company")
    ids = [e.order({a: 2}, person), e.order({b: 1}, company), e.order({a: 1, b: 1}, person)]

    first = completed(e.run("orders"))
    assert (first.created, first.failed) == (3, 0), first.message
    totals = [(e.documents(i), e.shop_total(i)) for i in ids]
    assert all(e.one_document_at_the_shops_total(i) for i in ids), totals  # one document each, the shop's total
    assert e.stock_calls == [("main", {a, b})]
    (first_person,), (firm,), (second_person,) = [e.buyers(i) for i in ids]
    assert (first_person.name, firm.name, second_person.name) == ("Ana Popescu", "Firma Demo SRL", "Ana Popescu")
    assert firm.vat_code.removeprefix("RO") == "18547290" and not first_person.vat_code
    if e.capabilities.customers_create:  # one ERP customer per buyer: the returning buyer is found, not made again
        assert first_person.customer_id == second_person.customer_id != firm.customer_id
    else:  # the buyer travels in each document
        assert first_person.customer_id == firm.customer_id == ""
    for order_id in ids:
        entry = e.state.journal_get("main", order_id)
        assert entry is not None and entry.state == "created" and entry.erp_order_id

    again = completed(e.run("orders"))
    assert (again.created, again.failed, again.erp_writes) == (0, 0, 0)
    assert [len(e.documents(i)) for i in ids] == [1, 1, 1]


def test_faults_every_order_exactly_once(make_erp: MakeErp, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(RetryPolicy, "backoff", lambda self, attempt, rng: 0.01)  # fast retries, same logic
    e = make_erp(faults=Faults(error_500=0.10, timeout=0.02, reset_after_write=0.08, seed=13))
    proxy = e.proxy
    assert proxy is not None
    skus = [e.stocked(50), e.stocked(50)]
    ids = [e.order({skus[n % 2]: 1 + n % 2}, buyer("company" if n % 3 == 0 else "person")) for n in range(8)]
    proxy.enabled = True
    faults_on_create(e)  # one of each kind for sure (SmartBill, Oblio: on the invoice POST), then the draws

    def settled(order_id: str) -> bool:
        entry = e.state.journal_get("main", order_id)
        if entry is not None and entry.state == "created":
            return True
        failure = e.state.failure("main", "order", order_id)
        return failure is not None and not failure.resolved and failure.error.startswith("in doubt")

    runs: list[RunSummary] = []
    for _ in range(20):
        runs.append(e.run("orders"))
        if all(settled(i) for i in ids) and runs[-1].failed == 0:
            break
    proxy.enabled = False
    lines = [r.line() for r in runs]
    assert all(settled(i) for i in ids), lines
    assert all(r.state is not RunState.FAILED for r in runs), lines
    assert len(runs) >= 2 and any(r.failed for r in runs), lines  # the faults did bite
    assert all(proxy.counts[kind] for kind in ("error_500", "timeout", "reset_after_write")), proxy.counts
    assert all(len(e.documents(i)) <= 1 for i in ids)  # never two, even before a person looked

    held = [i for i in ids if e.state.journal_get("main", i).state != "created"]  # type: ignore[union-attr]
    if held:  # only an ERP that can neither look orders up nor safely re-send a create holds an order in doubt
        assert not (e.capabilities.orders_read or e.capabilities.orders_create_idempotent)
    for order_id in held:
        by_hand = completed(e.settle_by_hand(order_id))
        assert by_hand.created == 1, by_hand.message
    final = completed(e.run("orders"))
    assert (final.created, final.failed, final.erp_writes) == (0, 0, 0), final.message
    totals = [(e.documents(i), e.shop_total(i)) for i in ids]
    assert all(e.one_document_at_the_shops_total(i) for i in ids), (totals, lines)
    print(f"\n{e.name}: {len(runs)} runs, {len(held)} held for a person; ERP faults {dict(proxy.counts)}")


# --------------------------------------------------------------------------------------------- two shops


def test_two_shops_on_one_erp(make_erp: MakeErp) -> None:
    e = make_erp(stores=2)
    first, second = e.stores
    sku = e.stocked({e.warehouse(first): 12, e.warehouse(second): 5}, shop_stock=0)
    order_id, who = shop_order_id(), buyer("person")
    for store, quantity in ((first, 2), (second, 1)):
        e.order({sku: quantity}, who, store, id=order_id)  # the same shop order id in both shops

    for store in e.stores:
        placed = completed(e.run("orders", store))
        assert (placed.created, placed.failed) == (1, 0), placed.message
    for store in e.stores:
        assert e.one_document_at_the_shops_total(order_id, store), (store, e.documents(order_id, store))
    assert e.seeder.documents(order_id) == []  # none under the bare shop order id
    assert e.stock_calls == [(first, {sku}), (second, {sku})]

    for store in e.stores:
        completed(e.run("stock", store))
    assert (e.shop_stock(sku, first), e.shop_stock(sku, second)) == (12 - 2, 5 - 1)  # each its own warehouse

    for store in e.stores:
        for flow in ("orders", "stock"):
            again = completed(e.run(flow, store))
            assert (again.created, again.shop_writes, again.erp_writes) == (0, 0, 0), (store, flow, again.details)
    assert [len(e.documents(order_id, store)) for store in e.stores] == [1, 1]
