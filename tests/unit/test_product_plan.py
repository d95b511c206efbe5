"""erpsync.core.product_plan: what to look up and what to write, per leg, decided by ownership."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from erpsync.core.config import ProductSettings
from erpsync.core.mapping import StoreRules, ownership, to_shop
from erpsync.core.models import Product, Variant
from erpsync.core.product_diff import encode, field_digests
from erpsync.core.product_plan import Known, LinkRef, Memory, Policy, lookups_needed, plan

D = Decimal
RULES = StoreRules(store="main", sku_prefix="", vat_taxes={"19": 1, "9": 2})
T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def policy(direction: str = "erp_to_shop", **settings: Any) -> Policy:
    product_settings = ProductSettings(direction=direction, **settings)  # type: ignore[arg-type]
    to_shop_leg = direction in ("erp_to_shop", "both")
    to_erp_leg = direction in ("shop_to_erp", "both")
    return Policy(
        RULES,
        ownership(product_settings),
        to_shop_leg,
        to_erp_leg,
        to_shop_leg and product_settings.create_in_shop,
        to_erp_leg and product_settings.create_in_erp,
    )


def erp(sku: str = "A-1", **changes: Any) -> Product:
    values: dict[str, Any] = {
        "sku": sku,
        "erp_id": f"e{sku}",
        "name": "Cana",
        "vat_rate": D("19"),
        "price_net": D("10"),
        "price_gross": D("11.90"),
        "description": "erp text",
        "modified_at": T0,
    }
    values.update(changes)
    return Product(**values)


def shop(sku: str = "A-1", **changes: Any) -> Product:
    values: dict[str, Any] = {
        "sku": sku,
        "shop_id": f"s{sku}",
        "name": "Cana",
        "vat_rate": D("19"),
        "price_net": D("10"),
        "price_gross": D("11.90"),
        "description": "erp text",
        "modified_at": T0,
        "stock": D("3"),
    }
    values.update(changes)
    return Product(**values)


def memory(
    links: dict[str, tuple[str, str]] | None = None,
    pushed_shop: dict[str, str] | None = None,
    pushed_erp: dict[str, str] | None = None,
    variant_ids: dict[str, str] | None = None,
) -> Memory:
    refs = {sku: LinkRef(shop_id, erp_id, sku) for sku, (shop_id, erp_id) in (links or {}).items()}
    return Memory({r.erp_id: r for r in refs.values()}, refs, variant_ids or {}, pushed_shop or {}, pushed_erp or {})


def fingerprint(product: Product, p: Policy, side: str = "shop") -> str:
    fields = p.own.to_shop if side == "shop" else p.own.to_erp
    return encode(field_digests(product, fields, side="shop" if side == "shop" else "erp"))


def shop_fp(product: Product, p: Policy) -> str:
    desired = to_shop(product, RULES)
    assert desired is not None
    return fingerprint(desired, p)


# --------------------------------------------------------------------------------------------- ERP -> shop


def test_a_new_erp_product_is_created_only_once_the_shop_is_known_not_to_have_it() -> None:
    p = policy()
    known = Known(erp={"A-1": erp()}, shop={})
    looked = lookups_needed(["A-1"], known, memory(), p)
    assert looked.shop_by_sku == ["A-1"] and not looked.shop_by_id and not looked.erp_catalogue
    undecided = plan(["A-1"], known, memory(), p)
    assert not undecided.writes and "A-1" in undecided.skipped
    known.shop_absent.add("A-1")
    result = plan(["A-1"], known, memory(), p)
    [write] = result.writes
    assert (write.side, write.kind, write.sku, write.erp_id) == ("shop", "create", "A-1", "eA-1")
    assert write.product.stock is None and write.modified_at == T0


def test_create_in_shop_off_skips_with_a_reason() -> None:
    result = plan(
        ["A-1"], Known(erp={"A-1": erp()}, shop={}, shop_complete=True), memory(), policy(create_in_shop=False)
    )
    assert not result.writes and result.skipped == {"A-1": "not in the shop and create_in_shop is off"}


def test_first_run_links_equal_products_without_writing() -> None:
    p = policy()
    result = plan(["A-1"], Known(erp={"A-1": erp()}, shop={"A-1": shop()}, shop_complete=True), memory(), p)
    assert not result.writes and result.unchanged == 1
    assert result.links == {"A-1": LinkRef("sA-1", "eA-1", "A-1")}
    assert [(u.erp_sku, u.product_id, u.variant_id) for u in result.units] == [("A-1", "sA-1", None)]
    assert result.pushed_shop == {"A-1": shop_fp(erp(), p)}


def test_only_the_changed_fields_are_written() -> None:
    p = policy()
    changed = erp(price_net=D("12"), price_gross=D("14.28"), description="changed in the ERP")
    result = plan(["A-1"], Known(erp={"A-1": changed}, shop={"A-1": shop()}), memory({"A-1": ("sA-1", "eA-1")}), p)
    [write] = result.writes
    # description is the shop's (erp_to_shop writes every field the shop does not own)
    assert write.kind == "update" and write.fields == {"price"} and write.product.shop_id == "sA-1"
    assert not result.links  # already linked


def test_an_unchanged_product_costs_nothing_when_the_shop_was_not_read() -> None:
    p = policy()
    links, pushed = {"A-1": ("sA-1", "eA-1")}, {"A-1": shop_fp(erp(), p)}
    known = Known(erp={"A-1": erp(modified_at=T0 + timedelta(hours=1))}, shop={})
    assert lookups_needed(["A-1"], known, memory(links, pushed), p).shop_by_id == {}
    result = plan(["A-1"], known, memory(links, pushed), p)
    assert not result.writes and result.unchanged == 1 and not result.pushed_shop
    # a change is written from the fingerprint alone, addressed by the link
    known.erp["A-1"] = erp(name="Cana mare")
    [write] = plan(["A-1"], known, memory(links, pushed), p).writes
    assert write.fields == {"name"} and write.product.shop_id == "sA-1"


def test_variants_are_addressed_by_their_unit_links_and_new_ones_looked_up() -> None:
    p = policy()
    product = Product(
        sku="TS",
        erp_id="eTS",
        vat_rate=D("19"),
        variants=[Variant(sku="TS-S", price_net=D("50")), Variant(sku="TS-M", price_net=D("50"))],
    )
    links, pushed = {"TS": ("70", "eTS")}, {"TS": shop_fp(product, p)}
    known = Known(erp={"TS": product}, shop={})
    looked = lookups_needed(["TS"], known, memory(links, pushed, variant_ids={"TS-S": "71"}), p)
    assert looked.shop_by_id == {"TS": "70"}  # TS-M has no known variant id: read the shop product first
    ids = {"TS-S": "71", "TS-M": "72"}
    assert lookups_needed(["TS"], known, memory(links, pushed, variant_ids=ids), p).shop_by_id == {}
    product.variants[1].price_net = D("55")
    [write] = plan(["TS"], known, memory(links, pushed, variant_ids=ids), p).writes
    assert write.fields == {"price"} and [v.shop_id for v in write.product.variants] == ["71", "72"]


def test_a_basic_product_cannot_become_multi_variant() -> None:
    product = Product(
        sku="A-1", erp_id="eA-1", vat_rate=D("19"), variants=[Variant(sku="A-1-S", price_net=D("1"))], modified_at=T0
    )
    result = plan(["A-1"], Known(erp={"A-1": product}, shop={"A-1": shop()}), memory(), policy())
    [failure] = result.failed
    assert failure.origin == "erp" and failure.modified_at == T0 and "type cannot be changed" in failure.reason


def test_a_record_the_shop_cannot_take_fails_alone() -> None:
    known = Known(erp={"A-1": erp(vat_rate=D("24")), "B-2": erp("B-2")}, shop={}, shop_complete=True)
    result = plan(["A-1", "B-2"], known, memory(), policy())
    assert [f.sku for f in result.failed] == ["A-1"] and "unknown VAT rate 24%" in result.failed[0].reason
    assert [w.sku for w in result.writes] == ["B-2"]


# --------------------------------------------------------------------------------------------- both ways


def test_both_ways_each_field_goes_from_its_owner() -> None:
    p = policy("both")
    links = {"A-1": ("sA-1", "eA-1")}
    pushed_shop = {"A-1": shop_fp(erp(), p)}
    pushed_erp = {"A-1": fingerprint(erp(), p, "erp")}
    # price changed on both sides, description changed on both sides
    e = erp(price_net=D("12"), price_gross=D("14.28"), description="erp rewrote it")
    s = shop(price_net=D("9"), price_gross=D("10.71"), description="the shop's new text")
    result = plan(["A-1"], Known(erp={"A-1": e}, shop={"A-1": s}), memory(links, pushed_shop, pushed_erp), p)
    by_side = {w.side: w for w in result.writes}
    assert by_side["shop"].fields == {"price"} and by_side["shop"].product.price_net == D("12.00")
    assert by_side["erp"].fields == {"description"} and by_side["erp"].product.description == "the shop's new text"
    assert by_side["erp"].erp_id == "eA-1"


def test_both_ways_no_echo_of_our_own_write() -> None:
    p = policy("both")
    links = {"A-1": ("sA-1", "eA-1")}
    pushed_shop, pushed_erp = {"A-1": shop_fp(erp(), p)}, {"A-1": fingerprint(erp(), p, "erp")}
    # the shop product was modified (by our write, or by stock): its fields are what we pushed
    result = plan(["A-1"], Known(erp={}, shop={"A-1": shop(stock=D("0"))}), memory(links, pushed_shop, pushed_erp), p)
    assert not result.writes and result.unchanged == 1


def test_shop_changes_need_the_erp_product_and_shop_products_new_to_the_erp_are_created() -> None:
    p = policy("both", create_in_erp=True)
    known = Known(erp={}, shop={"N-1": shop("N-1")})
    looked = lookups_needed(["N-1"], known, memory(), p)
    assert looked.erp_catalogue and looked.erp_reasons == ["N-1"]
    known.erp_complete = True
    [write] = plan(["N-1"], known, memory(), p).writes
    assert (write.side, write.kind, write.source) == ("erp", "create", known.shop["N-1"])
    assert write.other_fingerprint == fingerprint(shop("N-1"), p)


def test_erp_to_shop_does_not_chase_shop_only_products() -> None:
    looked = lookups_needed(["N-1"], Known(erp={}, shop={"N-1": shop("N-1")}), memory(), policy())
    assert not looked.erp_catalogue and not looked.shop_by_sku
    assert plan(["N-1"], Known(erp={}, shop={"N-1": shop("N-1")}), memory(), policy()).unchanged == 0


def test_a_shop_edit_of_an_erp_owned_field_is_put_back() -> None:
    p = policy()
    links, pushed = {"A-1": ("sA-1", "eA-1")}, {"A-1": shop_fp(erp(), p)}
    edited = shop(price_net=D("1"), price_gross=D("1.19"))
    looked = lookups_needed(["A-1"], Known(erp={}, shop={"A-1": edited}), memory(links, pushed), p)
    assert looked.erp_catalogue  # the ERP's value is needed to put it back
    result = plan(["A-1"], Known(erp={"A-1": erp()}, shop={"A-1": edited}, erp_complete=True), memory(links, pushed), p)
    [write] = result.writes
    assert write.side == "shop" and write.fields == {"price"} and write.product.price_net == D("10.00")
