"""Tasks of the product sync (``flows/products.py``) around the plan: set up the run, plan, record the links the
plan found, and finish (failures, cursors). Reading both sides and the look-ups: ``tasks/product_reads.py``;
carrying out the writes: ``tasks/product_writes.py``.

Each task works on a whole read or on a batch of writes, never on one product. The decisions are pure
(``core.product_plan``); the tasks only fetch what the plan needs and carry out its writes, recording after
each write what makes a re-run safe: the product link (shop id <-> ERP id) and the inventory units (for the
stock flow) as soon as a product exists on both sides, then the fingerprint of what was written.

State kept per store (``docs/products.md``): links ``product`` and ``unit``; pushed fingerprints ``product``
(ERP -> shop fields, by ERP SKU) and ``product-erp`` (shop -> ERP fields); cursors ``products:erp`` (UTC
time of the ERP's last read window) and ``products:shop``; failures ``product`` (by ERP SKU).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from prefect import task
from prefect.cache_policies import NO_CACHE

from erpsync.core.cursors import format_cursor, parse_cursor
from erpsync.core.mapping import Ownership, StoreRules, ownership
from erpsync.core.product_plan import Failed, Known, LinkRef, Memory, Plan, Policy, Write, plan
from erpsync.core.product_run import failed_shop_id, run_cursors
from erpsync.core.skus import erp_sku
from erpsync.core.units import load_units, save_units
from erpsync.core.vat import TaxTable
from erpsync.runtime.failures import describe, record_failure, resolve_failures
from erpsync.runtime.logs import run_logger
from erpsync.runtime.store_runtime import StoreRuntime

log = logging.getLogger("erpsync.products")

FLOW = "products"
PRODUCT = "product"  # links, failures, pushed (ERP -> shop fingerprints)
PUSHED_ERP = "product-erp"  # pushed fingerprints of the shop -> ERP leg
ERP_CURSOR = "products:erp"
SHOP_CURSOR = "products:shop"
ERP_CURSOR_MARGIN = timedelta(minutes=2)  # writes committed late (or a clock a little off) are read again
TO_SHOP = "ERP -> shop"  # how a failure names its leg (the failures table's error starts with it)
TO_ERP = "shop -> ERP"


def _logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    return run_logger(log)


def _now() -> datetime:
    return datetime.now(UTC)


# ------------------------------------------------------------------------------------------- the run's set-up


@dataclass
class Setup:
    """What a run starts from: the policy, what earlier runs left, and the read windows."""

    policy: Policy
    memory: Memory
    erp_since: datetime | None  # None: read the whole ERP catalogue
    shop_since: datetime | None  # None: read the whole shop
    erp_window: datetime  # the ERP cursor's next value (captured before reading)
    shop_window: datetime
    previous_erp: datetime | None
    previous_shop: datetime | None
    include_images: bool
    record_shop_errors: bool
    default_category_id: int | None
    taxes: TaxTable = field(default_factory=TaxTable)  # VAT percent <-> shop tax id (vat_taxes or the shop's table)
    retry_shop_ids: list[str] = field(default_factory=list)  # shop products that failed: read again by id
    notes: list[str] = field(default_factory=list)

    @property
    def rules(self) -> StoreRules:
        return self.policy.rules


def product_policy(runtime: StoreRuntime, taxes: TaxTable | None = None) -> tuple[Policy, list[str]]:
    """The store's product policy for this ERP (legs, ownership, creation), and notes on what is left out;
    ``taxes``: the store's tax table (``tax_table``), else its configured ``vat_taxes``."""
    settings = runtime.store.products
    caps = runtime.erp.capabilities
    notes = []
    own: Ownership = ownership(
        settings, getattr(runtime.erp, "product_fields", None), erp_suppliers=caps.product_suppliers
    )
    to_shop_leg = settings.direction in ("erp_to_shop", "both")
    to_erp_leg = settings.direction in ("shop_to_erp", "both")
    if to_erp_leg and not caps.products_update:
        notes.append(f"{runtime.erp.system} cannot update products: shop changes are not written to it")
        own = Ownership(own.to_shop, frozenset(), own.pushed_only)
    if settings.supplier_field and not caps.product_suppliers:
        notes.append(
            f"{runtime.erp.system} does not link products to suppliers: supplier_field "
            f"{settings.supplier_field!r} gets nothing"
        )
    create_in_erp = to_erp_leg and settings.create_in_erp and caps.products_create
    if to_erp_leg and settings.create_in_erp and not caps.products_create:
        notes.append(f"{runtime.erp.system} cannot create products: create_in_erp has no effect")
    policy = Policy(
        rules=StoreRules.of(runtime.store, taxes),
        own=own,
        to_shop_leg=to_shop_leg,
        to_erp_leg=to_erp_leg,
        create_in_shop=to_shop_leg and settings.create_in_shop,
        create_in_erp=create_in_erp,
    )
    return policy, notes


