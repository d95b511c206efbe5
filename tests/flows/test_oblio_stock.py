"""Oblio stock and products through the real ``stock``, ``reconcile`` and ``products`` flows (``[erp] type =
"oblio"``, the simulator on loopback, at Oblio's real limit of 3 calls per second): the store's ``warehouses`` are
Oblio management names; a stock read is ``/nomenclature/management`` once plus one ``/nomenclature/products`` per
250 goods (``offset`` 0, 250, 500...). Oblio cannot list changes (``stock_changed_since``) nor reservations: the
sync reads every page and diffs it against what it pushed last; reserved = 0. Products go ERP -> shop: Oblio's
goods carry the price and VAT rate the shop needs (``core/mapping.py`` ``_check_for_shop``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from erpsync.app.webhooks import Dispatcher, StockDispatcher, create_app, run_stock_trigger
from erpsync.connectors.asgi import SyncASGITransport
from erpsync.core.config import load_config
from erpsync.core.summary import RunState
from tests.flows.oblio_stack import STORE, WAREHOUSE, OblioStack, good, oblio_stack_factory

pytestmark = pytest.mark.prefect

CODES = [f"P{i:02d}" for i in range(10)]
CATALOGUE = 520  # goods in Oblio: pages of 250, 250 and 20


@pytest.fixture
def make_oblio_stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_harness: None
) -> Iterator[Callable[..., OblioStack]]:
    yield from oblio_stack_factory(tmp_path, monkeypatch)


def _stack(make: Callable[..., OblioStack], shop_stock: float = 0, **options: object) -> OblioStack:
    """Oblio: P00..P09 at 5 + i in ``Depozit`` (100 each in ``Magazin``, not the store's) and 510 more goods
    OB00001.. that the shop does not sell; the shop has P00..P09 at ``shop_stock``."""
    filler = {f"OB{i:05d}": i % 50 for i in range(1, CATALOGUE - len(CODES) + 1)}
    return make(
        stock={WAREHOUSE: {**{c: 5 + i for i, c in enumerate(CODES)}, **filler}, "Magazin": dict.fromkeys(CODES, 100)},
        shop_products=dict.fromkeys(CODES, shop_stock),
        **options,
    )


def test_the_shop_stock_follows_oblio_page_by_page(make_oblio_stack: Callable[..., OblioStack]) -> None:
    stack = _stack(make_oblio_stack)
    first = stack.run("stock")
    assert first.details["mode"] == "full" and first.details["reservations"] is False
    assert (first.updated, first.failed) == (10, 0), first.message
    assert [stack.shop_stock(c) for c in CODES] == [5 + i for i in range(10)]  # Depozit only, Magazin ignored
    assert stack.calls() == {"nomenclature/management": 1, "nomenclature/products": 3}
    assert stack.oblio.stats.last_params["nomenclature/products"]["offset"] == "500"
    assert first.details["erp_skus"] == CATALOGUE and len(first.details["not_in_shop"]) > 0
    assert stack.oblio.stats.locks == 0 and stack.oblio.stats.max_in_window(1.0) <= 3

    stack.set_quantity("P03", 0)
    stack.set_quantity("P07", 40)
    stack.set_quantity("P01", 99, management="Magazin")  # not the store's management: no write
    stack.sim.stats.reset()
    stack.reset_calls()
    second = stack.run("stock")
    assert (second.updated, second.unchanged, second.failed) == (2, 8, 0), second.message
    assert stack.sim.stats.writes == second.shop_writes and second.shop_writes >= 1
    assert (stack.shop_stock("P03"), stack.shop_stock("P07")) == (0, 40)
    assert stack.calls() == {"nomenclature/management": 1, "nomenclature/products": 3}  # every page, every run

    stack.sim.stats.reset()
    quiet = stack.run("stock")
    assert quiet.updated == 0 and stack.sim.stats.writes == 0  # nothing moved: nothing written

    stack.set_quantity("P05", 1)
    targeted = stack.run("stock", skus=["P05", "P06"])  # what the order flow's sub-flow and the webhook do
    assert targeted.details["mode"] == "skus" and targeted.updated == 1 and stack.shop_stock("P05") == 1


def test_a_management_of_another_case_is_a_failure_never_zero(make_oblio_stack: Callable[..., OblioStack]) -> None:
    stack = _stack(make_oblio_stack, shop_stock=3, store={"warehouses": ["depozit"]})
    summary = stack.run("stock", ok=False)
    assert summary.state is RunState.FAILED and summary.updated == 0  # the run fails whole: a FatalError
    assert "not an Oblio management: 'depozit'" in summary.message and "did you mean 'Depozit'" in summary.message
    assert [stack.shop_stock(c) for c in CODES] == [3] * 10  # never pushed as 0
    assert "nomenclature/products" not in stack.calls()  # refused before any page was read


def test_the_reconciliation_applies_a_good_snapshot_and_refuses_a_bad_one(
    make_oblio_stack: Callable[..., OblioStack],
) -> None:
    stack = _stack(make_oblio_stack)
    for i, code in enumerate(CODES):
        stack.sim.set_stock_out_of_band(code, 5 + i)
    stack.sim.set_stock_out_of_band("P02", 999)  # drift in the shop
    stack.sim.set_stock_out_of_band("P08", 0)
    stack.sim.stats.reset()
    good_run = stack.run("reconcile")
    assert (good_run.updated, good_run.unchanged, good_run.failed) == (2, 8, 0), good_run.message
    assert good_run.details["accepted_by"] == "guard" and stack.sim.stats.writes == good_run.shop_writes
    assert (stack.shop_stock("P02"), stack.shop_stock("P08")) == (7, 13)
    assert stack.calls()["nomenclature/products"] == 3

    for code in CODES[:8]:  # Oblio suddenly answers zero for most codes
        stack.set_quantity(code, 0)
    stack.sim.stats.reset()
    bad = stack.run("reconcile", ok=False)
    assert bad.state is RunState.FAILED and "refused by the guard" in bad.message and "zero_share" in bad.message
    assert stack.sim.stats.writes == 0
    assert [stack.shop_stock(c) for c in CODES] == [5 + i for i in range(10)]  # nothing applied

    accepted = stack.run("reconcile", accept_snapshot=True)  # a person looked: Oblio was right
    assert accepted.updated == 8 and accepted.details["accepted_by"] == "operator"
    assert [stack.shop_stock(c) for c in CODES[:8]] == [0] * 8
    assert stack.oblio.stats.locks == 0 and stack.oblio.stats.max_in_window(1.0) <= 3


def test_oblio_goods_reach_the_shop_with_their_price_and_vat(make_oblio_stack: Callable[..., OblioStack]) -> None:
    stack = make_oblio_stack(
        stock={WAREHOUSE: {}},
        shop_products={},
        items=[
            good("OB-CANA", {WAREHOUSE: 4}, price="60.50", name="Cana ceramica"),
            good("OB-CARTE", {WAREHOUSE: 2}, price="55.50", vat=11, name="Carte de bucate"),
        ],
    )
    first = stack.run("products")
    assert (first.created, first.failed) == (2, 0), first.message
    shop = {p["sku"]: p for p in stack.sim.products.values()}
    assert set(shop) == {"OB-CANA", "OB-CARTE"}
    assert shop["OB-CANA"]["name"] == "Cana ceramica"
    assert Decimal(str(shop["OB-CANA"]["price_gross"])) == Decimal("60.50")
    assert Decimal(str(shop["OB-CARTE"]["price_gross"])) == Decimal("55.50")
    assert shop["OB-CANA"]["tax_id"] != shop["OB-CARTE"]["tax_id"]  # 21 % and 11 %: two shop taxes
    assert stack.calls() == {"nomenclature/products": 1}

    stack.oblio.products["OB-CANA"].price = Decimal("72.60")  # the price changes in Oblio
    again = stack.run("products", full=True)
    assert (again.created, again.updated, again.failed) == (0, 1, 0), again.message
    shop = {p["sku"]: p for p in stack.sim.products.values()}
    assert Decimal(str(shop["OB-CANA"]["price_gross"])) == Decimal("72.60")
    assert stack.oblio.stats.locks == 0


def test_the_receipts_flow_is_not_applicable_and_says_so(make_oblio_stack: Callable[..., OblioStack]) -> None:
    stack = make_oblio_stack()
    summary = stack.run("receipts", ok=False)  # Oblio has no goods-receipt (NIR) endpoint
    assert summary.state is RunState.SKIPPED, summary.message
    assert stack.oblio.stats.calls == 0


HOOK = "oblio-hook-0001"


def test_an_oblio_stock_notice_is_verified_then_the_stock_re_read(make_oblio_stack: Callable[..., OblioStack]) -> None:
    stack = _stack(make_oblio_stack, erp={"webhook_secret": f"literal:{HOOK}"})
    assert stack.run("stock").updated == 10
    stock = StockDispatcher(run_stock_trigger, [STORE])
    app = create_app(load_config(), Dispatcher(lambda store, order_id: None), stock=stock)
    endpoint = f"http://erpsync.test/webhooks/erp/oblio?key={HOOK}"
    try:
        with httpx.Client(transport=SyncASGITransport(app), base_url="http://erpsync.test") as receiver:
            stack.oblio.webhooks[1] = {"topic": "stock", "endpoint": endpoint.replace(HOOK, "wrong")}
            stack.oblio.set_stock("P03", WAREHOUSE, 1)
            assert stack.oblio.deliver_notices(receiver) == 0  # refused (401): it stays queued, nothing synced
            assert stack.oblio.deliveries[-1][1] == 401 and len(stack.oblio.notices) == 1
            stack.oblio.notices.clear()

            stack.oblio.webhooks[1] = {"topic": "stock", "endpoint": endpoint}  # as the integrator registers it
            stack.oblio.set_stock("P03", WAREHOUSE, 1)
            stack.oblio.set_stock("P04", WAREHOUSE, 2)
            stack.oblio.products["P04"].stock[WAREHOUSE] = Decimal(6)  # moved again, no notice yet: Oblio is truth
            stack.sim.stats.reset()
            stack.reset_calls()
            assert stack.oblio.deliver_notices(receiver) == 2
            assert stock.join(120)
    finally:
        stock.stop()
    assert all(right for _, status, right in stack.oblio.deliveries[-2:])  # 200 with the base64 echo
    assert (stack.shop_stock("P03"), stack.shop_stock("P04")) == (1, 6)  # re-read from Oblio, not the notice
    assert stack.sim.stats.writes == 2  # the two SKUs named, nothing else
    assert stack.calls()["nomenclature/products"] >= 1 and stack.oblio.stats.locks == 0
