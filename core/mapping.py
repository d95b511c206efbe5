"""Products between the ERP and one shop: field ownership, per-store transforms and the store's hook.

Both sides are compared in canonical form (``core.models.Product``):

- ``to_shop(erp_product, rules)``: an ERP product as the shop should have it — the store's SKU prefix on
  every SKU, net and gross prices to the cent from the VAT rate (which must map to a shop tax id), no stock
  (stock is the stock flow's), then the store's hook; a product the shop cannot take raises ``Rejected``.
- ``to_erp(shop_product, rules)``: a shop product as the ERP should have it — the prefix taken off (a SKU
  without it is not this store's: ``None``), no stock, then the hook.

Ownership (``ownership()``) says which fields each leg writes: ERP-owned fields go ERP -> shop only,
shop-owned fields shop -> ERP only, so a conflict is settled by the owner and never by whichever side
changed last. The product's main supplier goes ERP -> shop into the store's ``supplier_field`` when one is set
(the synced field ``supplier:<shop field>``); the shop is never asked for it back (``Ownership.pushed_only``).
See ``docs/products.md``.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from erpsync.core.config import PRODUCT_FIELDS, ProductSettings, StoreSettings, percent_key
from erpsync.core.models import CENT, Product, Variant, gross_from_net, net_from_gross
from erpsync.core.product_diff import supplier_key
from erpsync.core.skus import erp_sku, shop_sku
from erpsync.core.vat import TaxTable

log = logging.getLogger("erpsync.products")

Target = Literal["shop", "erp"]

# The configurable product fields the sync carries (core.config.PRODUCT_FIELDS less those the canonical
# product has no place for: category needs a name -> shop id mapping, meta_* are shop-only SEO texts).
NOT_SYNCED: tuple[str, ...] = ("category", "meta_title", "meta_description")
SYNC_FIELDS: tuple[str, ...] = tuple(field for field in PRODUCT_FIELDS if field not in NOT_SYNCED)

# A hook: called with the canonical product about to be written and where it goes; returns the product to
# write (the same object, changed, or a new one), or None to leave this product out of the run.
Hook = Callable[[Product, "HookContext"], Product | None]


class Rejected(ValueError):
    """A product that cannot be written as it is; the message is the reason for the failures table."""


class HookError(Exception):
    """The configured hook cannot be loaded (a configuration problem: the run fails)."""


@dataclass(frozen=True)
class HookContext:
    """What a hook is told besides the product: the store, and the side the product is written to."""

    store: str
    target: Target


@dataclass(frozen=True)
class Ownership:
    """The fields each leg writes: ``to_shop`` (ERP -> shop) and ``to_erp`` (shop -> ERP); ``pushed_only``: the
    fields of ``to_shop`` the shop's reads do not return, so a change is decided from what was last pushed."""

    to_shop: frozenset[str]
    to_erp: frozenset[str]
    pushed_only: frozenset[str] = frozenset()

    def describe(self) -> str:
        return (
            f"ERP -> shop: {', '.join(sorted(self.to_shop)) or 'nothing'}; "
            f"shop -> ERP: {', '.join(sorted(self.to_erp)) or 'nothing'}"
        )


def ownership(
    settings: ProductSettings, erp_fields: Iterable[str] | None = None, *, erp_suppliers: bool = False
) -> Ownership:
    """Which fields go which way for this store's direction.

    ``erp_to_shop`` writes every field the shop does not own; ``shop_to_erp`` every field the ERP does not own;
    ``both`` the ERP's fields to the shop and the shop's to the ERP (a field in neither list is set once, at
    creation). ``erp_fields`` (the connector's ``product_fields``, when it declares them) drops the fields the
    ERP cannot hold: comparing those would look like a change on every run. The supplier goes to the shop
    (``supplier:<field>``) when the store names a ``supplier_field`` and the ERP links products to suppliers
    (``erp_suppliers``).
    """
    carried = frozenset(SYNC_FIELDS) if erp_fields is None else frozenset(SYNC_FIELDS) & frozenset(erp_fields)
    erp_owns, shop_owns = frozenset(settings.erp_owns), frozenset(settings.shop_owns)
    if settings.direction == "shop_to_erp":
        return Ownership(to_shop=frozenset(), to_erp=carried - erp_owns)
    wanted = settings.supplier_field and erp_suppliers
    supplier = frozenset({supplier_key(settings.supplier_field)}) if wanted else frozenset()
    if settings.direction == "erp_to_shop":
        return Ownership(to_shop=(carried - shop_owns) | supplier, to_erp=frozenset(), pushed_only=supplier)
    return Ownership(to_shop=(carried & erp_owns) | supplier, to_erp=carried & shop_owns, pushed_only=supplier)


# --------------------------------------------------------------------------------------------- the hook

