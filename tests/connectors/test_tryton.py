"""The Tryton connector: JSON-RPC errors and sessions (fake transport), and every stream against the real server.

Tests on the shared server create their own products, customers and sales (unique codes); seeded records are
only read, so the seeded quantities stay exact for everyone.
"""

from __future__ import annotations

import json
import math
import pickle
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from erpsync.connectors.erp.tryton import TrytonConnector
from erpsync.connectors.erp.tryton.rpc import TrytonRpc, decode, encode, tryton_reply
from erpsync.connectors.errors import AuthError, BadRequestError, FatalError, RecordError, RetriableError
from erpsync.connectors.http import RetryPolicy
from erpsync.core.models import Address, Customer, Order, OrderLine, Product, ProductStatus, Variant
from erpsync.dev import tryton_seed as seed
from erpsync.dev.tryton import JsonRpcSession, TrytonServer
from tests.tryton_fixture import create_stocked_product, create_supplier_shipment, unique_code, unique_ro_vat

FAST = RetryPolicy(max_retries=3, backoff_base=0.001, backoff_max=0.002)


# --------------------------------------------------------------------------- a fake Tryton (no server)

Handler = Callable[[list[Any]], Any]


class FakeTryton:
    """Answers JSON-RPC like Tryton: ``routes`` maps a method to a handler, or to a queue of canned replies."""

    def __init__(self, routes: dict[str, Handler | list[Any]]) -> None:
        self.routes = routes
        self.calls: list[str] = []
        self.sessions = 0
        self.expired: set[str] = set()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        method = body["method"]
        self.calls.append(method)
        if method == "common.db.login":
            if body["params"][1]["password"] != "secret-pw":
                return httpx.Response(401)
            self.sessions += 1
            return _reply({"id": 1, "result": [7, f"session-{self.sessions}", None]})
        if request.headers.get("authorization", "") in self.expired:
            return httpx.Response(401)
        if method == "model.res.user.get_preferences":
            return _reply({"id": 1, "result": {"company": 1, "company.rec_name": "Fake SRL"}})
        route = self.routes[method]
        if isinstance(route, list):
            answer = route.pop(0)
            if isinstance(answer, httpx.Response):
                return answer
            return _reply(answer)
        return _reply({"id": 1, "result": encode(route(body["params"]))})


def _reply(payload: dict[str, Any]) -> httpx.Response:
    return httpx.Response(200, json=payload)


def _fake_connector(fake: FakeTryton, **options: Any) -> TrytonConnector:
    return TrytonConnector(
        "http://tryton.test", "db", "admin", "secret-pw", transport=httpx.MockTransport(fake), retry=FAST, **options
    )


def test_codec_round_trips_tryton_types() -> None:
    values = [Decimal("12.3000"), datetime(2027, 1, 31, 8, 5, 1, 7), {"d": [Decimal("0.19")]}, b"\x00\xff"]
    assert decode(json.dumps(encode(values))) == values
    aware = datetime(2027, 1, 31, 10, 0, tzinfo=UTC) + timedelta(hours=0)
    assert encode(aware)["hour"] == 10 and decode("1.5") == Decimal("1.5")


def test_user_errors_become_record_or_fatal_errors() -> None:
    refusal = {"id": 1, "error": ["UserError", ["The code is not valid.", "Check it.", None]]}
    fake = FakeTryton({"model.party.party.create": [refusal], "model.party.party.search_read": [refusal]})
    connector = _fake_connector(fake)
    with pytest.raises(RecordError) as record:
        connector.create_customer(Customer(email="a@example.com", name="A"))
    assert record.value.key == "a@example.com" and "The code is not valid" in str(record.value)
    with pytest.raises(BadRequestError):
        connector.rpc.model("party.party", "search_read", [], 0, 1, None, ["name"])
    assert fake.calls.count("model.party.party.create") == 1  # a write is never repeated


def test_a_refusal_keeps_trytons_reply() -> None:
    warning = ["UserWarning", ["stock.shipment.in,1.no_origin", "The moves have no origin.", ""]]
    fake = FakeTryton({"model.stock.shipment.in.receive": [{"id": 1, "error": warning}]})
    with pytest.raises(BadRequestError) as refused:
        _fake_connector(fake).rpc.model("stock.shipment.in", "receive", [1])
    assert refused.value.error_name == "UserWarning" and tryton_reply(refused.value) == warning
    assert tryton_reply(pickle.loads(pickle.dumps(refused.value))) == warning
    assert tryton_reply(RetriableError("tryton", "timed out")) is None


