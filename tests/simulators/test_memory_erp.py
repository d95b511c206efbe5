"""erpsync.testing.memory_erp beyond the ERP contract suite (tests/connectors/test_erp_contract.py runs that over
it): sessions and counters, paging, reservations, changed-since, the SmartBill-like registry, injected trouble."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from erpsync.connectors.erp.base import Capabilities, NotSupported
from erpsync.connectors.errors import RecordError, RetriableError
from erpsync.core.models import Customer, Order, OrderLine, Product, RowError
from erpsync.testing.memory_erp import ORDERS, PRODUCTS, SMARTBILL_LIKE, STOCK, MemoryErp, MemoryErpData


def _order(reference: str, sku: str = "A", quantity: int = 2) -> Order:
    return Order(
        shop_id=reference,
        customer=Customer(email=f"{reference}@example.ro"),
        lines=[OrderLine(sku=sku, quantity=Decimal(quantity))],
    )


def test_sessions_share_the_books_and_count_their_own_calls() -> None:
    erp = MemoryErp(capabilities=STOCK, page_size=2)
    for sku in "ABCDE":
        erp.data.set(sku, "WH", 1)
    other = erp.session()
    pages = list(other.iter_stock(["WH"]))
    assert [len(p.items) for p in pages] == [2, 2, 1] and other.counters.reads == 3
    assert erp.counters.reads == 0 and other.data is erp.data
    assert list(other.iter_stock(["NONE"])) != [] and other.counters.reads == 4  # an empty read is a call too
    erp.counters.count("read")
    assert erp.fresh() is erp and erp.counters.reads == 0


def test_stock_changed_since_reservations_duplicates_and_unreadable_rows() -> None:
    data = MemoryErpData(order_warehouse="WH")
    erp = MemoryErp(data)
    long_ago = datetime.now(UTC) - timedelta(days=1)
    data.set("A", "WH", 10, moved=long_ago)
    data.set("B", "WH", 4, 1, moved=long_ago)
    since = datetime.now(UTC) - timedelta(minutes=1)
    assert [lvl for page in erp.iter_stock(["WH"], changed_since=since) for lvl in page.items] == []
    erp.create_order(_order("o1", "A", 3), Customer(email="x@y.ro"))
    moved = [lvl for page in erp.iter_stock(["WH"], changed_since=since) for lvl in page.items]
    assert [(lvl.sku, lvl.on_hand, lvl.reserved) for lvl in moved] == [("A", 10, 3)]  # reserved by the order
    erp.cancel_order(data.sales_for("o1")[0].erp_id, reference="o1/R1")
    erp.cancel_order(data.sales_for("o1")[0].erp_id, reference="o1/R1")  # twice: released once
    assert data.stock[("A", "WH")].reserved == 0
    data.duplicates.append(("B", "WH"))
    data.unreadable_skus.add("A")
    page = next(iter(erp.iter_stock(["WH"])))
    assert [lvl.sku for lvl in page.items] == ["B", "B"] and [e.key for e in page.errors] == ["A"]
    blind = MemoryErp(data, capabilities=Capabilities(stock_read=True))
    assert {lvl.reserved for page in blind.iter_stock(["WH"]) for lvl in page.items} == {Decimal(0)}
    with pytest.raises(NotSupported):
        list(blind.iter_stock(["WH"], changed_since=since))


def test_products_changed_since_and_unreadable_rows_on_full_reads() -> None:
    data = MemoryErpData()
    erp = MemoryErp(data, capabilities=PRODUCTS)
    yesterday = datetime.now(UTC) - timedelta(days=1)
    data.clock = lambda: yesterday
    data.put(Product(sku="OLD", name="Vechi"))
    data.clock = lambda: datetime.now(UTC)
    data.put(Product(sku="NEW", name="Nou"))
    data.unreadable_products.append(RowError(key="template:9", error="no code"))
    since = datetime.now(UTC) - timedelta(hours=1)
    changed = list(erp.iter_products(changed_since=since))
    assert [p.sku for page in changed for p in page.items] == ["NEW"] and not changed[0].errors
    assert [e.key for page in erp.iter_products() for e in page.errors] == ["template:9"]  # full reads report it
    created = erp.create_product(Product(sku="OLD", name="again"))
    assert created.erp_id == data.by_sku("OLD").erp_id  # type: ignore[union-attr]  # idempotent on the SKU
    erp.update_product(Product(sku="OLD", erp_id=created.erp_id, name="Renamed"), {"name"})
    assert data.by_sku("OLD").name == "Renamed"  # type: ignore[union-attr]
    with pytest.raises(RecordError, match="no such product"):
        erp.update_product(Product(sku="GONE", erp_id="999"), {"name"})
    with pytest.raises(NotSupported):
        erp.find_customer(Customer(email="a@b.ro"))
    assert erp.counters.writes == 3  # the refused NotSupported call made no request


def test_an_erp_without_order_lookup_remembers_what_it_issued_without_a_call() -> None:
    data = MemoryErpData(known_skus={"A"})
    erp = MemoryErp(data, capabilities=SMARTBILL_LIKE)
    erp_id = erp.create_order(_order("r1"), Customer())
    calls = erp.counters.as_dict()
    assert erp.find_order("r1") == erp_id and erp.find_order("r2") is None
    assert erp.counters.as_dict() == calls  # the registry is local
    assert erp.create_order(_order("r1"), Customer()) == erp_id and len(data.sales) == 1
    assert [s.invoiced for s in erp.order_statuses([erp_id])] == [False]  # SmartBill reads its registry
    with pytest.raises(NotSupported):
        erp.update_order(erp_id, _order("r1"), Customer())  # an issued invoice is never rewritten


def test_injected_refusals_transient_failures_and_unknown_skus() -> None:
    data = MemoryErpData(known_skus={"A"})
    erp = MemoryErp(data, capabilities=ORDERS)
    data.refuse["r1"] = "blocked"
    data.transient["r2"] = 1
    with pytest.raises(RecordError, match="r1: blocked"):
        erp.create_order(_order("r1"), Customer())
    with pytest.raises(RetriableError):
        erp.create_order(_order("r2"), Customer())
    assert erp.create_order(_order("r2"), Customer())
    with pytest.raises(RecordError, match="unknown SKU 'Z'"):
        erp.create_order(_order("r3", "Z"), Customer())
    data.known_skus = None  # every SKU sells
    assert erp.create_order(_order("r3", "Z"), Customer())
    assert data.create_calls == ["r1", "r2", "r2", "r3", "r3"]
    phone = data.add_channel_order(_order("p"), "phone")
    orders = [o for page in erp.iter_orders() for o in page.items]
    assert {(o.erp_id, o.channel, o.shop_id) for o in orders if o.erp_id == phone} == {(phone, "phone", None)}
    data.cancel_refused.add(phone)
    with pytest.raises(RecordError, match="cannot be cancelled"):
        erp.cancel_order(phone, reference="phone/R1")
