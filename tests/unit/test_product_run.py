"""erpsync.core.product_run: the product sync's pure bookkeeping around the plan (reads, batches, cursors)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from erpsync.core.models import Product, RowError, Variant
from erpsync.core.product_plan import Failed, Write
from erpsync.core.product_run import (
    chunks,
    erp_update_fields,
    failed_shop_id,
    row_failures,
    row_stamp,
    run_cursors,
    split_duplicates,
)

D = Decimal
T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def write(sku: str, side: str = "shop") -> Write:
    return Write(side, "update", sku, Product(sku=sku), frozenset({"price"}), "fp")  # type: ignore[arg-type]


def test_row_stamp_reads_the_first_usable_time_and_a_naive_one_is_utc() -> None:
    assert row_stamp({}) is None
    assert row_stamp({"date_modified": "2026-11-20T10:00:00Z"}) == T0
    assert row_stamp({"date_modified": "yesterday", "write_date": "2026-11-20T10:00:00"}) == T0
    assert row_stamp({"modified_at": "2026-11-20T12:00:00+02:00"}) == T0
    assert row_stamp({"modified_at": 1234, "last_modified_at": ""}) is None


def test_row_failures_name_the_side_read_from_and_keep_the_row() -> None:
    errors = [RowError(key="template:99", error="no SKU", payload={"id": 99, "write_date": "2026-11-20T10:00:00"})]
    assert row_failures(errors, "shop", "erp") == [
        Failed(
            "template:99",
            "shop",
            "unreadable erp record: no SKU",
            "erp",
            T0,
            {"id": 99, "write_date": "2026-11-20T10:00:00"},
        )
    ]
    assert row_failures([RowError(key="7", error="bad price")], "erp", "shop")[0].modified_at is None


def test_failed_shop_id_comes_from_a_product_or_a_raw_row() -> None:
    assert failed_shop_id({"shop_id": "70", "id": 1}) == "70"
    assert failed_shop_id({"id": 71}) == "71"
    assert failed_shop_id({"id": ""}) is None
    assert failed_shop_id(None) is None and failed_shop_id(["70"]) is None


def test_every_erp_record_sharing_a_sku_fails_and_the_others_pass() -> None:
    a = Product(sku="A", erp_id="1", modified_at=T0)
    b = Product(sku="B", erp_id="2", variants=[Variant(sku="A")])
    c = Product(sku="C", erp_id="3")
    products, failed, duplicates = split_duplicates([a, b, c])
    assert products == {"C": c}
    assert duplicates == {"A", "B"}
    assert [(f.sku, f.side, f.origin, f.modified_at) for f in failed] == [
        ("A", "shop", "erp", T0),
        ("B", "shop", "erp", None),
    ]
    assert failed[0].reason == "duplicate SKU in the ERP: A also used by ERP product(s) 2"
    assert failed[1].reason == "duplicate SKU in the ERP: A also used by ERP product(s) 1"
    assert failed[0].payload is not None and failed[0].payload["erp_id"] == "1"  # the record, to retry from
    assert split_duplicates([a, c]) == ({"A": a, "C": c}, [], set())


def test_erp_update_fields_are_the_canonical_names_of_the_synced_fields() -> None:
    assert erp_update_fields({"price", "vat", "name"}) == {
        "price",
        "price_net",
        "price_gross",
        "vat",
        "vat_rate",
        "name",
    }
    assert erp_update_fields([]) == set()


def test_writes_go_in_batches() -> None:
    writes = [write(f"S{i}") for i in range(5)]
    assert [[w.sku for w in batch] for batch in chunks(writes, 2)] == [["S0", "S1"], ["S2", "S3"], ["S4"]]
    assert len(chunks([write(f"S{i}") for i in range(101)])) == 2
    assert chunks([]) == []


def test_run_cursors_hold_for_failures_and_writes_left_over() -> None:
    erp_window, shop_window = T0 + timedelta(hours=2), T0 + timedelta(hours=3)
    previous_erp, previous_shop = T0 - timedelta(days=1), T0 - timedelta(days=2)
    moves = (erp_window, previous_erp, shop_window, previous_shop)
    assert run_cursors(*moves, [], []) == (erp_window, shop_window)
    erp_failure = Failed("A", "shop", "x", "erp", T0)
    assert run_cursors(*moves, [erp_failure], []) == (T0, shop_window)
    # A shop product that failed is read again by id: it does not hold the shop cursor; one without an id does.
    by_id = Failed("B", "erp", "y", "shop", T0 - timedelta(hours=5), {"shop_id": "70"})
    assert run_cursors(*moves, [by_id], []) == (erp_window, shop_window)
    no_id = Failed("C", "erp", "z", "shop", T0 - timedelta(hours=5), {"sku": "C"})
    assert run_cursors(*moves, [no_id], []) == (erp_window, T0 - timedelta(hours=5))
    # Writes left for the next run hold the cursor of the side they were read from.
    assert run_cursors(*moves, [], [write("A", "shop")]) == (previous_erp, shop_window)
    assert run_cursors(*moves, [], [write("A", "erp")]) == (erp_window, previous_shop)
