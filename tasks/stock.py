"""Prefect tasks of the stock stream: read the ERP's stock, plan the writes that changed, learn where SKUs
live in the shop, write absolute quantities in batches (a refused write goes to failures, never to pushed).

Every task works on a whole read (its pages inside) or on one batch of writes: a flow run over 100,000 SKUs
makes tens of task runs, not one per SKU. Tasks take the flow's live ``StoreRuntime``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from erpsync.connectors.merchantpro import InventoryUnit, StockWrite
from erpsync.core.availability import Availability, compute_availability, levels_frame
from erpsync.core.cursors import parse_cursor
from erpsync.core.diff import SHOP_COLUMNS, changed, quantities, shop_stock, to_decimal, typed_shop
from erpsync.core.models import GoodsReceipt, RowError, StockLevel
from erpsync.core.skus import erp_sku, shop_sku
from erpsync.core.trail import Trail
from erpsync.core.units import ENTITY as UNIT_ENTITY
from erpsync.core.units import UnitRef, load_units, parse_unit_key, save_units
from erpsync.runtime.failures import record_failure, record_row_errors, resolve_failures
from erpsync.runtime.states import retriable_only
from erpsync.runtime.store_runtime import StoreRuntime
from erpsync.runtime.trail import record_writes

STOCK = "stock"  # pushed quantities, failures and the incremental cursor, keyed by the ERP SKU
RECEIPTS = "goods_receipt"  # pushed: receipts already handled (key = ERP id, hash = digest); failures
SHOP_ROWS = "shop_inventory"  # failures: shop rows that could not be read
RECEIPTS_CURSOR = "goods_receipts"
UNITS_CURSOR = "stock_units_refreshed"
UNIT_REFRESH_INTERVAL = timedelta(hours=1)  # at most one full shop read per hour to find SKUs not linked yet
OVERLAP = timedelta(minutes=2)  # re-read before a cursor: the ERP's clock and ours may differ a little
RECEIPTS_FIRST_LOOK = timedelta(days=1)
WRITE_BATCH = 100
MAX_WRITE_TASKS = 40
FEW_SKUS = 200  # up to this many SKUs, units are looked up one by one instead of loading every link
SHOP_PAGE = 100


def utcnow() -> datetime:
    return datetime.now(UTC)


# --------------------------------------------------------------------------------------------- reads


@dataclass
class ErpStock:
    """The ERP's stock levels read in one go, with the rows it could not read."""

    levels: pd.DataFrame
    errors: list[RowError] = field(default_factory=list)
    pages: int = 0

    @property
    def unreadable(self) -> list[str]:
        """Keys (SKUs where the ERP knew them) of the rows that could not be read: unknown, never zero."""
        return sorted({e.key for e in self.errors})


def collect_levels(pages: Iterable[Any]) -> ErpStock:
    """Turn ``Page[StockLevel]`` objects into one frame (page by page: no list of 100,000 records is kept)."""
    errors: list[RowError] = []
    count = 0

    def items() -> Iterator[StockLevel]:
        nonlocal count
        for page in pages:
            count += 1
            errors.extend(page.errors)
            yield from page.items

    frame = levels_frame(items())
    return ErpStock(frame, errors, count)


def log_read(what: str, read: ErpStock) -> ErpStock:
    """Log the size of an ERP stock read (``what`` names it in the line) and return the read."""
    get_run_logger().info(
        "%s: %d levels of %d SKUs in %d page(s), %d unreadable row(s)",
        what,
        len(read.levels),
        read.levels["sku"].nunique(),
        read.pages,
        len(read.errors),
    )
    return read


@task(
    name="read-erp-stock", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=10, retry_condition_fn=retriable_only
)
def read_erp_stock(runtime: StoreRuntime, skus: Sequence[str] | None = None, since: datetime | None = None) -> ErpStock:
    """Stock levels of the store's warehouses: every SKU, only ``skus``, or those moved since ``since``."""
    pages = runtime.erp.iter_stock(runtime.store.warehouses, skus=skus, changed_since=since)
    return log_read("ERP stock", collect_levels(pages))


@dataclass
class ShopInventory:
    """The shop's stock-carrying units whose SKU is this store's (``SHOP_COLUMNS``), and unreadable rows."""

    frame: pd.DataFrame
    errors: list[RowError] = field(default_factory=list)
    pages: int = 0


def shop_frame(units: Iterable[InventoryUnit], prefix: str) -> pd.DataFrame:
    """Inventory units as a shop snapshot; units without the store's SKU prefix are not ours: left out."""
    rows = []
    for unit in units:
        code = erp_sku(prefix, unit.sku)
        if code is None:
            continue
        stock = float(unit.stock) if unit.stock is not None else np.nan
        rows.append((code, unit.sku, unit.product_id, unit.variant_id, stock, unit.inventory_enabled))
    return typed_shop(pd.DataFrame.from_records(rows, columns=SHOP_COLUMNS))


