"""Tasks of the shop -> ERP order stream that read: the shop's orders (by date window and by id), and the rows
that could not become orders into failures. Importing them exactly once: ``tasks/order_import.py``."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from prefect import task
from prefect.cache_policies import NO_CACHE

from erpsync.connectors.errors import BadRequestError
from erpsync.core.models import Order, RowError
from erpsync.core.order_rules import counted_attempts, dedupe_orders
from erpsync.runtime.failures import describe, record_failure
from erpsync.runtime.logs import run_logger
from erpsync.runtime.states import retriable_only
from erpsync.runtime.store_runtime import StoreRuntime

log = logging.getLogger("erpsync.orders")
DateFilter = Literal["created", "modified"]
_date_filter: dict[str, DateFilter] = {}  # shop URL -> the order date filter it accepts, once one refused "modified"

ORDER = "order"  # failures/links/journal key: the shop order id
SHOP_CURSOR = "orders:shop"
BATCH_SIZE = 50


def _logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    return run_logger(log)


# ------------------------------------------------------------------------------------------- reading


@dataclass
class ShopOrders:
    """What one read of the shop gave: orders of the window, orders fetched again by id, unreadable rows."""

    window: list[Order] = field(default_factory=list)
    retries: list[Order] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # retried ids the shop no longer has

    @property
    def orders(self) -> list[Order]:
        return dedupe_orders([*self.window, *self.retries])


def read_orders(runtime: StoreRuntime, since: datetime | None, retry_ids: Sequence[str]) -> ShopOrders:
    """Orders created or modified since ``since`` (date-only filter, overlapped) and the ``retry_ids`` by id."""
    result = ShopOrders()
    if since is not None:
        overlap = runtime.store.orders.overlap_days
        date_filter: DateFilter = _date_filter.get(runtime.store.url, "modified")
        try:
            pages = list(runtime.shop.iter_orders(since=since, overlap_days=overlap, date_filter=date_filter))
        except BadRequestError as error:
            # Any refusal of the list as asked (whatever the shop names its error), not a wrong URL or a 405.
            if date_filter != "modified" or error.status not in (400, 422):
                raise
            # The reference only saw created-date filters on orders: a shop without modified[gte] is read by
            # creation date (later changes of older orders - cancellations - are then seen only by id).
            _logger().warning("the shop refuses modified[gte] on orders (%s): reading by creation date", error)
            _date_filter[runtime.store.url] = "created"
            pages = list(runtime.shop.iter_orders(since=since, overlap_days=overlap, date_filter="created"))
        for page in pages:
            result.window.extend(page.items)
            result.errors.extend(page.errors)
    seen = {o.shop_id for o in result.window} | {e.key for e in result.errors}
    wanted = [i for i in dict.fromkeys(retry_ids) if i not in seen]
    if wanted:
        for page in runtime.shop.iter_orders_by_id(wanted):
            result.retries.extend(page.items)
            result.errors.extend(page.errors)
        found = {o.shop_id for o in result.retries} | {e.key for e in result.errors}
        result.missing = [i for i in wanted if i not in found]
    result.window = dedupe_orders(result.window)
    return result


@task(
    name="orders-read-shop", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=5, retry_condition_fn=retriable_only
)
def read_shop_orders(runtime: StoreRuntime, since: datetime | None, retry_ids: list[str]) -> ShopOrders:
    """Read the shop's orders of the window (and those to retry, by id)."""
    result = read_orders(runtime, since, retry_ids)
    _logger().info(
        "read %d orders since %s (+%d to retry by id), %d unreadable",
        len(result.window),
        since.isoformat() if since else "-",
        len(result.retries),
        len(result.errors),
    )
    return result


def read_order(runtime: StoreRuntime, order_id: str) -> Order:
    """One shop order by id (``RecordError`` 404 when the shop has none)."""
    return runtime.shop.get_order(order_id)


def open_order_failures(runtime: StoreRuntime, entity: str = ORDER) -> dict[str, int]:
    """Open failures of an order entity in this store: key -> attempts that count towards the hold."""
    return {f.key: counted_attempts(f.error, f.attempts) for f in runtime.state.open_failures(runtime.name, entity)}


def record_unreadable(runtime: StoreRuntime, read: ShopOrders) -> list[dict[str, str]]:
    """Rows that could not become orders, and retried ids the shop no longer has, into failures."""
    rows = []
    for error in read.errors:
        record_failure(runtime.state, runtime.name, ORDER, error.key, error.error, error.payload)
        rows.append({"order": error.key, "reason": describe(error.error)})
    for missing in read.missing:
        reason = "the shop no longer has this order (GET by id found nothing)"
        record_failure(runtime.state, runtime.name, ORDER, missing, reason)
        rows.append({"order": missing, "reason": reason})
    return rows
