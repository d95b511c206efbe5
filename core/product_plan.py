"""The product sync's decisions, as pure functions: what to look up, then what to write where.

Each run reads what changed on each side (``erp`` and ``shop``, keyed by ERP SKU). For every SKU it then needs
the other side's current state or, failing that, the fingerprint of what was last pushed there:

- ``lookups_needed`` says which shop products must be fetched, and whether the ERP catalogue must be read
  whole (the ERP protocol has no read-by-id), to decide safely — a product seen for the first time is always
  looked up in the other system before it is created, so a re-run never creates a second copy.
- ``plan`` compares, leg by leg (ERP -> shop for the ERP's fields, shop -> ERP for the shop's), the product
  as the target should have it with the target's current state (when it was read: the truth) or with the
  pushed fingerprint (when it was not: an unchanged product then costs no call); a field the shop's reads do not
  return (``Ownership.pushed_only``: the supplier) is always compared with the pushed fingerprint, and one never
  pushed counts as changed only when it has a value. The result lists the writes
  (each with only the fields that changed), the links and fingerprints to record without a write, the
  records that failed and why, and those skipped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from erpsync.core.mapping import (
    Ownership,
    Rejected,
    StoreRules,
    attach_shop_ids,
    normalised,
    shape_mismatch,
    to_erp,
    to_shop,
)
from erpsync.core.models import Product, Variant
from erpsync.core.product_diff import absent_digest, changed_fields, decode, encode, field_digests
from erpsync.core.skus import UnitRef, erp_sku, shop_sku

Side = Literal["shop", "erp"]


@dataclass(frozen=True)
class LinkRef:
    """A product link: the shop product id and the ERP product id of one SKU."""

    shop_id: str
    erp_id: str
    sku: str | None = None


@dataclass
class Write:
    """One write to one side: ``create`` or ``update`` of ``product`` (in the target's form) with ``fields``."""

    side: Side
    kind: Literal["create", "update"]
    sku: str
    product: Product
    fields: frozenset[str]
    fingerprint: str
    erp_id: str | None = None
    modified_at: datetime | None = None
    # For a create in the ERP: the shop product it comes from (its ids become the links).
    source: Product | None = None
    # The fingerprint of the other leg once this write is done (both sides then agree on its fields).
    other_fingerprint: str | None = None


@dataclass(frozen=True)
class Failed:
    """A record that could not be synced: ``side`` it was going to, ``origin`` the system it was read from."""

    sku: str
    side: Side
    reason: str
    origin: Side
    modified_at: datetime | None = None
    payload: dict[str, object] | None = None


@dataclass
class Plan:
    """What a run does: writes per side, links and fingerprints to record as they are, failures, skips."""

    writes: list[Write] = field(default_factory=list)
    links: dict[str, LinkRef] = field(default_factory=dict)  # ERP SKU -> link to record
    unlinks: list[LinkRef] = field(default_factory=list)  # stale links to drop first (a partner changed)
    units: list[UnitRef] = field(default_factory=list)
    pushed_shop: dict[str, str] = field(default_factory=dict)
    pushed_erp: dict[str, str] = field(default_factory=dict)
    failed: list[Failed] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # ERP SKU -> why
    unchanged: int = 0

    def shop_writes(self) -> list[Write]:
        return [w for w in self.writes if w.side == "shop"]

    def erp_writes(self) -> list[Write]:
        return [w for w in self.writes if w.side == "erp"]


@dataclass
class Known:
    """What the run knows: both sides' products by ERP SKU, and what it knows to be absent."""

    erp: dict[str, Product]
    shop: dict[str, Product]
    erp_complete: bool = False
    shop_complete: bool = False
    shop_absent: set[str] = field(default_factory=set)

    def erp_absent(self, sku: str) -> bool:
        return self.erp_complete and sku not in self.erp

    def shop_is_absent(self, sku: str) -> bool:
        return sku not in self.shop and (self.shop_complete or sku in self.shop_absent)


@dataclass(frozen=True)
class Memory:
    """What earlier runs left: links (by ERP id and by ERP SKU), units, pushed fingerprints per side."""

    links: Mapping[str, LinkRef]  # ERP product id -> link
    links_by_sku: Mapping[str, LinkRef]  # ERP SKU -> link
    variant_ids: Mapping[str, str]  # shop SKU of a variant -> its shop variant id
    pushed_shop: Mapping[str, str]
    pushed_erp: Mapping[str, str]

    def link_for(self, sku: str, erp_product: Product | None) -> LinkRef | None:
        if erp_product is not None and erp_product.erp_id and erp_product.erp_id in self.links:
            return self.links[erp_product.erp_id]
        return self.links_by_sku.get(sku)


@dataclass(frozen=True)
class Policy:
    """The store's product rules for this run."""

    rules: StoreRules
    own: Ownership
    to_shop_leg: bool
    to_erp_leg: bool
    create_in_shop: bool
    create_in_erp: bool


def shop_key(product: Product, prefix: str) -> str | None:
    """The ERP SKU a shop product stands for, or None when its SKU is not under this store's prefix."""
    return erp_sku(prefix, product.sku) or None


def _variant_skus(product: Product) -> list[str]:
    return [v.sku for v in product.variants]


def _shop_view(product: Product, policy: Policy, like: Product | None = None) -> dict[str, str]:
    skus = None if like is None or not like.variants else _variant_skus(like)
    return field_digests(product, policy.own.to_shop, side="shop", variant_skus=skus)


def _shop_read_view(product: Product, policy: Policy, like: Product | None = None) -> dict[str, str]:
    """The digests of a product read from the shop: the ERP -> shop fields less those reads do not return."""
    skus = None if like is None or not like.variants else _variant_skus(like)
    fields = policy.own.to_shop - policy.own.pushed_only
    return field_digests(product, fields, side="shop", variant_skus=skus)


def _pushed_only_changed(pushed: str | None, digests: dict[str, str], policy: Policy) -> set[str]:
    """The fields the shop does not return whose digest moved since the last push (never pushed: changed only
    when it has a value, so a product without supplier costs no write)."""
    old = decode(pushed) or {}
    return {name for name in policy.own.pushed_only if old.get(name, absent_digest()) != digests[name]}


def _erp_view(product: Product, policy: Policy, like: Product | None = None) -> dict[str, str]:
    skus = None if like is None or not like.variants else _variant_skus(like)
    return field_digests(product, policy.own.to_erp, side="erp", variant_skus=skus)


# --------------------------------------------------------------------------------------------- look-ups


@dataclass(frozen=True)
class Lookups:
    """Shop products to fetch (by link: shop id, else by SKU) and whether the whole ERP catalogue is needed."""

    shop_by_id: dict[str, str]  # ERP SKU -> shop product id
    shop_by_sku: list[str]  # ERP SKUs
    erp_catalogue: bool
    erp_reasons: list[str]


def lookups_needed(subjects: Iterable[str], known: Known, memory: Memory, policy: Policy) -> Lookups:
    """What must be fetched before ``plan`` can decide every subject SKU without guessing."""
    by_id: dict[str, str] = {}
    by_sku: list[str] = []
    erp_reasons: list[str] = []
    for sku in subjects:
        erp_product, shop_product = known.erp.get(sku), known.shop.get(sku)
        link = memory.link_for(sku, erp_product)
        if erp_product is not None and shop_product is None and not known.shop_is_absent(sku):
            need = False
            if policy.to_shop_leg and (
                link is None or sku not in memory.pushed_shop or _unknown_variants(erp_product, memory, policy)
            ):
                need = True
            if policy.to_erp_leg and (link is None or _erp_drifted(sku, erp_product, memory, policy)):
                need = True
            if need:
                if link is not None:
                    by_id[sku] = link.shop_id
                else:
                    by_sku.append(sku)
        if erp_product is not None and not known.erp_complete and _sku_moved(sku, erp_product, memory):
            erp_reasons.append(sku)  # another ERP product had this SKU: a duplicate, or a re-created record?
        if shop_product is not None and erp_product is None and not known.erp_complete:
            unknown_to_erp = policy.to_erp_leg and (link is None or sku not in memory.pushed_erp)
            drifted = policy.to_shop_leg and link is not None and _shop_drifted(sku, shop_product, memory, policy)
            if unknown_to_erp or drifted:
                erp_reasons.append(sku)
    return Lookups(by_id, by_sku, bool(erp_reasons), erp_reasons)


def _sku_moved(sku: str, erp_product: Product, memory: Memory) -> bool:
    """The SKU is linked to another ERP product than this one."""
    erp_id = erp_product.erp_id
    other = memory.links_by_sku.get(sku)
    return bool(erp_id) and erp_id not in memory.links and other is not None and other.erp_id != erp_id


def _unknown_variants(erp_product: Product, memory: Memory, policy: Policy) -> bool:
    """A variant whose shop id is not known: the shop product must be read to address (or add) it."""
    prefix = policy.rules.sku_prefix
    return any(shop_sku(prefix, v.sku) not in memory.variant_ids for v in erp_product.variants)


def _erp_drifted(sku: str, erp_product: Product, memory: Memory, policy: Policy) -> bool:
    """The ERP's copy of the shop-owned fields is not what was pushed (or nothing was)."""
    pushed = memory.pushed_erp.get(sku)
    if pushed is None:
        return True
    try:
        current = _erp_view(normalised(erp_product), policy)
    except Rejected:
        return False
    return bool(changed_fields(pushed, current))


def _shop_drifted(sku: str, shop_product: Product, memory: Memory, policy: Policy) -> bool:
    """The shop's copy of the ERP-owned fields is not what was pushed (or nothing was)."""
    pushed = memory.pushed_shop.get(sku)
    if pushed is None:
        return True
    return bool(changed_fields(pushed, _shop_read_view(shop_product, policy)))


# --------------------------------------------------------------------------------------------- the plan


def units_of(shop_product: Product, prefix: str) -> list[UnitRef]:
    """The inventory units (basic product, or each variant) of a shop product that are this store's SKUs."""
    if shop_product.shop_id is None:
        return []
    units = []
    items: list[Product | Variant] = list(shop_product.variants) or [shop_product]
    for unit in items:
        code = erp_sku(prefix, unit.sku)
        variant_id = unit.shop_id if shop_product.variants else None
        if code and (variant_id or not shop_product.variants):
            units.append(UnitRef(code, unit.sku, shop_product.shop_id, variant_id))
    return units


class _Planner:
    def __init__(self, known: Known, memory: Memory, policy: Policy) -> None:
        self.known, self.memory, self.policy = known, memory, policy
        self.plan = Plan()

    def fail(self, sku: str, side: Side, reason: str, product: Product, origin: Side) -> None:
        payload = product.model_dump(mode="json", exclude_none=True)
        self.plan.failed.append(Failed(sku, side, reason, origin, product.modified_at, payload))

    def link(self, sku: str, shop_product: Product, erp_id: str) -> None:
        if shop_product.shop_id is None:
            return
        self.relink(sku, LinkRef(shop_product.shop_id, erp_id, shop_product.sku))
        self.plan.units.extend(units_of(shop_product, self.policy.rules.sku_prefix))

    def relink(self, sku: str, wanted: LinkRef) -> None:
        """Record ``wanted``; a link of the same ERP product to another shop product (gone from the shop), or of
        the SKU to another ERP product (the SKU moved: the whole catalogue was read, no duplicate), is dropped."""
        current = [
            ref for ref in (self.memory.links.get(wanted.erp_id), self.memory.links_by_sku.get(sku)) if ref is not None
        ]
        if wanted in current:
            return
        exact = [(ref.shop_id, ref.erp_id) == (wanted.shop_id, wanted.erp_id) for ref in current]
        self.plan.unlinks.extend(ref for ref, same in zip(current, exact, strict=True) if not same)
        self.plan.links[sku] = wanted

    def run(self, subjects: Iterable[str]) -> Plan:
        for sku in dict.fromkeys(subjects):
            self.one(sku)
        return self.plan

    def one(self, sku: str) -> None:
        erp_product, shop_product = self.known.erp.get(sku), self.known.shop.get(sku)
        desired: Product | None = None
        if erp_product is not None and self.policy.to_shop_leg:
            try:
                desired = to_shop(erp_product, self.policy.rules)
            except Rejected as why:
                self.fail(sku, "shop", str(why), erp_product, "erp")
                return
            if desired is None:
                self.plan.skipped[sku] = "left out by the hook"
                return
        from_shop: Product | None = None
        if shop_product is not None and self.policy.to_erp_leg:
            try:
                from_shop = to_erp(shop_product, self.policy.rules)
            except Rejected as why:
                self.fail(sku, "erp", str(why), shop_product, "shop")
                return
            if from_shop is None:
                self.plan.skipped[sku] = "left out by the hook"
                return
        wrote = failed = compared = False
        if desired is not None and erp_product is not None:
            outcome = self.to_shop(sku, erp_product, desired, shop_product)
            wrote, failed, compared = wrote or outcome == "write", failed or outcome == "failed", True
        if from_shop is not None and shop_product is not None and not failed:
            outcome = self.to_erp(sku, shop_product, from_shop, erp_product)
            wrote, failed, compared = wrote or outcome == "write", failed or outcome == "failed", True
        if compared and not wrote and not failed and sku not in self.plan.skipped:
            self.plan.unchanged += 1

    # -- ERP -> shop ------------------------------------------------------------------------------------

    def to_shop(self, sku: str, erp_product: Product, desired: Product, current: Product | None) -> str:
        policy, memory = self.policy, self.memory
        erp_id = erp_product.erp_id or sku
        digests = _shop_view(desired, policy)
        fingerprint = encode(digests)
        link = memory.link_for(sku, erp_product)
        if current is not None:
            mismatch = shape_mismatch(desired, current)
            if mismatch:
                self.fail(sku, "shop", mismatch, erp_product, "erp")
                return "failed"
            self.link(sku, current, erp_id)
            readable = {name: digest for name, digest in digests.items() if name not in policy.own.pushed_only}
            changed = changed_fields(_shop_read_view(current, policy, like=desired), readable)
            changed |= _pushed_only_changed(memory.pushed_shop.get(sku), digests, policy)
            variant_ids = {v.sku: v.shop_id for v in current.variants if v.shop_id}
            return self._shop_update(sku, erp_product, desired, current.shop_id, variant_ids, changed, fingerprint)
        if self.known.shop_is_absent(sku):
            if not policy.create_in_shop:
                self.plan.skipped[sku] = "not in the shop and create_in_shop is off"
                return "skipped"
            self.plan.writes.append(
                Write("shop", "create", sku, desired, frozenset(digests), fingerprint, erp_id, erp_product.modified_at)
            )
            return "write"
        pushed = memory.pushed_shop.get(sku)
        if link is None or pushed is None:
            self.plan.skipped[sku] = "the shop product could not be looked up"
            return "skipped"
        if link.erp_id != erp_id:
            if not self.known.erp_complete:
                self.plan.skipped[sku] = f"the SKU is linked to ERP product {link.erp_id}: the ERP must be read whole"
                return "skipped"
            self.relink(sku, LinkRef(link.shop_id, erp_id, link.sku))
        readable = {name: digest for name, digest in digests.items() if name not in policy.own.pushed_only}
        changed = changed_fields(pushed, readable) | _pushed_only_changed(pushed, digests, policy)
        variant_ids = {v.sku: memory.variant_ids[v.sku] for v in desired.variants if v.sku in memory.variant_ids}
        return self._shop_update(sku, erp_product, desired, link.shop_id, variant_ids, changed, fingerprint)

    def _shop_update(
        self,
        sku: str,
        erp_product: Product,
        desired: Product,
        product_id: str | None,
        variant_ids: dict[str, str],
        changed: set[str],
        fingerprint: str,
    ) -> str:
        if not changed:
            if self.memory.pushed_shop.get(sku) != fingerprint:
                self.plan.pushed_shop[sku] = fingerprint
            return "unchanged"
        target = attach_shop_ids(desired, product_id, variant_ids)
        self.plan.writes.append(
            Write(
                "shop",
                "update",
                sku,
                target,
                frozenset(changed),
                fingerprint,
                erp_product.erp_id or sku,
                erp_product.modified_at,
            )
        )
        return "write"

    # -- shop -> ERP ------------------------------------------------------------------------------------

    def to_erp(self, sku: str, shop_product: Product, from_shop: Product, current: Product | None) -> str:
        policy, memory = self.policy, self.memory
        digests = _erp_view(from_shop, policy)
        fingerprint = encode(digests)
        link = memory.link_for(sku, current)
        if current is not None:
            try:
                current_norm = normalised(current)
            except Rejected as why:
                self.fail(sku, "erp", str(why), current, "erp")
                return "failed"
            mismatch = shape_mismatch(from_shop, current_norm)
            if mismatch:
                self.fail(sku, "erp", mismatch, shop_product, "shop")
                return "failed"
            erp_id = current.erp_id or sku
            self.link(sku, shop_product, erp_id)
            changed = changed_fields(_erp_view(current_norm, policy, like=from_shop), digests)
            return self._erp_update(sku, shop_product, from_shop, erp_id, changed, fingerprint)
        if self.known.erp_absent(sku):
            if not policy.create_in_erp:
                self.plan.skipped[sku] = "not in the ERP and create_in_erp is off (or the ERP cannot create products)"
                return "skipped"
            other = None
            if policy.own.to_shop:
                other = encode(_shop_read_view(shop_product, policy))
            self.plan.writes.append(
                Write(
                    "erp",
                    "create",
                    sku,
                    from_shop,
                    frozenset(digests),
                    fingerprint,
                    None,
                    shop_product.modified_at,
                    source=shop_product,
                    other_fingerprint=other,
                )
            )
            return "write"
        pushed = memory.pushed_erp.get(sku)
        if link is None or pushed is None:
            self.plan.skipped[sku] = "the ERP product could not be looked up"
            return "skipped"
        changed = changed_fields(pushed, digests)
        return self._erp_update(sku, shop_product, from_shop, link.erp_id, changed, fingerprint)

    def _erp_update(
        self, sku: str, shop_product: Product, from_shop: Product, erp_id: str, changed: set[str], fingerprint: str
    ) -> str:
        if not changed:
            if self.memory.pushed_erp.get(sku) != fingerprint:
                self.plan.pushed_erp[sku] = fingerprint
            return "unchanged"
        target = from_shop.model_copy(update={"erp_id": erp_id})
        self.plan.writes.append(
            Write("erp", "update", sku, target, frozenset(changed), fingerprint, erp_id, shop_product.modified_at)
        )
        return "write"


def erp_fingerprint(shop_product: Product, policy: Policy) -> str | None:
    """The shop -> ERP fingerprint of a shop product (None when that leg carries nothing or it is not ours)."""
    if not policy.own.to_erp:
        return None
    try:
        from_shop = to_erp(shop_product, policy.rules)
    except Rejected:
        return None
    return None if from_shop is None else encode(_erp_view(from_shop, policy))


def plan(subjects: Iterable[str], known: Known, memory: Memory, policy: Policy) -> Plan:
    """Decide, for every subject SKU, what to write where (see the module docstring)."""
    return _Planner(known, memory, policy).run(subjects)
