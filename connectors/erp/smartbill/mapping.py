"""SmartBill's JSON <-> canonical records, without I/O: a reply in, records out; an order in, an invoice body out.

Everything here is a pure function of its arguments (no call, no clock): the connector fetches the replies and
the VAT rates, and passes the day and its settings in. A record SmartBill would refuse raises ``RecordError``
keyed by the order reference before any call is made.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from erpsync.connectors.erp.smartbill.client import SYSTEM
from erpsync.connectors.errors import BadRequestError, record_error
from erpsync.core.config import percent_key
from erpsync.core.models import CENT, Address, Customer, Order, OrderLine, Page, RowError, StockLevel, gross_from_net
from erpsync.core.order_totals import TOLERANCE, TOTAL_MISMATCH

DISCOUNT_BY_VALUE = 1  # SmartBill's discountType: 1 = a value, 2 = a percentage
DISCOUNT_BY_PERCENT = 2
COUNTRY_NAMES = {"RO": "Romania", "MD": "Moldova", "HU": "Ungaria", "BG": "Bulgaria", "DE": "Germania"}


# --------------------------------------------------------------------------- replies in


def parse_taxes(reply: Any) -> dict[Decimal, str]:
    """A ``/tax`` reply -> VAT percentage (normalized) -> SmartBill's tax name; the first name of a rate wins."""
    rows = reply.get("taxes") if isinstance(reply, dict) else None
    if not isinstance(rows, list):
        raise BadRequestError(SYSTEM, f"unexpected /tax reply: {str(reply)[:200]}")
    taxes: dict[Decimal, str] = {}
    for row in rows:
        rate = _decimal(row.get("percentage")) if isinstance(row, dict) else None
        if rate is not None and row.get("name"):
            taxes.setdefault(rate.normalize(), str(row["name"]))
    return taxes


def stock_entries(reply: Any) -> list[Any]:
    """The ``list`` of a ``/stocks`` reply (one entry per warehouse); anything else is a ``BadRequestError``."""
    entries = reply.get("list") if isinstance(reply, dict) else None
    if not isinstance(entries, list):
        raise BadRequestError(SYSTEM, f"unexpected /stocks reply: {str(reply)[:200]}")
    return entries


def parse_stock(
    entries: Sequence[Any], warehouses: Sequence[str], skus: Sequence[str] | None = None
) -> Page[StockLevel]:
    """The ``list`` of a ``/stocks`` reply -> one page of the requested warehouses (see ``iter_stock``)."""
    wanted = set(warehouses)
    only = set(skus) if skus is not None else None
    totals: dict[tuple[str, str], Decimal] = {}
    units: dict[tuple[str, str], str] = {}
    bad: dict[tuple[str, str], RowError] = {}
    errors: list[RowError] = []
    seen: set[str] = set()
    for entry in entries:
        warehouse = entry.get("warehouse") if isinstance(entry, dict) else None
        name = warehouse.get("warehouseName") if isinstance(warehouse, dict) else None
        if not isinstance(name, str):
            errors.append(RowError(key="warehouse:?", error="a warehouse without a name", payload=_payload(entry)))
            continue
        seen.add(name)
        if name not in wanted:
            continue
        products = entry.get("products")
        if not isinstance(products, list):
            errors.append(
                RowError(
                    key=f"warehouse:{name}", error="products is not a list", payload={"products": str(products)[:200]}
                )
            )
            continue
        for index, row in enumerate(products):
            code = row.get("productCode") if isinstance(row, dict) else None
            if not isinstance(code, str) or not code.strip():
                errors.append(RowError(key=f"{name}#{index}", error="a row without productCode", payload=_payload(row)))
                continue
            if only is not None and code not in only:
                continue
            key = (name, code)
            if key in bad:
                continue
            quantity = _decimal(row.get("quantity"))
            unit = str(row.get("measuringUnit") or "")
            if quantity is None:
                bad[key] = RowError(
                    key=code,
                    error=f"quantity {row.get('quantity')!r} in {name!r} is not a number",
                    payload=_payload(row),
                )
            elif key in units and units[key] != unit:
                bad[key] = RowError(
                    key=code,
                    error=f"listed in {name!r} with two measuring units ({units[key]!r}, {unit!r})",
                    payload=_payload(row),
                )
            else:
                units[key] = unit
                totals[key] = totals.get(key, Decimal(0)) + quantity
    items = [
        StockLevel(sku=code, warehouse=name, on_hand=quantity)
        for (name, code), quantity in totals.items()
        if (name, code) not in bad
    ]
    errors.extend(bad.values())
    for name in warehouses:
        if name not in seen:
            hint = [known for known in sorted(seen) if known.casefold() == name.casefold()]
            advice = f"; did you mean {hint[0]!r}? (names are case-sensitive)" if hint else ""
            errors.append(
                RowError(
                    key=f"warehouse:{name}",
                    error=f"warehouse {name!r} is not in SmartBill's reply{advice}",
                    payload={"known": sorted(seen)},
                )
            )
    return Page[StockLevel](items=items, errors=errors)


