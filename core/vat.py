"""VAT rates and the shop's tax ids: which rates Romanian law had on a day, and a store's tax table (VAT percent
<-> shop ``tax_id``, both ways). Pure: the tasks read the shop's table (``GET /taxonomy/taxes``) and feed it here.

Romania's rates changed on 1 August 2025: 21 % standard and 11 % reduced since, 19 %, 9 % and 5 % for documents
dated before (0 % throughout). A store maps rates to tax ids through ``[stores.products] vat_taxes`` when it is
configured, else through the shop's own tax table, read once per product run (``docs/products.md``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from erpsync.core.config import percent_key

VAT_CHANGE = date(2025, 8, 1)  # Legea 141/2025: 21 % and 11 % from this day on
RATES_SINCE_2025_08 = frozenset({"21", "11", "0"})
RATES_BEFORE_2025_08 = frozenset({"19", "9", "5", "0"})
ROMANIAN_RATES = RATES_SINCE_2025_08 | RATES_BEFORE_2025_08


def legal_rates(day: date | datetime | None) -> frozenset[str]:
    """The Romanian VAT rates (``percent_key`` spelling) of a document dated ``day``; none for no date.

    A datetime counts by its own calendar date (a shop timestamp carries the shop's offset, so this is the
    shop's local date).
    """
    if day is None:
        return frozenset()
    if isinstance(day, datetime):
        day = day.date()
    return RATES_SINCE_2025_08 if day >= VAT_CHANGE else RATES_BEFORE_2025_08


def legal_note(day: date | datetime | None) -> str:
    """The Romanian rates of ``day`` as a clause for a problem message (``""`` without a date)."""
    rates = legal_rates(day)
    if not rates:
        return ""
    shown = day.date() if isinstance(day, datetime) else day
    return f"; the legal rates on {shown}: {', '.join(sorted(rates, key=Decimal))}"


def accepted_rate(rate: Decimal, day: date | datetime | None, mapped: Collection[str]) -> bool:
    """Whether an order line's VAT ``rate`` is acceptable on a document of ``day``.

    The rule: a rate the store maps (``mapped``: the keys of ``vat_taxes``, or the rates of the shop's tax table)
    is accepted whatever the date; otherwise it must be a Romanian rate of that day (19/9/5 before 2025-08-01,
    21/11 from then on, 0 always). An order without a date gets only the mapped rates.
    """
    key = percent_key(rate)
    return key in mapped or key in legal_rates(day)


@dataclass(frozen=True)
class TaxTable:
    """A store's VAT rates and shop tax ids, both ways; ``source`` names where they come from (for messages)."""

    by_rate: dict[str, int] = field(default_factory=dict)  # percent key -> tax id
    by_id: dict[int, Decimal] = field(default_factory=dict)  # tax id -> VAT percent
    source: str = "vat_taxes of the store"

    @classmethod
    def from_config(cls, vat_taxes: Mapping[str, int]) -> TaxTable:
        """The configured ``vat_taxes``; a tax id given to several rates reads back as none of them."""
        ids: dict[int, list[str]] = {}
        for key, tax_id in vat_taxes.items():
            ids.setdefault(tax_id, []).append(key)
        by_id = {tax_id: Decimal(keys[0]) for tax_id, keys in ids.items() if len(keys) == 1}
        return cls(dict(vat_taxes), by_id, "vat_taxes of the store")

    @classmethod
    def from_shop(cls, taxes: Iterable[tuple[int, Decimal]]) -> TaxTable:
        """The shop's tax table as ``(id, value)`` pairs; a rate listed twice maps to its first id."""
        by_rate: dict[str, int] = {}
        by_id: dict[int, Decimal] = {}
        for tax_id, value in taxes:
            by_id[tax_id] = value
            by_rate.setdefault(percent_key(value), tax_id)
        return cls(by_rate, by_id, "the shop's tax table")

    def tax_id(self, rate: Decimal | None) -> int | None:
        """The shop tax id of a VAT percentage, or None."""
        return None if rate is None else self.by_rate.get(percent_key(rate))

    def rate(self, tax_id: int | None) -> Decimal | None:
        """The VAT percentage of a shop tax id, or None."""
        return None if tax_id is None else self.by_id.get(tax_id)
