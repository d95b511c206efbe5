"""Tasks of the product sync (``flows/products.py``): read both sides, look up, plan, write, record.

Each task works on a whole read or on a batch of writes, never on one product. The decisions are pure
(``core.product_plan``); these tasks only fetch what the plan needs and carry out its writes, recording after
each write what makes a re-run safe: the product link (shop id <-> ERP id) and the inventory units (for the
stock flow) as soon as a product exists on both sides, then the fingerprint of what was written.

State kept per store (``docs/products.md``): links ``product`` and ``unit``; pushed fingerprints ``product``
(ERP -> shop fields, by ERP SKU) and ``product-erp`` (shop -> ERP fields); cursors ``products:erp`` (UTC
time of the ERP's last read window) and ``products:shop``; failures ``product`` (by ERP SKU).

Test hook: with ``ERPSYNC_TEST_PRODUCTS_EXIT_AFTER_WRITES=N`` in the environment the process exits at once
(``os._exit(70)``) after its N-th shop write, before recording it — the crash a re-run must converge from.
Tests only.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from erpsync.connectors.errors import RecordError, RetriableError
from erpsync.connectors.merchantpro.client import local_date_since
from erpsync.connectors.merchantpro.mapping import product_from_shop
from erpsync.connectors.merchantpro.writes import shop_patch
from erpsync.core.cursors import format_cursor, parse_cursor
from erpsync.core.mapping import Ownership, StoreRules, ownership
from erpsync.core.models import Product, RowError
from erpsync.core.product_plan import (
    Failed,
    Known,
    LinkRef,
    Lookups,
    Memory,
    Plan,
    Policy,
    Side,
    Write,
    erp_fingerprint,
    lookups_needed,
    plan,
    shop_key,
    units_of,
)
from erpsync.core.product_run import (
    erp_update_fields,
    failed_shop_id,
    row_failures,
    run_cursors,
    split_duplicates,
)
from erpsync.core.skus import erp_sku, shop_sku
from erpsync.core.state import LinkConflict
from erpsync.core.units import ENTITY as UNIT
from erpsync.core.units import load_units, save_units
from erpsync.runtime.failures import describe, record_failure, resolve_failures
from erpsync.runtime.states import retriable_only
from erpsync.runtime.store_runtime import StoreRuntime

log = logging.getLogger("erpsync.products")

FLOW = "products"
PRODUCT = "product"  # links, failures, pushed (ERP -> shop fingerprints)
PUSHED_ERP = "product-erp"  # pushed fingerprints of the shop -> ERP leg
ERP_CURSOR = "products:erp"
SHOP_CURSOR = "products:shop"
SHOP_LOOKUP_LIMIT = 50  # more unlinked SKUs to look up than this: read the whole shop instead
TRANSIENT_BREAKER = 5
ERP_CURSOR_MARGIN = timedelta(minutes=2)  # writes committed late (or a clock a little off) are read again
SHOP_OVERLAP_DAYS = 1
SHOP_READ_FIELDS = (
    "id,type,sku,ean,ext_ref,name,description,status,price_net,price_gross,old_price_net,old_price_gross,"
    "tax_value,weight,variants,date_modified"
)
TO_SHOP = "ERP -> shop"  # how a failure names its leg (the failures table's error starts with it)
TO_ERP = "shop -> ERP"
CRASH_HOOK_ENV = "ERPSYNC_TEST_PRODUCTS_EXIT_AFTER_WRITES"
CRASH_EXIT_CODE = 70


def _logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    try:
        from prefect import get_run_logger

        return get_run_logger()
    except Exception:  # outside a flow or task run (plain calls in tests)
        return log


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
    retry_shop_ids: list[str] = field(default_factory=list)  # shop products that failed: read again by id
    notes: list[str] = field(default_factory=list)

    @property
    def rules(self) -> StoreRules:
        return self.policy.rules


def product_policy(runtime: StoreRuntime) -> tuple[Policy, list[str]]:
    """The store's product policy for this ERP (legs, ownership, creation), and notes on what is left out."""
    settings = runtime.store.products
    caps = runtime.erp.capabilities
    notes = []
    own: Ownership = ownership(settings, getattr(runtime.erp, "product_fields", None))
    to_shop_leg = settings.direction in ("erp_to_shop", "both")
    to_erp_leg = settings.direction in ("shop_to_erp", "both")
    if to_erp_leg and not caps.products_update:
        notes.append(f"{runtime.erp.system} cannot update products: shop changes are not written to it")
        own = Ownership(own.to_shop, frozenset())
    create_in_erp = to_erp_leg and settings.create_in_erp and caps.products_create
    if to_erp_leg and settings.create_in_erp and not caps.products_create:
        notes.append(f"{runtime.erp.system} cannot create products: create_in_erp has no effect")
    policy = Policy(
        rules=StoreRules.of(runtime.store),
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
    """The policy, memory and read windows of a run (plain function: the task below wraps it)."""
    policy, notes = product_policy(runtime)
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


# ------------------------------------------------------------------------------------------- reading


@dataclass
class ErpRead:
    """ERP products by SKU (duplicates removed), the rows that failed, and whether it is the whole catalogue."""

    products: dict[str, Product] = field(default_factory=dict)
    failed: list[Failed] = field(default_factory=list)
    complete: bool = False
    rows: int = 0
    duplicates: set[str] = field(default_factory=set)  # SKUs of the records that share a SKU with another


def read_erp(runtime: StoreRuntime, since: datetime | None) -> ErpRead:
    """ERP products changed since ``since`` (None: all); a SKU claimed by several ERP records fails them all."""
    items: list[Product] = []
    errors: list[RowError] = []
    for page in runtime.erp.iter_products(changed_since=since):
        items.extend(page.items)
        errors.extend(page.errors)
    products, clashes, duplicates = split_duplicates(items)
    return ErpRead(
        products=products,
        failed=row_failures(errors, "shop", "erp") + clashes,
        complete=since is None,
        rows=len(items) + len(errors),
        duplicates=duplicates,
    )


@task(
    name="products-read-erp", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=5, retry_condition_fn=retriable_only
)
def read_erp_products(runtime: StoreRuntime, since: datetime | None) -> ErpRead:
    """Read the ERP's products (changed since the cursor, or all)."""
    result = read_erp(runtime, since)
    _logger().info(
        "ERP: %d products read (%s), %d failed",
        len(result.products),
        f"changed since {since.isoformat()}" if since else "whole catalogue",
        len(result.failed),
    )
    return result


@dataclass
class ShopRead:
    """Shop products by ERP SKU, the rows that failed, whether it is the whole shop, and SKUs absent."""

    products: dict[str, Product] = field(default_factory=dict)
    failed: list[Failed] = field(default_factory=list)
    complete: bool = False
    absent: set[str] = field(default_factory=set)
    foreign: int = 0  # products whose SKU is not under this store's prefix
    requests: int = 0


def _shop_filters(include_images: bool, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    filters: dict[str, Any] = {"include": "variants,images" if include_images else "variants"}
    filters.update(extra or {})
    return filters


def _collect(runtime: StoreRuntime, result: ShopRead, pages: Iterable[Any], record_errors: bool) -> list[Product]:
    found: list[Product] = []
    prefix = runtime.store.sku_prefix
    for page in pages:
        result.requests += 1
        if record_errors:
            result.failed.extend(row_failures(page.errors, "erp", "shop"))
        for product in page.items:
            if shop_key(product, prefix) is None:
                result.foreign += 1
                continue
            found.append(product)
    return found


def read_shop(
    runtime: StoreRuntime,
    since: datetime | None,
    *,
    include_images: bool,
    record_errors: bool,
    retry_ids: Sequence[str] = (),
) -> ShopRead:
    """Shop products modified since ``since`` (date-only filter in the shop's zone, overlapped), or all; and
    the products of ``retry_ids`` (that failed before) by id, 100 a request."""
    fields = SHOP_READ_FIELDS + (",images" if include_images else "")
    day: date | None = None
    if since is not None:
        day = local_date_since(since, timezone=runtime.store.timezone, overlap_days=SHOP_OVERLAP_DAYS)
    result = ShopRead(complete=since is None)
    pages = runtime.shop.iter_products(modified_since=day, filters=_shop_filters(include_images), fields=fields)
    prefix = runtime.store.sku_prefix
    for product in _collect(runtime, result, pages, record_errors):
        key = shop_key(product, prefix)
        if key is not None:
            result.products[key] = product  # the overlap may list a product twice: the last copy wins
    seen = {p.shop_id for p in result.products.values()}
    wanted = [i for i in dict.fromkeys(retry_ids) if i not in seen]
    for start in range(0, len(wanted), 100):
        chunk = wanted[start : start + 100]
        pages = runtime.shop.iter_products(
            filters=_shop_filters(include_images, {"ids": ",".join(chunk)}), fields=fields
        )
        for product in _collect(runtime, result, pages, record_errors):
            key = shop_key(product, prefix)
            if key is not None:
                result.products.setdefault(key, product)
    return result


@task(
    name="products-read-shop",
    cache_policy=NO_CACHE,
    retries=1,
    retry_delay_seconds=5,
    retry_condition_fn=retriable_only,
)
def read_shop_products(
    runtime: StoreRuntime, since: datetime | None, include_images: bool, record_errors: bool, retry_ids: list[str]
) -> ShopRead:
    """Read the shop's products (modified since the cursor, with a day of overlap, or all; failed ones by id)."""
    result = read_shop(runtime, since, include_images=include_images, record_errors=record_errors, retry_ids=retry_ids)
    _logger().info(
        "shop: %d products read (%s) in %d requests, %d not under the store's SKU prefix",
        len(result.products),
        f"modified since {since.date()}" if since else "whole shop",
        result.requests,
        result.foreign,
    )
    return result


def fetch_shop(
    runtime: StoreRuntime, lookups: Lookups, *, include_images: bool, record_errors: bool, known_products: int = 0
) -> ShopRead:
    """The shop products a plan needs: by id (100 a request) and by SKU, one request each; when that would
    cost more requests than reading the whole shop (about ``known_products`` / 100 pages), the whole shop."""
    if len(lookups.shop_by_sku) > max(SHOP_LOOKUP_LIMIT, known_products // 100):
        return read_shop(runtime, None, include_images=include_images, record_errors=record_errors)
    fields = SHOP_READ_FIELDS + (",images" if include_images else "")
    result = ShopRead()
    prefix = runtime.store.sku_prefix
    wanted_ids = {shop_id: sku for sku, shop_id in lookups.shop_by_id.items()}
    ids = list(wanted_ids)
    for start in range(0, len(ids), 100):
        chunk = ids[start : start + 100]
        pages = runtime.shop.iter_products(
            filters=_shop_filters(include_images, {"ids": ",".join(chunk)}), fields=fields
        )
        for product in _collect(runtime, result, pages, record_errors):
            sku = wanted_ids.get(product.shop_id or "")
            if sku is not None:
                result.products[sku] = product  # keyed by the link: a SKU renamed in the shop stays linked
    result.absent |= {sku for sku in lookups.shop_by_id if sku not in result.products}
    for sku in lookups.shop_by_sku:
        pages = runtime.shop.iter_products(
            filters=_shop_filters(include_images, {"sku": shop_sku(prefix, sku)}), fields=fields
        )
        for product in _collect(runtime, result, pages, record_errors):
            if shop_key(product, prefix) == sku:
                result.products[sku] = product
        if sku not in result.products:
            result.absent.add(sku)
    return result


@dataclass
class Resolved:
    """Both sides as known after the look-ups."""

    known: Known
    shop_lookups: int
    erp_catalogue_read: bool
    failed: list[Failed] = field(default_factory=list)


def resolve(runtime: StoreRuntime, setup: Setup, erp: ErpRead, shop: ShopRead, subjects: list[str]) -> Resolved:
    """Fetch what the plan needs: shop products by id or SKU, and the whole ERP catalogue when a shop product
    must be compared with an ERP product that was not read (plain function: the task below wraps it)."""
    known = Known(
        erp=dict(erp.products), shop=dict(shop.products), erp_complete=erp.complete, shop_complete=shop.complete
    )
    failed: list[Failed] = []
    lookups = lookups_needed(subjects, known, setup.memory, setup.policy)
    fetched = 0
    if lookups.shop_by_id or lookups.shop_by_sku:
        more = fetch_shop(
            runtime,
            lookups,
            include_images=setup.include_images,
            record_errors=setup.record_shop_errors,
            known_products=len(setup.memory.links),
        )
        fetched = len(lookups.shop_by_id) + len(lookups.shop_by_sku)
        for sku, product in more.products.items():
            known.shop.setdefault(sku, product)
        known.shop_absent |= more.absent
        known.shop_complete = known.shop_complete or more.complete
        failed.extend(more.failed)
    catalogue = False
    if lookups.erp_catalogue:
        whole = read_erp(runtime, None)
        for sku, product in whole.products.items():
            known.erp.setdefault(sku, product)
        known.erp_complete = True
        # A subject that turns out to share its SKU with a record that did not change fails with it; failures of
        # products outside this run's subjects are reported by the run that reads them as changed.
        wanted = set(subjects)
        for sku in whole.duplicates & wanted:
            known.erp.pop(sku, None)
        failed.extend(
            f for f in whole.failed if f.sku in wanted and (f.sku in whole.duplicates or f.sku not in erp.products)
        )
        catalogue = True
    return Resolved(known, fetched, catalogue, failed)


@task(
    name="products-resolve", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=5, retry_condition_fn=retriable_only
)
def resolve_products(
    runtime: StoreRuntime, setup: Setup, erp: ErpRead, shop: ShopRead, subjects: list[str]
) -> Resolved:
    """Look up what this run's changes need from the other side."""
    resolved = resolve(runtime, setup, erp, shop, subjects)
    _logger().info(
        "looked up %d shop products%s",
        resolved.shop_lookups,
        "; read the whole ERP catalogue to compare shop changes" if resolved.erp_catalogue_read else "",
    )
    return resolved


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


# ------------------------------------------------------------------------------------------- shop writes


@dataclass
class WriteOutcome:
    """What a batch of writes did."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: int = 0  # planned updates whose fields the target cannot hold: nothing to send
    failed: list[Failed] = field(default_factory=list)
    not_reached: list[Write] = field(default_factory=list)
    calls: int = 0

    def merge(self, other: WriteOutcome) -> WriteOutcome:
        self.created += other.created
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.failed += other.failed
        self.not_reached += other.not_reached
        self.calls += other.calls
        return self


def _write_failed(write: Write, error: BaseException | str) -> Failed:
    origin: Side = "erp" if write.side == "shop" else "shop"
    payload = write.product.model_dump(mode="json", exclude_none=True)
    return Failed(write.sku, write.side, describe(error), origin, write.modified_at, payload)


class _Writer:
    """Carries out a batch of writes to one side, recording after each one."""

    def __init__(self, runtime: StoreRuntime, setup: Setup) -> None:
        self.runtime, self.setup = runtime, setup
        self.out = WriteOutcome()
        self.units = load_units(runtime.state, runtime.name)
        limit = os.environ.get(CRASH_HOOK_ENV, "")
        self.crash_after = int(limit) if limit.isdigit() else None

    def run(self, writes: Sequence[Write]) -> WriteOutcome:
        transient = 0
        for index, write in enumerate(writes):
            if transient >= TRANSIENT_BREAKER:
                self.out.not_reached += list(writes[index:])
                _logger().warning(
                    "%d transient failures in a row: %d product writes wait for the next run",
                    TRANSIENT_BREAKER,
                    len(writes) - index,
                )
                break
            try:
                if write.side == "shop":
                    self.shop(write)
                else:
                    self.erp(write)
                transient = 0
            except (RecordError, LinkConflict) as error:
                self.out.failed.append(_write_failed(write, error))
            except RetriableError as error:
                transient += 1
                self.out.failed.append(_write_failed(write, error))
        return self.out

    def _crash_point(self) -> None:
        if self.crash_after is not None and self.runtime.shop.counters.writes >= self.crash_after:
            os._exit(CRASH_EXIT_CODE)

    def _link(self, sku: str, shop_id: str, erp_id: str, shop_sku_value: str, *, replace: bool) -> None:
        state, store = self.runtime.state, self.runtime.name
        if replace:
            existing = state.find_link(store, PRODUCT, erp_id=erp_id)
            if existing is not None and existing.shop_id != shop_id:
                state.unlink(store, PRODUCT, erp_id=erp_id)  # the product it pointed to is gone from the shop
        state.link(store, PRODUCT, shop_id=shop_id, erp_id=erp_id, sku=shop_sku_value)

    def _units(self, shop_product: Product) -> None:
        refs = units_of(shop_product, self.setup.rules.sku_prefix)
        conflicts = save_units(self.runtime.state, self.runtime.name, refs, self.units)
        if conflicts:
            raise LinkConflict(f"inventory unit(s) {', '.join(conflicts)} already linked to another shop unit", [])

    def shop(self, write: Write) -> None:
        runtime, rules = self.runtime, self.setup.rules
        tax_id = rules.tax_id(write.product.vat_rate)
        state, store = runtime.state, runtime.name
        if write.kind == "create":
            created = runtime.shop.create_product(
                write.product, tax_id=tax_id, category_id=self.setup.default_category_id
            )
            self.out.calls += 1
            self._crash_point()
            assert created.shop_id is not None and write.erp_id is not None
            self._link(write.sku, created.shop_id, write.erp_id, created.sku, replace=True)
            self._units(created)
            state.set_pushed(store, PRODUCT, [(write.sku, write.fingerprint, None)])
            baseline = erp_fingerprint(created, self.setup.policy)
            if baseline is not None:
                state.set_pushed(store, PUSHED_ERP, [(write.sku, baseline, None)])
            self.out.created.append(write.sku)
            return
        assert write.product.shop_id is not None
        patch = shop_patch(write.product, write.fields, tax_id=tax_id)
        if not patch:
            state.set_pushed(store, PRODUCT, [(write.sku, write.fingerprint, None)])
            self.out.unchanged += 1
            return
        try:
            reply = runtime.shop.update_product(write.product.shop_id, patch, key=write.product.sku)
        except RecordError as error:
            if error.status == 404:
                self._forget(write)
            raise
        self.out.calls += 1
        self._crash_point()
        if "variants" in patch and isinstance(reply, dict) and reply.get("id") is not None:
            self._units(product_from_shop(reply))
        state.set_pushed(store, PRODUCT, [(write.sku, write.fingerprint, None)])
        self.out.updated.append(write.sku)

    def _forget(self, write: Write) -> None:
        """The linked shop product is gone (404): drop its link, units and fingerprints, so that the next run
        looks its SKU up afresh (and creates it again when create_in_shop is on)."""
        state, store, product_id = self.runtime.state, self.runtime.name, write.product.shop_id
        state.unlink(store, PRODUCT, shop_id=product_id)
        for code, unit in list(self.units.items()):
            if unit.product_id == product_id:
                state.unlink(store, UNIT, erp_id=code)
                del self.units[code]
        state.delete_pushed(store, PRODUCT, [write.sku])
        state.delete_pushed(store, PUSHED_ERP, [write.sku])
        _logger().warning("product %s: shop product %s is gone; its link is forgotten", write.sku, product_id)

    def erp(self, write: Write) -> None:
        runtime = self.runtime
        state, store = runtime.state, runtime.name
        if write.kind == "create":
            source = write.source
            assert source is not None and source.shop_id is not None
            created = runtime.erp.create_product(write.product)
            self.out.calls += 1
            erp_id = created.erp_id or write.sku
            self._link(write.sku, source.shop_id, erp_id, source.sku, replace=False)
            self._units(source)
            state.set_pushed(store, PUSHED_ERP, [(write.sku, write.fingerprint, None)])
            if write.other_fingerprint is not None:
                state.set_pushed(store, PRODUCT, [(write.sku, write.other_fingerprint, None)])
            self.out.created.append(write.sku)
            return
        runtime.erp.update_product(write.product, erp_update_fields(write.fields))
        self.out.calls += 1
        state.set_pushed(store, PUSHED_ERP, [(write.sku, write.fingerprint, None)])
        self.out.updated.append(write.sku)


def apply_writes(runtime: StoreRuntime, setup: Setup, writes: Sequence[Write]) -> WriteOutcome:
    """Carry out writes one by one, recording each (plain function: the task below wraps it)."""
    return _Writer(runtime, setup).run(writes)


@task(name="products-write", cache_policy=NO_CACHE)
def write_batch(runtime: StoreRuntime, setup: Setup, writes: list[Write]) -> WriteOutcome:
    """Write a batch of products to one side (never retried as a whole: a create must not run twice)."""
    out = apply_writes(runtime, setup, writes)
    side = writes[0].side if writes else "?"
    _logger().info(
        "%s writes: %d created, %d updated, %d failed, %d left for the next run",
        side,
        len(out.created),
        len(out.updated),
        len(out.failed),
        len(out.not_reached),
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