# --------------------------------------------------------------------------- an order out, as an invoice


def invoice_body(
    order: Order,
    customer: Customer,
    reference: str,
    *,
    taxes: Mapping[Decimal, str],
    cif: str,
    series: str,
    warehouse: str,
    measuring_unit: str,
    shipping_name: str,
    issue_date: str,
) -> dict[str, Any]:
    """The ``POST /invoice`` body of a shop order: stock leaves ``warehouse``; ``taxes`` as ``parse_taxes``.

    One product line per product line of the order (unit gross price, VAT included), a service line for shipping
    (taken as gross, at ``shipping_vat_rate`` or else the highest rate SmartBill lists), the client
    (``invoice_client``). Discount lines (``OrderLine.kind``) become SmartBill discount lines (``discount_line``):
    SmartBill applies one to the ``numberOfItems`` lines right before it, so the lines are grouped by VAT rate
    (product lines at a rate, the shipping line at its rate, then that rate's discounts), the groups in the order
    their rates first appear; fee lines become service lines, last. The invoice's total (``invoice_total``, as
    SmartBill computes it) must be the shop's ``order.total`` (within ``core.order_totals.TOLERANCE``).

    ``RecordError`` before any call for: a product line without SKU, a line without price or VAT rate, a rate
    SmartBill does not define, a discount at a rate no line of the invoice has or larger than those lines, a
    total that is not the shop's.
    """
    groups: dict[Decimal, list[dict[str, Any]]] = {}
    discounts: dict[Decimal, list[OrderLine]] = {}
    fees: list[dict[str, Any]] = []
    for line in order.lines:
        if line.kind == "product" and not line.sku.strip():
            raise record_error(SYSTEM, reference, f"a line has no SKU ({line.name or 'unnamed'})")
        label = f"SKU {line.sku!r}" if line.kind == "product" else f"the {line.kind} line {line.name!r}"
        rate = line.vat_rate
        if rate is None:
            raise record_error(SYSTEM, reference, f"{_capital(label)} has no VAT rate")
        rate = rate.normalize()
        if line.kind == "discount":
            product_line(line.name, "", line.quantity, Decimal(0), rate, taxes, measuring_unit, reference)  # its tax
            discounts.setdefault(rate, []).append(line)
            continue
        if line.unit_price_gross is not None:
            price = line.unit_price_gross
        elif line.unit_price_net is not None:
            price = gross_from_net(line.unit_price_net, rate)
        else:
            raise record_error(SYSTEM, reference, f"{_capital(label)} has no price")
        if line.kind == "fee":
            name = line.name or "Taxa"
            fees.append(
                product_line(name, line.sku, line.quantity, price, rate, taxes, measuring_unit, reference)
                | {"isService": True}
            )
            continue
        groups.setdefault(rate, []).append(
            product_line(line.name or line.sku, line.sku, line.quantity, price, rate, taxes, measuring_unit, reference)
            | {"warehouseName": warehouse, "isService": False}
        )
    if not groups:
        raise record_error(SYSTEM, reference, "the order has no lines")
    if order.shipping_amount > 0:
        rate = order.shipping_vat_rate if order.shipping_vat_rate is not None else max(taxes, default=None)
        if rate is None:
            raise record_error(SYSTEM, reference, "no VAT rate for the shipping line")
        groups.setdefault(rate.normalize(), []).append(
            product_line(shipping_name, "", Decimal(1), order.shipping_amount, rate, taxes, measuring_unit, reference)
            | {"isService": True}
        )
    products: list[dict[str, Any]] = []
    for rate, lines in groups.items():
        products += lines
        covered = invoice_total(lines)
        for discount in discounts.pop(rate, []):
            row = discount_line(discount, rate, len(lines), taxes, measuring_unit, reference)
            covered += _decimal(row["discountValue"]) or Decimal(0)
            if covered < 0:
                raise record_error(
                    SYSTEM,
                    reference,
                    f"the discount line {discount.name!r} takes off more than the {percent_key(rate)}% lines "
                    f"before it come to",
                )
            products.append(row)
    if discounts:
        rate = next(iter(discounts))
        raise record_error(
            SYSTEM,
            reference,
            f"the discount line {discounts[rate][0].name!r} is at VAT {percent_key(rate)}%, and no line of the "
            f"invoice is: SmartBill applies a discount to the lines before it",
        )
    products += fees
    total = invoice_total(products)
    if order.total is not None and abs(total - order.total) > TOLERANCE:
        raise record_error(
            SYSTEM,
            reference,
            f"{TOTAL_MISMATCH}the SmartBill invoice would total {total}, the shop's total is {_cents(order.total)} "
            f"(difference {total - _cents(order.total):+}); not issued",
        )
    return {
        "companyVatCode": cif,
        "client": invoice_client(customer, order.billing or customer.billing),
        "issueDate": issue_date,
        "seriesName": series,
        "currency": order.currency,
        "language": "RO",
        "precision": 2,
        "isDraft": False,
        "useStock": True,
        "mentions": f"Comanda online {reference}",
        "products": products,
    }


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def discount_line(
    line: OrderLine,
    rate: Decimal,
    number_of_items: int,
    taxes: Mapping[Decimal, str],
    measuring_unit: str,
    reference: str,
) -> dict[str, Any]:
    """A discount order line -> a SmartBill discount line on the ``number_of_items`` invoice lines before it.

    *(inference: the reference names only ``isDiscount`` and "discount type/value fields beside it"; the field
    names follow SmartBill's public API documentation as the brief gives them)* ``discountType`` 1 (a value, VAT
    included like every line here) with ``discountValue`` = the discount's gross amount as a negative number
    (quantity x unit gross, rounded to the ban), at the line's ``taxName``/``taxPercentage``.
    """
    gross = line.unit_price_gross
    if gross is None and line.unit_price_net is not None:
        gross = gross_from_net(line.unit_price_net, rate)
    if gross is None:
        raise record_error(SYSTEM, reference, f"the discount line {line.name!r} has no price")
    amount = -abs(_cents(line.quantity * gross))
    tax_line = product_line(line.name or "Discount", "", Decimal(1), Decimal(0), rate, taxes, measuring_unit, reference)
    return {
        "name": tax_line["name"],
        "isDiscount": True,
        "numberOfItems": number_of_items,
        "measuringUnitName": measuring_unit,
        "isTaxIncluded": True,
        "taxName": tax_line["taxName"],
        "taxPercentage": tax_line["taxPercentage"],
        "discountType": DISCOUNT_BY_VALUE,
        "discountValue": float(amount),
    }