def test_access_errors_and_refused_logins_are_auth_errors() -> None:
    access = {"id": 1, "error": ["UserError", ['You are not allowed to read records "1" of "Party".', "", None]]}
    fake = FakeTryton({"model.party.party.search_read": [access]})
    with pytest.raises(AuthError):
        _fake_connector(fake).rpc.model("party.party", "search_read", [], 0, 1, None, ["name"])
    bad = TrytonConnector("http://tryton.test", "db", "admin", "wrong", transport=httpx.MockTransport(fake), retry=FAST)
    with pytest.raises(AuthError) as refused:
        bad.check()
    assert refused.value.status == 401 and "wrong" not in str(refused.value)
    locked = FakeTryton({})
    transport = httpx.MockTransport(
        lambda request: httpx.Response(429) if b"login" in request.content else locked(request)
    )
    with pytest.raises(AuthError, match="too many failed logins"):
        TrytonConnector("http://tryton.test", "db", "admin", "secret-pw", transport=transport, retry=FAST).check()


def test_expired_session_logs_in_again_once() -> None:
    fake = FakeTryton({"model.sale.sale.search_read": lambda params: [{"id": 5, "state": "draft"}]})
    connector = _fake_connector(fake)
    assert connector.find_order("X") == "5"
    fake.expired.add(next(iter(connector.rpc._headers.values())) if connector.rpc._headers else "")
    assert connector.find_order("X") == "5"
    assert connector.rpc.logins == 2 and fake.calls.count("common.db.login") == 2


def test_server_timeouts_are_retried_on_reads_only() -> None:
    timeout = {"id": 1, "error": []}
    rows = {"id": 1, "result": [{"id": 3, "state": "draft"}]}
    fake = FakeTryton(
        {
            "model.sale.sale.search_read": [timeout, httpx.Response(200, content=b'{"id": 1, "res'), rows],
            "model.sale.sale.quote": [httpx.Response(503)],
        }
    )
    connector = _fake_connector(fake)
    assert connector.find_order("R") == "3"
    assert connector.counters.retries == 2
    with pytest.raises(RetriableError):
        connector.rpc.model("sale.sale", "quote", [3], kind="write", record_key="R")
    assert fake.calls.count("model.sale.sale.quote") == 1


def test_unknown_server_exception_is_fatal() -> None:
    fake = FakeTryton({"model.sale.sale.search_read": [{"id": 1, "error": ["'tracking_number'", ""]}]})
    with pytest.raises(FatalError, match="tracking_number"):
        _fake_connector(fake).find_order("R")


def _stock_routes(rows: list[dict[str, Any]]) -> dict[str, Handler | list[Any]]:
    def locations(params: list[Any]) -> Any:
        if params[0][0][0] == "code":
            return [{"id": 5, "code": "WH", "storage_location": 3, "input_location": 2}]
        return [{"id": 3, "parent": 5}]

    def products(params: list[Any]) -> Any:
        return rows if ["id", ">", 0] in params[0] else []

    return {
        "model.stock.location.search_read": locations,
        "model.product.product.search_read": products,
        "model.stock.move.search_read": lambda params: [],
    }


def test_bad_stock_rows_are_row_errors_and_the_rest_is_read() -> None:
    rows: list[dict[str, Any]] = [
        {"id": 1, "code": None, "quantity": 1.0},
        {"id": 2, "code": "A", "quantity": "lots"},
        {"id": 3, "code": "B", "quantity": 2.5},
    ]
    pages = list(_fake_connector(FakeTryton(_stock_routes(rows))).iter_stock(["WH"]))
    assert [(level.sku, level.on_hand) for page in pages for level in page.items] == [("B", Decimal("2.5"))]
    assert sorted(error.key for page in pages for error in page.errors) == ["A", "product:1"]


def test_unknown_warehouse_is_fatal_and_named() -> None:
    routes = _stock_routes([])
    routes["model.stock.location.search_read"] = lambda params: []
    with pytest.raises(FatalError, match="'NOPE'"):
        list(_fake_connector(FakeTryton(routes)).iter_stock(["NOPE"]))


