"""An in-memory ERP behind the ``ErpConnector`` protocol; it passes the ERP contract suite
(``tests/connectors/test_erp_contract.py``) like the real Tryton and SmartBill connectors.

``MemoryErpData`` is the ERP's books, shared by every connector on it: products (variants under their template),
stock per SKU and warehouse with reservations and the moment each last moved, goods receipts, suppliers,
parties, sales looked up by reference (and a SmartBill-like local registry), plus the trouble tests inject on
purpose (refused or transiently failing creates, refused cancels, unreadable rows, duplicated rows, a slow
create that exposes races). ``MemoryErp`` is one connector on those books: its own call ``counters`` (each page
read counts one read, each create, update or cancel one write, as a remote ERP would), its ``capabilities``
(a method whose capability is off raises ``NotSupported`` without a call) and credentials.

For tests and benchmarks that need an ERP at 100,000 SKUs, or one that misbehaves on demand; the real Tryton is
what the end-to-end tests use. Hooks for ``erpsync.runtime.store_runtime.make_erp``: ``session()`` (a new
connector on the same books, counting its own calls) and ``fresh()`` (this connector, counters at zero).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from typing import Any

from erpsync.connectors.erp.base import Capabilities, Needs, NeedsReturn, NotSupported, Probe
from erpsync.connectors.erp.tryton.mapping import CENT, fit_unit_prices, net_price
from erpsync.connectors.errors import AuthError, RetriableError, record_error
from erpsync.connectors.http import Counters
from erpsync.core.models import (
    Address,
    AfterSale,
    Customer,
    ErpInvoice,
    ErpOrderStatus,
    ErpShipment,
    GoodsReceipt,
    IncomingGoods,
    Order,
    Page,
    Product,
    ReceiptLine,
    ReturnLine,
    RowError,
    StockLevel,
    Supplier,
)
from erpsync.core.order_totals import TOLERANCE, TOTAL_MISMATCH

__all__ = [
    "FULL",
    "ORDERS",
    "PRODUCTS",
    "SMARTBILL_LIKE",
    "STOCK",
    "MemoryErp",
    "MemoryErpData",
    "Sale",
    "StockRow",
    "booked_total",
]

SYSTEM = "memory"

FULL = Capabilities(**{f.name: True for f in fields(Capabilities)})
"""Everything the protocol offers (like the real Tryton)."""
PRODUCTS = Capabilities(products_read=True, products_changed_since=True, products_create=True, products_update=True)
STOCK = Capabilities(stock_read=True, stock_changed_since=True, stock_reservations=True, goods_receipts_read=True)
ORDERS = Capabilities(
    customers_find=True,
    customers_create=True,
    orders_create=True,
    orders_read=True,
    orders_read_status=True,
    orders_cancel=True,
    orders_return=True,
    orders_update=True,
)
SMARTBILL_LIKE = Capabilities(
    stock_read=True, orders_create=True, orders_cancel=True, orders_return=True, orders_read_status=True, invoices=True
)
"""What the SmartBill connector declares: no product read, no customer step, no look-up of orders by reference
(only the connector's local registry of what it issued), statuses from that registry, returns, no edits."""


@dataclass
class StockRow:
    """One SKU in one warehouse: on hand, reserved by open orders, when it last moved."""

    on_hand: Decimal
    reserved: Decimal
    moved: datetime


@dataclass
class Sale:
    """An ERP order: the shop's (``channel`` "erpsync", with its reference) or another channel's."""

    erp_id: str
    reference: str | None
    order: Order
    customer_id: str | None
    state: str = "processing"
    channel: str | None = "erpsync"
    invoice: str | None = None
    shipped: bool = False
    delivered: bool = False
    awb: str | None = None
    modified_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    warehouse: str | None = None  # where its lines are reserved (None: nothing reserved)
    total: Decimal = Decimal(0)  # what the ERP totals it at (``booked_total``: every line, as Tryton rounds)
    shipments: list[ErpShipment] = field(default_factory=list)
    invoice_date: date | None = None
    invoice_url: str | None = None
    returned: dict[str, Decimal] = field(default_factory=dict)  # SKU -> quantity taken back by returns


def booked_total(order: Order) -> Decimal:
    """The total a sale of ``order`` comes to, computed as the Tryton connector books it and Tryton totals it: every
    line (products, discounts, fees) and shipping (gross at ``shipping_vat_rate``), unit prices fitted to the
    shop's gross per VAT rate (``tryton.mapping.fit_unit_prices``; a rate with a line without gross keeps the
    given net, else gross / (1 + VAT) to 4 decimals), each line's quantity x unit price rounded to the ban, the
    VAT per rate on the sum of that rate's amounts rounded once (tax rounding "document"), both half to even as
    Tryton's currency rounds. A line without a price counts 0.
    """
    rows: list[tuple[Decimal | None, Decimal | None, Decimal | None, Decimal]] = [
        (line.vat_rate, line.unit_price_net, line.unit_price_gross, line.quantity) for line in order.lines
    ]
    if order.shipping_amount:
        rows.append((order.shipping_vat_rate, None, order.shipping_amount, Decimal(1)))
    fitted = fit_unit_prices(
        [
            (rate, quantity, None if gross is None else (quantity * gross).quantize(CENT, rounding=ROUND_HALF_UP), net)
            for rate, net, gross, quantity in rows
        ]
    )
    bases: dict[Decimal, Decimal] = {}
    untaxed = Decimal(0)
    for (rate, net, gross, quantity), unit in zip(rows, fitted, strict=True):
        if unit is None:
            unit = net_price(net, gross, rate) if rate is not None or net is not None else gross
        if unit is None:
            continue
        amount = (quantity * unit).quantize(CENT, rounding=ROUND_HALF_EVEN)
        untaxed += amount
        if rate is not None:
            bases[rate] = bases.get(rate, Decimal(0)) + amount
    tax = sum(
        ((base * rate / 100).quantize(CENT, rounding=ROUND_HALF_EVEN) for rate, base in bases.items()), Decimal(0)
    )
    return untaxed + tax


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class MemoryErpData:
    """The books every ``MemoryErp`` connector on them shares; public for tests to seed, break and inspect."""

    # products, by ERP id; every change stamped by ``clock`` so changed_since works
    products: dict[str, Product] = field(default_factory=dict)
    unreadable_products: list[RowError] = field(default_factory=list)  # reported by every full product read
    clock: Callable[[], datetime] = _now
    # stock per (SKU, warehouse), goods receipts, suppliers
    stock: dict[tuple[str, str], StockRow] = field(default_factory=dict)
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # (sku, warehouse) rows read twice
    unreadable_skus: set[str] = field(default_factory=set)  # SKUs whose stock rows come back as RowErrors
    receipts: list[GoodsReceipt] = field(default_factory=list)
    suppliers: list[Supplier] = field(default_factory=list)
    incoming: list[IncomingGoods] = field(default_factory=list)  # confirmed purchase lines not yet received
    # parties and sales; a party's addresses, oldest first (a new one is added, never replacing the old)
    parties: dict[str, Customer] = field(default_factory=dict)
    party_addresses: dict[str, list[Address]] = field(default_factory=dict)
    party_index: dict[str, str] = field(default_factory=dict)  # "vat:CODE" / "email:ADDRESS" -> party id
    sales: dict[str, Sale] = field(default_factory=dict)
    registry: dict[str, str] = field(default_factory=dict)  # reference -> sale id: a SmartBill-like local memory
    order_warehouse: str | None = None  # where a new order's lines are reserved (None: no reservation)
    # SKUs an order may carry besides the catalogue's and the stock rows'; None: any SKU (no catalogue check)
    known_skus: set[str] | None = field(default_factory=set)
    # trouble on purpose
    refuse: dict[str, str] = field(default_factory=dict)  # reference -> refusal (RecordError) while present
    transient: dict[str, int] = field(default_factory=dict)  # reference -> creates left that fail (Retriable)
    cancel_refused: set[str] = field(default_factory=set)  # sale ids whose cancel is refused
    new_sale_state: str = "processing"  # "quotation": orders stay editable ([stores.orders] confirm = false)
    returns: dict[str, AfterSale] = field(default_factory=dict)  # return reference -> what was booked
    payments: dict[str, tuple[str, Decimal]] = field(default_factory=dict)  # reference -> (sale id, amount)
    create_delay: float = 0.0  # seconds between the look-up and the create: a real ERP's race window
    create_calls: list[str] = field(default_factory=list)  # the reference of every create_order call
    password: str = "memory-secret"  # what a connector must present
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1), repr=False)  # sales and parties
    _product_ids: Iterator[int] = field(default_factory=lambda: itertools.count(1), repr=False)

    # -- products --------------------------------------------------------------------------------------------

    def put(self, product: Product) -> Product:
        """Store a product as the ERP's own (ids given when missing, stamped now); returns the stored copy."""
        stored = product.model_copy(deep=True)
        with self.lock:
            if not stored.erp_id:
                stored.erp_id = str(next(self._product_ids))
            for variant in stored.variants:
                if not variant.erp_id:
                    variant.erp_id = f"{stored.erp_id}.{variant.sku}"
            stored.shop_id = None
            stored.modified_at = self.clock()
            self.products[stored.erp_id] = stored
        return stored

    def by_sku(self, sku: str) -> Product | None:
        """The (first) product whose template SKU is ``sku``."""
        return next((p for p in list(self.products.values()) if p.sku == sku), None)

    def edit(self, sku: str, **changes: Any) -> Product:
        """Change fields of the product with this SKU (stamped now)."""
        product = self.by_sku(sku)
        if product is None:
            raise KeyError(sku)
        updated = product.model_copy(update={**changes, "modified_at": self.clock()}, deep=True)
        self.products[updated.erp_id or ""] = updated
        return updated

    # -- stock -----------------------------------------------------------------------------------------------

    def set(
        self,
        sku: str,
        warehouse: str,
        on_hand: float | Decimal,
        reserved: float | Decimal = 0,
        moved: datetime | None = None,
    ) -> None:
        """Set a level and mark the SKU as moved (now, unless ``moved`` says when)."""
        with self.lock:
            row = StockRow(Decimal(str(on_hand)), Decimal(str(reserved)), moved or datetime.now(UTC))
            self.stock[(sku, warehouse)] = row

    def receive(self, reference: str, warehouse: str, lines: dict[str, int]) -> GoodsReceipt:
        """Goods received: on hand rises and a receipt appears."""
        with self.lock:
            for sku, quantity in lines.items():
                row = self.stock.get((sku, warehouse))
                self.set(sku, warehouse, (row.on_hand if row else 0) + quantity, row.reserved if row else 0)
            receipt = GoodsReceipt(
                erp_id=str(len(self.receipts) + 1),
                received_at=datetime.now(UTC),
                warehouse=warehouse,
                reference=reference,
                lines=[ReceiptLine(sku=s, quantity=Decimal(q)) for s, q in lines.items()],
            )
            self.receipts.append(receipt)
        return receipt

    def reserve(self, sale: Sale, sign: int = 1) -> None:
        """Reserve (``sign`` 1) or release (-1) a sale's lines in its warehouse's stock rows."""
        if sale.warehouse is None:
            return
        for line in sale.order.lines:
            row = self.stock.get((line.sku, sale.warehouse))
            if row is not None:
                self.set(line.sku, sale.warehouse, row.on_hand, row.reserved + sign * line.quantity)

    # -- orders ----------------------------------------------------------------------------------------------

    def ship(self, erp_id: str, awb: str | None = None, carrier: str | None = None) -> Sale:
        """A sale's goods leave the warehouse (on hand and reservation down), with one shipment and its AWB."""
        with self.lock:
            sale = self.sales[erp_id]
            if sale.warehouse is not None:
                for line in sale.order.lines:
                    row = self.stock.get((line.sku, sale.warehouse))
                    if row is not None and line.kind == "product":
                        self.set(line.sku, sale.warehouse, row.on_hand - line.quantity, row.reserved - line.quantity)
            number = len(sale.shipments) + 1
            shipment = ErpShipment(erp_id=f"{erp_id}-{number}", state="done", shipped=True, awb=awb, carrier=carrier)
            sale.shipments.append(shipment)
            sale.shipped, sale.awb = True, sale.awb or awb
            sale.modified_at = datetime.now(UTC)
        return sale

    def invoice(self, erp_id: str, number: str, url: str | None = None) -> Sale:
        """The sale's invoice is issued (today)."""
        with self.lock:
            sale = self.sales[erp_id]
            sale.invoice, sale.invoice_date, sale.invoice_url = number, date.today(), url
            sale.modified_at = datetime.now(UTC)
        return sale

    def sales_for(self, reference: str) -> list[Sale]:
        """The sales carrying this reference (more than one would be a duplicate)."""
        return [s for s in list(self.sales.values()) if s.reference == reference]

    def add_channel_order(self, order: Order, channel: str) -> str:
        """An order entered in the ERP from another channel (phone, marketplace ...); its id."""
        return self.add_sale(None, order, None, state="confirmed", channel=channel).erp_id

    def add_sale(self, reference: str | None, order: Order, customer_id: str | None, **extra: Any) -> Sale:
        """Book a sale (its lines reserved in ``order_warehouse``, when set) and remember its reference."""
        extra.setdefault("total", booked_total(order))
        with self.lock:
            sale = Sale(str(next(self._ids)), reference, order, customer_id, **extra)
            self.sales[sale.erp_id] = sale
            if reference is not None:
                self.registry[reference] = sale.erp_id
            self.reserve(sale)
        return sale

    def add_party(self, customer: Customer) -> Customer:
        """Book a customer; the stored copy, with its ``erp_id``."""
        with self.lock:
            erp_id = f"P{next(self._ids)}"
            self.parties[erp_id] = customer.model_copy(update={"erp_id": erp_id})
            if customer.vat_code:
                self.party_index.setdefault(f"vat:{customer.vat_code}", erp_id)
            if customer.email:
                self.party_index.setdefault(f"email:{customer.email}", erp_id)
            self.party_addresses[erp_id] = _distinct([customer.billing, customer.shipping])
            return self.parties[erp_id]

    def sells(self, sku: str) -> bool:
        """Whether an order line may carry this SKU."""
        if self.known_skus is None or sku in self.known_skus:
            return True
        if any(key[0] == sku for key in self.stock):
            return True
        return any(sku in product.skus() for product in list(self.products.values()))


