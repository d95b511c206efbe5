"""Tasks of the product sync that write: a batch of planned writes to one side, one by one, recording after each
write what makes a re-run safe (the link, the inventory units, the fingerprint written).

Test hook: with ``ERPSYNC_TEST_PRODUCTS_EXIT_AFTER_WRITES=N`` in the environment the process exits at once
(``os._exit(70)``) after its N-th shop write, before recording it — the crash a re-run must converge from.
Tests only.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from prefect import task
from prefect.cache_policies import NO_CACHE

from erpsync.connectors.errors import RecordError, RetriableError
from erpsync.connectors.merchantpro.mapping import product_from_shop
from erpsync.connectors.merchantpro.writes import shop_patch, supplier_fields
from erpsync.core.models import Product
from erpsync.core.product_diff import supplier_target
from erpsync.core.product_plan import Failed, Side, Write, erp_fingerprint, units_of
from erpsync.core.product_run import erp_update_fields
from erpsync.core.state import LinkConflict
from erpsync.core.units import ENTITY as UNIT
from erpsync.core.units import load_units, save_units
from erpsync.runtime.failures import describe
from erpsync.runtime.logs import run_logger
from erpsync.runtime.store_runtime import StoreRuntime
from erpsync.tasks.products import PRODUCT, PUSHED_ERP, Setup

log = logging.getLogger("erpsync.products")

TRANSIENT_BREAKER = 5
CRASH_HOOK_ENV = "ERPSYNC_TEST_PRODUCTS_EXIT_AFTER_WRITES"
CRASH_EXIT_CODE = 70


def _logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    return run_logger(log)


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
            # The supplier goes with the create only when it has one (nothing to clear in a new product).
            inferred = supplier_fields(write.product, write.fields) if write.product.supplier else {}
            created = runtime.shop.create_product(
                write.product, tax_id=tax_id, category_id=self.setup.default_category_id, inferred=inferred
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
        lenient = any(supplier_target(f) for f in write.fields)  # the PATCH carries the supplier's field
        try:
            reply = runtime.shop.update_product(write.product.shop_id, patch, key=write.product.sku, inferred=lenient)
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