# --------------------------------------------------------------------------- the real server

pytestmark_tryton = pytest.mark.tryton


@pytest.fixture
def tryton(tryton_server: TrytonServer) -> Iterator[TrytonConnector]:
    connector = TrytonConnector(
        tryton_server.url, tryton_server.database, tryton_server.username, tryton_server.password, page_size=10
    )
    try:
        yield connector
    finally:
        connector.close()


@pytest.mark.tryton
def test_check_names_version_database_and_company(tryton: TrytonConnector) -> None:
    assert tryton.check() == f"Tryton 8.2 at {tryton.url}, database erpsync, company {seed.COMPANY_NAME}"


@pytest.mark.tryton
def test_products_variants_grouped_prices_vat_and_status(tryton: TrytonConnector) -> None:
    products = {p.sku: p for page in tryton.iter_products() for p in page.items}
    tshirt = products["TRY-TSHIRT"]
    assert [v.sku for v in tshirt.variants] == ["TRY-TSHIRT-S", "TRY-TSHIRT-M", "TRY-TSHIRT-L"]
    assert [v.options for v in tshirt.variants] == [{"variant": "S"}, {"variant": "M"}, {"variant": "L"}]
    large = tshirt.variants[2]
    assert (large.price_net, large.price_gross) == (Decimal("69.90"), Decimal("83.18"))
    assert "TRY-TSHIRT-S" not in products  # variants are not products of their own
    basic = products["TRY-0001"]
    spec = seed.SEED_PRODUCTS_BY_SKU["TRY-0001"]
    assert (basic.name, basic.ean, basic.vat_rate, basic.price_net) == (spec.name, spec.ean, 19, spec.list_price)
    assert basic.price_gross == (spec.list_price * Decimal("1.19")).quantize(Decimal("0.01"))
    assert not basic.variants and basic.status == ProductStatus.ACTIVE and basic.modified_at is not None
    assert products["TRY-0026"].vat_rate == 9
    assert products[seed.INACTIVE_SKU].status == ProductStatus.INACTIVE
    assert seed.SHIPPING_SKU not in products  # a service has no place in the shop's catalogue


@pytest.mark.tryton
def test_product_pages_cost_three_calls_each(tryton: TrytonConnector) -> None:
    pages = list(tryton.iter_products())
    templates = sum(len(page.items) + len(page.errors) for page in pages)
    assert len(pages) == math.ceil(templates / 10) or len(pages) == templates // 10 + 1
    # login + preferences, the account categories and their taxes, whether trytond-purchase is there (once), then
    # templates + variants + suppliers per page
    assert tryton.counters.reads <= 5 + 3 * len(pages) + 1
    assert tryton.counters.writes == 0


@pytest.mark.tryton
def test_products_carry_their_main_supplier(tryton: TrytonConnector) -> None:
    products = {p.sku: p for page in tryton.iter_products() for p in page.items}
    for sku in seed.SUPPLIED_SKUS:
        supplier = products[sku].supplier
        assert supplier is not None and supplier.name == seed.SUPPLIER.name and supplier.erp_id.isdigit()
    assert products["TRY-0026"].supplier is None and "TRY-0026" not in seed.SUPPLIED_SKUS
    assert products["TRY-TSHIRT"].supplier is None


@pytest.mark.tryton
def test_without_trytond_purchase_products_carry_no_supplier_and_cost_two_calls_a_page(
    tryton: TrytonConnector,
) -> None:
    from erpsync.connectors.erp.tryton.products import SUPPLIER_MODULE

    assert tryton.tryton.has_module(SUPPLIER_MODULE) and not tryton.tryton.has_module("sale_opportunity")
    tryton.tryton._modules[SUPPLIER_MODULE] = False  # as a database where the module was never activated
    before = tryton.counters.reads
    pages = list(tryton.iter_products(changed_since=datetime(2000, 1, 1, tzinfo=UTC)))
    assert pages and all(p.supplier is None for page in pages for p in page.items)
    assert tryton.counters.reads - before <= 2 + 2 * len(pages) + 1  # categories and taxes, then 2 a page


