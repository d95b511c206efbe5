"""Pure transforms between MerchantPro's JSON and the canonical records. No I/O here.

Shop → canonical: ``product_from_shop``, ``variant_from_shop``, ``inventory_units``, ``order_from_shop``, and
the value readers they share (``to_decimal``, ``shop_id``, ``parse_timestamp``).
Canonical → shop request bodies are ``writes``' side.

The API document leaves some names unknown (company name and VAT code of a buyer, product status words), so
the readers accept every spelling seen in public client code (the bodies in ``writes`` use the most common one).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from erpsync.core.models import (
    ZERO,
    Address,
    Customer,
    LineKind,
    Order,
    OrderLine,
    PaymentStatus,
    Product,
    ProductStatus,
    ShippingStatus,
    Variant,
)

MULTI_VARIANT = "multi_variant"
BASIC = "basic"
ACTIVE_WORDS = frozenset({"active", "enabled", "on", "1", "true", "published", "visible"})
COMPANY_NAME_KEYS = ("billing_company", "billing_company_name", "billing_company_title")
VAT_CODE_KEYS = ("billing_fiscal_code", "billing_vat_code", "billing_company_vat", "billing_cif", "billing_cui")
REG_NUMBER_KEYS = ("billing_registration_number", "billing_reg_no", "billing_company_reg_no", "billing_reg_com")
# Order lines that are not products (*inference*: the API document says only that vouchers, discounts and fees
# exist; neither the item_type words nor the order-level discount field names are confirmed). A line whose
# item_type is one of these, contains one of these words, is named so, or has a negative total is a discount;
# any other line that is not a product is a fee; a missing item_type is a product.
PRODUCT_ITEM = "product"
DISCOUNT_ITEM_TYPES = frozenset({"discount", "voucher", "coupon", "gift_card", "giftcard", "gift_voucher"})
DISCOUNT_WORDS = ("discount", "voucher", "coupon", "reducere", "cupon")
SHIPPING_WORDS = ("shipping", "transport", "livrare")  # a discount so named reduces shipping: at its VAT rate
ORDER_DISCOUNT_KEYS = ("discount_amount", "discount_total", "voucher_amount", "total_discount")
LINE_NAME_KEYS = ("product_name", "name", "voucher_code", "code", "item_type")


class MappingError(ValueError):
    """A shop record that cannot become a canonical one; the message says which field and why."""


def to_decimal(value: Any, field: str) -> Decimal | None:
    """A JSON number or numeric string as Decimal (``"-1.000"`` included); None stays None."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise MappingError(f"{field}: expected a number, got {value!r}")
    try:
        result = Decimal(str(value).strip())
    except InvalidOperation:
        raise MappingError(f"{field}: expected a number, got {value!r}") from None
    if not result.is_finite():
        raise MappingError(f"{field}: expected a finite number, got {value!r}")
    return result


def shop_id(value: Any) -> str | None:
    """An id from the shop as a string, kept whole (order ids like ``"95750870.3"`` are not numbers)."""
    if value is None or value == "":
        return None
    return str(value)


