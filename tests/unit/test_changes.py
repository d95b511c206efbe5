"""The "what changed" tables: capped with a count of the rest; stock as old → new, orders as shop → ERP."""

from __future__ import annotations

from decimal import Decimal

from erpsync.runtime.changes import CHANGES_SHOWN, capped


def test_capped_keeps_the_first_rows_and_counts_the_rest() -> None:
    rows = [{"sku": f"S{i}", "change": "1 → 2"} for i in range(CHANGES_SHOWN + 7)]
    shown = capped(rows)
    assert len(shown) == CHANGES_SHOWN + 1
    assert shown[:CHANGES_SHOWN] == rows[:CHANGES_SHOWN]
    assert shown[-1] == {"sku": "… and 7 more", "change": ""}
    assert capped(rows[:3]) == rows[:3]


def test_stock_changes_old_to_new() -> None:
    from erpsync.connectors.merchantpro.writes import StockWrite
    from erpsync.flows.stock import stock_changes
    from erpsync.tasks.stock import Planned

    written = [
        Planned("A", StockWrite("SH-A", "1", None, Decimal("5.000")), Decimal("3")),
        Planned("B", StockWrite("SH-B", "2", "9", Decimal("0")), None),
    ]
    assert stock_changes(written) == [
        {"sku": "A", "shop sku": "SH-A", "change": "3 → 5"},
        {"sku": "B", "shop sku": "SH-B", "change": "? → 0"},
    ]


def test_order_changes_shop_order_to_erp_sale() -> None:
    from erpsync.flows.orders import order_changes

    assert order_changes({"1001": "SO-7", "1002": None}, ["88"]) == [
        {"shop order": "1001", "ERP sale": "SO-7", "direction": "shop → ERP"},
        {"shop order": "1002", "ERP sale": "?", "direction": "shop → ERP"},
        {"shop order": "(new in the shop)", "ERP sale": "88", "direction": "ERP → shop"},
    ]