@pytest.mark.tryton
def test_the_first_supplier_by_sequence_is_the_main_one_and_a_change_is_seen(
    tryton: TrytonConnector, tryton_session: JsonRpcSession
) -> None:
    sku = unique_code("SUP")
    created = tryton.create_product(Product(sku=sku, name="Cu furnizori", vat_rate=Decimal(19), price_net=Decimal(5)))
    assert created.erp_id is not None
    template = int(created.erp_id)
    ctx = tryton_session.context
    names = [f"Furnizor A {sku}", f"Furnizor B {sku}"]
    parties = tryton_session.call("model.party.party.create", [{"name": n} for n in names], ctx)
    time.sleep(1.2)  # the product's own stamps fall before `before`: only its supplier list changes after
    before = datetime.now(UTC) - timedelta(seconds=0.5)
    assert sku not in {p.sku for page in tryton.iter_products(changed_since=before) for p in page.items}
    rows = [{"template": template, "party": parties[0], "sequence": 20}]
    rows.append({"template": template, "party": parties[1], "sequence": 10})
    tryton_session.call("model.purchase.product_supplier.create", rows, ctx)
    changed = {p.sku: p for page in tryton.iter_products(changed_since=before) for p in page.items}
    assert changed[sku].supplier is not None
    assert (changed[sku].supplier.erp_id, changed[sku].supplier.name) == (str(parties[1]), f"Furnizor B {sku}")
    suppliers = {s.erp_id: s for page in tryton.iter_suppliers() for s in page.items}
    assert suppliers[str(parties[0])].skus == [sku] and suppliers[str(parties[1])].skus == [sku]


@pytest.mark.tryton
def test_suppliers_name_the_skus_they_supply(tryton: TrytonConnector) -> None:
    suppliers = [s for page in tryton.iter_suppliers() for s in page.items if s.name == seed.SUPPLIER.name]
    assert [sorted(s.skus) for s in suppliers] == [sorted(seed.SUPPLIED_SKUS)]


@pytest.mark.tryton
def test_create_update_and_changed_since(tryton: TrytonConnector, tryton_session: JsonRpcSession) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    sku = unique_code("E2E-TPL")
    wanted = Product(
        sku=sku,
        name="Geacă test",
        description="Geacă de test.",
        vat_rate=Decimal(19),
        price_gross=Decimal("119.00"),
        variants=[Variant(sku=f"{sku}-S", ean="5940000099992"), Variant(sku=f"{sku}-M", price_net=Decimal("110"))],
    )
    created = tryton.create_product(wanted)
    assert created.erp_id and all(v.erp_id for v in created.variants)
    assert tryton.create_product(wanted).erp_id == created.erp_id  # the code exists: not created twice
    assert (
        len(
            tryton_session.call(
                "model.product.template.search", [("code", "=", sku)], 0, None, None, tryton_session.context
            )
        )
        == 1
    )

    changed = {p.sku: p for page in tryton.iter_products(changed_since=before) for p in page.items}
    assert "TRY-0001" not in changed
    read = changed[sku]
    assert [(v.sku, v.price_net, v.ean) for v in read.variants] == [
        (f"{sku}-S", Decimal("100.0000"), "5940000099992"),
        (f"{sku}-M", Decimal("110"), None),
    ]
    assert read.vat_rate == 19 and read.description == "Geacă de test."

    created.name, created.price_net, created.price_gross = "Geacă nouă", Decimal("90.00"), None
    created.vat_rate = Decimal(9)
    created.variants[0].ean = None
    tryton.update_product(created, {"name", "price", "vat", "ean"})
    again = {p.sku: p for page in tryton.iter_products(changed_since=before) for p in page.items}[sku]
    assert (again.name, again.vat_rate, again.variants[0].ean) == ("Geacă nouă", 9, None)
    assert again.variants[0].price_net == Decimal("90.00")


@pytest.mark.tryton
def test_create_product_with_unknown_vat_is_a_record_error(tryton: TrytonConnector) -> None:
    sku = unique_code("E2E-VAT")
    with pytest.raises(RecordError, match="24") as refused:
        tryton.create_product(Product(sku=sku, name="x", vat_rate=Decimal(24), price_net=Decimal(1)))
    assert refused.value.key == sku


def _stock(connector: TrytonConnector, sku: str, warehouse: str = "WH") -> tuple[Decimal, Decimal]:
    levels = [lvl for page in connector.iter_stock([warehouse], skus=[sku]) for lvl in page.items]
    assert len(levels) == 1
    return levels[0].on_hand, levels[0].reserved