_hooks: dict[str, Hook] = {}


def load_hook(path: str) -> Hook | None:
    """The function named ``package.module:function`` (cached), or None for ``""``; HookError if it is not there."""
    if not path:
        return None
    if path in _hooks:
        return _hooks[path]
    module_name, _, attribute = path.partition(":")
    try:
        target: object = importlib.import_module(module_name)
        for part in attribute.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise HookError(f"products hook {path!r} cannot be loaded: {type(exc).__name__}: {exc}") from None
    if not callable(target):
        raise HookError(f"products hook {path!r} is not a function")
    hook: Hook = target
    _hooks[path] = hook
    return hook


def _apply_hook(product: Product, rules: StoreRules, target: Target) -> Product | None:
    if rules.hook is None:
        return product
    before = product.model_copy(deep=True)
    try:
        result = rules.hook(product.model_copy(deep=True), HookContext(rules.store, target))
    except Exception as exc:  # the hook is the store's own code: any error rejects this product only
        raise Rejected(f"hook {rules.hook_path}: {type(exc).__name__}: {exc}") from exc
    if result is None:
        return None
    if not isinstance(result, Product):
        raise Rejected(f"hook {rules.hook_path} returned {type(result).__name__}, not a Product or None")
    return _repair_prices(before, result)


def _repair_prices(before: Product, after: Product) -> Product:
    """When a hook changed one price of a net/gross pair, recompute the other from the VAT rate."""
    vat = after.vat_rate

    def fix(old: Product | Variant, new: Product | Variant) -> None:
        for net, gross in (("price_net", "price_gross"), ("old_price_net", "old_price_gross")):
            net_changed = getattr(old, net) != getattr(new, net)
            gross_changed = getattr(old, gross) != getattr(new, gross)
            if vat is None or net_changed == gross_changed:
                continue
            if net_changed and getattr(new, net) is not None:
                setattr(new, gross, gross_from_net(getattr(new, net), vat))
            elif gross_changed and getattr(new, gross) is not None:
                setattr(new, net, net_from_gross(getattr(new, gross), vat))

    fix(before, after)
    old_variants = {v.sku: v for v in before.variants}
    for variant in after.variants:
        if variant.sku in old_variants:
            fix(old_variants[variant.sku], variant)
    return after


# --------------------------------------------------------------------------------------------- transforms


@dataclass(frozen=True)
class StoreRules:
    """What the transforms need to know of one store."""

    store: str
    sku_prefix: str = ""
    vat_taxes: dict[str, int] = field(default_factory=dict)
    hook_path: str = ""
    hook: Hook | None = None
    vat_source: str = "vat_taxes of the store"  # where vat_taxes came from, for messages

    @classmethod
    def of(cls, store: StoreSettings, taxes: TaxTable | None = None) -> StoreRules:
        """The rules of a configured store (loads its hook: HookError when it cannot be); ``taxes``: the store's
        tax table (``tax_table``), else its configured ``vat_taxes`` (none configured: maps no rate)."""
        products = store.products
        table = taxes or TaxTable.from_config(products.vat_taxes or {})
        return cls(
            store=store.name,
            sku_prefix=store.sku_prefix,
            vat_taxes=dict(table.by_rate),
            hook_path=products.hook,
            hook=load_hook(products.hook),
            vat_source=table.source,
        )

    def tax_id(self, vat_rate: Decimal | None) -> int | None:
        """The shop tax id of a VAT percentage, or None when the store maps none."""
        if vat_rate is None:
            return None
        return self.vat_taxes.get(percent_key(vat_rate))


def _cents(value: Decimal | None) -> Decimal | None:
    return None if value is None else value.quantize(CENT)


def _price_pair(
    net: Decimal | None, gross: Decimal | None, vat: Decimal | None, what: str
) -> tuple[Decimal | None, Decimal | None]:
    """Net and gross to the cent; the missing one of the pair derived from the other and the VAT rate."""
    net, gross = _cents(net), _cents(gross)
    if vat is not None:
        if gross is None and net is not None:
            gross = gross_from_net(net, vat)
        elif net is None and gross is not None:
            net = net_from_gross(gross, vat)
    for value in (net, gross):
        if value is not None and value < 0:
            raise Rejected(f"negative {what} {value}")
    return net, gross


def _prices(item: Product | Variant, vat: Decimal | None, key: str) -> dict[str, Decimal | None]:
    """The item's price fields normalised (a dict for ``model_copy(update=...)``); Rejected when negative."""
    net, gross = _price_pair(item.price_net, item.price_gross, vat, f"price of {key}")
    old_net, old_gross = _price_pair(item.old_price_net, item.old_price_gross, vat, f"old price of {key}")
    if item.weight is not None and item.weight < 0:
        raise Rejected(f"negative weight {item.weight} of {key}")
    return {"price_net": net, "price_gross": gross, "old_price_net": old_net, "old_price_gross": old_gross}