def parse_timestamp(value: Any, field: str) -> datetime | None:
    """An ISO-8601 timestamp with offset (``2025-12-18T10:40:46+02:00``); naive values are refused."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise MappingError(f"{field}: not an ISO-8601 timestamp: {value!r}") from None
    if parsed.tzinfo is None:
        raise MappingError(f"{field}: timestamp without a UTC offset: {value!r}")
    return parsed


def _first(row: Mapping[str, Any], keys: Iterable[str]) -> Any:
    for key in keys:
        value = row.get(key)
        if value not in (None, ""):
            return value
    return None


# --------------------------------------------------------------------------- products


def _status(value: Any) -> ProductStatus:
    if value is None:
        return ProductStatus.ACTIVE
    return ProductStatus.ACTIVE if str(value).strip().lower() in ACTIVE_WORDS else ProductStatus.INACTIVE


def _image_urls(row: Mapping[str, Any]) -> list[str]:
    urls = [str(image["url"]) for image in row.get("images") or [] if isinstance(image, dict) and image.get("url")]
    if not urls and isinstance(row.get("image_url"), dict):
        large = row["image_url"].get("large") or row["image_url"].get("medium")
        if large:
            urls.append(str(large))
    return urls


def variant_from_shop(row: Mapping[str, Any]) -> Variant:
    """A variant of a multi-variant product."""
    sku = str(row.get("sku") or "").strip()
    if not sku:
        raise MappingError(f"variant {row.get('id')}: no SKU")
    options = {
        str(option.get("name")): str(option.get("value"))
        for option in row.get("variant_options") or []
        if isinstance(option, dict) and option.get("name") is not None
    }
    return Variant(
        sku=sku,
        shop_id=shop_id(row.get("id")),
        erp_id=shop_id(row.get("ext_ref")),
        ean=row.get("ean") or None,
        options=options,
        price_net=to_decimal(row.get("price_net"), "price_net"),
        price_gross=to_decimal(row.get("price_gross"), "price_gross"),
        old_price_net=to_decimal(row.get("old_price_net"), "old_price_net"),
        old_price_gross=to_decimal(row.get("old_price_gross"), "old_price_gross"),
        weight=to_decimal(row.get("weight"), "weight"),
        stock=to_decimal(row.get("stock"), "stock"),
        status=_status(row.get("status")),
    )


def product_vat_rate(row: Mapping[str, Any], tax_rates: Mapping[int, Decimal] | None = None) -> Decimal | None:
    """A product's VAT percent: its ``tax_value``, else its ``tax_id`` looked up in the shop's tax table
    (``tax_rates``: tax id -> percent), since a reply may carry ``tax_id`` only; None when neither says."""
    value = to_decimal(row.get("tax_value"), "tax_value")
    if value is not None or not tax_rates:
        return value
    tax_id = to_decimal(row.get("tax_id"), "tax_id")
    if tax_id is None or tax_id != tax_id.to_integral_value():
        return None
    return tax_rates.get(int(tax_id))


def product_from_shop(row: Mapping[str, Any], tax_rates: Mapping[int, Decimal] | None = None) -> Product:
    """A shop product (basic or multi-variant) as a canonical Product; ``tax_rates`` (the shop's tax table, id ->
    VAT percent) gives the VAT rate of a reply that has ``tax_id`` but no ``tax_value``."""
    sku = str(row.get("sku") or "").strip()
    variants = [variant_from_shop(v) for v in row.get("variants") or []] if row.get("type") == MULTI_VARIANT else []
    if not sku:
        if not variants:
            raise MappingError(f"product {row.get('id')}: no SKU")
        sku = f"shop-{row.get('id')}"
    category = row.get("category_name")
    if not category and row.get("categories"):
        first = row["categories"][0]
        category = first.get("name") if isinstance(first, dict) else None
    return Product(
        sku=sku,
        shop_id=shop_id(row.get("id")),
        erp_id=shop_id(row.get("ext_ref")),
        name=str(row.get("name") or ""),
        description=str(row.get("description") or ""),
        ean=row.get("ean") or None,
        vat_rate=product_vat_rate(row, tax_rates),
        price_net=to_decimal(row.get("price_net"), "price_net"),
        price_gross=to_decimal(row.get("price_gross"), "price_gross"),
        old_price_net=to_decimal(row.get("old_price_net"), "old_price_net"),
        old_price_gross=to_decimal(row.get("old_price_gross"), "old_price_gross"),
        weight=to_decimal(row.get("weight"), "weight"),
        stock=None if variants else to_decimal(row.get("stock"), "stock"),
        status=_status(row.get("status")),
        category=str(category) if category else None,
        images=_image_urls(row),
        variants=variants,
        modified_at=parse_timestamp(row.get("date_modified"), "date_modified"),
    )


@dataclass(frozen=True, slots=True)
class InventoryUnit:
    """One stock-carrying unit of the shop: a basic product, or one variant of a multi-variant product."""

    sku: str
    product_id: str
    variant_id: str | None
    stock: Decimal | None
    inventory_enabled: bool = True


def inventory_units(row: Mapping[str, Any]) -> list[InventoryUnit]:
    """The stock-carrying units of one shop product row (read with ``fields=`` kept small)."""
    product_id = shop_id(row.get("id"))
    if product_id is None:
        raise MappingError("product without id")
    enabled = str(row.get("inventory_enabled", "on")).lower() != "off"
    if row.get("type") == MULTI_VARIANT:
        units = []
        for variant in row.get("variants") or []:
            sku = str(variant.get("sku") or "").strip()
            if not sku:
                raise MappingError(f"product {product_id} variant {variant.get('id')}: no SKU")
            units.append(
                InventoryUnit(
                    sku=sku,
                    product_id=product_id,
                    variant_id=shop_id(variant.get("id")),
                    stock=to_decimal(variant.get("stock"), "stock"),
                    inventory_enabled=str(variant.get("inventory_enabled", "on")).lower() != "off",
                )
            )
        return units
    sku = str(row.get("sku") or "").strip()
    if not sku:
        raise MappingError(f"product {product_id}: no SKU")
    return [InventoryUnit(sku, product_id, None, to_decimal(row.get("stock"), "stock"), enabled)]


# --------------------------------------------------------------------------- orders


def _address(row: Mapping[str, Any], prefix: str, email: str | None) -> Address:
    return Address(
        name=str(row.get(f"{prefix}_name") or ""),
        company=_first(row, (f"{prefix}_company", f"{prefix}_company_name")),
        street=str(row.get(f"{prefix}_address") or ""),
        city=str(row.get(f"{prefix}_city") or ""),
        region=str(row.get(f"{prefix}_state") or ""),
        postal_code=str(row.get(f"{prefix}_postal_code") or ""),
        country_code=str(row.get(f"{prefix}_country_code") or "RO").upper(),
        phone=row.get(f"{prefix}_phone") or None,
        email=email,
    )


def _unit_price(row: Mapping[str, Any], side: str, quantity: Decimal) -> Decimal | None:
    """``unit_price_<side>``, else ``line_subtotal_<side>`` / quantity (a reply that gives only the line total)."""
    unit = to_decimal(row.get(f"unit_price_{side}"), f"unit_price_{side}")
    if unit is not None:
        return unit
    subtotal = to_decimal(row.get(f"line_subtotal_{side}"), f"line_subtotal_{side}")
    return None if subtotal is None else subtotal / quantity


def line_kind(row: Mapping[str, Any]) -> LineKind:
    """What a shop order line is (*inference*, see ``DISCOUNT_ITEM_TYPES``): product, discount or fee."""
    item_type = str(row.get("item_type") or PRODUCT_ITEM).strip().lower()
    if item_type == PRODUCT_ITEM:
        return "product"
    words = f"{item_type} {row.get('product_name') or ''} {row.get('name') or ''}".lower()
    if item_type in DISCOUNT_ITEM_TYPES or any(word in words for word in DISCOUNT_WORDS):
        return "discount"
    for key in ("line_subtotal_gross", "unit_price_gross", "line_subtotal_net", "unit_price_net"):
        value = to_decimal(row.get(key), key)
        if value is not None:
            return "discount" if value < 0 else "fee"
    return "fee"


# A line's return, as far as the shop shows it (*inference*: the reference lists a line ``status{id,name,color}``
# and an order's ``has_returns``, not how a return is encoded): an explicit returned quantity under one of these
# keys, else a status whose name says returned or refused (the whole line came back).
RETURNED_QUANTITY_KEYS = ("returned_quantity", "quantity_returned", "return_quantity")
RETURNED_WORDS = ("return", "retur", "refuz", "refus")


def returned_quantity(row: Mapping[str, Any], quantity: Decimal) -> Decimal:
    """How much of a shop order line came back (0: none), never more than the line's quantity."""
    for key in RETURNED_QUANTITY_KEYS:
        value = to_decimal(row.get(key), key)
        if value is not None:
            return max(ZERO, min(value, quantity))
    status = row.get("status")
    name = str(status.get("name") or "") if isinstance(status, Mapping) else ""
    return quantity if any(word in name.lower() for word in RETURNED_WORDS) else ZERO