def _order(sku: str, quantity: int, customer: Customer, **extra: Any) -> Order:
    address = Address(name=customer.name, street="Str. Testului 7", city="Brașov", postal_code="500001")
    return Order(
        shop_id=unique_code("SHOP"),
        public_code="#" + uuid.uuid4().hex[:6],
        customer=customer,
        billing=address,
        shipping=address,
        lines=[
            OrderLine(
                sku=sku,
                name="Produs",
                quantity=Decimal(quantity),
                unit_price_gross=Decimal("23.80"),
                vat_rate=Decimal(19),
            )
        ],
        **extra,
    )


@pytest.mark.tryton
def test_reservations_receipts_and_stock_changed_since(
    tryton: TrytonConnector,
    tryton_server: TrytonServer,
    tryton_session: JsonRpcSession,
) -> None:
    session, manifest = tryton_session, tryton_server.manifest
    sku = unique_code("E2E-STK")
    product = create_stocked_product(session, manifest, sku, {"WH": 20, "WH2": 5})
    assert _stock(tryton, sku) == (20, 0) and _stock(tryton, sku, "WH2") == (5, 0)

    since = datetime.now(UTC) - timedelta(seconds=1)
    customer = Customer(email=f"{sku.lower()}@example.com", name="Stoc Test")
    tryton.create_order(_order(sku, 3, customer), customer)
    assert _stock(tryton, sku) == (20, 3)  # a confirmed sale lowers what is available, not what is on hand
    assert _stock(tryton, sku, "WH2") == (5, 0)

    shipment = create_supplier_shipment(session, manifest, product, 12)
    assert _stock(tryton, sku) == (20, 3)  # a planned receipt does not hide the reservation
    session.call_accepting_warnings("model.stock.shipment.in.receive", [shipment], session.context)
    session.call_accepting_warnings("model.stock.shipment.in.do", [shipment], session.context)
    assert _stock(tryton, sku) == (32, 3)  # the received goods raise on hand

    moved = {lvl.sku for page in tryton.iter_stock(["WH"], changed_since=since) for lvl in page.items}
    assert sku in moved and "TRY-0001" not in moved
    receipts = [r for page in tryton.iter_goods_receipts(since, ["WH"]) for r in page.items]
    mine = [r for r in receipts if r.erp_id == str(shipment)]
    assert len(mine) == 1 and mine[0].warehouse == "WH" and mine[0].supplier == seed.SUPPLIER.name
    assert [(line.sku, line.quantity) for line in mine[0].lines] == [(sku, 12)]
    elsewhere = [r.erp_id for page in tryton.iter_goods_receipts(since, ["WH2"]) for r in page.items]
    assert str(shipment) not in elsewhere
    suppliers = [s for page in tryton.iter_suppliers() for s in page.items]
    assert [(s.name, s.vat_code) for s in suppliers if s.erp_id == str(manifest["parties"]["supplier"])] == [
        (seed.SUPPLIER.name, seed.SUPPLIER.vat)
    ]


@pytest.mark.tryton
def test_stock_pages_cost_three_calls_for_two_warehouses(tryton: TrytonConnector) -> None:
    pages = list(tryton.iter_stock(["WH", "WH2"]))
    products = {lvl.sku for page in pages for lvl in page.items}
    assert len(products) >= 38 and all(len(page.items) <= 20 for page in pages)
    # login + preferences, warehouses + their storage trees, then per page: products with the first
    # warehouse's quantity, the second warehouse's quantity, the open moves
    assert tryton.counters.reads <= 4 + 3 * len(pages)
    assert {lvl.on_hand for page in pages for lvl in page.items if lvl.sku == "TRY-0002"} == {
        Decimal(seed.SEED_PRODUCTS_BY_SKU["TRY-0002"].stock_wh),
        Decimal(0),
    }


@pytest.mark.tryton
def test_unknown_warehouse_code_is_fatal(tryton: TrytonConnector) -> None:
    with pytest.raises(FatalError, match="'NOWHERE'"):
        list(tryton.iter_stock(["WH", "NOWHERE"]))


