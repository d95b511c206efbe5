"""The ERP contract: one suite, run against every ERP connector (the real Tryton, the SmartBill simulator, and
the in-memory ERP of erpsync.testing: with every capability, and with SmartBill's).

Each test checks what the connector's capabilities declare; a capability that is off must raise NotSupported.
Tests that write into the shared Tryton server use unique references and never touch seeded quantities.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from erpsync.connectors.asgi import SyncASGITransport
from erpsync.connectors.erp.base import Capabilities, ErpConnector, NotSupported
from erpsync.connectors.erp.files import FilesConnector, MemoryFileJournal
from erpsync.connectors.erp.oblio import OblioConnector
from erpsync.connectors.erp.smartbill import SmartBillConnector
from erpsync.connectors.erp.tryton import TrytonConnector
from erpsync.connectors.errors import AuthError, RecordError
from erpsync.core.models import Address, Customer, Order, OrderLine, Product, StockLevel, Supplier, Variant
from erpsync.core.order_totals import TOTAL_MISMATCH
from erpsync.dev import tryton_seed as seed
from erpsync.dev.tryton import TrytonServer
from erpsync.testing.memory_erp import FULL, SMARTBILL_LIKE, MemoryErp, MemoryErpData
from erpsync.testing.oblio import OblioSimulator
from erpsync.testing.smartbill import SmartBillSimulator
from tests.files.exports import drop
from tests.files.sftp_server import PASSWORD, SftpServer
from tests.tryton_fixture import create_stocked_product, unique_code

SB_URL = "http://smartbill.test/SBORO/api"
SB_CIF = "RO12345678"
SB_USER, SB_TOKEN = "shop@example.com", "sb-token-contract"


@dataclass
class Case:
    """One ERP under contract: how to build its connector and what it is known to hold."""

    name: str
    make: Callable[..., ErpConnector]  # make(bad_credentials=False)
    warehouses: list[str]
    known_skus: list[str]
    orderable_sku: str
    vat_rate: Decimal
    count_orders: Callable[[str], int]  # ERP records carrying this shop order reference
    # capabilities this ERP is known to have on / off (the suite checks the declaration says so)
    known_on: frozenset[str] = frozenset()
    known_off: frozenset[str] = frozenset()
    system: str = ""  # what the connector calls itself (default: the case's name)
    connectors: list[ErpConnector] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.system = self.system or self.name

    def connector(self, *, bad_credentials: bool = False) -> ErpConnector:
        built = self.make(bad_credentials=bad_credentials)
        self.connectors.append(built)
        return built


def _tryton_case(server: TrytonServer, orderable_sku: str) -> Case:
    def make(*, bad_credentials: bool = False) -> ErpConnector:
        password = "wrong-password" if bad_credentials else server.password
        return TrytonConnector(server.url, server.database, server.username, password, page_size=100)

    def count(reference: str) -> int:
        with server.session() as session:
            return len(
                session.call("model.sale.sale.search", [("reference", "=", reference)], 0, None, None, session.context)
            )

    return Case(
        name="tryton",
        make=make,
        warehouses=["WH", "WH2"],
        known_skus=["TRY-0001", "TRY-0002", "TRY-TSHIRT-S"],
        orderable_sku=orderable_sku,
        vat_rate=Decimal(19),
        count_orders=count,
        known_on=TRYTON_LIKE_ON,
    )


def _smartbill_case() -> Case:
    sim = SmartBillSimulator(
        cif=SB_CIF,
        users={SB_USER: SB_TOKEN},
        warehouses={"Depozit": {"SB-001": 10, "SB-002": 3}, "Magazin": {"SB-001": 4}},
    )
    transport = SyncASGITransport(sim)

    def make(*, bad_credentials: bool = False) -> ErpConnector:
        token = "not-the-token" if bad_credentials else SB_TOKEN
        return SmartBillConnector(
            SB_URL, SB_USER, token, SB_CIF, order_warehouse="Depozit", transport=transport, window_margin_seconds=0.0
        )

    def count(reference: str) -> int:
        # each test gets a fresh simulator, so every invoice in it belongs to the test's one order reference
        return len(sim.invoices)

    return Case(
        name="smartbill",
        make=make,
        warehouses=["Depozit", "Magazin"],
        known_skus=["SB-001", "SB-002"],
        orderable_sku="SB-001",
        vat_rate=Decimal(21),
        count_orders=count,
        known_off=SMARTBILL_OFF,
    )


OB_URL = "http://oblio.test/api"
OB_EMAIL, OB_SECRET = "office@example.ro", "oblio-secret-contract"


def _oblio_case() -> Case:
    sim = OblioSimulator(
        cif=SB_CIF,
        users={OB_EMAIL: OB_SECRET},
        managements={"Depozit": {"OB-001": 10, "OB-002": 3}, "Magazin": {"OB-001": 4}},
    )
    transport = SyncASGITransport(sim)

    def make(*, bad_credentials: bool = False) -> ErpConnector:
        secret = "not-the-secret" if bad_credentials else OB_SECRET
        return OblioConnector(
            OB_URL, OB_EMAIL, secret, SB_CIF, order_warehouse="Depozit", transport=transport, requests_per_second=3
        )

    return Case(
        name="oblio",
        make=make,
        warehouses=["Depozit", "Magazin"],
        known_skus=["OB-001", "OB-002"],
        orderable_sku="OB-001",
        vat_rate=Decimal(21),
        count_orders=lambda reference: len(sim.invoices()),  # a fresh simulator per test
        known_on=frozenset({"products_read", "stock_read", "orders_create", "orders_cancel", "invoices"}),
        known_off=frozenset({"customers_find", "orders_read", "stock_changed_since"}),
    )


def _memory_case(name: str, capabilities: Capabilities, **known: frozenset[str]) -> Case:
    """The in-memory ERP, seeded like a small Tryton: a template with variants, stock in two warehouses."""
    data = MemoryErpData()
    data.put(Product(sku="MEM-0001", name="Cana", vat_rate=Decimal(19), price_net=Decimal("10.00")))
    data.put(Product(sku="MEM-0002", name="Farfurie", vat_rate=Decimal(19), price_net=Decimal("8.40")))
    data.put(
        Product(
            sku="MEM-TSHIRT",
            name="Tricou",
            vat_rate=Decimal(19),
            variants=[
                Variant(sku="MEM-TSHIRT-S", price_net=Decimal(50), options={"Marime": "S"}),
                Variant(sku="MEM-TSHIRT-M", price_net=Decimal(50), options={"Marime": "M"}),
            ],
        )
    )
    for sku, warehouse, on_hand in [("MEM-0001", "WH", 50), ("MEM-0002", "WH", 3), ("MEM-TSHIRT-S", "WH2", 7)]:
        data.set(sku, warehouse, on_hand)
    data.suppliers.append(Supplier(erp_id="S1", name="Furnizor SRL"))
    data.order_warehouse = "WH"

    def make(*, bad_credentials: bool = False) -> ErpConnector:
        password = "wrong-password" if bad_credentials else None
        return MemoryErp(data, capabilities=capabilities, page_size=2, password=password)

    return Case(
        name=name,
        system="memory",
        make=make,
        warehouses=["WH", "WH2"],
        known_skus=["MEM-0001", "MEM-0002", "MEM-TSHIRT-S"],
        orderable_sku="MEM-0001",
        vat_rate=Decimal(19),
        count_orders=lambda reference: len(data.sales_for(reference)),
        **known,
    )


FILES_STOCK = (
    "sku;warehouse;quantity;price;vat;name\r\n"
    "FI-001;WH;10;11,90;19;Cană\r\nFI-002;WH;3;5,00;19;Şervet\r\nFI-001;WH2;4;11,90;19;Cană\r\n"
)


def _files_case(server: SftpServer, cache: Path) -> Case:
    """A desktop ERP over SFTP (the session's asyncssh server): a stock file in the inbox, orders to the outbox."""
    from erpsync.core.config import FilesSettings
    from erpsync.expectations.stock_file import validate_stock_file

    inbox, inbox_url = server.folder("contract-in")
    outbox, outbox_url = server.folder("contract-out")
    drop(inbox, "stock.csv", FILES_STOCK.encode("cp1250"))
    journal = MemoryFileJournal()

    def make(*, bad_credentials: bool = False) -> ErpConnector:
        password = "wrong-password" if bad_credentials else PASSWORD
        settings = FilesSettings.model_validate(
            {
                "type": "files",
                "inbox": inbox_url,
                "outbox": outbox_url,
                "password": f"literal:{password}",
                "cache_dir": str(cache),
                "stock": {"encoding": "cp1250", "decimal": ",", "columns": {"name": "name"}},
            }
        )
        return FilesConnector.from_settings(settings, journal=journal, validator=validate_stock_file)

    return Case(
        name="files",
        make=make,
        warehouses=["WH", "WH2"],
        known_skus=["FI-001", "FI-002"],
        orderable_sku="FI-001",
        vat_rate=Decimal(19),
        count_orders=lambda reference: sum(1 for p in outbox.iterdir() if p.is_file() and reference in p.name),
        known_on=frozenset(
            {"stock_read", "stock_changed_since", "orders_create", "orders_create_idempotent", "products_read"}
        ),
        known_off=frozenset({"customers_find", "orders_read", "goods_receipts_read"}),
    )


TRYTON_LIKE_ON = frozenset({"products_read", "stock_reservations", "orders_cancel"})
SMARTBILL_OFF = frozenset({"products_read", "customers_find"})
CASES: dict[str, Callable[[], Case] | None] = {
    "tryton": None,  # built from the session's server (fixtures)
    "smartbill": _smartbill_case,
    "oblio": _oblio_case,
    "files": None,  # over the session's SFTP server (fixtures)
    "memory": lambda: _memory_case("memory", FULL, known_on=TRYTON_LIKE_ON),
    "memory-smartbill-like": lambda: _memory_case("memory-smartbill-like", SMARTBILL_LIKE, known_off=SMARTBILL_OFF),
}


@pytest.fixture(scope="module")
def tryton_orderable_sku(tryton_server: TrytonServer) -> str:
    """A product of the contract's own (orders reserve stock: seeded SKUs must keep their exact numbers)."""
    sku = unique_code("CONTRACT")
    with tryton_server.session() as session:
        create_stocked_product(session, tryton_server.manifest, sku, {"WH": 50}, list_price=Decimal("10.00"))
    return sku


@pytest.fixture(params=list(CASES))
def case(request: pytest.FixtureRequest) -> Iterator[Case]:
    build = CASES[request.param]
    if request.param == "files":
        built = _files_case(request.getfixturevalue("sftp_server"), request.getfixturevalue("tmp_path") / "cache")
    elif build is None:
        built = _tryton_case(request.getfixturevalue("tryton_server"), request.getfixturevalue("tryton_orderable_sku"))
    else:
        built = build()
    try:
        yield built
    finally:
        for connector in built.connectors:
            connector.close()


def _order(case: Case, sku: str, reference: str) -> Order:
    customer = Customer(email=f"{reference.lower()}@example.com", name="Contract Tester")
    address = Address(name="Contract Tester", street="Str. Contract 1", city="Cluj-Napoca", postal_code="400001")
    return Order(
        shop_id=reference,
        public_code=f"#{reference[-6:]}",
        customer=customer,
        billing=address,
        shipping=address,
        lines=[
            OrderLine(
                sku=sku,
                name=f"Produs {sku}",
                quantity=Decimal(1),
                unit_price_gross=Decimal("11.90"),
                vat_rate=case.vat_rate,
            )
        ],
    )


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10].upper()}"


