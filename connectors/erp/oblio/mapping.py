"""Oblio's JSON <-> canonical records, without I/O (``docs/oblio.md``).

Replies in: ``/nomenclature/products`` rows -> products and stock levels. An order out: the ``POST
/docs/invoice`` (or ``/docs/proforma``) body with the shop's total to the ban. A record Oblio would refuse raises
``RecordError`` keyed by the order reference before any call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from erpsync.connectors.erp.oblio.client import SYSTEM
from erpsync.connectors.errors import record_error
from erpsync.core.config import percent_key
from erpsync.core.models import (
    CENT,
    Address,
    Customer,
    Order,
    OrderLine,
    Product,
    ProductStatus,
    RowError,
    StockLevel,
    gross_from_net,
)
from erpsync.core.order_totals import TOLERANCE, TOTAL_MISMATCH

SERVICE = "Serviciu"
GOODS = "Marfa"
COUNTRY_NAMES = {"RO": "Romania", "MD": "Moldova", "HU": "Ungaria", "BG": "Bulgaria", "DE": "Germania"}


@dataclass(frozen=True)
class DocId:
    """An Oblio document as erpsync names it: ``"FCT-0053"`` (invoice) or ``"proforma:PR-0008"``."""

    series: str
    number: str
    proforma: bool = False

    def __str__(self) -> str:
        return f"{'proforma:' if self.proforma else ''}{self.series}-{self.number}"

    @property
    def printed(self) -> str:
        return f"{self.series} {self.number}"

    @property
    def kind(self) -> str:
        return "proforma" if self.proforma else "invoice"

    @classmethod
    def parse(cls, value: str) -> DocId:
        proforma = value.startswith("proforma:")
        series, sep, number = value.removeprefix("proforma:").rpartition("-")
        if not sep or not series or not number:
            raise ValueError(f"not an Oblio document id: {value!r} (expected 'SERIES-NUMBER')")
        return cls(series, number, proforma)


# --------------------------------------------------------------------------- replies in


def decimal(value: Any) -> Decimal | None:
    """A finite number from a JSON number or numeric string; None otherwise (bools included)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _truthy(value: Any) -> bool:
    return value in (True, 1, "1", "true", "True")


def parse_product(row: Any) -> Product | RowError:
    """One ``/nomenclature/products`` row of goods -> a ``Product`` (price and VAT as Oblio gives them: the row's,
    else its first stock entry's; ``vatIncluded`` says whether the price is gross)."""
    if not isinstance(row, dict):
        return RowError(key="product:?", error="a row that is not an object", payload={"row": str(row)[:200]})
    code = str(row.get("code") or "").strip()
    if not code:
        return RowError(key=f"name:{row.get('name')}", error="a product without a code (SKU)", payload=row)
    priced = row if row.get("price") is not None else next(iter(_stock_entries(row)), {})
    price = decimal(priced.get("price"))
    vat = decimal(priced.get("vatPercentage"))
    gross = _truthy(priced.get("vatIncluded", True))
    return Product(
        sku=code,
        name=str(row.get("name") or ""),
        description=str(row.get("description") or ""),
        vat_rate=vat,
        price_gross=price if gross else None,
        price_net=price if not gross else None,
        status=ProductStatus.ACTIVE,
        erp_id=code,
    )