@pytest.mark.tryton
def test_customers_find_or_create_company_with_vat(tryton: TrytonConnector, tryton_session: JsonRpcSession) -> None:
    vat = unique_ro_vat()
    email = f"{vat.lower()}@firma.example"
    company = Customer(
        email=email,
        name="Ana Achiziții",
        phone="+40744000111",
        is_company=True,
        company_name=f"Firma {vat} SRL",
        vat_code=vat,
        billing=Address(
            name="Ana", company=f"Firma {vat} SRL", street="Bd. Eroilor 1", city="Cluj-Napoca", postal_code="400129"
        ),
        shipping=Address(name="Depozit", street="Str. Fabricii 9", city="Cluj-Napoca", postal_code="400632"),
    )
    assert tryton.find_customer(company) is None
    created = tryton.create_customer(company)
    assert created.erp_id
    by_vat = tryton.find_customer(company.model_copy(update={"email": "other@example.com"}))
    assert by_vat is not None and by_vat.erp_id == created.erp_id and by_vat.vat_code == vat
    person = Customer(email=email.upper(), name="Ana")
    found = tryton.find_customer(person)
    assert found is not None and found.erp_id == created.erp_id

    party = tryton_session.call(
        "model.party.party.read",
        [int(created.erp_id)],
        [
            "name",
            "email",
            "phone",
            "identifiers.type",
            "identifiers.code",
            "addresses.invoice",
            "addresses.delivery",
            "addresses.street",
            "addresses.country.code",
        ],
        tryton_session.context,
    )[0]
    assert (party["name"], party["email"], party["phone"]) == (f"Firma {vat} SRL", email, "+40744000111")
    assert [(i["type"], i["code"]) for i in party["identifiers."]] == [("eu_vat", vat)]
    assert sorted((a["street"], bool(a["invoice"]), bool(a["delivery"])) for a in party["addresses."]) == [
        ("Bd. Eroilor 1", True, False),
        ("Str. Fabricii 9", False, True),
    ]

    seeded = seed.CUSTOMERS[0]
    assert seeded.vat
    digits_only = Customer(is_company=True, vat_code=seeded.vat[2:], name="x")
    match = tryton.find_customer(digits_only)
    assert match is not None and match.name == seeded.name


@pytest.mark.tryton
def test_order_created_confirmed_then_shipped_invoiced_and_read_back(
    tryton: TrytonConnector,
    tryton_server: TrytonServer,
    tryton_session: JsonRpcSession,
) -> None:
    session, manifest = tryton_session, tryton_server.manifest
    sku = unique_code("E2E-ORD")
    create_stocked_product(session, manifest, sku, {"WH": 10})
    customer = Customer(email=f"{sku.lower()}@example.com", name="Comanda Test", phone="+40700000001")
    since = datetime.now(UTC) - timedelta(seconds=1)
    order = _order(sku, 2, customer, shipping_amount=Decimal("11.90"), shipping_method="Curier")
    sale_id = tryton.create_order(order, customer)
    assert tryton.create_order(order, customer) == sale_id

    sale = session.call(
        "model.sale.sale.read",
        [int(sale_id)],
        ["reference", "description", "state", "total_amount", "lines", "shipments", "invoices", "party.email"],
        session.context,
    )[0]
    assert (sale["reference"], sale["description"]) == (order.shop_id, f"erpsync:{order.public_code}")
    assert sale["state"] == "processing" and sale["party."]["email"] == customer.email
    assert sale["total_amount"] == Decimal("59.50")  # 2 x 23.80 + 11.90, all gross
    lines = session.call(
        "model.sale.line.read", sale["lines"], ["product.code", "unit_price", "quantity"], session.context
    )
    assert sorted((ln["product."]["code"], ln["unit_price"]) for ln in lines) == [
        (sku, Decimal("20.0000")),
        (seed.SHIPPING_SKU, Decimal("10.0000")),
    ]

    status = tryton.order_statuses([sale_id])[0]
    assert (status.state, status.shipped, status.invoiced, status.cancelled) == ("processing", False, False, False)
    ctx = session.context
    shipments = sale["shipments"]
    session.call("model.stock.shipment.out.write", shipments, {"reference": "AWB-123"}, ctx)
    for button in ("assign_try", "pick", "pack", "ship", "do"):
        session.call(f"model.stock.shipment.out.{button}", shipments, ctx)
    session.call("model.account.invoice.post", sale["invoices"], ctx)
    status = tryton.order_statuses([sale_id])[0]
    assert status.shipped and status.invoiced and status.awb == "AWB-123" and status.invoice_number
    assert status.reference == order.shop_id

    read = {o.erp_id: o for page in tryton.iter_orders(changed_since=since) for o in page.items}[sale_id]
    assert (read.channel, read.shop_id, read.public_code) == ("erpsync", order.shop_id, order.public_code)
    assert [(ln.sku, ln.quantity, ln.unit_price_gross) for ln in read.lines] == [(sku, 2, Decimal("23.80"))]
    assert read.shipping_amount == Decimal("11.90") and read.invoice_number == status.invoice_number
    assert read.customer.email == customer.email and read.shipping_status == "shipped"