# --------------------------------------------------------------------------- the contract


def test_connector_follows_the_protocol_and_checks(case: Case) -> None:
    connector = case.connector()
    assert isinstance(connector, ErpConnector)
    assert connector.system == case.system
    assert isinstance(connector.capabilities, Capabilities)
    described = connector.check()
    assert isinstance(described, str) and described.strip()


def test_read_stock_has_known_skus_with_decimal_quantities(case: Case) -> None:
    connector = case.connector()
    assert connector.capabilities.stock_read
    levels: list[StockLevel] = [level for page in connector.iter_stock(case.warehouses) for level in page.items]
    skus = {level.sku for level in levels}
    assert set(case.known_skus) <= skus
    assert {level.warehouse for level in levels} <= set(case.warehouses)
    for level in levels:
        assert isinstance(level.on_hand, Decimal) and isinstance(level.reserved, Decimal)
    only = [lvl for page in connector.iter_stock(case.warehouses, skus=case.known_skus[:1]) for lvl in page.items]
    assert {level.sku for level in only} == {case.known_skus[0]}


def test_read_products_or_not_supported(case: Case) -> None:
    connector = case.connector()
    if not connector.capabilities.products_read:
        with pytest.raises(NotSupported):
            list(connector.iter_products())
        return
    products: list[Product] = [p for page in connector.iter_products() for p in page.items]
    carried = {sku for product in products for sku in product.skus()}
    assert set(case.known_skus) <= carried
    assert all(product.price_net is None or isinstance(product.price_net, Decimal) for product in products)


