"""Canonical records: what every connector returns and accepts.

Money and quantities are ``Decimal``; ids of external systems are strings (MerchantPro order ids such as
``"95750870.3"`` are not numbers, and ERP ids differ in kind from one ERP to the next). A record carries the
ids it is known by in each system (``erp_id``, ``shop_id``) when they are known.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

T = TypeVar("T")

ZERO = Decimal(0)
CENT = Decimal("0.01")


class Record(BaseModel):
    """Base of every canonical record: validated on assignment, unknown fields refused."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)

    def digest(self, *, exclude: set[str] | None = None) -> str:
        """A stable SHA-256 of the record's JSON form (sorted keys), for change detection."""
        data = self.model_dump(mode="json", exclude=exclude)
        blob = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()


class ProductStatus(StrEnum):
    ACTIVE = "active"
    INACTIVE = "inactive"


def gross_from_net(net: Decimal, vat_rate: Decimal) -> Decimal:
    """Gross price from net and a VAT percentage, rounded half-up to the cent (as shops and invoices do)."""
    return (net * (1 + vat_rate / 100)).quantize(CENT, rounding=ROUND_HALF_UP)


def net_from_gross(gross: Decimal, vat_rate: Decimal) -> Decimal:
    """Net price from gross and a VAT percentage, rounded half-up to the cent."""
    return (gross / (1 + vat_rate / 100)).quantize(CENT, rounding=ROUND_HALF_UP)


class Variant(Record):
    """One sellable variant of a multi-variant product (its own SKU, stock and prices)."""

    sku: str = Field(min_length=1)
    erp_id: str | None = None
    shop_id: str | None = None
    ean: str | None = None
    options: dict[str, str] = Field(default_factory=dict)
    price_net: Decimal | None = None
    price_gross: Decimal | None = None
    old_price_net: Decimal | None = None
    old_price_gross: Decimal | None = None
    weight: Decimal | None = None
    stock: Decimal | None = None
    status: ProductStatus = ProductStatus.ACTIVE


class ProductSupplier(Record):
    """A product's main supplier in the ERP (the party it is bought from first): its id and name."""

    erp_id: str
    name: str


class Product(Record):
    """A product: basic (no variants) or multi-variant (stock, prices and weight live on the variants).

    ``supplier``: its main supplier, where the ERP links products to suppliers (Tryton); None elsewhere.
    """

    sku: str = Field(min_length=1)
    name: str = ""
    erp_id: str | None = None
    shop_id: str | None = None
    description: str = ""
    ean: str | None = None
    vat_rate: Decimal | None = None
    price_net: Decimal | None = None
    price_gross: Decimal | None = None
    old_price_net: Decimal | None = None
    old_price_gross: Decimal | None = None
    weight: Decimal | None = None
    stock: Decimal | None = None
    status: ProductStatus = ProductStatus.ACTIVE
    attributes: dict[str, str] = Field(default_factory=dict)
    category: str | None = None
    images: list[str] = Field(default_factory=list)
    variants: list[Variant] = Field(default_factory=list)
    supplier: ProductSupplier | None = None
    modified_at: datetime | None = None

    @property
    def is_multi_variant(self) -> bool:
        return bool(self.variants)

    def skus(self) -> list[str]:
        """The SKUs that carry stock: the variants' for a multi-variant product, else its own."""
        return [v.sku for v in self.variants] if self.variants else [self.sku]


class StockLevel(Record):
    """Stock of one SKU in one ERP warehouse: on hand, and reserved by open (confirmed, unshipped) orders."""

    sku: str = Field(min_length=1)
    warehouse: str
    on_hand: Decimal
    reserved: Decimal = ZERO

    @property
    def available(self) -> Decimal:
        return self.on_hand - self.reserved


class Address(Record):
    """A postal address with the person or company it belongs to."""

    name: str = ""
    company: str | None = None
    street: str = ""
    city: str = ""
    region: str = ""
    postal_code: str = ""
    country_code: str = "RO"
    phone: str | None = None
    email: str | None = None


class Customer(Record):
    """A buyer, matched across systems by e-mail, or by VAT code for companies."""

    email: str | None = None
    name: str = ""
    phone: str | None = None
    is_company: bool = False
    company_name: str | None = None
    vat_code: str | None = None
    registration_number: str | None = None
    billing: Address | None = None
    shipping: Address | None = None
    erp_id: str | None = None
    shop_id: str | None = None

    @field_validator("email")
    @classmethod
    def _normalise_email(cls, value: str | None) -> str | None:
        return value.strip().lower() if value else value


LineKind = Literal["product", "discount", "fee"]
"""What an order line is: a product (has a SKU), a discount (voucher, coupon, gift card, order-level discount:
a NEGATIVE unit price at the one VAT rate it reduces) or a fee (payment, packaging, anything else that adds:
a positive unit price)."""


class OrderLine(Record):
    """One line of an order: a product identified by SKU, or a discount or fee line (``kind``).

    A ``discount`` line has quantity 1, a negative ``unit_price_gross`` (and ``unit_price_net`` when known) and
    ``vat_rate`` = the one rate it applies at (None: not yet spread over the rates, see ``core.order_totals``);
    ``name`` is what the shop called it (voucher code or name). A ``fee`` line is the same with a positive
    price. ``sku`` may be empty for a line that is not a product; product lines need one (the shop mapper
    refuses a product line without SKU).
    """

    sku: str
    kind: LineKind = "product"
    name: str = ""
    quantity: Decimal
    unit_price_net: Decimal | None = None
    unit_price_gross: Decimal | None = None
    vat_rate: Decimal | None = None
    shop_product_id: str | None = None
    shop_line_id: str | None = None
    # How much of the line came back (the shop marked the line returned or refused): 0 for none.
    returned_quantity: Decimal = ZERO