@pytest.mark.tryton
def test_orders_of_other_channels_and_cancellation(
    tryton: TrytonConnector,
    tryton_server: TrytonServer,
    tryton_session: JsonRpcSession,
) -> None:
    session, manifest = tryton_session, tryton_server.manifest
    ctx = session.context
    since = datetime.now(UTC) - timedelta(seconds=1)
    party = manifest["parties"]["client_person"]
    address = session.call("model.party.address.search", [("party", "=", party)], 0, 1, None, ctx)[0]
    phone_sale = session.call(
        "model.sale.sale.create",
        [
            {
                "party": party,
                "invoice_address": address,
                "shipment_address": address,
                "description": "channel:phone",
                "warehouse": manifest["warehouses"]["WH"]["warehouse"],
                "reference": unique_code("PHONE"),
            }
        ],
        ctx,
    )[0]
    orders = {o.erp_id: o for page in tryton.iter_orders(changed_since=since) for o in page.items}
    assert orders[str(phone_sale)].channel == "phone" and orders[str(phone_sale)].shop_id is None

    assert tryton.cancel_order(str(phone_sale), reference="PHONE").kind == "cancelled"  # a draft sale
    assert tryton.order_statuses([str(phone_sale)])[0].cancelled
    assert tryton.cancel_order(str(phone_sale), reference="PHONE").kind == "cancelled"  # twice is harmless
    with pytest.raises(RecordError, match="does not exist") as refused:
        tryton.cancel_order("999999", reference="NONE")
    assert refused.value.key == "999999"


@pytest.mark.tryton
def test_unknown_sku_names_every_missing_one(tryton: TrytonConnector) -> None:
    customer = Customer(email="nobody@example.com", name="x")
    order = _order("TRY-0001", 1, customer)
    order.lines.append(OrderLine(sku="NOPE-1", quantity=Decimal(1), unit_price_net=Decimal(1)))
    with pytest.raises(RecordError, match="NOPE-1") as refused:
        tryton.create_order(order, customer)
    assert refused.value.key == order.shop_id
    assert tryton.counters.writes == 0  # refused before anything was written


def test_rpc_session_registers_password_for_redaction() -> None:
    from erpsync.core.redact import redact

    TrytonRpc("http://tryton.test", "db", "admin", "very-secret-password-42").close()
    assert "very-secret-password-42" not in redact("login with very-secret-password-42")


@pytest.mark.tryton
def test_factory_builds_the_connector_from_settings(tryton_server: TrytonServer) -> None:
    from erpsync.connectors.erp import make_erp
    from erpsync.core.config import TrytonSettings

    settings = TrytonSettings.model_validate(
        {
            "type": "tryton",
            "url": tryton_server.url,
            "database": tryton_server.database,
            "username": tryton_server.username,
            "password": f"literal:{tryton_server.password}",
            "page_size": 7,
        }
    )
    connector = make_erp(settings)
    try:
        assert isinstance(connector, TrytonConnector) and connector.page_size == 7
        assert connector.shipping_sku == "SHIPPING" and connector.check().startswith("Tryton 8.2")
    finally:
        connector.close()


