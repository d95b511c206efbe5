"""Pure transforms between Tryton's rows (as JSON-RPC returns them) and erpsync's canonical records.

No I/O here: the connector's parts (``connectors.erp.tryton.products``, ``.sales`` ...) read rows and hand them
over; tests feed rows in.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from erpsync.connectors.erp.tryton.rpc import to_utc
from erpsync.core.models import (
    Address,
    Customer,
    OrderLine,
    Product,
    ProductStatus,
    ProductSupplier,
    ShippingStatus,
    Variant,
    gross_from_net,
    net_from_gross,
)

PRICE_DIGITS = Decimal("0.0001")  # Tryton's unit prices keep 4 decimals
CENT = Decimal("0.01")  # RON: Tryton rounds amounts and taxes to it, half to even (currency.round)
VAT_PREFIX = re.compile(r"^[A-Za-z]{2}")


@dataclass(frozen=True)
class Warehouse:
    code: str
    id: int
    storage: int
    input: int | None
    tree: frozenset[int]  # the storage location and every location under it


@dataclass(frozen=True)
class PriceList:
    id: int
    name: str
    tax_included: bool  # its formulas give prices with VAT
    changed_at: datetime | None  # the latest write of the list or one of its lines (UTC)


@dataclass(frozen=True)
class Category:
    vat_rate: Decimal | None
    taxes: tuple[int, ...]


@dataclass(frozen=True)
class Sellable:
    id: int
    code: str
    name: str
    unit: int
    category: int | None


FIELD_ALIASES = {"price_net": "price", "price_gross": "price", "vat_rate": "vat", "variants": "price"}


def is_under(location: int, root: int, parents: dict[int, Any]) -> bool:
    seen: set[int] = set()
    current: Any = location
    while current is not None and current not in seen:
        if current == root:
            return True
        seen.add(current)
        current = parents.get(current)
    return False


def chunks(values: Sequence[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(values), size):
        yield list(values[start : start + size])


def to_decimal(value: Any) -> Decimal | None:
    """A finite Decimal from a JSON number (bools and text refused)."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def net_price(net: Decimal | None, gross: Decimal | None, vat_rate: Decimal | None) -> Decimal | None:
    """The net unit price: as given, or gross / (1 + VAT) to Tryton's 4 decimals."""
    if net is not None:
        return net
    if gross is not None and vat_rate is not None:
        return (gross / (1 + vat_rate / 100)).quantize(PRICE_DIGITS)
    return None


def sale_line(
    product: Sellable, quantity: Decimal, net: Decimal, taxes: Iterable[int], description: str
) -> dict[str, Any]:
    """A ``sale.line`` to create: product, quantity in its unit, net unit price, taxes, description."""
    return {
        "type": "line",
        "product": product.id,
        "quantity": float(quantity),
        "unit": product.unit,
        "unit_price": net,
        "taxes": [["add", list(taxes)]],
        "description": description,
    }


def tax_percent(rate: Any) -> Decimal | None:
    """A Tryton tax ``rate`` (a fraction: 0.21) as a VAT percentage (21), as the account categories give it."""
    fraction = to_decimal(rate)
    if fraction is None:
        return None
    percent = (fraction * 100).normalize()
    return percent.quantize(Decimal(1)) if percent == percent.to_integral_value() else percent


def taxes_for_rate(
    rate: Decimal, categories: dict[int, Category], tax_rows: Iterable[dict[str, Any]] = ()
) -> tuple[int, ...] | None:
    """The customer taxes that charge ``rate`` % on a sale line; None when Tryton has none of that rate.

    First the customer taxes of an account category at that rate (the lowest category id: the taxes products of
    that rate are sold with), else one percentage ``account.tax`` row of that rate from ``tax_rows`` (customer
    taxes: ``id``, ``rate``, ``type``; the lowest id).
    """
    for category_id in sorted(categories):
        category = categories[category_id]
        if category.vat_rate is not None and category.vat_rate == rate and category.taxes:
            return category.taxes
    for row in sorted(tax_rows, key=lambda r: int(r["id"])):
        if row.get("type") == "percentage" and tax_percent(row.get("rate")) == rate:
            return (int(row["id"]),)
    return None


