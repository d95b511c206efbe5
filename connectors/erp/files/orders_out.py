"""A shop order as one CSV file for the ERP to import: one row per booked line, the order's head on every row.

The layout is erpsync's own *(inference: neither SAGA nor WinMentor publish an order import layout erpsync could
follow; an integrator maps these columns in the ERP's import)*: ``reference;date;...;line;kind;sku;name;quantity;
unit_price;vat_rate;line_total;order_total``. Lines are as ``core.order_totals.erp_lines`` books them (discounts
spread per VAT rate, negative), shipping is a line of its own, ``line_total`` is round(quantity x unit, 2), and
the ``line_total`` column adds up to ``order_total`` = the shop's ``total_amount`` to the ban.
"""

from __future__ import annotations

import csv
import io
import re
from decimal import ROUND_HALF_UP, Decimal

from erpsync.core.config.files import OrderFileSettings
from erpsync.core.models import CENT, ZERO, Customer, Order
from erpsync.core.order_totals import booked_total, erp_lines, line_gross, unit_gross

HEADER = [
    "reference",
    "date",
    "customer",
    "email",
    "phone",
    "company",
    "vat_code",
    "street",
    "city",
    "region",
    "postal_code",
    "country",
    "payment_method",
    "currency",
    "warehouse",
    "line",
    "kind",
    "sku",
    "name",
    "quantity",
    "unit_price",
    "vat_rate",
    "line_total",
    "order_total",
]
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def order_file_name(settings: OrderFileSettings, reference: str) -> str:
    """The order's file name: unique per reference and the same every time (``comanda-SHOP1-1001.csv``)."""
    safe = _UNSAFE.sub("_", reference).strip("._") or "order"
    return f"{settings.prefix}{safe}.{settings.format}"


def _amount(value: Decimal | None, decimal: str) -> str:
    if value is None:
        return ""
    text = format(value.quantize(CENT, rounding=ROUND_HALF_UP), "f")
    return text.replace(".", decimal)


def _number(value: Decimal | None, decimal: str) -> str:
    if value is None:
        return ""
    text = format(value.normalize(), "f")
    return text.replace(".", decimal)


def order_rows(order: Order, customer: Customer, reference: str, *, shipping_sku: str, warehouse: str) -> list[dict]:
    """The rows of an order file as values (Decimal amounts), one per booked line, shipping last."""
    booked = erp_lines(order)
    billing = order.billing or customer.billing or order.shipping
    head = {
        "reference": reference,
        "date": order.created_at.date().isoformat() if order.created_at else "",
        "customer": (billing.name if billing and billing.name else customer.name) or "",
        "email": customer.email or "",
        "phone": customer.phone or (billing.phone if billing else "") or "",
        "company": customer.company_name or (billing.company if billing else "") or "",
        "vat_code": customer.vat_code or "",
        "street": billing.street if billing else "",
        "city": billing.city if billing else "",
        "region": billing.region if billing else "",
        "postal_code": billing.postal_code if billing else "",
        "country": billing.country_code if billing else "",
        "payment_method": order.payment_method or "",
        "currency": order.currency,
        "warehouse": warehouse,
        "order_total": order.total if order.total is not None else booked_total(order),
    }
    rows: list[dict] = []
    for line in booked.lines:
        gross = line_gross(line) or ZERO
        unit = unit_gross(line)
        if line.kind == "discount":
            gross, unit = -abs(gross), (-abs(unit) if unit is not None else None)
        rows.append(
            {
                **head,
                "kind": line.kind,
                "sku": line.sku,
                "name": line.name,
                "quantity": line.quantity,
                "unit_price": unit,
                "vat_rate": line.vat_rate,
                "line_total": gross,
            }
        )
    if order.shipping_amount:
        rows.append(
            {
                **head,
                "kind": "shipping",
                "sku": shipping_sku,
                "name": order.shipping_method or "Transport",
                "quantity": Decimal(1),
                "unit_price": order.shipping_amount,
                "vat_rate": order.shipping_vat_rate,
                "line_total": order.shipping_amount.quantize(CENT, rounding=ROUND_HALF_UP),
            }
        )
    for number, row in enumerate(rows, start=1):
        row["line"] = number
    return rows


def order_file(
    order: Order, customer: Customer, reference: str, settings: OrderFileSettings, *, warehouse: str
) -> bytes:
    """The order's CSV (header + one row per line) in the configured encoding, delimiter and decimal mark."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=settings.delimiter, lineterminator="\r\n")
    writer.writerow(HEADER)
    money = {"unit_price", "line_total", "order_total"}
    for row in order_rows(order, customer, reference, shipping_sku=settings.shipping_sku, warehouse=warehouse):
        values = []
        for column in HEADER:
            value = row.get(column, "")
            if column in money:
                values.append(_amount(value, settings.decimal))
            elif isinstance(value, Decimal):
                values.append(_number(value, settings.decimal))
            else:
                values.append("" if value is None else str(value))
        writer.writerow(values)
    return buffer.getvalue().encode(settings.encoding, errors="replace")