def _line_from_shop(row: Mapping[str, Any], shipping_rate: Decimal | None = None) -> OrderLine:
    kind = line_kind(row)
    sku = str(row.get("product_sku") or "").strip()
    if not sku and kind == "product":
        raise MappingError(f"order line {row.get('id')} ({row.get('product_name')!r}): no SKU")
    label = sku or repr(_first(row, LINE_NAME_KEYS))
    raw_quantity = row.get("quantity")
    quantity = to_decimal(raw_quantity, "quantity")
    if quantity is None and kind != "product":
        quantity = Decimal(1)  # a voucher or fee line may come without a quantity
    if quantity is None or quantity <= 0:
        raise MappingError(f"order line {row.get('id')} ({label}): quantity must be > 0, got {raw_quantity!r}")
    gross = _unit_price(row, "gross", quantity)
    net = _unit_price(row, "net", quantity)
    rate = to_decimal(row.get("product_tax_percent"), "product_tax_percent")
    name = str(_first(row, LINE_NAME_KEYS) or "")
    if kind == "discount":
        # One line of quantity 1 and a negative price, whatever sign the shop gave (core.models.OrderLine).
        gross = None if gross is None else -abs(gross * quantity)
        net = None if net is None else -abs(net * quantity)
        quantity = Decimal(1)
        if rate is None and any(word in name.lower() for word in SHIPPING_WORDS):
            rate = shipping_rate  # a shipping discount reduces shipping, at shipping's rate (inference)
    return OrderLine(
        sku=sku,
        kind=kind,
        name=name if kind != "product" else str(row.get("product_name") or ""),
        quantity=quantity,
        unit_price_net=net,
        unit_price_gross=gross,
        vat_rate=rate,
        shop_product_id=shop_id(row.get("product_id")),
        shop_line_id=shop_id(row.get("id")),
        returned_quantity=returned_quantity(row, quantity) if kind == "product" else ZERO,
    )