class MemoryErp:
    """One connector on a ``MemoryErpData`` (thread-safe; its own counters), paged like a real connector."""

    def __init__(
        self,
        data: MemoryErpData | None = None,
        *,
        capabilities: Capabilities = FULL,
        system: str = SYSTEM,
        page_size: int = 500,
        password: str | None = None,
    ) -> None:
        self.data = data if data is not None else MemoryErpData()
        self.capabilities = capabilities
        self.system = system
        self.page_size = page_size
        self.password = self.data.password if password is None else password
        self.counters = Counters()

    def session(self, **_options: Any) -> MemoryErp:
        """A new connector on the same books, counting its own calls (what ``make_erp`` returns in tests)."""
        return MemoryErp(
            self.data,
            capabilities=self.capabilities,
            system=self.system,
            page_size=self.page_size,
            password=self.password,
        )

    def fresh(self) -> MemoryErp:
        """This connector with its counters at zero (what a new connection of a flow run would count)."""
        self.counters = Counters()
        return self

    # -- the gate every call passes ----------------------------------------------------------------------------

    def _require(self, capability: str, what: str) -> None:
        if not getattr(self.capabilities, capability):
            raise NotSupported(self.system, f"{what} is not supported ({capability} is off)")

    def _call(self, kind: str) -> None:
        """One request to the ERP: counted, then authenticated."""
        self.counters.count("read" if kind == "read" else "write")
        if self.password != self.data.password:
            raise AuthError(self.system, "invalid credentials")

    def check(self) -> str:
        self._call("read")
        data = self.data
        return f"in-memory ERP: {len(data.products)} products, {len(data.stock)} stock levels, {len(data.sales)} sales"

    def close(self) -> None:
        return None

    def preflight(self, needs: Sequence[Needs]) -> list[Probe]:
        """One call: the in-memory books hold no configuration records (any currency, country and warehouse
        will do; shipping travels as the order's amount), so there is one line saying so."""
        self._call("read")
        stores = ", ".join(n.store for n in needs) or "no store"
        return [Probe("erp books", True, f"in-memory: nothing to create for {stores} (no configuration records)")]

    def _pages(
        self, items: Sequence[Any], *, errors: Sequence[RowError] = ()
    ) -> Iterator[tuple[list[Any], list[RowError]]]:
        """Split into pages (at least one), one read each."""
        for start in range(0, max(len(items), 1), self.page_size):
            self._call("read")
            yield list(items[start : start + self.page_size]), list(errors) if start == 0 else []

    # -- products --------------------------------------------------------------------------------------------

    def iter_products(self, *, changed_since: datetime | None = None) -> Iterator[Page[Product]]:
        self._require("products_read", "reading products")
        if changed_since is not None:
            self._require("products_changed_since", "reading products changed since a moment")
        chosen = [
            p
            for p in list(self.data.products.values())
            if changed_since is None or (p.modified_at is not None and p.modified_at >= changed_since)
        ]
        errors = self.data.unreadable_products if changed_since is None else []
        for items, page_errors in self._pages(chosen, errors=errors):
            yield Page[Product](items=[_copy(p) for p in items], errors=page_errors)

    def create_product(self, product: Product) -> Product:
        self._require("products_create", "creating products")
        self._call("write")
        existing = self.data.by_sku(product.sku)
        if existing is not None:
            return product.model_copy(update={"erp_id": existing.erp_id})
        stored = self.data.put(product.model_copy(update={"erp_id": None}))
        return product.model_copy(
            update={"erp_id": stored.erp_id, "variants": [v.model_copy() for v in stored.variants]}
        )

    def update_product(self, product: Product, changed: set[str]) -> None:
        self._require("products_update", "updating products")
        self._call("write")
        data = self.data
        current = data.products.get(product.erp_id or "") or data.by_sku(product.sku)
        if current is None:
            raise record_error(self.system, product.sku, "no such product")
        values: dict[str, Any] = {}
        for name in ("name", "description", "ean", "weight", "status", "images", "attributes"):
            if name in changed:
                values[name] = getattr(product, name)
        if changed & {"price", "price_net", "price_gross"}:
            values.update(price_net=product.price_net, price_gross=product.price_gross)
        if changed & {"old_price", "old_price_net", "old_price_gross"}:
            values.update(old_price_net=product.old_price_net, old_price_gross=product.old_price_gross)
        if changed & {"vat", "vat_rate"}:
            values["vat_rate"] = product.vat_rate
        if product.variants and changed & {"price", "old_price", "ean", "weight", "attributes", "price_net"}:
            wanted = {v.sku: v for v in product.variants}
            variants = []
            for variant in current.variants:
                new = wanted.get(variant.sku)
                variants.append(variant if new is None else new.model_copy(update={"erp_id": variant.erp_id}))
            values["variants"] = variants
        with data.lock:
            data.products[current.erp_id or ""] = current.model_copy(update={**values, "modified_at": data.clock()})

    # -- stock -----------------------------------------------------------------------------------------------

    def iter_stock(
        self,
        warehouses: Sequence[str],
        *,
        skus: Sequence[str] | None = None,
        changed_since: datetime | None = None,
    ) -> Iterator[Page[StockLevel]]:
        """Levels of these warehouses (only ``skus``, or SKUs moved since ``changed_since``), page by page."""
        self._require("stock_read", "reading stock")
        if changed_since is not None:
            self._require("stock_changed_since", "reading stock changed since a moment")
        data = self.data
        wanted_wh = set(warehouses)
        with data.lock:
            rows = sorted((key, row) for key, row in data.stock.items() if key[1] in wanted_wh)
            extra = [(key, data.stock[key]) for key in data.duplicates if key in data.stock]
        if skus is not None:
            wanted = set(skus)
            rows = [(key, row) for key, row in rows if key[0] in wanted]
        if changed_since is not None:
            moved = {key[0] for key, row in rows if row.moved >= changed_since}
            rows = [(key, row) for key, row in rows if key[0] in moved]
        rows += [(key, row) for key, row in extra if key[1] in wanted_wh]
        reservations = self.capabilities.stock_reservations
        for chunk, _ in self._pages(rows):
            page = Page[StockLevel]()
            for (sku, warehouse), row in chunk:
                if sku in data.unreadable_skus:
                    error = RowError(key=sku, error="quantity is not a number", payload={"sku": sku})
                    page.errors.append(error)
                    continue
                reserved = row.reserved if reservations else Decimal(0)
                page.items.append(StockLevel(sku=sku, warehouse=warehouse, on_hand=row.on_hand, reserved=reserved))
            yield page

    def iter_goods_receipts(self, since: datetime, warehouses: Sequence[str]) -> Iterator[Page[GoodsReceipt]]:
        """Receipts into these warehouses since ``since``, page by page."""
        self._require("goods_receipts_read", "reading goods receipts")
        wanted = set(warehouses)
        chosen = [r for r in list(self.data.receipts) if r.received_at >= since and r.warehouse in wanted]
        for items, _ in self._pages(chosen):
            yield Page[GoodsReceipt](items=items)

    def iter_suppliers(self) -> Iterator[Page[Supplier]]:
        self._require("suppliers_read", "reading suppliers")
        for items, _ in self._pages(list(self.data.suppliers)):
            yield Page[Supplier](items=items)

    # -- customers -------------------------------------------------------------------------------------------

    def find_customer(self, customer: Customer) -> Customer | None:
        self._require("customers_find", "finding customers")
        self._call("read")
        index = self.data.party_index
        erp_id = index.get(f"vat:{customer.vat_code}") if customer.is_company and customer.vat_code else None
        if erp_id is None and customer.email:
            erp_id = index.get(f"email:{customer.email}")
        return None if erp_id is None else self.data.parties[erp_id].model_copy(update={"erp_id": erp_id})

    def create_customer(self, customer: Customer) -> Customer:
        self._require("customers_create", "creating customers")
        self._call("write")
        return self.data.add_party(customer)

    def update_customer(self, customer: Customer) -> bool:
        self._require("customers_update", "updating customers")
        if customer.erp_id not in self.data.parties:
            raise record_error(SYSTEM, str(customer.erp_id), "this party does not exist")
        with self.data.lock:
            known = self.data.party_addresses.setdefault(customer.erp_id, [])
            seen = {_addr_key(a) for a in known}
            new = [a for a in _distinct([customer.billing, customer.shipping]) if _addr_key(a) not in seen]
            if not new:
                return False
            self._call("write")
            known.extend(new)
            return True

    # -- purchases -------------------------------------------------------------------------------------------

    def iter_incoming(self, warehouses: Sequence[str]) -> Iterator[Page[IncomingGoods]]:
        self._require("purchases_read", "reading purchases")
        rows = [i for i in self.data.incoming if i.warehouse is None or i.warehouse in warehouses]
        for items, _ in self._pages(rows):
            yield Page[IncomingGoods](items=items)

    # -- orders ----------------------------------------------------------------------------------------------

    def _by_reference(self, reference: str) -> Sale | None:
        return next((s for s in list(self.data.sales.values()) if s.reference == reference), None)

    def find_order(self, reference: str) -> str | None:
        if self.capabilities.orders_read:
            self._call("read")
            sale = self._by_reference(reference)
            return sale.erp_id if sale else None
        self._require("orders_create", "finding orders")
        return self.data.registry.get(reference)  # no call: a local registry, like SmartBill's

    def create_order(self, order: Order, customer: Customer) -> str:
        self._require("orders_create", "creating orders")
        data = self.data
        reference = order.reference or order.shop_id or ""
        data.create_calls.append(reference)
        self._call("write")
        if reference in data.refuse:
            raise record_error(self.system, reference, data.refuse[reference])
        if data.transient.get(reference):
            data.transient[reference] -= 1
            raise RetriableError(self.system, f"{reference}: the ERP did not answer")
        unknown = [line.sku for line in order.lines if line.kind == "product" and not data.sells(line.sku)]
        if unknown:
            raise record_error(self.system, reference, f"unknown SKU {', '.join(map(repr, unknown))}")
        existing = self._by_reference(reference) if self.capabilities.orders_read else None
        if existing is None and reference in data.registry:
            existing = data.sales[data.registry[reference]]
        if existing is not None:
            return existing.erp_id
        total = booked_total(order)
        if order.total is not None and abs(total - order.total) > TOLERANCE:
            # as the Tryton connector does: the sale is not booked when its total is not the shop's
            shop = order.total.quantize(CENT)
            raise record_error(
                self.system,
                reference,
                f"{TOTAL_MISMATCH}the ERP totals the order at {total}, the shop's total is {shop} "
                f"(difference {total - shop:+}); nothing is booked",
            )
        time.sleep(data.create_delay)  # check-then-create, like a real ERP's: racy without a claim
        return data.add_sale(
            reference, order, customer.erp_id, warehouse=data.order_warehouse, total=total, state=data.new_sale_state
        ).erp_id

    def cancel_order(self, erp_id: str, *, reference: str) -> AfterSale:
        """As the Tryton connector: cancelled while nothing shipped nor invoiced, else ``NeedsReturn``."""
        self._require("orders_cancel", "cancelling orders")
        self._call("write")
        data = self.data
        if erp_id in data.cancel_refused:
            raise record_error(self.system, erp_id, f"sale {erp_id} is processing: cannot be cancelled")
        sale = data.sales.get(erp_id)
        if sale is None:
            raise record_error(self.system, erp_id, f"no sale {erp_id}")
        with data.lock:
            if sale.state != "cancelled" and (sale.shipped or sale.invoice):
                raise NeedsReturn(self.system, f"{erp_id}: sale {erp_id} was shipped or invoiced: it needs a return")
            if sale.state != "cancelled":
                data.reserve(sale, -1)
            sale.state = "cancelled"
            sale.modified_at = datetime.now(UTC)
        return AfterSale(kind="cancelled")

    def return_order(self, erp_id: str, lines: Sequence[ReturnLine], *, reference: str) -> AfterSale:
        """A return of these quantities (idempotent on ``reference``): goods back on hand when shipped, else
        their reservation released; a credit note ``CN-<n>`` when the sale was invoiced."""
        self._require("orders_return", "returning orders")
        self._call("write")
        data = self.data
        with data.lock:
            if reference in data.returns:
                return data.returns[reference]
            sale = data.sales.get(erp_id)
            if sale is None:
                raise record_error(self.system, erp_id, f"no sale {erp_id}")
            sold: dict[str, Decimal] = {}
            for line in sale.order.lines:
                if line.kind == "product":
                    sold[line.sku] = sold.get(line.sku, Decimal(0)) + line.quantity
            for back in lines:
                left = sold.get(back.sku, Decimal(0)) - sale.returned.get(back.sku, Decimal(0))
                if back.quantity > left:
                    raise record_error(
                        self.system, reference, f"SKU {back.sku!r}: {back.quantity} back, {left} left to return"
                    )
            for back in lines:
                sale.returned[back.sku] = sale.returned.get(back.sku, Decimal(0)) + back.quantity
                row = self.data.stock.get((back.sku, sale.warehouse or ""))
                if row is not None and sale.shipped:
                    data.set(back.sku, sale.warehouse or "", row.on_hand + back.quantity, row.reserved)
                elif row is not None:
                    data.set(back.sku, sale.warehouse or "", row.on_hand, row.reserved - back.quantity)
            number = len(data.returns) + 1
            result = AfterSale(kind="return", erp_id=f"R{number}", credit_note=f"CN-{number}" if sale.invoice else None)
            data.returns[reference] = result
            if sold == sale.returned and not sale.shipped:
                sale.state = "cancelled"
            sale.modified_at = datetime.now(UTC)
        return result

    def record_payment(self, erp_id: str, order: Order, *, reference: str) -> str:
        """A payment of the order's total against the sale, once per ``reference``; its document ``PAY-<n>``."""
        self._require("payments_record", "recording payments")
        self._call("write")
        with self.data.lock:
            if reference not in self.data.payments:
                if erp_id not in self.data.sales:
                    raise record_error(self.system, reference, f"no sale {erp_id}")
                self.data.payments[reference] = (erp_id, order.total or Decimal(0))
            return f"PAY-{list(self.data.payments).index(reference) + 1}"

    def update_order(self, erp_id: str, order: Order, customer: Customer) -> bool:
        """Rewrite a sale still a draft or quotation (reservations follow its lines); False otherwise."""
        self._require("orders_update", "changing orders")
        self._call("write")
        data = self.data
        with data.lock:
            sale = data.sales.get(erp_id)
            if sale is None or sale.state not in ("draft", "quotation"):
                return False
            data.reserve(sale, -1)
            sale.order, sale.total = order, booked_total(order)
            data.reserve(sale)
            sale.modified_at = datetime.now(UTC)
        return True

    def order_statuses(self, erp_ids: Sequence[str]) -> list[ErpOrderStatus]:
        self._require("orders_read_status", "reading order statuses")
        self._call("read")
        out = []
        for erp_id in erp_ids:
            sale = self.data.sales.get(erp_id)
            if sale is None:
                out.append(ErpOrderStatus(erp_id=erp_id, state="missing"))
                continue
            out.append(
                ErpOrderStatus(
                    erp_id=erp_id,
                    reference=sale.reference,
                    state=sale.state,
                    invoiced=sale.invoice is not None,
                    invoice_number=sale.invoice,
                    shipped=sale.shipped,
                    delivered=sale.delivered,
                    cancelled=sale.state == "cancelled",
                    awb=sale.awb,
                    editable=sale.state in ("draft", "quotation"),
                    shipments=list(sale.shipments),
                    invoices=[
                        ErpInvoice(
                            erp_id=f"inv-{erp_id}", number=sale.invoice, issued=sale.invoice_date, url=sale.invoice_url
                        )
                    ]
                    if sale.invoice
                    else [],
                )
            )
        return out

    def iter_orders(self, *, changed_since: datetime | None = None) -> Iterator[Page[Order]]:
        self._require("orders_read", "reading orders")
        chosen = [s for s in list(self.data.sales.values()) if changed_since is None or s.modified_at >= changed_since]
        for items, _ in self._pages(chosen):
            yield Page[Order](items=[_as_order(sale) for sale in items])


def _as_order(sale: Sale) -> Order:
    return sale.order.model_copy(
        update={
            "erp_id": sale.erp_id,
            "channel": sale.channel,
            "shop_id": sale.reference if sale.channel == "erpsync" else None,
            "modified_at": sale.modified_at,
        }
    )


def _copy(product: Product) -> Product:
    """A copy sharing no mutable container with the stored record (cheaper than a deep copy)."""
    variants = [v.model_copy(update={"options": dict(v.options)}) for v in product.variants]
    return product.model_copy(
        update={"variants": variants, "attributes": dict(product.attributes), "images": list(product.images)}
    )


def _addr_key(address: Address) -> tuple[str, str, str]:
    return (address.street.strip().lower(), address.city.strip().lower(), address.postal_code.strip())


def _distinct(addresses: Sequence[Address | None]) -> list[Address]:
    out: list[Address] = []
    for address in addresses:
        if address is not None and _addr_key(address) not in map(_addr_key, out):
            out.append(address)
    return out