def test_create_order_twice_makes_one_erp_record(case: Case) -> None:
    connector = case.connector()
    assert connector.capabilities.orders_create
    reference = _unique("CONTRACT")
    order = _order(case, case.orderable_sku, reference)
    first = connector.create_order(order, order.customer)
    second = connector.create_order(order, order.customer)
    assert first == second
    assert connector.find_order(reference) == first
    assert case.count_orders(reference) == 1


def test_unknown_sku_is_a_record_error_naming_it_and_creates_nothing(case: Case) -> None:
    connector = case.connector()
    reference = _unique("CONTRACT")
    missing = _unique("NO-SUCH-SKU")
    order = _order(case, case.orderable_sku, reference)
    order.lines.append(
        OrderLine(sku=missing, quantity=Decimal(2), unit_price_gross=Decimal("5.00"), vat_rate=case.vat_rate)
    )
    with pytest.raises(RecordError) as refused:
        connector.create_order(order, order.customer)
    assert missing in str(refused.value)
    assert refused.value.system == case.system
    assert connector.find_order(reference) is None
    assert case.count_orders(reference) == 0


def test_a_voucher_order_totals_the_shops_total_and_a_mismatch_books_nothing(case: Case) -> None:
    """Discount lines are booked (the ERP's total is the shop's within 0.01); an order the ERP would total
    otherwise is refused with ``total mismatch: `` and leaves nothing behind."""
    connector = case.connector()
    voucher = OrderLine(
        sku="",
        kind="discount",
        name="VOUCHER",
        quantity=Decimal(1),
        unit_price_gross=Decimal("-1.90"),
        vat_rate=case.vat_rate,
    )
    reference = _unique("CONTRACT")
    order = _order(case, case.orderable_sku, reference)
    order.lines.append(voucher)
    order.total = Decimal("10.00")  # 11.90 - 1.90
    erp_id = connector.create_order(order, order.customer)
    assert connector.find_order(reference) == erp_id and case.count_orders(reference) == 1

    wrong = _order(case, case.orderable_sku, _unique("CONTRACT"))
    wrong.lines.append(voucher)
    wrong.total = Decimal("11.90")  # the shop says the voucher was not taken off
    reference = wrong.shop_id or ""
    before = case.count_orders(reference)  # SmartBill's case counts every invoice of the test
    with pytest.raises(RecordError) as refused:
        connector.create_order(wrong, wrong.customer)
    assert TOTAL_MISMATCH in refused.value.message and refused.value.system == case.system
    assert connector.find_order(reference) is None and case.count_orders(reference) == before