def charge_line(line: OrderLine, product: Sellable, taxes: Iterable[int]) -> dict[str, Any]:
    """A discount or fee order line -> a ``sale.line`` of its service product ``product``.

    Its description is the shop's name for it (else the product's), its quantity the line's (1), its unit price
    the net (negative for a discount): ``unit_price_net`` when given, else the gross at the line's VAT rate to
    Tryton's 4 decimals; ``taxes``: those of the line's rate (``taxes_for_rate``). ValueError for a line without
    a VAT rate or a price, or whose sign does not fit its kind (a discount that adds, a fee that takes off).
    """
    if line.vat_rate is None:
        raise ValueError(f"the {line.kind} line {line.name!r} has no VAT rate")
    net = net_price(line.unit_price_net, line.unit_price_gross, line.vat_rate)
    if net is None:
        raise ValueError(f"the {line.kind} line {line.name!r} has no price")
    if (line.kind == "discount" and net > 0) or (line.kind == "fee" and net < 0):
        raise ValueError(f"the {line.kind} line {line.name!r} has a unit price of {net}")
    return sale_line(product, line.quantity, net, taxes, line.name or product.name)


def _round(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_HALF_EVEN)


def fit_unit_prices(
    entries: Sequence[tuple[Decimal | None, Decimal, Decimal | None, Decimal | None]],
) -> list[Decimal | None]:
    """Net unit prices that make Tryton's total of each VAT rate the shop's gross, to the ban when it can be.

    ``entries``: per sale line (VAT rate, quantity, the shop's gross line total = round(quantity x unit gross), the
    shop's net unit price or None). Tryton books round(quantity x unit price) per line and, per tax, the tax of the
    sum of those amounts ("document" rounding), so a rate's gross G comes out as base + round(base x rate), best
    with base = round(G / (1 + rate)): exactly G when any base reaches it (checked for every G up to 1,000.00 at
    21/19/11/9 %: no other base does better), else one cent off (100.00 at 21 %: 82.64 -> 99.99, 82.65 -> 100.01).

    Each line starts at its amount as booked (round(quantity x unit price): the shop's net, else gross / (1 + rate)
    to 4 decimals); when those do not add up to the base, the difference goes to the largest line without a net of
    the shop's (shipping, a discount spread by core), else to the largest line — so the shop's net prices stay as
    they are unless they cannot make the total (10 x 24.99 at 21 %: the net 20.65 makes 249.87, 20.6530 249.90).
    Returns the new unit price (amount / quantity, 4 decimals) of the one line changed, None for the others
    (their unit price stays); a rate with a line without gross is left alone, and so are lines without rate.
    """
    by_rate: dict[Decimal, list[int]] = {}
    skipped: set[Decimal] = set()
    for index, (rate, _quantity, gross, _net) in enumerate(entries):
        if rate is None:
            continue
        by_rate.setdefault(rate, []).append(index)
        if gross is None:
            skipped.add(rate)
    prices: list[Decimal | None] = [None] * len(entries)
    for rate, indexes in by_rate.items():
        if rate in skipped:
            continue
        factor = 1 + rate / 100
        target = sum((entries[i][2] or Decimal(0) for i in indexes), Decimal(0))
        base = _round(target / factor)
        units: dict[int, Decimal] = {}
        for i in indexes:
            _rate, quantity, gross, net = entries[i]
            # the unit price the line gets without fitting: the shop's net, else its gross / (1 + rate)
            if net is not None:
                units[i] = net
            else:
                units[i] = (
                    ((gross or Decimal(0)) / quantity / factor).quantize(PRICE_DIGITS) if quantity else Decimal(0)
                )
        amounts = {i: _round(entries[i][1] * units[i]) for i in indexes}
        remainder = base - sum(amounts.values(), Decimal(0))
        movable = [i for i in indexes if entries[i][1]]
        if not remainder or not movable:
            continue
        derived = [i for i in movable if entries[i][3] is None]
        largest = max(derived or movable, key=lambda i: abs(amounts[i]))
        quantity = entries[largest][1]
        prices[largest] = ((amounts[largest] + remainder) / quantity).quantize(PRICE_DIGITS)
    return prices


