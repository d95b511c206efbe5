"""What a file exchange cannot do: each method raises ``NotSupported`` at once (``FilesConnector`` mixes it in)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import NoReturn

from erpsync.connectors.erp.base import NotSupported
from erpsync.connectors.erp.files.folders import SYSTEM
from erpsync.core.models import (
    AfterSale,
    Customer,
    ErpOrderStatus,
    GoodsReceipt,
    Order,
    Page,
    Product,
    ReturnLine,
    Supplier,
)


class Unsupported:
    """Product and customer writes, order reads and after-sale documents, receipts, suppliers."""

    def _unsupported(self, what: str) -> NoReturn:
        raise NotSupported(SYSTEM, f"a file exchange cannot {what}")

    def create_product(self, product: Product) -> Product:
        self._unsupported("create products in the ERP")

    def update_product(self, product: Product, changed: set[str]) -> None:
        self._unsupported("update products in the ERP")

    def find_customer(self, customer: Customer) -> Customer | None:
        self._unsupported("find customers (the buyer travels inside each order file)")

    def create_customer(self, customer: Customer) -> Customer:
        self._unsupported("create customers (the buyer travels inside each order file)")

    def iter_orders(self, *, changed_since: datetime | None = None) -> Iterator[Page[Order]]:
        self._unsupported("list the ERP's orders")

    def order_statuses(self, erp_ids: Sequence[str]) -> list[ErpOrderStatus]:
        self._unsupported("read order statuses yet")

    def cancel_order(self, erp_id: str, *, reference: str) -> AfterSale:
        self._unsupported("cancel an order already written for the ERP")

    def return_order(self, erp_id: str, lines: Sequence[ReturnLine], *, reference: str) -> AfterSale:
        self._unsupported("book returns")

    def record_payment(self, erp_id: str, order: Order, *, reference: str) -> str:
        self._unsupported("book payments")

    def update_order(self, erp_id: str, order: Order, customer: Customer) -> bool:
        self._unsupported("rewrite an order already written for the ERP")

    def iter_goods_receipts(self, since: datetime, warehouses: Sequence[str]) -> Iterator[Page[GoodsReceipt]]:
        self._unsupported("list goods receipts")

    def iter_suppliers(self) -> Iterator[Page[Supplier]]:
        self._unsupported("list suppliers")