class PaymentStatus(StrEnum):
    AWAITING = "awaiting"
    PAID = "paid"


class ShippingStatus(StrEnum):
    """The shop's order life cycle (MerchantPro ``shipping_status``)."""

    TEMPORARY = "temporary"
    AWAITING = "awaiting"
    CONFIRMED = "confirmed"
    IN_PROCESS = "in_process"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    RETURNED = "returned"
    CANCELLED = "cancelled"


class Order(Record):
    """An order as the shop sees it; ``shop_id`` is the shop's string id and the ERP's external reference."""

    shop_id: str | None = None
    erp_id: str | None = None
    reference: str | None = None
    public_code: str | None = None
    channel: str | None = None
    created_at: datetime | None = None
    modified_at: datetime | None = None
    customer: Customer
    billing: Address | None = None
    shipping: Address | None = None
    lines: list[OrderLine] = Field(default_factory=list)
    currency: str = "RON"
    shipping_amount: Decimal = ZERO
    shipping_vat_rate: Decimal | None = None
    shipping_method: str | None = None
    payment_status: PaymentStatus = PaymentStatus.AWAITING
    payment_method: str | None = None
    shipping_status: ShippingStatus = ShippingStatus.AWAITING
    total: Decimal | None = None
    discount_amount: Decimal = ZERO  # order-level discount, gross, a positive number as the shop gave it
    note: str = ""
    awb: str | None = None
    invoice_number: str | None = None
    meta: dict[str, str] = Field(default_factory=dict)  # the shop's meta fields (markers, the ERP invoice ...)

    @field_validator("shop_id", "erp_id", mode="before")
    @classmethod
    def _ids_are_strings(cls, value: Any) -> Any:
        if isinstance(value, float):
            raise ValueError("external ids must be strings, not floats (order ids like '95750870.3')")
        return str(value) if isinstance(value, int) else value


class ErpShipment(Record):
    """One shipment of an ERP order: whether it left the warehouse, its AWB (tracking number) and carrier."""

    erp_id: str
    state: str
    shipped: bool = False  # left the warehouse
    delivered: bool = False
    awb: str | None = None
    carrier: str | None = None


class ErpInvoice(Record):
    """One invoice (or credit note / storno) of an ERP order, as the shop is told of it."""

    erp_id: str
    number: str
    issued: date | None = None
    url: str | None = None  # a link to its PDF, where the ERP offers one
    credit: bool = False  # a credit note or storno, not the sale's invoice


class ErpOrderStatus(Record):
    """What the ERP says of an order, for the status back-sync to the shop.

    ``editable``: the ERP order is still a draft or quotation (``update_order`` can rewrite it); ``nothing_left``:
    nothing of it left the warehouse and nothing was invoiced, so a plain cancel undoes it.
    """

    erp_id: str
    reference: str | None = None
    state: str
    invoiced: bool = False
    invoice_number: str | None = None
    shipped: bool = False
    delivered: bool = False
    cancelled: bool = False
    awb: str | None = None
    editable: bool = False
    shipments: list[ErpShipment] = Field(default_factory=list)
    invoices: list[ErpInvoice] = Field(default_factory=list)


class ReturnLine(Record):
    """A quantity of one ERP SKU that comes back into the warehouse (a return, a refused parcel)."""

    sku: str
    quantity: Decimal


class AfterSale(Record):
    """What the ERP did to undo all or part of an order.

    ``kind``: ``cancelled`` (nothing had left: the order and its reservations cancelled), ``return`` (a return
    order: stock back, a credit note where the ERP makes one) or ``storno`` (a reversal invoice). ``erp_id``: the
    return order or storno document (None for a plain cancel); ``credit_note``: its number, where there is one.
    """

    kind: Literal["cancelled", "return", "storno"]
    erp_id: str | None = None
    credit_note: str | None = None
    detail: str = ""


class ReceiptLine(Record):
    sku: str
    quantity: Decimal


class GoodsReceipt(Record):
    """Goods received from a supplier into a warehouse: the trigger and evidence of a stock increase."""

    erp_id: str
    received_at: datetime
    warehouse: str
    supplier: str | None = None
    reference: str | None = None
    lines: list[ReceiptLine] = Field(default_factory=list)

    def skus(self) -> list[str]:
        return sorted({line.sku for line in self.lines})


class Supplier(Record):
    """A party the ERP buys from; ``skus``: the products whose supplier list names it (where the ERP has one)."""

    erp_id: str
    name: str
    vat_code: str | None = None
    email: str | None = None
    skus: list[str] = Field(default_factory=list)


class ShopCustomer(Record):
    """A shop customer account as the customers flow reads it: the buyer, when it last changed, and whether the
    shop deleted or anonymised it (then its link is closed and the ERP party left alone)."""

    customer: Customer
    modified_at: datetime | None = None
    anonymised: bool = False


class IncomingGoods(Record):
    """Goods on the way: a confirmed purchase line not yet received, per SKU and expected date (ERP -> shop)."""

    sku: str
    quantity: Decimal
    expected: date | None = None
    supplier: str | None = None
    purchase: str | None = None  # the ERP purchase's number or reference
    warehouse: str | None = None


class RowError(Record):
    """A source row that could not become a record: its key (when it has one), why, and the raw row."""

    key: str
    error: str
    payload: dict[str, Any] = Field(default_factory=dict)


class Page(Record, Generic[T]):
    """One page of a paged read: the records that parsed, and the rows that did not (read on regardless)."""

    items: list[T] = Field(default_factory=list)
    errors: list[RowError] = Field(default_factory=list)