@task(
    name="read-shop-inventory",
    cache_policy=NO_CACHE,
    retries=2,
    retry_delay_seconds=10,
    retry_condition_fn=retriable_only,
)
def read_shop_inventory(runtime: StoreRuntime) -> ShopInventory:
    """The shop's stock snapshot (``fields=`` kept small), every page."""
    errors: list[RowError] = []
    count = 0

    def units() -> Iterator[InventoryUnit]:
        nonlocal count
        for page in runtime.shop.iter_inventory():
            count += 1
            errors.extend(page.errors)
            yield from page.items

    frame = shop_frame(units(), runtime.store.sku_prefix)
    get_run_logger().info(
        "shop inventory: %d units of this store in %d page(s), %d unreadable row(s)", len(frame), count, len(errors)
    )
    return ShopInventory(frame, errors, count)


def unit_refs(shop: pd.DataFrame) -> Iterator[UnitRef]:
    """The unit references of a shop snapshot, one at a time (a list of 100,000 would be held whole)."""
    columns = shop[["sku", "shop_sku", "product_id", "variant_id"]]
    for sku, shop_sku_value, product_id, variant_id in columns.itertuples(index=False, name=None):
        yield UnitRef(sku, shop_sku_value, product_id, variant_id if isinstance(variant_id, str) else None)


@task(name="remember-shop-units", cache_policy=NO_CACHE)
def remember_units(runtime: StoreRuntime, shop: pd.DataFrame, *, refreshed: bool = True) -> int:
    """Record where each SKU of a shop snapshot lives (new or moved units only); how many were recorded."""
    state, store = runtime.state, runtime.name
    known = load_units(state, store)
    refs = [ref for ref in unit_refs(shop) if known.get(ref.erp_sku) != ref]
    conflicts = sorted(save_units(state, store, refs, known))
    if conflicts:
        get_run_logger().warning(
            "%d unit(s) could not be linked (another SKU holds them): %s", len(conflicts), ", ".join(conflicts[:10])
        )
    if refreshed:
        runtime.state.set_cursor(runtime.name, UNITS_CURSOR, utcnow().isoformat())
    return len(refs) - len(conflicts)


def units_for(
    runtime: StoreRuntime, skus: Sequence[str], *, count: bool = False
) -> tuple[dict[str, UnitRef], int | None]:
    """Known units of these SKUs, and how many units the store knows in all (None when not counted)."""
    if count or len(skus) > FEW_SKUS:
        every = load_units(runtime.state, runtime.name)
        return {s: every[s] for s in skus if s in every}, len(every)
    found: dict[str, UnitRef] = {}
    for sku in skus:
        link = runtime.state.find_link(runtime.name, UNIT_ENTITY, erp_id=sku)
        if link is not None:
            product_id, variant_id = parse_unit_key(link.shop_id)
            shop_code = link.sku or shop_sku(runtime.store.sku_prefix, sku)
            found[sku] = UnitRef(sku, shop_code, product_id, variant_id)
    return found, None


def refresh_allowed(runtime: StoreRuntime, now: datetime) -> bool:
    """Whether a full shop read to find unlinked SKUs may run now (at most one per UNIT_REFRESH_INTERVAL)."""
    last = parse_cursor(runtime.state.get_cursor(runtime.name, UNITS_CURSOR))
    return last is None or now - last >= UNIT_REFRESH_INTERVAL


# --------------------------------------------------------------------------------------------- planning


@dataclass(frozen=True)
class Planned:
    """One absolute write: the ERP SKU it is for, and where it goes in the shop."""

    erp_sku: str
    write: StockWrite
    before: Decimal | None = None  # the shop's value when this run read it, else the last push; None: unknown


@dataclass
class StockPlan:
    """What a stock sync will write, and what it leaves alone (and why)."""

    expected: pd.Series
    writes: list[Planned]
    unchanged: int
    unknown_units: list[str]  # changed SKUs with no known shop unit
    never_pushed: int  # planned writes of SKUs never written before, whose shop value is not known
    unit_count: int | None
    availability: Availability
    shop_read: bool = False
    in_sync: pd.Series = field(default_factory=lambda: pd.Series(dtype="float64"))  # right in the shop

    def shop_read_pays(self) -> bool:
        """Whether reading the whole inventory costs fewer calls than writing never-pushed SKUs blindly."""
        if self.unit_count is None or self.never_pushed == 0:
            return False
        return self.never_pushed > max(1, math.ceil(self.unit_count / SHOP_PAGE))