def _stock_entries(row: Mapping[str, Any]) -> list[dict[str, Any]]:
    entries = row.get("stock")
    return [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []


def is_service(row: Any) -> bool:
    return isinstance(row, dict) and str(row.get("productType") or "") == SERVICE


def stock_levels(
    rows: Sequence[Any], managements: Sequence[str], skus: set[str] | None = None
) -> tuple[list[StockLevel], list[RowError]]:
    """A page of ``/nomenclature/products`` rows -> stock per (code, management) for the asked managements.

    Entries of one management at several work stations (or prices) are summed; a good without an entry in a
    management has 0 there; services are skipped; a row without code or with an unreadable quantity is a
    ``RowError``.
    """
    levels: list[StockLevel] = []
    errors: list[RowError] = []
    for row in rows:
        if is_service(row):
            continue
        if not isinstance(row, dict) or not str(row.get("code") or "").strip():
            errors.append(RowError(key=f"name:{_name(row)}", error="a product without a code", payload=_payload(row)))
            continue
        code = str(row["code"]).strip()
        if skus is not None and code not in skus:
            continue
        totals = {name: Decimal(0) for name in managements}
        bad = None
        for entry in _stock_entries(row):
            name = str(entry.get("management") or "")
            if name not in totals:
                continue
            quantity = decimal(entry.get("quantity"))
            if quantity is None:
                bad = f"quantity {entry.get('quantity')!r} in {name!r} is not a number"
                break
            totals[name] += quantity
        if bad is not None:
            errors.append(RowError(key=code, error=bad, payload=_payload(row)))
            continue
        levels.extend(StockLevel(sku=code, warehouse=name, on_hand=qty) for name, qty in totals.items())
    return levels, errors


# --------------------------------------------------------------------------- an order out


def document_body(
    order: Order,
    customer: Customer,
    reference: str,
    *,
    cif: str,
    series: str,
    management: str | None,
    measuring_unit: str,
    shipping_name: str,
    issue_date: str,
    use_stock: bool,
    default_vat: Decimal | None,
) -> dict[str, Any]:
    """The body of ``POST /docs/invoice`` (``use_stock``: goods leave ``management``) or ``/docs/proforma``.

    Product lines at their unit gross price (``vatIncluded`` 1), a service line for shipping (gross, at
    ``shipping_vat_rate`` or ``default_vat``), fees as service lines. Discounts are Oblio discount lines
    (``discount``, ``discountType`` "valoric", ``discountAllAbove`` 1: on every line before it without a discount),
    so the lines are grouped by VAT rate, each group followed by its discounts (a discount's VAT is that of
    the lines it reduces). ``idempotencyKey`` = ``reference``. The total (``document_total``) must be the shop's
    ``order.total`` within ``TOLERANCE``; ``RecordError`` (nothing sent) otherwise, and for a line without SKU,
    price or VAT, a discount with no line at its rate or larger than those lines.
    """
    groups: dict[Decimal, list[dict[str, Any]]] = {}
    discounts: dict[Decimal, list[OrderLine]] = {}
    fees: list[dict[str, Any]] = []
    for line in order.lines:
        label = f"SKU {line.sku!r}" if line.kind == "product" else f"the {line.kind} line {line.name!r}"
        if line.kind == "product" and not line.sku.strip():
            raise record_error(SYSTEM, reference, f"a line has no SKU ({line.name or 'unnamed'})")
        if line.vat_rate is None:
            raise record_error(SYSTEM, reference, f"{label} has no VAT rate")
        rate = line.vat_rate.normalize()
        if line.kind == "discount":
            discounts.setdefault(rate, []).append(line)
            continue
        price = _gross(line, rate)
        if price is None:
            raise record_error(SYSTEM, reference, f"{label} has no price")
        row = product_row(line.name or line.sku, line.sku, line.quantity, price, rate, measuring_unit, order.currency)
        if line.kind == "fee":
            fees.append(row | {"name": line.name or "Taxa", "productType": SERVICE})
            continue
        groups.setdefault(rate, []).append(
            row | ({"management": management, "productType": GOODS} if management else {"productType": GOODS})
        )
    if not groups:
        raise record_error(SYSTEM, reference, "the order has no lines")
    if order.shipping_amount > 0:
        shipping_rate = order.shipping_vat_rate if order.shipping_vat_rate is not None else default_vat
        if shipping_rate is None:
            raise record_error(SYSTEM, reference, "no VAT rate for the shipping line")
        rate = shipping_rate
        groups.setdefault(rate.normalize(), []).append(
            product_row(shipping_name, "", Decimal(1), order.shipping_amount, rate, measuring_unit, order.currency)
            | {"productType": SERVICE}
        )
    products: list[dict[str, Any]] = []
    for rate, lines in groups.items():
        products += lines
        left = document_total(lines)
        for discount in discounts.pop(rate, []):
            gross = _gross(discount, rate)
            if gross is None:
                raise record_error(SYSTEM, reference, f"the discount line {discount.name!r} has no price")
            amount = abs(_cents(discount.quantity * gross))
            left -= amount
            if left < 0:
                raise record_error(
                    SYSTEM,
                    reference,
                    f"the discount line {discount.name!r} takes off more than the {percent_key(rate)}% lines come to",
                )
            products.append(
                {
                    "name": discount.name or "Discount",
                    "discount": float(amount),
                    "discountType": "valoric",
                    "discountAllAbove": 1,
                }
            )
    if discounts:
        rate = next(iter(discounts))
        raise record_error(
            SYSTEM,
            reference,
            f"the discount line {discounts[rate][0].name!r} is at VAT {percent_key(rate)}%, and no line of the "
            f"document is: Oblio applies a discount to the lines before it",
        )
    products += fees
    total = document_total(products)
    if order.total is not None and abs(total - order.total) > TOLERANCE:
        raise record_error(
            SYSTEM,
            reference,
            f"{TOTAL_MISMATCH}the Oblio document would total {total}, the shop's total is {_cents(order.total)} "
            f"(difference {total - _cents(order.total):+}); not issued",
        )
    body: dict[str, Any] = {
        "cif": cif,
        "client": client_block(customer, order.billing or customer.billing),
        "issueDate": issue_date,
        "seriesName": series,
        "currency": order.currency,
        "language": "RO",
        "precision": 2,
        "mentions": f"Comanda online {reference}",
        "products": products,
        "idempotencyKey": reference,
    }
    if use_stock:
        body["useStock"] = 1
    return body


def product_row(
    name: str, code: str, quantity: Decimal, price: Decimal, rate: Decimal, unit: str, currency: str
) -> dict[str, Any]:
    """One document line at a gross unit ``price``."""
    return {
        "name": name,
        "code": code,
        "price": float(price),
        "measuringUnit": unit,
        "currency": currency,
        "vatPercentage": float(rate),
        "vatIncluded": 1,
        "quantity": float(quantity),
    }


def document_total(products: Sequence[Mapping[str, Any]]) -> Decimal:
    """The total of document lines, VAT included: each line round(quantity x price, 2), less each value
    discount (a percentage discount takes that share of the lines before it without a discount)."""
    total = Decimal(0)
    open_lines: list[Decimal] = []
    for row in products:
        if "discount" in row:
            amount = decimal(row.get("discount")) or Decimal(0)
            if row.get("discountType") == "procentual":
                amount = _cents(sum(open_lines, Decimal(0)) * amount / 100)
            total -= amount
            open_lines = []
            continue
        amount = _cents((decimal(row.get("quantity")) or Decimal(0)) * (decimal(row.get("price")) or Decimal(0)))
        open_lines.append(amount)
        total += amount
    return total


def client_block(customer: Customer, address: Address | None) -> dict[str, Any]:
    """The document's client: the company with its CUI (``cif``) and trade register number, else the person."""
    address = address or Address()
    if customer.is_company:
        name = customer.company_name or address.company or customer.name or address.name
    else:
        name = address.name or customer.name
    cui = (customer.vat_code or "").strip() if customer.is_company else ""
    return {
        "cif": cui,
        "name": name or customer.email or "Client",
        "rc": (customer.registration_number or "") if customer.is_company else "",
        "address": address.street,
        "state": address.region,
        "city": address.city,
        "country": COUNTRY_NAMES.get(address.country_code.upper(), address.country_code),
        "email": customer.email or address.email or "",
        "phone": customer.phone or address.phone or "",
        "vatPayer": 1 if cui.upper().startswith("RO") else 0,
        "save": 0,
    }


def stock_lines(products: Sequence[Mapping[str, Any]]) -> dict[str, Decimal]:
    """Quantity per code of a document's goods lines (no service, discount or code-less line)."""
    totals: dict[str, Decimal] = {}
    for row in products:
        code = str(row.get("code") or "")
        if not code or "discount" in row or row.get("productType") == SERVICE:
            continue
        totals[code] = totals.get(code, Decimal(0)) + (decimal(row.get("quantity")) or Decimal(0))
    return totals


def _gross(line: OrderLine, rate: Decimal) -> Decimal | None:
    if line.unit_price_gross is not None:
        return line.unit_price_gross
    if line.unit_price_net is not None:
        return gross_from_net(line.unit_price_net, rate)
    return None


def _cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _name(row: Any) -> str:
    return str(row.get("name")) if isinstance(row, dict) else "?"


def _payload(row: Any) -> dict[str, Any]:
    return row if isinstance(row, dict) else {"row": str(row)[:200]}
