"""Totals to the ban: what of a shop order reaches the ERP, and whether the ERP order adds up to what the
customer pays. Pure; no I/O.

- ``erp_lines``: the order as it is booked — product and fee lines as they are, every discount (a discount line
  without a VAT rate, and the order-level ``discount_amount``) spread over the VAT rates of the product lines
  in proportion to their gross amounts, one discount line per rate, rounded to the ban with the remainder on
  the largest share (the parts add up exactly), the way Romanian invoices show a discount.
- ``booked_total``: what an ERP will total for an order: per line round(quantity x unit gross, 2), plus shipping.
- ``total_problem``: None when the shop's ``total_amount`` and the booked total agree within 0.01; else the
  one-line reason the order is held for (``TOTAL_MISMATCH`` + both totals, the difference and the lines).

What a discount reduces *(inference: the shop's encoding of discounts is not documented)*: the product lines
only, never shipping or fees, unless the shop line says otherwise — a discount line that carries a VAT rate
(``vat_rate``) is booked at that rate as it is, whatever it reduces (the shop mapper gives a shipping discount
the shipping rate). Shipping keeps its own VAT rate.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal

from erpsync.core.config import percent_key
from erpsync.core.models import CENT, ZERO, Order, OrderLine

TOLERANCE = Decimal("0.01")
TOTAL_MISMATCH = "total mismatch: "  # the reason of an order held because its totals differ
ORDER_DISCOUNT_NAME = "Discount"  # the name of the lines an order-level discount_amount becomes


def _cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def unit_gross(line: OrderLine) -> Decimal | None:
    """The line's unit gross price: as given, else net x (1 + VAT) (unrounded; net alone when no rate is known).

    None when the line has no price at all (the ERP would price it itself).
    """
    if line.unit_price_gross is not None:
        return line.unit_price_gross
    if line.unit_price_net is None:
        return None
    if line.vat_rate is None:
        return line.unit_price_net
    return line.unit_price_net * (1 + line.vat_rate / 100)


def line_gross(line: OrderLine) -> Decimal | None:
    """What the line adds to the ERP's total: round(quantity x unit gross, 2) (negative for a discount)."""
    unit = unit_gross(line)
    return None if unit is None else _cents(line.quantity * unit)


def booked_total(order: Order) -> Decimal:
    """The total an ERP books for the order: its lines (a line without a price counts 0), shipping (gross), less
    the order-level ``discount_amount`` (booked as discount lines by ``erp_lines``, so the total is the same
    before and after them)."""
    lines = sum((_signed(line) for line in order.lines), ZERO)
    return _cents(lines + order.shipping_amount - order.discount_amount)


def _signed(line: OrderLine) -> Decimal:
    """A line's gross as it counts: a discount always takes off, whatever sign the shop gave its price."""
    gross = line_gross(line) or ZERO
    return -abs(gross) if line.kind == "discount" else gross


def _spread_base(lines: Iterable[OrderLine]) -> dict[Decimal | None, Decimal]:
    """Gross of the product lines per VAT rate (first seen first); rates that do not add up to more than 0 left out."""
    base: dict[Decimal | None, Decimal] = {}
    for line in lines:
        if line.kind == "product":
            base[line.vat_rate] = base.get(line.vat_rate, ZERO) + (line_gross(line) or ZERO)
    return {rate: gross for rate, gross in base.items() if gross > 0}


def spread(amount: Decimal, base: dict[Decimal | None, Decimal]) -> list[tuple[Decimal | None, Decimal]]:
    """``amount`` split over the rates of ``base`` in proportion to their gross, each part rounded to the ban and
    the remainder put on the largest part, so the parts add up to ``amount`` exactly: [(rate, part)].

    No base (nothing to spread over): the whole amount at rate None.
    """
    amount = _cents(amount)
    if not base:
        return [(None, amount)]
    total = sum(base.values(), ZERO)
    parts = [(rate, _cents(amount * gross / total)) for rate, gross in base.items()]
    remainder = amount - sum((part for _, part in parts), ZERO)
    if remainder:
        largest = max(range(len(parts)), key=lambda i: abs(parts[i][1]))  # the first of equal parts
        rate, part = parts[largest]
        parts[largest] = (rate, part + remainder)
    return [(rate, part) for rate, part in parts if part]