def load_memory(runtime: StoreRuntime) -> Memory:
    """Links, inventory units and pushed fingerprints of the store."""
    state, store, prefix = runtime.state, runtime.name, runtime.store.sku_prefix
    by_erp_id: dict[str, LinkRef] = {}
    by_sku: dict[str, LinkRef] = {}
    for link in state.links(store, PRODUCT):
        ref = LinkRef(link.shop_id, link.erp_id, link.sku)
        by_erp_id[link.erp_id] = ref
        code = erp_sku(prefix, link.sku) if link.sku else None
        if code:
            by_sku[code] = ref
    variant_ids = {}
    for unit in load_units(state, store).values():
        if unit.variant_id:
            variant_ids[unit.shop_sku] = unit.variant_id
    pushed_shop = {k: p.hash for k, p in state.get_pushed(store, PRODUCT).items() if p.hash}
    pushed_erp = {k: p.hash for k, p in state.get_pushed(store, PUSHED_ERP).items() if p.hash}
    return Memory(by_erp_id, by_sku, variant_ids, pushed_shop, pushed_erp)


def prepare(runtime: StoreRuntime, full: bool) -> Setup:
    """The policy, memory and read windows of a run (plain function: the task below wraps it); the shop's tax
    table is read here, once, when the store configures no ``vat_taxes`` (and the ERP's products can be read)."""
    configured = runtime.store.products.vat_taxes
    taxes = (
        runtime.tax_table()
        if configured is None and runtime.erp.capabilities.products_read
        else TaxTable.from_config(configured or {})
    )
    policy, notes = product_policy(runtime, taxes)
    state, store = runtime.state, runtime.name
    previous_erp = parse_cursor(state.get_cursor(store, ERP_CURSOR))
    previous_shop = parse_cursor(state.get_cursor(store, SHOP_CURSOR))
    now = _now()
    erp_since = None
    if not full and previous_erp is not None:
        if runtime.erp.capabilities.products_changed_since:
            erp_since = previous_erp
        else:
            notes.append(f"{runtime.erp.system} cannot list changed products: the whole catalogue is read and diffed")
    shop_since = None if full else previous_shop
    synced = policy.own.to_shop | policy.own.to_erp
    retry = [
        shop_id
        for f in state.open_failures(store, PRODUCT)
        if f.error.startswith(TO_ERP) and (shop_id := failed_shop_id(f.payload))
    ]
    return Setup(
        policy=policy,
        memory=load_memory(runtime),
        erp_since=erp_since,
        shop_since=shop_since,
        erp_window=now - ERP_CURSOR_MARGIN,
        shop_window=now,
        previous_erp=previous_erp,
        previous_shop=previous_shop,
        include_images="images" in synced,
        record_shop_errors=policy.to_erp_leg,
        default_category_id=runtime.store.products.default_category_id or None,
        taxes=taxes,
        retry_shop_ids=retry if policy.to_erp_leg else [],
        notes=notes,
    )


@task(name="products-prepare", cache_policy=NO_CACHE)
def prepare_run(runtime: StoreRuntime, full: bool) -> Setup:
    """Load the store's policy, links, fingerprints and cursors."""
    setup = prepare(runtime, full)
    _logger().info(
        "products %s: %s; ERP read %s, shop read %s",
        runtime.name,
        setup.policy.own.describe(),
        f"since {setup.erp_since.isoformat()}" if setup.erp_since else "whole",
        f"since {setup.shop_since.isoformat()}" if setup.shop_since else "whole",
    )
    for note in setup.notes:
        _logger().warning(note)
    return setup


# ------------------------------------------------------------------------------------------- planning


@task(name="products-plan", cache_policy=NO_CACHE)
def plan_products(subjects: list[str], known: Known, memory: Memory, policy: Policy) -> Plan:
    """Decide what to write where (pure)."""
    result = plan(subjects, known, memory, policy)
    _logger().info(
        "plan: %d shop writes, %d ERP writes, %d links, %d unchanged, %d failed, %d skipped",
        len(result.shop_writes()),
        len(result.erp_writes()),
        len(result.links),
        result.unchanged,
        len(result.failed),
        len(result.skipped),
    )
    return result


# ------------------------------------------------------------------------------------------- recording


