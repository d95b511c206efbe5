"""The ERP connector protocol: what every ERP offers the flows, and the capabilities that say how much of it.

Flows ask ``connector.capabilities``, never the connector's type. A method whose capability is false raises
``NotSupported``. Reads are paged (``iter_*`` yield ``Page`` objects: the records that parsed and the rows that
did not, so one bad row never stops a read). Writes of one record raise ``RecordError`` when the ERP refuses
that record (unknown SKU, invalid data), ``FatalError`` for configuration or credentials, ``RetriableError``
for transient trouble.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Protocol, runtime_checkable

from erpsync.connectors.errors import FatalError, RecordError
from erpsync.connectors.http import Counters
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


@dataclass(frozen=True)
class Capabilities:
    """What an ERP connector can do; flows adapt to it."""

    products_read: bool = False
    products_changed_since: bool = False
    products_create: bool = False
    products_update: bool = False
    stock_read: bool = False
    stock_changed_since: bool = False
    stock_reservations: bool = False
    customers_find: bool = False
    customers_create: bool = False
    orders_create: bool = False
    # create_order may be re-sent for an order whose first send has no known outcome: the ERP answers a repeated
    # send with the document of the first (Oblio's idempotencyKey), so "sent, outcome unknown" needs no person
    orders_create_idempotent: bool = False
    orders_read: bool = False
    orders_read_status: bool = False
    orders_cancel: bool = False
    orders_return: bool = False  # return_order: a return (stock back, credit note) for some lines of an order
    orders_update: bool = False  # update_order: rewrite an order that is still a draft or quotation
    payments_record: bool = False  # record_payment: the payment a shop collected, booked against the order
    invoices: bool = False
    goods_receipts_read: bool = False
    suppliers_read: bool = False
    customers_update: bool = False  # update_customer: a linked party takes the shop account's new addresses
    purchases_read: bool = False  # iter_incoming: confirmed purchase lines not yet received (goods on the way)
    product_suppliers: bool = False  # iter_products: each product carries its main supplier (Product.supplier)

    def names(self) -> list[str]:
        """The capabilities that are on, by name."""
        return [f.name for f in fields(self) if getattr(self, f.name)]


class NotSupported(FatalError):
    """The ERP (or this connector) cannot do what was asked; check ``capabilities`` first."""


class MissingInErp(RecordError):
    """A configuration record ONE order needs is missing in the ERP (a country, a currency, a unit ...).

    A ``RecordError``: that order goes to the failures table and the batch goes on. ``what`` and ``code`` name
    the record (``"country"``, ``"MD"``), ``fix`` says where to create it; the order import adds how to retry.
    """

    what: str = ""
    code: str = ""
    fix: str = ""


class NeedsReturn(RecordError):
    """``cancel_order`` refused: goods already left the warehouse or an invoice was issued, so undoing the order
    takes a return (``return_order``), not a cancel. The order flow then books the return."""


def missing_in_erp(system: str, key: str, what: str, code: str, fix: str) -> MissingInErp:
    """``MissingInErp`` for the record named ``key``: "KEY: country 'MD' is not in Tryton: create it ..."."""
    error = MissingInErp(system, f"{key}: {what} {code!r} is not in {system.capitalize()}: {fix}")
    error.key, error.what, error.code, error.fix = key, what, code, fix
    return error


@dataclass(frozen=True)
class Needs:
    """What one store's flows will need from the ERP, for ``preflight`` (``erpsync check``).

    ``currencies``: what the shop sells in (its recent orders, else RON); ``countries``: RO and the countries
    of the shop's recent orders; ``payment_terms``: the targets of ``[stores.orders] payment_methods``.
    A connector probes what its ERP holds and ignores the rest.
    """

    store: str
    shipping_sku: str = "SHIPPING"
    discount_sku: str = "DISCOUNT"  # the service products discount and fee lines go on ([stores.orders])
    fee_sku: str = "FEE"
    currencies: tuple[str, ...] = ("RON",)
    countries: tuple[str, ...] = ("RO",)
    warehouses: tuple[str, ...] = ("WH",)
    price_list: str = ""
    payment_terms: tuple[str, ...] = ()
    vat_rates: tuple[str, ...] = ()  # the VAT percentages the store's products use ([stores.products] vat_taxes)


@dataclass(frozen=True)
class Probe:
    """One line of ``erpsync check``: what was probed, whether it is there, and the fix when it is not."""

    target: str
    ok: bool
    detail: str


@runtime_checkable
class Preflight(Protocol):
    """Optional: an ERP connector that can tell, before any run, whether what the flows need is there."""

    def preflight(self, needs: Sequence[Needs]) -> list[Probe]:
        """One probe per thing the stores need (shipping product, currency, countries, warehouses, price
        lists, payment terms ...); never raises for a missing record (it is a failed probe)."""
        ...


def preflight(connector: object, needs: Sequence[Needs]) -> list[Probe]:
    """The connector's probes; a connector without ``preflight`` has nothing to probe (an empty list)."""
    if isinstance(connector, Preflight):
        return connector.preflight(needs)
    return []