@pytest.mark.tryton
def test_order_batch_looks_up_once_and_books_the_same_sales(
    tryton: TrytonConnector, tryton_server: TrytonServer, tryton_session: JsonRpcSession
) -> None:
    """Inside ``order_batch`` the look-ups of a batch are a few searches on entry: an order already booked is
    returned, a buyer Tryton knows (by e-mail, or by VAT code under another e-mail) is found, a new one created
    once even for two orders; new sales wait as drafts for ``confirm_batch`` (one quote, one confirm); the sales
    are what the unbatched path books."""
    session, manifest = tryton_session, tryton_server.manifest
    sku = unique_code("BATCH")
    create_stocked_product(session, manifest, sku, {"WH": 50})
    known = tryton.create_customer(Customer(email=f"{sku.lower()}@known.example.ro", name="Cunoscut"))
    vat = unique_ro_vat()
    firm = tryton.create_customer(
        Customer(
            email=f"{sku.lower()}@firm.example.ro", name="Firma", is_company=True, company_name="Firma", vat_code=vat
        )
    )
    booked = _order(sku, 1, Customer(email=f"{sku.lower()}@earlier.example.ro", name="Dinainte"))
    booked_id = tryton.create_order(booked, booked.customer)
    new = Customer(email=f"{sku.lower()}@new.example.ro", name="Nou")
    orders = [
        booked,
        _order(sku, 1, Customer(email=known.email.upper() if known.email else None, name="Cunoscut")),
        _order(sku, 2, Customer(email="other@example.ro", name="Firma", is_company=True, vat_code=vat)),
        _order(sku, 1, new),
        _order(sku, 3, new),
    ]
    linked = [o.customer for o in orders]
    tryton.counters.reads = tryton.counters.writes = 0
    with tryton.order_batch(orders, linked):
        entry_reads = tryton.counters.reads
        ids, found = [], []
        for order in orders:
            match = tryton.find_customer(order.customer)
            found.append(match)
            customer = match or tryton.create_customer(order.customer)
            ids.append(tryton.create_order(order, customer))
        drafts = session.call("model.sale.sale.read", [int(i) for i in ids[1:]], ["state"], session.context)
        confirmed = tryton.confirm_batch()
    assert {d["state"] for d in drafts} == {"draft"}  # created and checked, confirmed together below
    assert confirmed == dict.fromkeys(ids[1:])  # the four new sales, none refused
    assert entry_reads == 5  # sales by reference, products, VAT codes, e-mails, and the parties found: at once
    assert ids[0] == booked_id
    # a party the batch knows is described in full (its row also served a sale): the new buyer's second order
    assert [m.email if m else None for m in found] == [booked.customer.email, known.email, firm.email, None, new.email]
    sales = session.call(
        "model.sale.sale.read", [int(i) for i in ids], ["party", "state", "total_amount"], session.context
    )
    parties = [s["party"] for s in sales]
    assert parties[1] == int(known.erp_id or 0) and parties[2] == int(firm.erp_id or 0)
    assert parties[3] == parties[4] and parties[3] not in (parties[1], parties[2])
    assert {s["state"] for s in sales} == {"processing"}
    totals = [Decimal(t) for t in ("23.80", "23.80", "47.60", "23.80", "71.40")]
    assert [s["total_amount"] for s in sales] == totals
    # written: the new buyer's party, the order's address for each party without it (known, firm, new), a create
    # per new sale, then one quote and one confirm for the four; read after entry: only the new party's addresses
    assert tryton.counters.writes == 1 + 3 + 4 + 2
    assert tryton.counters.reads == entry_reads + 1
    assert tryton.parties.batch is None and not tryton.sales._batch_sales  # forgotten after the block


def test_confirm_batch_narrows_a_refused_call_down_to_the_sale() -> None:
    """A batch confirm Tryton refuses (one sale cannot be confirmed) is rolled back by Tryton: each sale is then
    confirmed alone, and only the refused one carries its reason."""
    refusal = {"id": 1, "error": ["UserError", ["Product P2 is inactive.", "", None]]}
    fake = FakeTryton(
        {
            "model.sale.sale.quote": lambda params: None,
            "model.sale.sale.confirm": [refusal, {"id": 1, "result": None}, refusal],  # the batch, 11, then 12
            "model.sale.sale.read": lambda params: [{"id": i, "state": "quotation"} for i in params[0]],
            "model.sale.sale.process": lambda params: None,
        }
    )
    tryton = _fake_connector(fake)
    tryton.sales._batching = True
    tryton.sales._unconfirmed = [(11, "SHOP-11"), (12, "SHOP-12")]
    results = tryton.confirm_batch()
    assert results["11"] is None
    refused = results["12"]
    assert isinstance(refused, RecordError) and "sale 12 was created but not confirmed" in refused.message
    assert "inactive" in refused.message
    assert fake.calls.count("model.sale.sale.confirm") == 3 and fake.calls.count("model.sale.sale.quote") == 1