def invoice_total(products: Sequence[Mapping[str, Any]]) -> Decimal:
    """The total of invoice lines as SmartBill (and the simulator) computes it, VAT included: each line
    round(quantity x price, 2); a discount by value adds its (negative) ``discountValue``; a discount by percent
    takes that percentage of the ``numberOfItems`` lines before it, rounded to the ban."""
    total = Decimal(0)
    amounts: list[Decimal] = []
    for line in products:
        if line.get("isDiscount"):
            if line.get("discountType") == DISCOUNT_BY_PERCENT:
                count = int(line.get("numberOfItems") or 0)
                base = sum(amounts[-count:], Decimal(0)) if count else Decimal(0)
                amount = -_cents(base * (_decimal(line.get("discountPercentage")) or Decimal(0)) / 100)
            else:
                amount = _decimal(line.get("discountValue")) or Decimal(0)
        else:
            amount = _cents(
                (_decimal(line.get("quantity")) or Decimal(0)) * (_decimal(line.get("price")) or Decimal(0))
            )
        amounts.append(amount)
        total += amount
    return total


def _cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def product_line(
    name: str,
    code: str,
    quantity: Decimal,
    price: Decimal,
    rate: Decimal,
    taxes: Mapping[Decimal, str],
    measuring_unit: str,
    reference: str,
) -> dict[str, Any]:
    """One invoice line at a gross unit ``price``; its tax name is looked up by ``rate`` in ``taxes``."""
    tax_name = taxes.get(rate.normalize())
    if tax_name is None:
        known = ", ".join(f"{r}%" for r in sorted(taxes))
        raise record_error(
            SYSTEM, reference, f"{code or name}: VAT rate {rate}% is not defined in SmartBill (defined: {known})"
        )
    return {
        "name": name,
        "code": code,
        "measuringUnitName": measuring_unit,
        "quantity": float(quantity),
        "price": float(price),
        "isTaxIncluded": True,
        "taxName": tax_name,
        "taxPercentage": float(rate),
    }


def invoice_client(customer: Customer, address: Address | None) -> dict[str, Any]:
    """The invoice's client block: the company when it is one, else the person."""
    address = address or Address()
    if customer.is_company:
        name = customer.company_name or address.company or customer.name or address.name
    else:
        name = address.name or customer.name
    vat_code = (customer.vat_code or "").strip() if customer.is_company else ""
    client: dict[str, Any] = {
        "name": name,
        "vatCode": vat_code,
        "regCom": (customer.registration_number or "") if customer.is_company else "",
        "isTaxPayer": vat_code.upper().startswith("RO"),
        "address": address.street,
        "city": address.city,
        "county": address.region,
        "country": COUNTRY_NAMES.get(address.country_code.upper(), address.country_code),
        "email": customer.email or address.email or "",
        "phone": customer.phone or address.phone or "",
        "saveToDb": False,
    }
    return client


# --------------------------------------------------------------------------- helpers


def _decimal(value: Any) -> Decimal | None:
    """A finite number from a JSON number or numeric string; None for anything else (bools included)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _payload(row: Any) -> dict[str, Any]:
    return row if isinstance(row, dict) else {"row": str(row)[:200]}