def jsonable(row: dict[str, Any]) -> dict[str, Any]:
    """A row fit for a failures payload (values JSON cannot hold become strings)."""
    return {
        k: (v if isinstance(v, str | int | float | bool | type(None) | list | dict) else str(v)) for k, v in row.items()
    }


def product_from(
    template: dict[str, Any],
    variants: list[dict[str, Any]],
    categories: dict[int, Category],
    price_list: PriceList | None = None,
    supplier: ProductSupplier | None = None,
) -> Product:
    """One template and its variants (and its main supplier) -> a canonical Product (ValueError for a row that
    cannot be one).

    Prices: the list price, or with ``price_list`` the variants' ``sale_price_uom`` read under it (net, or
    gross when the list includes VAT); a product the list gives no price has none (the sync fails it).
    """
    if not variants:
        raise ValueError("a template without variants (product.product)")
    category = categories.get(template.get("account_category") or 0)
    vat = category.vat_rate if category else None
    template_active = bool(template.get("active")) and bool(template.get("salable"))
    stamps = [to_utc(r.get("last_modified_at")) for r in [template, *variants]]
    modified = max((s for s in stamps if s is not None), default=None)

    def price(row: dict[str, Any]) -> tuple[Decimal | None, Decimal | None]:
        if price_list is not None:
            value = to_decimal(row.get("sale_price_uom"))
            if value is None or not price_list.tax_included:
                return value, (gross_from_net(value, vat) if value is not None and vat is not None else None)
            return (net_from_gross(value, vat) if vat is not None else None), value
        net = to_decimal(row.get("list_price_used"))
        if net is None:
            net = to_decimal(template.get("list_price"))
        return net, (gross_from_net(net, vat) if net is not None and vat is not None else None)

    def ean(row: dict[str, Any]) -> str | None:
        return next((i.get("code") for i in row.get("identifiers.") or [] if i.get("type") == "ean"), None)

    def status(row: dict[str, Any]) -> ProductStatus:
        return ProductStatus.ACTIVE if template_active and row.get("active") else ProductStatus.INACTIVE

    if len(variants) == 1:
        row = variants[0]
        code = row.get("code")
        if not isinstance(code, str) or not code.strip():
            raise ValueError("a product without a code (SKU)")
        net, gross = price(row)
        return Product(
            sku=code,
            name=template.get("name") or "",
            erp_id=str(template["id"]),
            description=row.get("description") or "",
            ean=ean(row),
            vat_rate=vat,
            price_net=net,
            price_gross=gross,
            status=status(row),
            supplier=supplier,
            modified_at=modified,
        )
    sku = template.get("code")
    if not isinstance(sku, str) or not sku.strip():
        raise ValueError("a template with several variants but no code (its SKU)")
    items: list[Variant] = []
    for row in variants:
        code = row.get("code")
        if not isinstance(code, str) or not code.strip():
            raise ValueError(f"variant {row['id']} has no code (SKU)")
        net, gross = price(row)
        suffix = row.get("suffix_code") or (code[len(sku) :] if code.startswith(sku) else code)
        items.append(
            Variant(
                sku=code,
                erp_id=str(row["id"]),
                ean=ean(row),
                options={"variant": suffix.strip(" -_./") or suffix},
                price_net=net,
                price_gross=gross,
                status=status(row),
            )
        )
    net, gross = items[0].price_net, items[0].price_gross
    return Product(
        sku=sku,
        name=template.get("name") or "",
        erp_id=str(template["id"]),
        description=variants[0].get("description") or "",
        vat_rate=vat,
        price_net=net,
        price_gross=gross,
        status=ProductStatus.ACTIVE if template_active else ProductStatus.INACTIVE,
        variants=items,
        supplier=supplier,
        modified_at=modified,
    )