def test_bad_credentials_are_one_auth_error_naming_the_system(case: Case) -> None:
    connector = case.connector(bad_credentials=True)
    with pytest.raises(AuthError) as refused:
        connector.check()
    assert refused.value.system == case.system
    assert str(refused.value).startswith(case.system)
    counts = connector.counters.as_dict()
    assert counts["retries"] == 0 and counts["reads"] + counts["writes"] == 1  # not retried


def _probes(connector: ErpConnector, case: Case) -> dict[str, Callable[[], Any]]:
    """One call per capability; write probes only run where the capability is off (they must not write)."""
    now = datetime.now(UTC)
    nobody = Customer(email=f"{_unique('nobody').lower()}@example.com", name="Nobody")
    product = Product(sku=_unique("PROBE"), name="Probe", vat_rate=case.vat_rate, price_net=Decimal(1))
    return {
        "products_read": lambda: next(iter(connector.iter_products()), None),
        "products_changed_since": lambda: list(connector.iter_products(changed_since=now)),
        "stock_changed_since": lambda: list(connector.iter_stock(case.warehouses, changed_since=now)),
        "customers_find": lambda: connector.find_customer(nobody),
        "orders_read": lambda: list(connector.iter_orders(changed_since=now)),
        "goods_receipts_read": lambda: list(connector.iter_goods_receipts(now, case.warehouses)),
        "suppliers_read": lambda: next(iter(connector.iter_suppliers()), None),
        "products_create": lambda: connector.create_product(product),
        "products_update": lambda: connector.update_product(product, {"name"}),
        "customers_create": lambda: connector.create_customer(nobody),
    }


WRITE_PROBES = {"products_create", "products_update", "customers_create"}


def test_capabilities_that_are_off_raise_not_supported(case: Case) -> None:
    connector = case.connector()
    declared = connector.capabilities
    probes = _probes(connector, case)
    checked_off: list[str] = []
    checked_on: list[str] = []
    for name, probe in probes.items():
        if not getattr(declared, name):
            with pytest.raises(NotSupported):
                probe()
            checked_off.append(name)
        elif name not in WRITE_PROBES:
            probe()  # a declared read works (NotSupported would fail the test)
            checked_on.append(name)
    assert sorted(checked_off + checked_on + [n for n in WRITE_PROBES if getattr(declared, n)]) == sorted(probes)
    assert case.known_off <= set(checked_off)
    assert set(declared.names()) >= case.known_on
    assert case.known_on or case.known_off  # every case pins something


def test_the_memory_erp_declares_what_smartbill_declares() -> None:
    """The SmartBill-like memory ERP (used by the order flow's tests) must not drift from the real connector."""
    assert SmartBillConnector.capabilities == SMARTBILL_LIKE


def test_seeded_tryton_facts_the_contract_relies_on() -> None:
    """The Tryton case's known SKUs come from the seed, so the suite breaks loudly if the seed moves."""
    for sku in ("TRY-0001", "TRY-0002", "TRY-TSHIRT-S"):
        assert seed.SEED_PRODUCTS_BY_SKU[sku].active