def plan_writes(
    expected: pd.Series, previous: pd.Series, units: dict[str, UnitRef], prefix: str
) -> tuple[list[Planned], list[str], int]:
    """Writes for SKUs whose quantity differs from ``previous``: (writes, SKUs without a unit, unchanged)."""
    differs = changed(expected, previous)
    writes: list[Planned] = []
    missing: list[str] = []
    for sku, quantity in differs.items():
        code = str(sku)
        unit = units.get(code)
        if unit is None:
            missing.append(code)
            continue
        old = previous.get(sku)
        writes.append(
            Planned(
                code,
                StockWrite(
                    unit.shop_sku or shop_sku(prefix, code), unit.product_id, unit.variant_id, to_decimal(quantity)
                ),
                None if old is None or old != old else to_decimal(old),
            )
        )
    return writes, missing, len(expected) - len(differs)


@task(name="plan-stock-writes", cache_policy=NO_CACHE)
def plan_stock(runtime: StoreRuntime, erp: ErpStock, shop: ShopInventory | None = None) -> StockPlan:
    """Available per SKU, compared with the shop's value when this run read it, else with the last push."""
    settings = runtime.store
    availability = compute_availability(erp.levels, settings.warehouses, settings.stock.safety_buffer)
    expected = availability.available
    skus = [str(s) for s in expected.index]
    pushed = runtime.state.get_pushed(runtime.name, STOCK, keys=skus)
    previous = quantities({key: row.quantity for key, row in pushed.items()})
    if shop is not None:
        previous = shop_stock(shop.frame).combine_first(previous)
    differs = changed(expected, previous)
    unknown_before = previous.reindex(differs.index).isna()
    # Several SKUs never pushed: count the shop's units too (does one inventory read beat blind writes?).
    several = int(unknown_before.sum()) > 1
    units, unit_count = units_for(runtime, [str(s) for s in differs.index], count=several)
    if shop is not None:
        fresh = unit_refs(shop.frame[shop.frame["sku"].isin(differs.index)])
        units.update((ref.erp_sku, ref) for ref in fresh)
    writes, missing, unchanged = plan_writes(expected, previous, units, settings.sku_prefix)
    blind = set(unknown_before.index[unknown_before.to_numpy()])
    never = sum(1 for planned in writes if planned.erp_sku in blind) if shop is None else 0
    in_sync = expected.iloc[0:0]
    if shop is not None:  # the shop holds these already: remember them as pushed, or next run rewrites them
        held = expected[~expected.index.isin(differs.index)]
        last = quantities({key: row.quantity for key, row in pushed.items()})
        in_sync = changed(held, last)
    return StockPlan(expected, writes, unchanged, missing, never, unit_count, availability, shop is not None, in_sync)


def record_in_sync(runtime: StoreRuntime, plan: StockPlan) -> None:
    """Record as pushed the SKUs a shop read found already right (their last push is unknown or stale)."""
    rows = [(str(sku), None, to_decimal(quantity)) for sku, quantity in plan.in_sync.items()]
    runtime.state.set_pushed(runtime.name, STOCK, rows)


def log_clamped(runtime: StoreRuntime, availability: Availability) -> None:
    """The clamp warning: SKUs whose on hand − reserved − buffer fell below zero (listed, at most 20)."""
    rows = availability.clamped_rows()
    if not rows or not runtime.store.stock.clamp_warning:
        return
    shown = ", ".join(
        f"{r['sku']} (on hand {r['on_hand']:g}, reserved {r['reserved']:g}, buffer {r['buffer']:g})" for r in rows[:20]
    )
    more = f" and {len(rows) - 20} more" if len(rows) > 20 else ""
    get_run_logger().warning("%d SKU(s) below zero clamped at 0: %s%s", len(rows), shown, more)


# --------------------------------------------------------------------------------------------- writes


def batches(
    writes: Sequence[Planned], size: int = WRITE_BATCH, max_batches: int = MAX_WRITE_TASKS
) -> list[list[Planned]]:
    """Batches of ~``size`` writes (a product's variants together: one PATCH), ``max_batches`` at most."""
    if not writes:
        return []
    size = max(size, math.ceil(len(writes) / max_batches))
    groups: dict[str, list[Planned]] = {}
    for planned in writes:
        groups.setdefault(planned.write.product_id, []).append(planned)
    out: list[list[Planned]] = [[]]
    for group in groups.values():
        if out[-1] and len(out[-1]) + len(group) > size:
            out.append([])
        out[-1].extend(group)
    return out


@dataclass
class WriteOutcome:
    """What one batch did: SKUs written (recorded as pushed) and SKUs refused (recorded as failures)."""

    written: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


