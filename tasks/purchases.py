"""Prefect tasks of the purchases stream (goods on the way -> the shop's promise): read what is on the way,
plan the promises against what can be sold now, write the changed ones (one task per batch of SKUs).

A promise is written as ``allow_backorders: true`` plus the availability text; withdrawn as ``false`` and no
text. What was promised is remembered in ``pushed`` (entity ``promise``: key = ERP SKU, hash = date + text),
so an unchanged promise costs no call. See docs/customers.md, "Purchases".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from prefect import task
from prefect.cache_policies import NO_CACHE

from erpsync.connectors.erp.base import PurchaseReader
from erpsync.connectors.errors import RecordError
from erpsync.core.availability import compute_availability
from erpsync.core.models import IncomingGoods, RowError
from erpsync.core.promises import OnTheWay, Promise, PromisePlan, on_the_way, plan_promises
from erpsync.runtime.failures import record_failure, record_row_errors, resolve_failures
from erpsync.runtime.states import retriable_only
from erpsync.runtime.store_runtime import StoreRuntime
from erpsync.tasks.stock import collect_levels, units_for

PROMISE = "promise"  # pushed: SKUs promised in the shop (hash = date + text); failures
INCOMING = "incoming"  # failures: purchase lines that could not be read
BATCH = 100


@dataclass
class Incoming:
    goods: dict[str, OnTheWay]
    errors: list[RowError]


@task(name="read-incoming", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=10, retry_condition_fn=retriable_only)
def read_incoming(runtime: StoreRuntime) -> Incoming:
    """Confirmed purchase lines not yet received into the store's warehouses, grouped per SKU."""
    erp = runtime.erp
    assert isinstance(erp, PurchaseReader)
    lines: list[IncomingGoods] = []
    errors: list[RowError] = []
    for page in erp.iter_incoming(runtime.store.warehouses):
        lines.extend(page.items)
        errors.extend(page.errors)
    return Incoming(on_the_way(lines), errors)


@task(name="plan-promises", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=10, retry_condition_fn=retriable_only)
def plan_store_promises(runtime: StoreRuntime, goods: dict[str, OnTheWay], today: date) -> PromisePlan:
    """What can be sold now of the SKUs on the way (one ERP stock read of just those), and the promises."""
    settings = runtime.store
    available: dict[str, Decimal] = {}
    if goods:
        erp = collect_levels(runtime.erp.iter_stock(settings.warehouses, skus=sorted(goods)))
        series = compute_availability(erp.levels, settings.warehouses, settings.stock.safety_buffer).available
        available = {str(sku): Decimal(str(qty)) for sku, qty in series.items()}
    purchases = settings.purchases
    return plan_promises(
        goods, available, today=today, max_lead_days=purchases.max_lead_days, template=purchases.availability_text
    )


@dataclass
class PromiseOutcome:
    promised: list[str] = field(default_factory=list)
    withdrawn: list[str] = field(default_factory=list)
    not_in_shop: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    def merge(self, other: PromiseOutcome) -> PromiseOutcome:
        self.promised += other.promised
        self.withdrawn += other.withdrawn
        self.not_in_shop += other.not_in_shop
        self.failed.update(other.failed)
        return self


@task(
    name="write-promises", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=10, retry_condition_fn=retriable_only
)
def write_promises(runtime: StoreRuntime, promise: Sequence[Promise], withdraw: Sequence[str]) -> PromiseOutcome:
    """Promise (backorders on + text) or withdraw (off, no text) one batch of SKUs in the shop."""
    out = PromiseOutcome()
    units, _ = units_for(runtime, [p.sku for p in promise] + list(withdraw))
    done: list[tuple[str, str | None, None]] = []
    gone: list[str] = []
    try:
        for sku, allow, text, digest in [
            *((p.sku, True, p.text, p.digest()) for p in promise),
            *((s, False, None, None) for s in withdraw),
        ]:
            unit = units.get(sku)
            if unit is None:
                out.not_in_shop.append(sku)
                if not allow:
                    gone.append(sku)  # nothing to take back in a shop that does not have it
                continue
            try:
                runtime.shop.set_backorders(unit.product_id, allow, text, key=sku)
            except RecordError as error:
                out.failed[sku] = str(error)
                record_failure(runtime.state, runtime.name, PROMISE, sku, error, {"sku": sku, "allow": allow})
                continue
            if allow:
                done.append((sku, digest, None))
                out.promised.append(sku)
            else:
                gone.append(sku)
                out.withdrawn.append(sku)
    finally:
        runtime.state.set_pushed(runtime.name, PROMISE, done)
        runtime.state.delete_pushed(runtime.name, PROMISE, gone)
        resolve_failures(runtime.state, runtime.name, PROMISE, [*out.promised, *out.withdrawn])
    return out


def changes(runtime: StoreRuntime, plan: PromisePlan) -> tuple[list[Promise], list[str], int]:
    """Promises new or changed since the last run, promises to withdraw, and how many are unchanged."""
    current = runtime.state.get_pushed(runtime.name, PROMISE)
    fresh = [p for sku, p in plan.promises.items() if sku not in current or current[sku].hash != p.digest()]
    withdraw = sorted(set(current) - set(plan.promises))
    return fresh, withdraw, len(plan.promises) - len(fresh)


def promised_among(runtime: StoreRuntime, skus: Sequence[str]) -> list[str]:
    """Which of these SKUs the shop currently shows as promised."""
    return sorted(runtime.state.get_pushed(runtime.name, PROMISE, keys=skus))


def record_read_errors(runtime: StoreRuntime, errors: Sequence[RowError]) -> None:
    record_row_errors(runtime.state, runtime.name, INCOMING, errors)
