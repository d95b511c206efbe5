"""What SmartBill's API cannot do: each method raises ``NotSupported`` at once (``SmartBillConnector`` mixes it in)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import NoReturn

from erpsync.connectors.erp.base import NotSupported
from erpsync.connectors.erp.smartbill.client import SYSTEM
from erpsync.core.models import Customer, GoodsReceipt, Order, Page, Product, Supplier


class Unsupported:
    """Products (SmartBill has no catalogue API: docs/smartbill.md), customers, order reads, order rewrites,
    goods receipts, suppliers."""

    def _unsupported(self, what: str) -> NoReturn:
        raise NotSupported(SYSTEM, f"SmartBill has no API to {what}")

    def iter_products(self, *, changed_since: datetime | None = None) -> Iterator[Page[Product]]:
        self._unsupported("list products")

    def create_product(self, product: Product) -> Product:
        self._unsupported("create products")

    def update_product(self, product: Product, changed: set[str]) -> None:
        self._unsupported("update products")

    def find_customer(self, customer: Customer) -> Customer | None:
        self._unsupported("find customers (the client travels inside each invoice)")

    def create_customer(self, customer: Customer) -> Customer:
        self._unsupported("create customers (the client travels inside each invoice)")

    def iter_orders(self, *, changed_since: datetime | None = None) -> Iterator[Page[Order]]:
        self._unsupported("list orders")

    def iter_goods_receipts(self, since: datetime, warehouses: Sequence[str]) -> Iterator[Page[GoodsReceipt]]:
        self._unsupported("list goods receipts")

    def iter_suppliers(self) -> Iterator[Page[Supplier]]:
        self._unsupported("list suppliers")

    def update_order(self, erp_id: str, order: Order, customer: Customer) -> bool:
        self._unsupported("rewrite an issued invoice (undo it by storno and issue a new one)")
