"""What Oblio's API cannot do for erpsync: each method raises ``NotSupported`` with the reason."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import NoReturn

from erpsync.connectors.erp.base import NotSupported
from erpsync.connectors.erp.oblio.client import SYSTEM
from erpsync.core.models import Customer, GoodsReceipt, Order, Page, Product, Supplier


class Unsupported:
    """Customers, product writes, order edits and listing, payments, goods receipts, suppliers."""

    def _unsupported(self, what: str) -> NoReturn:
        raise NotSupported(SYSTEM, f"Oblio's API cannot {what}")

    def update_order(self, erp_id: str, order: Order, customer: Customer) -> bool:
        self._unsupported("rewrite an issued document (storno it and issue a new one)")

    def record_payment(self, erp_id: str, order: Order, *, reference: str) -> str:
        self._unsupported("record payments through erpsync yet (PUT /docs/invoice/collect is not wired)")

    def create_product(self, product: Product) -> Product:
        self._unsupported("create products (a product is created by the first document that names it)")

    def update_product(self, product: Product, changed: set[str]) -> None:
        self._unsupported("update products")

    def find_customer(self, customer: Customer) -> Customer | None:
        self._unsupported("be asked for customers by erpsync (the client travels inside each document)")

    def create_customer(self, customer: Customer) -> Customer:
        self._unsupported("create customers (the client travels inside each document)")

    def iter_orders(self, *, changed_since: datetime | None = None) -> Iterator[Page[Order]]:
        self._unsupported("list orders (it has no sales orders)")

    def iter_goods_receipts(self, since: datetime, warehouses: Sequence[str]) -> Iterator[Page[GoodsReceipt]]:
        self._unsupported("list goods receipts")

    def iter_suppliers(self) -> Iterator[Page[Supplier]]:
        self._unsupported("list suppliers")
