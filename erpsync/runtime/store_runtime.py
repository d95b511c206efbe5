"""What one flow run works with for one store: settings, state store, shop client, ERP connector, counters.

Flows open a ``StoreRuntime`` at the start and hand it to their tasks (tasks run in threads of the same
process, so the live clients are shared, not serialised; tasks therefore use no input caching).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from erpsync.connectors.erp import make_erp
from erpsync.connectors.erp.base import ErpConnector
from erpsync.connectors.merchantpro import MerchantProClient
from erpsync.core.config import Settings, StoreSettings, load_config
from erpsync.core.redact import install_log_redaction
from erpsync.core.state import StateStore
from erpsync.core.summary import RunSummary
from erpsync.core.vat import TaxTable
from erpsync.runtime.heartbeats import end_runs_without_waiting
from erpsync.runtime.logs import install_short_tracebacks
from erpsync.runtime.prefect_secrets import install_prefect_secret_resolver
from erpsync.runtime.process import remember_settings, state_store
from erpsync.runtime.run_context import check_run_store

# Every flow imports this module: settings it loads can read prefect-secret: references, run logs show an
# explained connector error without its long traceback, and runs end without waiting for their heartbeat thread.
install_prefect_secret_resolver()
install_short_tracebacks()
end_runs_without_waiting()


@dataclass
class RuntimeOverrides:
    """Process-wide adjustments for simulators and benchmarks (never set in production)."""

    unpaced: bool = False
    shop_options: dict[str, Any] = field(default_factory=dict)
    erp_options: dict[str, Any] = field(default_factory=dict)


log = logging.getLogger("erpsync.runtime")
# Prefect flow name -> the flow name its summaries carry (their artifact key: <flow>-<store>-summary).
SUMMARY_FLOW = {"stock-sync": "stock", "goods-receipts": "receipts", "store-watch": "watch"}
overrides = RuntimeOverrides()


def shop_client(store: StoreSettings, settings: Settings | None = None) -> MerchantProClient:
    """A MerchantPro client for one configured store, paced by the store's shared limit when there is one."""
    limiter = None
    if settings is not None and not overrides.unpaced:
        from erpsync.runtime.ratelimit import shared_limiter_for

        limiter = shared_limiter_for(settings, store)
    options: dict[str, Any] = {
        "requests_per_second": None if overrides.unpaced else store.requests_per_second,
        "limiter": limiter,
        "max_retries": store.max_retries,
        "connect_timeout": store.connect_timeout_seconds,
        "read_timeout": store.timeout_seconds,
        "customers_path": store.customers_path,
        "timezone": store.timezone,
        **overrides.shop_options,
    }
    return MerchantProClient(store.url, store.api_key.get(), store.api_secret.get(), **options)


@dataclass
class StoreRuntime:
    """Everything a flow run needs for one store."""

    settings: Settings
    store: StoreSettings
    state: StateStore
    shop: MerchantProClient
    erp: ErpConnector
    started: float = field(default_factory=time.monotonic)
    _taxes: TaxTable | None = field(default=None, init=False, repr=False)

    @property
    def name(self) -> str:
        return self.store.name

    def tax_table(self) -> TaxTable:
        """The store's VAT rates and shop tax ids: its configured ``vat_taxes``, else the shop's own tax table
        (``GET /taxonomy/taxes``: one request per run, the first time a task asks)."""
        if self._taxes is None:
            configured = self.store.products.vat_taxes
            if configured is not None:
                self._taxes = TaxTable.from_config(configured)
            else:
                self._taxes = TaxTable.from_shop((tax.id, tax.value) for tax in self.shop.taxes())
        return self._taxes

    def summary(self, flow: str, **counts: Any) -> RunSummary:
        """A summary carrying this run's API counters and elapsed seconds."""
        shop, erp = self.shop.counters, self.erp.counters
        return RunSummary(
            flow=flow,
            store=self.name,
            shop_reads=shop.reads,
            shop_writes=shop.writes,
            erp_reads=erp.reads,
            erp_writes=erp.writes,
            seconds=round(time.monotonic() - self.started, 3),
            **counts,
        )

    def close(self) -> None:
        self.shop.close()
        self.erp.close()

    def __enter__(self) -> StoreRuntime:
        return self

    def __exit__(self, exc_type: object, error: BaseException | None, tb: object) -> None:
        try:
            if isinstance(error, Exception):
                self.report_failure(error)
        finally:
            self.close()

    def report_failure(self, error: Exception) -> None:
        """A run ends on ``error``: its message becomes the operator's line (``explain``: system, address, next
        step), and the run gets its summary artifact (state failed) and the store's open failures, as any run."""
        from erpsync.connectors.errors import ConnectorError, explain

        if isinstance(error, ConnectorError) and not error.explained:
            error.explained = explain(error)
        try:
            from prefect.context import FlowRunContext

            from erpsync.core.summary import RunState
            from erpsync.runtime.artifacts import publish_summary

            context = FlowRunContext.get()
            if context is None or context.flow is None:
                return
            flow = SUMMARY_FLOW.get(context.flow.name, context.flow.name)
            publish_summary(self.summary(flow, state=RunState.FAILED, message=explain(error)))
        except Exception as failure:  # the report must never hide the run's own error
            log.warning("could not publish the summary of a failed run: %s", failure)


def erp_options(settings: Settings, store: StoreSettings, state: StateStore) -> dict[str, Any]:
    """What the ERP connector needs to know about one store (its order warehouse, shipping product, price list)."""
    if settings.erp.type == "smartbill":
        from erpsync.connectors.erp.smartbill import StateIssuedRegistry

        return {"order_warehouse": store.warehouses[0], "issued": StateIssuedRegistry(state, store.name)}
    if settings.erp.type == "oblio":
        from erpsync.connectors.erp.oblio import StateOblioRegistry

        return {"order_warehouse": store.warehouses[0], "registry": StateOblioRegistry(state, store.name)}
    if settings.erp.type == "files":
        from erpsync.expectations.stock_file import validate_stock_file

        return {"order_warehouse": store.warehouses[0], "journal": state, "validator": validate_stock_file}
    return {
        "order_warehouse": store.warehouses[0],
        "shipping_sku": store.orders.shipping_sku,
        "discount_sku": store.orders.discount_sku,
        "fee_sku": store.orders.fee_sku,
        "price_list": store.price_list,
        "confirm_orders": store.orders.confirm,
        "receive_returns": store.orders.receive_returns,
    }


def open_runtime(store: str, settings: Settings | None = None) -> StoreRuntime:
    """Open the clients of one configured store (settings from $ERPSYNC_CONFIG / ./erpsync.toml by default)."""
    # Runs started by a worker or `serve` execute in Prefect's engine, not through our CLI: mask secrets here too.
    install_log_redaction()
    check_run_store(store)  # a run of another store's deployment is refused before anything is opened
    settings = settings or load_config()
    store_settings = settings.store(store)
    remember_settings(store, settings)
    state = state_store(settings.state.url.get())
    if not overrides.unpaced:  # SmartBill's and Oblio's limits are per credential, whatever process spends them
        from erpsync.runtime.ratelimit import install_erp_limits

        install_erp_limits(settings)
    return StoreRuntime(
        settings=settings,
        store=store_settings,
        state=state,
        shop=shop_client(store_settings, settings),
        erp=make_erp(settings.erp, **{**erp_options(settings, store_settings, state), **overrides.erp_options}),
    )
