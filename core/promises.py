"""Goods on the way -> what the shop promises: pure planning of the purchases stream.

A SKU that cannot be sold now (available ≤ 0) and has goods on the way expected within the store's lead time
is *promised*: orderable (backorders allowed) with a text naming the earliest expected date. A promise is
withdrawn when the SKU has stock again or nothing is on the way any more.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from erpsync.core.models import IncomingGoods


@dataclass(frozen=True)
class OnTheWay:
    """Everything on the way for one SKU: total quantity, earliest date, suppliers and purchases named."""

    sku: str
    quantity: Decimal
    expected: date | None
    suppliers: tuple[str, ...] = ()
    purchases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Promise:
    sku: str
    expected: date
    text: str

    def digest(self) -> str:
        return hashlib.sha256(f"{self.expected.isoformat()}|{self.text}".encode()).hexdigest()[:32]


@dataclass
class PromisePlan:
    """The promises wanted now, and why the others on the way are not promised (SKU -> reason)."""

    promises: dict[str, Promise] = field(default_factory=dict)
    not_promised: dict[str, str] = field(default_factory=dict)


def on_the_way(incoming: Iterable[IncomingGoods]) -> dict[str, OnTheWay]:
    """Incoming purchase lines grouped per SKU."""
    grouped: dict[str, list[IncomingGoods]] = {}
    for line in incoming:
        grouped.setdefault(line.sku, []).append(line)
    out = {}
    for sku, lines in grouped.items():
        dates = [line.expected for line in lines if line.expected is not None]
        out[sku] = OnTheWay(
            sku,
            sum((line.quantity for line in lines), Decimal(0)),
            min(dates) if dates else None,
            tuple(sorted({line.supplier for line in lines if line.supplier})),
            tuple(sorted({line.purchase for line in lines if line.purchase})),
        )
    return out


def plan_promises(
    goods: Mapping[str, OnTheWay], available: Mapping[str, Decimal], *, today: date, max_lead_days: int, template: str
) -> PromisePlan:
    """Promise the SKUs out of stock whose goods are expected within ``max_lead_days`` (an overdue date shows
    as today: the goods are late but still coming)."""
    plan = PromisePlan()
    horizon = today + timedelta(days=max_lead_days)
    for sku, way in sorted(goods.items()):
        stock = available.get(sku, Decimal(0))  # no stock row in the store's warehouses: none there
        if way.quantity <= 0:
            plan.not_promised[sku] = "nothing left to receive"
        elif stock > 0:
            plan.not_promised[sku] = f"in stock ({stock.normalize():f} available)"
        elif way.expected is None:
            plan.not_promised[sku] = "no expected date on the purchase"
        elif way.expected > horizon:
            plan.not_promised[sku] = f"expected {way.expected.isoformat()}, beyond {max_lead_days} day(s)"
        else:
            shown = max(way.expected, today)
            plan.promises[sku] = Promise(sku, shown, template.replace("{date}", shown.strftime("%d.%m.%Y")))
    return plan