@task(name="write-stock", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=10, retry_condition_fn=retriable_only)
def write_stock(runtime: StoreRuntime, batch: Sequence[Planned], trail: Trail | None = None) -> WriteOutcome:
    """Write one batch: one PATCH per basic product or multi-variant parent; refused ones go to failures;
    what was written goes to the movement trail with ``trail``'s cause and ERP documents."""
    outcome = WriteOutcome()
    done: list[Planned] = []
    before = runtime.state.get_pushed(runtime.name, STOCK, keys=[p.erp_sku for p in batch])
    groups: dict[str, list[Planned]] = {}
    for planned in batch:
        groups.setdefault(planned.write.product_id, []).append(planned)
    try:
        for group in groups.values():
            by_shop_sku = {p.write.sku: p for p in group}
            for result in runtime.shop.set_stock([p.write for p in group]):
                planned = by_shop_sku[result.key]
                if result.error is None:
                    done.append(planned)
                else:
                    outcome.failed[planned.erp_sku] = str(result.error)
                    record_failure(runtime.state, runtime.name, STOCK, planned.erp_sku, result.error, _payload(planned))
                    if result.error.status == 404:  # the unit is gone from the shop: look for it again
                        runtime.state.unlink(runtime.name, UNIT_ENTITY, erp_id=planned.erp_sku)
    finally:  # also when the shop went away mid-batch: what was written is recorded, the rest is retried
        runtime.state.set_pushed(runtime.name, STOCK, [(p.erp_sku, None, p.write.quantity) for p in done])
        written = [(p.erp_sku, p.write.quantity) for p in done]
        record_writes(
            runtime.state, runtime.name, written, {k: v.quantity for k, v in before.items()}, trail or Trail()
        )
        outcome.written = [p.erp_sku for p in done]
        resolve_failures(runtime.state, runtime.name, STOCK, outcome.written)
    if outcome.failed:
        get_run_logger().warning(
            "%d stock write(s) refused by the shop: %s",
            len(outcome.failed),
            "; ".join(f"{k}: {v}" for k, v in list(outcome.failed.items())[:5]),
        )
    return outcome


def _payload(planned: Planned) -> dict[str, Any]:
    write = planned.write
    return {
        "sku": planned.erp_sku,
        "shop_sku": write.sku,
        "product_id": write.product_id,
        "variant_id": write.variant_id,
        "quantity": str(write.quantity),
    }


def record_read_errors(runtime: StoreRuntime, entity: str, errors: Sequence[RowError]) -> None:
    """Rows the ERP or the shop could not read: one failures row each."""
    record_row_errors(runtime.state, runtime.name, entity, errors)


def record_duplicates(runtime: StoreRuntime, duplicates: Sequence[str]) -> None:
    """SKUs the ERP returned twice for one warehouse: ambiguous, not written, one failures row each."""
    for sku in duplicates:
        record_failure(
            runtime.state,
            runtime.name,
            STOCK,
            sku,
            "the ERP returned this SKU twice for one warehouse: not written until unambiguous",
        )


# --------------------------------------------------------------------------------------------- goods receipts


@dataclass
class ReceiptsRead:
    """Goods receipts read since a moment, and those not handled before (new, or changed since)."""

    receipts: list[GoodsReceipt]
    fresh: list[GoodsReceipt]
    errors: list[RowError]

    @property
    def skus(self) -> list[str]:
        return sorted({sku for receipt in self.fresh for sku in receipt.skus()})


@task(
    name="read-goods-receipts",
    cache_policy=NO_CACHE,
    retries=2,
    retry_delay_seconds=10,
    retry_condition_fn=retriable_only,
)
def read_goods_receipts(runtime: StoreRuntime, since: datetime) -> ReceiptsRead:
    """Goods received in the store's warehouses since ``since``; ``fresh``: not handled yet (by id+digest)."""
    receipts: list[GoodsReceipt] = []
    errors: list[RowError] = []
    for page in runtime.erp.iter_goods_receipts(since, runtime.store.warehouses):
        receipts.extend(page.items)
        errors.extend(page.errors)
    seen = runtime.state.get_pushed(runtime.name, RECEIPTS, keys=[r.erp_id for r in receipts])
    fresh = [r for r in receipts if r.erp_id not in seen or seen[r.erp_id].hash != r.digest()]
    get_run_logger().info(
        "goods receipts since %s: %d read, %d new, %d unreadable",
        since.isoformat(),
        len(receipts),
        len(fresh),
        len(errors),
    )
    return ReceiptsRead(receipts, fresh, errors)


def mark_receipts_handled(runtime: StoreRuntime, receipts: Sequence[GoodsReceipt]) -> None:
    """Remember receipts whose SKUs were synced (a re-read of the same receipt then costs nothing)."""
    runtime.state.set_pushed(runtime.name, RECEIPTS, [(r.erp_id, r.digest(), None) for r in receipts])