def _discount_lines(
    name: str, amount: Decimal, base: dict[Decimal | None, Decimal], line_id: str | None
) -> list[OrderLine]:
    parts = spread(amount, base)
    return [
        OrderLine(
            sku="",
            kind="discount",
            name=f"{name} (TVA {percent_key(rate)}%)" if len(parts) > 1 and rate is not None else name,
            quantity=Decimal(1),
            unit_price_gross=-part,
            vat_rate=rate,
            shop_line_id=line_id,
        )
        for rate, part in parts
    ]


def erp_lines(order: Order) -> Order:
    """The order as it is booked: product and fee lines as they are; a discount line with a VAT rate as it is
    (its price made negative); a discount line without one, and ``discount_amount``, spread over the product
    lines' rates (``spread``) as discount lines of quantity 1 and a negative gross price, one per rate, in place
    of the line (the order-level discount last); ``discount_amount`` set to 0. Discounts of 0 are left out.

    A spread line is named after the discount, with `` (TVA 21%)`` when it was split over several rates. A
    discount with no product line to spread over keeps rate None (``order_rules.order_problems`` holds it).
    """
    base = _spread_base(order.lines)
    lines: list[OrderLine] = []
    for line in order.lines:
        if line.kind != "discount":
            lines.append(line)
            continue
        gross = line_gross(line)
        if not gross:
            continue
        if line.vat_rate is not None:
            lines.append(_negative(line))
            continue
        lines += _discount_lines(line.name, abs(gross), base, line.shop_line_id)
    if order.discount_amount:
        lines += _discount_lines(ORDER_DISCOUNT_NAME, abs(order.discount_amount), base, None)
    return order.model_copy(update={"lines": lines, "discount_amount": ZERO})


def _negative(line: OrderLine) -> OrderLine:
    """A discount line with negative unit prices (a shop may give its amount as a positive number)."""
    update = {
        key: -abs(value)
        for key, value in (("unit_price_gross", line.unit_price_gross), ("unit_price_net", line.unit_price_net))
        if value is not None
    }
    return line.model_copy(update=update) if update else line


def describe_line(line: OrderLine) -> str:
    """A line as the failures table shows it: kind, SKU or name, quantity x unit gross, VAT rate."""
    label = line.sku if line.kind == "product" and line.sku else repr(line.name or line.sku or "?")
    unit = unit_gross(line)
    price = "no price" if unit is None else f"{_cents(unit)}"
    rate = "no VAT rate" if line.vat_rate is None else f"TVA {percent_key(line.vat_rate)}%"
    return f"{line.kind} {label} {percent_key(line.quantity)} x {price} {rate}"


def total_problem(order: Order, tolerance: Decimal = TOLERANCE) -> str | None:
    """None when the shop gave no total or the booked total is within ``tolerance`` of it; else the reason the
    order is held: both totals, the difference and the lines (as ``erp_lines`` books them) that make the
    booked total, e.g. ``total mismatch: the ERP order would total 100.00, the shop's total_amount is 90.00
    (difference +10.00); booked lines: product SKU-1 1 x 100.00 TVA 21%; shipping 0.00``."""
    if order.total is None:
        return None
    booked = booked_total(order)
    difference = booked - order.total
    if abs(difference) <= tolerance:
        return None
    booked_lines = erp_lines(order).lines
    parts = [describe_line(line) for line in booked_lines]
    shipping = f"shipping {_cents(order.shipping_amount)}"
    if order.shipping_amount and order.shipping_vat_rate is not None:
        shipping += f" TVA {percent_key(order.shipping_vat_rate)}%"
    parts.append(shipping)
    unpriced = [line for line in booked_lines if unit_gross(line) is None]
    note = f" ({len(unpriced)} line(s) without a price counted as 0)" if unpriced else ""
    return (
        f"{TOTAL_MISMATCH}the ERP order would total {booked}, the shop's total_amount is {_cents(order.total)} "
        f"(difference {difference:+}){note}; booked lines: {'; '.join(parts)}"
    )