@runtime_checkable
class ErpConnector(Protocol):
    """One ERP, seen through canonical records."""

    system: str
    capabilities: Capabilities
    counters: Counters

    def check(self) -> str:
        """Probe the ERP: reachable and authenticated; return a one-line description (version, company)."""
        ...

    def close(self) -> None: ...

    # products -----------------------------------------------------------------------------------------
    def iter_products(self, *, changed_since: datetime | None = None) -> Iterator[Page[Product]]:
        """Every product (variants grouped under their template), or only those changed since a UTC time."""
        ...

    def create_product(self, product: Product) -> Product:
        """Create a product; return it with ``erp_id`` (and the variants' ``erp_id``) set."""
        ...

    def update_product(self, product: Product, changed: set[str]) -> None:
        """Write the ``changed`` canonical fields of a product that has an ``erp_id``."""
        ...

    # stock -------------------------------------------------------------------------------------------
    def iter_stock(
        self,
        warehouses: Sequence[str],
        *,
        skus: Sequence[str] | None = None,
        changed_since: datetime | None = None,
    ) -> Iterator[Page[StockLevel]]:
        """Stock per SKU and warehouse: on hand and reserved by open orders (0 when the ERP cannot tell)."""
        ...

    # customers and orders ----------------------------------------------------------------------------
    def find_customer(self, customer: Customer) -> Customer | None:
        """The ERP's customer with this e-mail (or VAT code, for a company), if any."""
        ...

    def create_customer(self, customer: Customer) -> Customer:
        """Create a customer with its addresses; return it with ``erp_id`` set."""
        ...

    def find_order(self, reference: str) -> str | None:
        """The ERP id of the order whose external reference is ``reference``, if any.

        The order flow's reference is the store's ``reference_prefix`` + the shop order id (``core.order_rules
        .erp_reference``), so that shops sharing one ERP never find each other's orders.
        """
        ...

    def create_order(self, order: Order, customer: Customer) -> str:
        """Create (and confirm) the order, idempotent on its reference; return its ERP id.

        The reference is ``order.reference`` (set by ``core.order_rules.to_erp_order``), else ``order.shop_id``.

        An order whose reference already exists in the ERP is not created again: its id is returned.
        An unknown SKU raises ``RecordError`` naming the SKU.
        """
        ...

    def cancel_order(self, erp_id: str, *, reference: str) -> AfterSale:
        """Undo a whole order that was cancelled (or refused) in the shop after import; idempotent.

        Where the ERP can still cancel it (Tryton: nothing shipped, nothing invoiced) the order, its shipments and
        draft invoices are cancelled and its reservations freed (``kind="cancelled"``); a connector that undoes
        issued documents by reversal does so here (SmartBill: a storno of the invoice, ``kind="storno"``,
        keyed by ``reference`` so a retry finds it and never makes a second one). Where only a return can undo
        it (Tryton: something was shipped or invoiced) it raises ``NeedsReturn`` and changes nothing. An order
        already cancelled returns ``kind="cancelled"`` again.
        """
        ...

    def return_order(self, erp_id: str, lines: Sequence[ReturnLine], *, reference: str) -> AfterSale:
        """Book a return of these quantities of an order (capability ``orders_return``); idempotent on ``reference``.

        ``reference`` is the return's own key (the order's ERP reference + ``/R<n>``): a return that already
        exists with it is returned, never made twice. The goods come back into the order's warehouse (Tryton: a
        return sale with negative quantities, its return shipment received and done, its credit note);
        ``AfterSale.erp_id`` is the return document, ``credit_note`` its credit note's number when there is one.
        A SKU that is not on the order, or more than was sold, is a ``RecordError``.
        """
        ...

    def record_payment(self, erp_id: str, order: Order, *, reference: str) -> str:
        """Book the payment the shop collected for an order (capability ``payments_record``), idempotent on
        ``reference`` (the order's ERP reference + ``/P1``); the ERP's payment document, or ``""`` when the
        configuration books no payment for the order's payment method (nothing written, no call)."""
        ...

    def update_order(self, erp_id: str, order: Order, customer: Customer) -> bool:
        """Rewrite an order still editable in the ERP (a draft or quotation) with the shop's lines, addresses and
        totals (capability ``orders_update``; the same total check as ``create_order``). False, with nothing
        written, when the ERP order is no longer editable (confirmed, shipped, invoiced)."""
        ...

    def order_statuses(self, erp_ids: Sequence[str]) -> list[ErpOrderStatus]:
        """State, invoices (number, date, PDF link), shipments (AWB, carrier) and whether still editable."""
        ...

    def iter_orders(self, *, changed_since: datetime | None = None) -> Iterator[Page[Order]]:
        """ERP orders (of every channel) changed since a UTC time; ``Order.channel`` says where each came from."""
        ...

    # purchasing --------------------------------------------------------------------------------------
    def iter_goods_receipts(self, since: datetime, warehouses: Sequence[str]) -> Iterator[Page[GoodsReceipt]]:
        """Goods received into these warehouses since a UTC time."""
        ...

    def iter_suppliers(self) -> Iterator[Page[Supplier]]: ...


