"""VAT from the shop (issue 11, part 4): the configuration's ``vat_taxes`` may be left to the shop's tax table, the
table maps rates to tax ids both ways, a product reply with ``tax_id`` only gets its rate through it, and an order
line's rate is checked against the Romanian rates of the order's date (21/11 since 2025-08-01, 19/9/5 before)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from erpsync.connectors.merchantpro.mapping import product_from_shop, product_vat_rate
from erpsync.core.config import settings_from_dict
from erpsync.core.mapping import Rejected, StoreRules, to_shop
from erpsync.core.models import Customer, Order, OrderLine, Product
from erpsync.core.order_rules import order_problems
from erpsync.core.product_diff import field_digests
from erpsync.core.vat import TaxTable, accepted_rate, legal_rates
from erpsync.testing import _catalogue as cat

D = Decimal
BUCHAREST_SUMMER = timezone(timedelta(hours=3))
ERP = {"type": "tryton", "database": "d", "password": "literal:x"}
STORE = {"name": "main", "url": "https://www.example.ro", "api_key": "literal:k", "api_secret": "literal:s"}
# The simulator's table: ids 1-4 before the change, 5 = 21 %, 6 = 11 %.
SHOP = TaxTable.from_shop((t["id"], D(t["value"])) for t in cat.TAXES)


def products_settings(**products: Any) -> Any:
    store = dict(STORE, products=products) if products else STORE
    return settings_from_dict({"erp": ERP, "stores": [store]}).stores[0].products


# --------------------------------------------------------------------------- configuration


def test_no_vat_taxes_in_the_config_means_the_shops_table() -> None:
    assert products_settings().vat_taxes is None
    assert products_settings(vat_taxes="").vat_taxes is None  # TOML has no null: "" stands for none
    assert products_settings().tax_id_for(21) is None
    explicit = products_settings(vat_taxes={"21.0": 9, "11": 8})
    assert explicit.vat_taxes == {"21": 9, "11": 8} and explicit.tax_id_for(D("21.00")) == 9


def test_an_explicit_vat_taxes_wins_over_the_shop() -> None:
    settings = settings_from_dict({"erp": ERP, "stores": [dict(STORE, products={"vat_taxes": {"21": 9}})]})
    rules = StoreRules.of(settings.stores[0])  # no shop table given: the configured map
    assert rules.vat_taxes == {"21": 9} and rules.vat_source == "vat_taxes of the store"
    shop_rules = StoreRules.of(settings.stores[0], SHOP)
    assert shop_rules.tax_id(D("21")) == 5 and shop_rules.vat_source == "the shop's tax table"


# --------------------------------------------------------------------------- the tax table


def test_the_shops_table_maps_by_rate_both_ways() -> None:
    assert SHOP.tax_id(D("21")) == 5 and SHOP.tax_id(D("21.00")) == 5 and SHOP.tax_id(D("11")) == 6
    assert SHOP.tax_id(D("19")) == 1 and SHOP.tax_id(D("0")) == 4  # the old rates still map, for old documents
    assert SHOP.rate(5) == D(21) and SHOP.rate(1) == D(19) and SHOP.rate(99) is None and SHOP.rate(None) is None
    assert SHOP.tax_id(D("24")) is None and SHOP.tax_id(None) is None
    twice = TaxTable.from_shop([(7, D("21")), (3, D("21.0"))])
    assert twice.tax_id(D(21)) == 7 and twice.rate(3) == D(21)  # a rate listed twice: its first id


def test_a_configured_map_reads_back_only_unambiguous_ids() -> None:
    table = TaxTable.from_config({"21": 1, "19": 1, "11": 2})
    assert table.rate(2) == D(11) and table.rate(1) is None


def test_a_rate_the_shops_table_lacks_fails_the_product_naming_the_table() -> None:
    rules = StoreRules(store="main", vat_taxes=dict(SHOP.by_rate), vat_source=SHOP.source)
    with pytest.raises(Rejected, match=r"unknown VAT rate 24% \(the shop's tax table maps: 0, 5, 9, 11, 19, 21\)"):
        to_shop(Product(sku="A", name="A", vat_rate=D("24"), price_net=D("10")), rules)


# --------------------------------------------------------------------------- product replies


def row(**fields: Any) -> dict[str, Any]:
    base = {"id": 9, "type": "basic", "sku": "A-1", "name": "Cana", "price_net": 10, "price_gross": 12.1}
    return base | fields


def test_a_reply_with_tax_id_only_gets_its_rate_from_the_table() -> None:
    assert product_from_shop(row(tax_id=5), SHOP.by_id).vat_rate == D(21)
    assert product_from_shop(row(tax_id="6"), SHOP.by_id).vat_rate == D(11)
    assert product_from_shop(row(tax_id=5)).vat_rate is None  # no table: unknown, as before
    assert product_from_shop(row(tax_id=5, tax_value=19), SHOP.by_id).vat_rate == D(19)  # tax_value wins
    assert product_vat_rate(row(tax_id=99), SHOP.by_id) is None
    assert product_vat_rate(row(tax_id=5.5), SHOP.by_id) is None


def test_both_sides_then_compare_equal_so_nothing_is_rewritten() -> None:
    rules = StoreRules(store="main", vat_taxes=dict(SHOP.by_rate), vat_source=SHOP.source)
    desired = to_shop(Product(sku="A-1", name="Cana", vat_rate=D("21"), price_net=D("10")), rules)
    without_value = product_from_shop(row(tax_id=SHOP.tax_id(D(21))), SHOP.by_id)
    fields = ("name", "price", "vat")
    assert field_digests(without_value, fields, side="shop") == field_digests(desired, fields, side="shop")
    unresolved = product_from_shop(row(tax_id=5))  # what the loop came from: vat None differs every run
    assert field_digests(unresolved, ["vat"], side="shop") != field_digests(desired, ["vat"], side="shop")


# --------------------------------------------------------------------------- orders by date


def test_the_legal_rates_change_on_2025_08_01() -> None:
    assert legal_rates(date(2025, 7, 31)) == {"19", "9", "5", "0"}
    assert legal_rates(date(2025, 8, 1)) == {"21", "11", "0"}
    assert legal_rates(datetime(2025, 8, 1, 0, 30, tzinfo=BUCHAREST_SUMMER)) == {"21", "11", "0"}  # local date
    assert legal_rates(None) == frozenset()
    assert accepted_rate(D("19.00"), date(2025, 7, 31), set()) and not accepted_rate(D("19"), date(2025, 8, 2), set())


def order_on(day: str, rate: str, shipping_rate: str | None = None) -> Order:
    created = datetime.fromisoformat(day).replace(hour=12, tzinfo=BUCHAREST_SUMMER)
    line = OrderLine(sku="SKU-1", quantity=D(1), unit_price_gross=D("11.90"), vat_rate=D(rate))
    extra: dict[str, Any] = {}
    if shipping_rate is not None:
        extra = {"shipping_amount": D("15"), "shipping_vat_rate": D(shipping_rate)}
    return Order(shop_id="1", customer=Customer(email="a@b.ro"), lines=[line], created_at=created, **extra)


def test_an_order_keeps_the_rates_of_its_date() -> None:
    today = set(SHOP.by_rate) - {"19", "9", "5"}  # a shop whose table has only today's rates: 0, 11, 21
    assert order_problems(order_on("2025-07-31", "19"), vat_rates=today) == []  # 19 % before the change
    assert order_problems(order_on("2025-07-31", "5", shipping_rate="19"), vat_rates=today) == []
    assert order_problems(order_on("2025-08-02", "21", shipping_rate="21"), vat_rates=set()) == []
    assert order_problems(order_on("2025-08-02", "19"), vat_rates=today) == [
        "VAT rate 19% of SKU 'SKU-1' has no mapping ([stores.products] vat_taxes has 0, 11, 21; "
        "the legal rates on 2025-08-02: 0, 11, 21)"
    ]
    assert order_problems(order_on("2025-07-31", "21", shipping_rate="11"), vat_rates=set()) == [
        "VAT rate 21% of SKU 'SKU-1' has no mapping ([stores.products] vat_taxes has none; "
        "the legal rates on 2025-07-31: 0, 5, 9, 19)",
        "shipping VAT rate 11% has no mapping ([stores.products] vat_taxes; "
        "the legal rates on 2025-07-31: 0, 5, 9, 19)",
    ]
    # a rate the store maps is accepted on any date (the shop's table is the shop's truth)
    assert order_problems(order_on("2025-08-02", "19"), vat_rates=set(SHOP.by_rate)) == []
    assert order_problems(order_on("2025-08-02", "19"), vat_rates=None) == []  # no check asked for
