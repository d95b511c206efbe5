"""Tasks of the product sync that read: the ERP's and the shop's products (changed since their cursors, or
all), and the look-ups a plan needs from the other side (``tasks/products.py`` sets the run up).

A SKU claimed by several ERP records fails them all; the shop is read with a date-only filter in its own zone,
overlapped, and its products that failed before are read again by id.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from erpsync.connectors.merchantpro.client import local_date_since, product_sync_fields, product_sync_filters
from erpsync.core.models import Product, RowError
from erpsync.core.product_plan import Failed, Known, Lookups, lookups_needed, shop_key
from erpsync.core.product_run import row_failures, split_duplicates
from erpsync.core.skus import shop_sku
from erpsync.runtime.logs import run_logger
from erpsync.runtime.states import retriable_only
from erpsync.runtime.store_runtime import StoreRuntime
from erpsync.tasks.products import Setup

log = logging.getLogger("erpsync.products")

SHOP_LOOKUP_LIMIT = 50  # more unlinked SKUs to look up than this: read the whole shop instead
SHOP_OVERLAP_DAYS = 1


def _logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    return run_logger(log)


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
    tax_rates: Mapping[int, Decimal] | None = None,
) -> ShopRead:
    """Shop products modified since ``since`` (date-only filter in the shop's zone, overlapped), or all; and
    the products of ``retry_ids`` (that failed before) by id, 100 a request. ``tax_rates`` (tax id -> VAT
    percent) gives the VAT rate of a product reply that carries ``tax_id`` but no ``tax_value``."""
    fields = product_sync_fields(include_images)
    day: date | None = None
    if since is not None:
        day = local_date_since(since, timezone=runtime.store.timezone, overlap_days=SHOP_OVERLAP_DAYS)
    result = ShopRead(complete=since is None)
    pages = runtime.shop.iter_products(
        modified_since=day, filters=product_sync_filters(include_images), fields=fields, tax_rates=tax_rates
    )
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
            filters=product_sync_filters(include_images, {"ids": ",".join(chunk)}), fields=fields, tax_rates=tax_rates
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
    runtime: StoreRuntime,
    since: datetime | None,
    include_images: bool,
    record_errors: bool,
    retry_ids: list[str],
    tax_rates: dict[int, Decimal] | None = None,
) -> ShopRead:
    """Read the shop's products (modified since the cursor, with a day of overlap, or all; failed ones by id)."""
    result = read_shop(
        runtime,
        since,
        include_images=include_images,
        record_errors=record_errors,
        retry_ids=retry_ids,
        tax_rates=tax_rates,
    )
    _logger().info(
        "shop: %d products read (%s) in %d requests, %d not under the store's SKU prefix",
        len(result.products),
        f"modified since {since.date()}" if since else "whole shop",
        result.requests,
        result.foreign,
    )
    return result


def fetch_shop(
    runtime: StoreRuntime,
    lookups: Lookups,
    *,
    include_images: bool,
    record_errors: bool,
    known_products: int = 0,
    tax_rates: Mapping[int, Decimal] | None = None,
) -> ShopRead:
    """The shop products a plan needs: by id (100 a request) and by SKU, one request each; when that would
    cost more requests than reading the whole shop (about ``known_products`` / 100 pages), the whole shop."""
    if len(lookups.shop_by_sku) > max(SHOP_LOOKUP_LIMIT, known_products // 100):
        return read_shop(runtime, None, include_images=include_images, record_errors=record_errors, tax_rates=tax_rates)
    fields = product_sync_fields(include_images)
    result = ShopRead()
    prefix = runtime.store.sku_prefix
    wanted_ids = {shop_id: sku for sku, shop_id in lookups.shop_by_id.items()}
    ids = list(wanted_ids)
    for start in range(0, len(ids), 100):
        chunk = ids[start : start + 100]
        pages = runtime.shop.iter_products(
            filters=product_sync_filters(include_images, {"ids": ",".join(chunk)}), fields=fields, tax_rates=tax_rates
        )
        for product in _collect(runtime, result, pages, record_errors):
            sku = wanted_ids.get(product.shop_id or "")
            if sku is not None:
                result.products[sku] = product  # keyed by the link: a SKU renamed in the shop stays linked
    result.absent |= {sku for sku in lookups.shop_by_id if sku not in result.products}
    for sku in lookups.shop_by_sku:
        pages = runtime.shop.iter_products(
            filters=product_sync_filters(include_images, {"sku": shop_sku(prefix, sku)}),
            fields=fields,
            tax_rates=tax_rates,
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
            tax_rates=setup.taxes.by_id,
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