@runtime_checkable
class CustomerUpdater(Protocol):
    """A connector whose linked parties can take a shop account's changes (capability ``customers_update``)."""

    def update_customer(self, customer: Customer) -> bool:
        """Bring the party ``customer.erp_id`` up to date with the account: an address it does not have yet is
        added (the old ones are kept: past invoices point at them), missing e-mail/phone contacts and the trade
        register number are added. True when something was written."""
        ...


@runtime_checkable
class OrderBatchReader(Protocol):
    """A connector that looks up what a batch of orders needs in a few calls instead of a few per order."""

    def order_batch(self, orders: Sequence[Order], customers: Sequence[Customer]) -> AbstractContextManager[None]:
        """Within the block, ``create_order``/``find_customer`` of these orders (their ERP references and SKUs;
        buyers with ``erp_id`` when linked) answer their look-ups from one search per kind made on entry, and a
        new order is created and checked but completed (confirmed) only by ``confirm_batch``.
        ``find_order`` always asks the ERP: an order in doubt is looked up afresh."""
        ...

    def confirm_batch(self) -> dict[str, RecordError | None]:
        """Complete the orders ``create_order`` made in this block, together: per ERP id, None or why it was
        refused. A ``create_order`` of an existing, unfinished order completes it (an order in doubt)."""
        ...


@runtime_checkable
class PurchaseReader(Protocol):
    """A connector that can tell what goods are on the way (capability ``purchases_read``)."""

    def iter_incoming(self, warehouses: Sequence[str]) -> Iterator[Page[IncomingGoods]]:
        """Lines of confirmed purchases not yet received into these warehouses: SKU, quantity still to come,
        expected date, supplier and purchase number."""
        ...