def vat_identifier(party: dict[str, Any]) -> str | None:
    """The party's VAT code (an ``eu_vat``/``ro_cf``/``*_vat`` identifier), if it has one."""
    for identifier in party.get("identifiers.") or []:
        if identifier.get("type") in ("eu_vat", "ro_cf") or str(identifier.get("type") or "").endswith("_vat"):
            return str(identifier.get("code"))
    return None


def customer_from(party: dict[str, Any]) -> Customer:
    """A ``party.party`` row -> a canonical Customer (a company when it has a VAT code)."""
    vat = vat_identifier(party)
    name = party.get("name") or ""
    return Customer(
        email=party.get("email") or None,
        name=name,
        phone=party.get("phone") or None,
        is_company=vat is not None,
        company_name=name if vat else None,
        vat_code=vat,
        erp_id=str(party["id"]),
    )


def address_from(row: dict[str, Any] | None, party_name: str) -> Address | None:
    """A ``party.address`` row -> a canonical Address."""
    if row is None:
        return None
    return Address(
        name=row.get("party_name") or party_name,
        street=row.get("street") or "",
        city=row.get("city") or "",
        postal_code=row.get("postal_code") or "",
        country_code=(row.get("country.") or {}).get("code") or "RO",
    )


def address_roles(billing: Address | None, shipping: Address | None) -> list[tuple[Address, bool, bool]]:
    """(address, invoice?, delivery?) for a new party: one address when both are the same."""
    if billing is None and shipping is None:
        return []
    if billing is None or shipping is None:
        return [(billing or shipping, True, True)]  # type: ignore[list-item]
    if address_key(billing.street, billing.city, billing.postal_code) == address_key(
        shipping.street, shipping.city, shipping.postal_code
    ):
        return [(billing, True, True)]
    return [(billing, True, False), (shipping, False, True)]


def address_key(street: str | None, city: str | None, postal_code: str | None) -> tuple[str, str, str]:
    """What makes two addresses the same one: street, city and postal code, case and spacing ignored."""

    def norm(text: str | None) -> str:
        return " ".join((text or "").casefold().split())

    return norm(street), norm(city), norm(postal_code).replace(" ", "")


def country_of(customer: Customer) -> str | None:
    """The customer's country code (billing address first)."""
    address = customer.billing or customer.shipping
    return address.country_code.upper() if address and address.country_code else None


def vat_candidates(vat: str, country: str | None) -> list[str]:
    """The compact forms a VAT code may be stored under (with and without its country prefix)."""
    code = re.sub(r"[\s.\-]", "", vat).upper()
    digits = VAT_PREFIX.sub("", code)
    candidates = [code, digits]
    if country and not VAT_PREFIX.match(code):
        candidates.append(country + code)
    return list(dict.fromkeys(candidates))


def like_escape(text: str) -> str:
    """Text for an SQL LIKE pattern, its wildcards escaped."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def shipping_status_of(sale: dict[str, Any]) -> ShippingStatus:
    """The shop's shipping status that a ``sale.sale`` state (and shipment state) corresponds to."""
    state = sale.get("state")
    if state == "cancelled":
        return ShippingStatus.CANCELLED
    if sale.get("shipment_state") == "sent" or state == "done":
        return ShippingStatus.SHIPPED
    if state in ("confirmed", "processing"):
        return ShippingStatus.CONFIRMED
    if state == "quotation":
        return ShippingStatus.AWAITING
    return ShippingStatus.TEMPORARY