def order_discount(row: Mapping[str, Any], lines: Iterable[OrderLine]) -> Decimal:
    """The order-level discount (gross, positive; 0 when none), from the first of ``ORDER_DISCOUNT_KEYS`` given.

    *Inference*: a shop that lists its discounts as lines may also give their sum at order level; an order-level
    amount equal (within 0.01) to the discount lines' total is taken for that sum and not counted twice.
    """
    value = None
    for key in ORDER_DISCOUNT_KEYS:
        value = to_decimal(row.get(key), key)
        if value is not None:
            break
    if not value:
        return ZERO
    amount = abs(value)
    in_lines = sum(
        (abs(line.quantity * (line.unit_price_gross or ZERO)) for line in lines if line.kind == "discount"), ZERO
    )
    return ZERO if in_lines and abs(in_lines - amount) <= Decimal("0.01") else amount


def order_from_shop(row: Mapping[str, Any]) -> Order:
    """A shop order (with ``line_items``) as a canonical Order."""
    order_id = shop_id(row.get("id"))
    if order_id is None:
        raise MappingError("order without id")
    email = (row.get("customer_email") or None) and str(row["customer_email"]).strip()
    billing = _address(row, "billing", email)
    shipping = billing if row.get("shipping_as_billing") else _address(row, "shipping", email)
    is_company = str(row.get("billing_type") or "individual").lower() not in ("individual", "person", "")
    company_name = _first(row, COMPANY_NAME_KEYS)
    customer = Customer(
        email=email,
        name=billing.name,
        phone=billing.phone,
        is_company=is_company,
        company_name=str(company_name) if company_name else (billing.name if is_company else None),
        vat_code=_first(row, VAT_CODE_KEYS) if is_company else None,
        registration_number=_first(row, REG_NUMBER_KEYS) if is_company else None,
        billing=billing,
        shipping=shipping,
        shop_id=shop_id(row.get("customer_id")),
    )
    items = row.get("line_items") or []
    shipping_rate = to_decimal(row.get("shipping_tax_percent"), "shipping_tax_percent")
    # Every line: products, and the discounts and fees that make total_amount (core.order_totals books them).
    lines = [_line_from_shop(item, shipping_rate) for item in items]
    try:
        payment_status = PaymentStatus(str(row.get("payment_status") or "awaiting"))
        shipping_status = ShippingStatus(str(row.get("shipping_status") or "awaiting"))
    except ValueError as exc:
        raise MappingError(f"order {order_id}: {exc}") from None
    awb = row.get("shipping_awb")
    if not awb:
        tracking = row.get("carrier_tracking") or []
        if tracking and isinstance(tracking[0], dict):
            awb = tracking[0].get("awb") or tracking[0].get("tracking_number")
    return Order(
        shop_id=order_id,
        reference=order_id,
        public_code=shop_id(row.get("public_code")),
        channel=shop_id(row.get("source_type") or row.get("channel_id")),
        created_at=parse_timestamp(row.get("date_created"), "date_created"),
        modified_at=parse_timestamp(row.get("date_modified"), "date_modified"),
        customer=customer,
        billing=billing,
        shipping=shipping,
        lines=lines,
        currency=str(row.get("currency") or "RON"),
        shipping_amount=to_decimal(row.get("shipping_amount"), "shipping_amount") or ZERO,
        shipping_vat_rate=shipping_rate,
        shipping_method=row.get("shipping_method_name") or None,
        payment_status=payment_status,
        payment_method=row.get("payment_method_code") or None,
        shipping_status=shipping_status,
        total=to_decimal(row.get("total_amount"), "total_amount"),
        discount_amount=order_discount(row, lines),
        note=str(row.get("customer_note") or ""),
        awb=str(awb) if awb else None,
        invoice_number=row.get("invoice_number") or None,
        meta={str(k): str(v) for k, v in _meta(row).items() if v is not None},
    )


def _meta(row: Mapping[str, Any]) -> dict[str, Any]:
    meta = row.get("meta_fields")
    return dict(meta) if isinstance(meta, Mapping) else {}
