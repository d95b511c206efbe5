"""``TrytonConnector``: the ``ErpConnector`` of a Tryton 8.2 server, composed of one part per entity.

The parts share one ``TrytonSession`` (the JSON-RPC session and the configuration read once): ``Products``,
``Stock``, ``Parties`` (customers and suppliers), ``Sales`` (shop orders in), ``AfterSales`` (cancels and
returns), ``SalesRead`` (sales out and statuses) and ``Receipts``. The connector holds the settings, probes
the server (``check``) and what the flows will need (``preflight``), and hands each call to its part.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING

import httpx

from erpsync.connectors.erp.base import Capabilities, Needs, NotSupported, Probe
from erpsync.connectors.erp.tryton.parties import Parties
from erpsync.connectors.erp.tryton.preflight import TrytonPreflight
from erpsync.connectors.erp.tryton.products import Products
from erpsync.connectors.erp.tryton.purchases import Purchases
from erpsync.connectors.erp.tryton.receipts import Receipts
from erpsync.connectors.erp.tryton.returns import AfterSales
from erpsync.connectors.erp.tryton.rpc import SYSTEM, TrytonRpc, decode
from erpsync.connectors.erp.tryton.sales import Sales
from erpsync.connectors.erp.tryton.sales_read import SalesRead
from erpsync.connectors.erp.tryton.session import TrytonSession
from erpsync.connectors.erp.tryton.stock import Stock
from erpsync.connectors.errors import RecordError, RetriableError
from erpsync.connectors.http import Counters, RetryPolicy
from erpsync.core.models import (
    AfterSale,
    Customer,
    ErpOrderStatus,
    GoodsReceipt,
    IncomingGoods,
    Order,
    Page,
    Product,
    ReturnLine,
    StockLevel,
    Supplier,
)

if TYPE_CHECKING:
    from erpsync.core.config import TrytonSettings

log = logging.getLogger("erpsync.tryton")

CAPABILITIES = Capabilities(
    products_read=True,
    products_changed_since=True,
    products_create=True,
    products_update=True,
    stock_read=True,
    stock_changed_since=True,
    stock_reservations=True,
    customers_find=True,
    customers_create=True,
    orders_create=True,
    orders_read=True,
    orders_read_status=True,
    orders_cancel=True,
    orders_return=True,
    orders_update=True,
    invoices=True,
    goods_receipts_read=True,
    suppliers_read=True,
    customers_update=True,
    purchases_read=True,
    product_suppliers=True,
)


class TrytonConnector:
    """A Tryton 8.2 server through JSON-RPC (no rate limit: Tryton has none)."""

    system = SYSTEM
    capabilities = CAPABILITIES
    # The product fields (core.mapping.SYNC_FIELDS) Tryton holds and update_product writes; the product sync
    # leaves the others (weight, old price, images, attributes) out of its comparisons.
    product_fields = frozenset({"name", "description", "price", "ean", "status", "vat"})

    def __init__(
        self,
        url: str,
        database: str,
        username: str,
        password: str,
        *,
        language: str = "en",
        timeout_seconds: float = 30.0,
        page_size: int = 500,
        shipping_sku: str = "SHIPPING",
        discount_sku: str = "DISCOUNT",
        fee_sku: str = "FEE",
        order_warehouse: str = "WH",
        price_list: str = "",
        confirm_orders: bool = True,
        receive_returns: bool = True,
        invoice_url: str = "",
        transport: httpx.BaseTransport | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        if page_size < 1:
            raise ValueError("page_size must be >= 1")
        self.url = url.rstrip("/")
        self.database = database
        self.page_size = page_size
        self.shipping_sku = shipping_sku
        self.discount_sku = discount_sku
        self.fee_sku = fee_sku
        self.order_warehouse = order_warehouse
        self.price_list = price_list
        self.confirm_orders = confirm_orders
        self.receive_returns = receive_returns
        self.invoice_url = invoice_url
        self.rpc = TrytonRpc(
            self.url,
            database,
            username,
            password,
            language=language,
            timeout_seconds=timeout_seconds,
            transport=transport,
            retry=retry,
        )
        self.counters: Counters = self.rpc.counters
        self.tryton = TrytonSession(self.rpc, page_size=page_size, price_list=price_list)
        self.products = Products(self.tryton)
        self.stock = Stock(self.tryton)
        self.parties = Parties(self.tryton)
        self.purchases = Purchases(self.tryton)
        self.sales = Sales(
            self.tryton,
            self.parties,
            shipping_sku=shipping_sku,
            order_warehouse=order_warehouse,
            discount_sku=discount_sku,
            fee_sku=fee_sku,
            confirm_orders=confirm_orders,
        )
        self.after_sales = AfterSales(self.tryton, receive_returns=receive_returns)
        self.sales_read = SalesRead(
            self.tryton,
            shipping_sku=shipping_sku,
            discount_sku=discount_sku,
            fee_sku=fee_sku,
            invoice_url=invoice_url,
        )
        self.receipts = Receipts(self.tryton)

    @classmethod
    def from_settings(
        cls,
        settings: TrytonSettings,
        *,
        transport: httpx.BaseTransport | None = None,
        shipping_sku: str = "SHIPPING",
        discount_sku: str = "DISCOUNT",
        fee_sku: str = "FEE",
        order_warehouse: str = "WH",
        price_list: str = "",
        confirm_orders: bool = True,
        receive_returns: bool = True,
    ) -> TrytonConnector:
        """The connector of an ``[erp] type = "tryton"`` section (``price_list``: the store's, by name)."""
        return cls(
            str(settings.url),
            settings.database,
            settings.username,
            settings.password.get(),
            language=settings.language,
            timeout_seconds=settings.timeout_seconds,
            page_size=settings.page_size,
            shipping_sku=shipping_sku,
            discount_sku=discount_sku,
            fee_sku=fee_sku,
            order_warehouse=order_warehouse,
            price_list=price_list,
            confirm_orders=confirm_orders,
            receive_returns=receive_returns,
            invoice_url=settings.invoice_url,
            transport=transport,
        )

    def close(self) -> None:
        """Close the HTTP client."""
        self.rpc.close()

    def __enter__(self) -> TrytonConnector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def check(self) -> str:
        """Log in and read the preferences: ``"Tryton 8.2 at URL, database D, company C[, price list P]"``."""
        self.rpc.login()
        response = self.rpc.http.request(
            "POST",
            "/rpc/",
            json_body={"id": 1, "method": "common.server.version", "params": []},
            kind="read",
            expect_json=False,
        )
        version = decode(response.content).get("result") or "?"
        company = self.rpc.context.get("company.rec_name") or f"#{self.rpc.context.get('company')}"
        described = f"Tryton {version} at {self.url}, database {self.database}, company {company}"
        price_list = self.tryton.price_list()
        return described + (f", price list {price_list.name!r}" if price_list else "")

    def preflight(self, needs: Sequence[Needs]) -> list[Probe]:
        """What the stores' flows will need, one probe a kind: shipping product, currencies, countries,
        warehouses, price lists, payment terms (``tryton/preflight.py``)."""
        if not self.rpc.context:  # the company's currency is read from the user's context
            self.rpc.login()
        return TrytonPreflight(self.tryton).probes(needs)

    # -- the parts' methods (documented there) ----------------------------------------------------------

    def iter_products(self, *, changed_since: datetime | None = None) -> Iterator[Page[Product]]:
        return self.products.iter_products(changed_since=changed_since)

    def create_product(self, product: Product) -> Product:
        return self.products.create_product(product)

    def update_product(self, product: Product, changed: set[str]) -> None:
        self.products.update_product(product, changed)

    def iter_stock(
        self,
        warehouses: Sequence[str],
        *,
        skus: Sequence[str] | None = None,
        changed_since: datetime | None = None,
    ) -> Iterator[Page[StockLevel]]:
        return self.stock.iter_stock(warehouses, skus=skus, changed_since=changed_since)

    def find_customer(self, customer: Customer) -> Customer | None:
        return self.parties.find_customer(customer)

    def create_customer(self, customer: Customer) -> Customer:
        return self.parties.create_customer(customer)

    def update_customer(self, customer: Customer) -> bool:
        return self.parties.update_customer(customer)

    def iter_suppliers(self) -> Iterator[Page[Supplier]]:
        return self.parties.iter_suppliers()

    def iter_incoming(self, warehouses: Sequence[str]) -> Iterator[Page[IncomingGoods]]:
        return self.purchases.iter_incoming(warehouses)

    @contextmanager
    def order_batch(self, orders: Sequence[Order], customers: Sequence[Customer]) -> Iterator[None]:
        """Look up what a batch of orders needs in a few calls (sales by reference, products, buyers and their
        addresses: ``Sales.prefetch``, ``Parties.prefetch``) and answer the batch's orders from it; new sales
        wait for ``confirm_batch``. A look-up that fails leaves the orders to their own calls."""
        try:
            self.sales.prefetch(list(orders))
            self.parties.prefetch(customers)
        except (RetriableError, RecordError) as error:
            log.warning("the batch look-ups failed (%s): each order looks itself up", error)
            self.sales.end_batch()
            self.parties.end_batch()
        try:
            yield
        finally:
            self.sales.end_batch()
            self.parties.end_batch()

    def confirm_batch(self) -> dict[str, RecordError | None]:
        """Quote and confirm the sales created in this batch (``Sales.confirm_batch``)."""
        return self.sales.confirm_batch()

    def find_order(self, reference: str) -> str | None:
        return self.sales.find_order(reference)

    def create_order(self, order: Order, customer: Customer) -> str:
        return self.sales.create_order(order, customer)

    def update_order(self, erp_id: str, order: Order, customer: Customer) -> bool:
        return self.sales.update_order(erp_id, order, customer)

    def record_payment(self, erp_id: str, order: Order, *, reference: str) -> str:
        # Payments in Tryton are statement lines reconciled with the invoice (account_statement): not installed.
        raise NotSupported(SYSTEM, "recording payments is not supported for Tryton (no account_statement)")

    def cancel_order(self, erp_id: str, *, reference: str) -> AfterSale:
        return self.after_sales.cancel_order(erp_id, reference=reference)

    def return_order(self, erp_id: str, lines: Sequence[ReturnLine], *, reference: str) -> AfterSale:
        return self.after_sales.return_order(erp_id, lines, reference=reference)

    def order_statuses(self, erp_ids: Sequence[str]) -> list[ErpOrderStatus]:
        return self.sales_read.order_statuses(erp_ids)

    def iter_orders(self, *, changed_since: datetime | None = None) -> Iterator[Page[Order]]:
        return self.sales_read.iter_orders(changed_since=changed_since)

    def iter_goods_receipts(self, since: datetime, warehouses: Sequence[str]) -> Iterator[Page[GoodsReceipt]]:
        return self.receipts.iter_goods_receipts(since, warehouses)