def _with_prices(product: Product) -> Product:
    """A copy with every price pair normalised (copies are shallow: the canonical values are immutable)."""
    vat = product.vat_rate
    variants = [v.model_copy(update=_prices(v, vat, v.sku)) for v in product.variants]
    return product.model_copy(update={**_prices(product, vat, product.sku), "variants": variants})


def _check_for_shop(product: Product, rules: StoreRules) -> None:
    """What the shop would refuse (or what would corrupt it): raise Rejected with the reason."""
    vat = product.vat_rate
    if vat is None:
        raise Rejected("no VAT rate: the shop needs one (the tax of the product)")
    if rules.tax_id(vat) is None:
        known = ", ".join(sorted(rules.vat_taxes, key=Decimal)) or "none"
        raise Rejected(f"unknown VAT rate {percent_key(vat)}% ({rules.vat_source} maps: {known})")
    if product.variants:
        skus = [v.sku for v in product.variants]
        if len(set(skus)) != len(skus) or product.sku in skus:
            raise Rejected("a variant SKU is repeated within the product")
        for variant in product.variants:
            if variant.price_net is None:
                raise Rejected(f"variant {variant.sku} has no price")
    elif product.price_net is None:
        raise Rejected("no price")


def _copy(product: Product, **changes: object) -> Product:
    """A copy that shares no mutable container with ``product`` (no validation: the values are canonical)."""
    return product.model_copy(
        update={"attributes": dict(product.attributes), "images": list(product.images), **changes}
    )


def to_shop(product: Product, rules: StoreRules) -> Product | None:
    """The ERP product as the shop should have it (None: the hook left it out); Rejected when it cannot be."""
    if not product.sku.strip() or any(not v.sku.strip() for v in product.variants):
        raise Rejected("no SKU" if not product.sku.strip() else "a variant without SKU")
    prefix, vat = rules.sku_prefix, product.vat_rate
    variants = [
        v.model_copy(
            update={
                "sku": shop_sku(prefix, v.sku),
                "shop_id": None,
                "stock": None,
                "options": dict(v.options),
                **_prices(v, vat, v.sku),
            }
        )
        for v in product.variants
    ]
    if variants:
        # Prices, old prices and weight of a multi-variant product live on its variants.
        parent: dict[str, object] = dict.fromkeys(
            ("price_net", "price_gross", "old_price_net", "old_price_gross", "weight")
        )
    else:
        parent = dict(_prices(product, vat, product.sku))
    shop = _copy(product, sku=shop_sku(prefix, product.sku), shop_id=None, stock=None, variants=variants, **parent)
    if rules.hook is not None:
        hooked = _apply_hook(shop, rules, "shop")
        if hooked is None:
            return None
        shop = _with_prices(hooked)
    _check_for_shop(shop, rules)
    return shop


def to_erp(product: Product, rules: StoreRules) -> Product | None:
    """The shop product as the ERP should have it; None when its SKU is not this store's or the hook drops it."""
    prefix = rules.sku_prefix
    code = erp_sku(prefix, product.sku)
    if not code:
        return None
    variants = []
    for variant in product.variants:
        variant_code = erp_sku(prefix, variant.sku)
        if not variant_code:
            raise Rejected(f"variant {variant.sku} does not carry the store's SKU prefix {prefix!r}")
        variants.append(
            variant.model_copy(
                update={"sku": variant_code, "erp_id": None, "stock": None, "options": dict(variant.options)}
            )
        )
    erp = _with_prices(_copy(product, sku=code, erp_id=None, stock=None, variants=variants))
    if rules.hook is not None:
        hooked = _apply_hook(erp, rules, "erp")
        return None if hooked is None else _with_prices(hooked)
    return erp


def normalised(product: Product) -> Product:
    """A copy with both prices of every pair to the cent (the missing one derived), as the ERP side is compared."""
    return _with_prices(product)


def attach_shop_ids(product: Product, product_id: str | None, variant_ids: dict[str, str]) -> Product:
    """The product with the shop ids it is known by (``variant_ids``: shop SKU -> variant id)."""
    variants = [v.model_copy(update={"shop_id": variant_ids.get(v.sku)}) for v in product.variants]
    return product.model_copy(update={"shop_id": product_id, "variants": variants})


def shape_mismatch(desired: Product, current: Product) -> str | None:
    """Why ``current`` (one side's product) cannot be updated into ``desired``, or None."""
    if bool(desired.variants) != bool(current.variants):
        want = "multi-variant" if desired.variants else "basic"
        have = "multi-variant" if current.variants else "basic"
        return f"the product is {want} on one side and {have} on the other (the type cannot be changed)"
    return None