@dataclass
class Recorded:
    """What recording the plan's links did."""

    linked: int = 0
    failed: list[Failed] = field(default_factory=list)


def record_plan(runtime: StoreRuntime, result: Plan) -> Recorded:
    """Record the links, units and fingerprints the plan found without a write (plain function)."""
    state, store = runtime.state, runtime.name
    out = Recorded()
    for stale in result.unlinks:
        state.unlink(store, PRODUCT, shop_id=stale.shop_id, erp_id=stale.erp_id)
    pairs = [(link.shop_id, link.erp_id, link.sku) for link in result.links.values()]
    conflicts = state.link_many(store, PRODUCT, pairs)
    for sku, link in result.links.items():
        conflict = conflicts.get((link.shop_id, link.erp_id))
        if conflict is not None:
            out.failed.append(Failed(sku, "shop", describe(conflict), "erp"))
        else:
            out.linked += 1
    bad = {f.sku for f in out.failed}
    units = [u for u in result.units if u.erp_sku not in bad]
    conflicted = save_units(state, store, units, load_units(state, store))
    out.failed.extend(
        Failed(sku, "shop", f"inventory unit of {sku} is linked to another shop unit", "erp") for sku in conflicted
    )
    bad |= set(conflicted)
    state.set_pushed(store, PRODUCT, [(k, v, None) for k, v in result.pushed_shop.items() if k not in bad])
    state.set_pushed(store, PUSHED_ERP, [(k, v, None) for k, v in result.pushed_erp.items() if k not in bad])
    return out


@task(name="products-record-links", cache_policy=NO_CACHE)
def record_links(runtime: StoreRuntime, result: Plan) -> Recorded:
    """Record links, units and fingerprints of the products that needed no write."""
    out = record_plan(runtime, result)
    _logger().info(
        "recorded %d links, %d unchanged fingerprints", out.linked, len(result.pushed_shop) + len(result.pushed_erp)
    )
    return out


# ------------------------------------------------------------------------------------------- finishing


@dataclass
class Finished:
    """The failures recorded and the cursors set at the end of a run."""

    failures: list[dict[str, str]]
    resolved: int
    erp_cursor: datetime | None
    shop_cursor: datetime | None


def finish(
    runtime: StoreRuntime,
    setup: Setup,
    failed: Sequence[Failed],
    succeeded: Iterable[str],
    not_reached: Sequence[Write],
    erp_catalogue: set[str] | None = None,
) -> Finished:
    """Record failures, resolve those that went through, move the cursors (plain function).

    ``erp_catalogue``: every ERP SKU, when the run read them all; an ERP-side failure whose record is no longer
    there (an unreadable row since fixed under another key, a deleted product) is then resolved too.
    """
    state, store = runtime.state, runtime.name
    rows: list[dict[str, str]] = []
    seen: set[str] = set()
    for failure in failed:
        if failure.sku in seen:
            continue
        seen.add(failure.sku)
        leg = TO_SHOP if failure.side == "shop" else TO_ERP
        record_failure(state, store, PRODUCT, failure.sku, f"{leg}: {failure.reason}", failure.payload)
        rows.append({"sku": failure.sku, "direction": leg, "reason": describe(failure.reason)})
    done = [s for s in succeeded if s not in seen]
    if erp_catalogue is not None:
        done += [
            f.key
            for f in state.open_failures(store, PRODUCT)
            if f.error.startswith(TO_SHOP) and f.key not in erp_catalogue and f.key not in seen
        ]
    resolved = resolve_failures(state, store, PRODUCT, done)
    erp_cursor, shop_cursor = run_cursors(
        setup.erp_window, setup.previous_erp, setup.shop_window, setup.previous_shop, failed, not_reached
    )
    if erp_cursor is not None and erp_cursor != setup.previous_erp:
        state.set_cursor(store, ERP_CURSOR, format_cursor(erp_cursor))
    if shop_cursor is not None and shop_cursor != setup.previous_shop:
        state.set_cursor(store, SHOP_CURSOR, format_cursor(shop_cursor))
    return Finished(rows, resolved, erp_cursor, shop_cursor)


@task(name="products-finish", cache_policy=NO_CACHE)
def finish_run(
    runtime: StoreRuntime,
    setup: Setup,
    failed: list[Failed],
    succeeded: list[str],
    not_reached: list[Write],
    erp_catalogue: set[str] | None,
) -> Finished:
    """Record the run's failures and move the cursors."""
    done = finish(runtime, setup, failed, succeeded, not_reached, erp_catalogue)
    for row in done.failures[:20]:
        _logger().warning("product %s (%s): %s", row["sku"], row["direction"], row["reason"])
    return done
