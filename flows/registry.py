"""The flows the CLI can run by name, imported only when run (Prefect's import is not free)."""

from __future__ import annotations

import importlib
from typing import Any

FLOWS: dict[str, tuple[str, str]] = {
    "products": ("erpsync.flows.products", "product_sync"),
    "stock": ("erpsync.flows.stock", "stock_sync"),
    "reconcile": ("erpsync.flows.reconcile", "reconcile"),
    "receipts": ("erpsync.flows.stock", "goods_receipts"),
    "orders": ("erpsync.flows.orders", "order_sync"),
    "resync-order": ("erpsync.flows.manual", "resync_order"),
    "retry-failures": ("erpsync.flows.manual", "retry_failures"),
    "watch": ("erpsync.flows.watch", "store_watch"),
    "customers": ("erpsync.flows.customers", "customer_sync"),
    "purchases": ("erpsync.flows.purchases", "purchase_sync"),
    "prune": ("erpsync.flows.prune", "prune_trail"),
}


class UnknownFlow(LookupError):
    """No flow of that name (or its module is not there yet)."""


def load_flow(name: str) -> Any:
    """The Prefect flow object called ``name``."""
    try:
        module_name, attribute = FLOWS[name]
    except KeyError:
        raise UnknownFlow(f"unknown flow {name!r}; choose one of: {', '.join(FLOWS)}") from None
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            raise UnknownFlow(f"flow {name!r} is not available in this version ({module_name} missing)") from None
        raise
    return getattr(module, attribute)
