"""``erpsync check``'s Tryton probes: is everything there that the flows of the configured stores will need?

One probe (one line) per kind of record, over all stores: the shipping product, the discount and fee products,
the currencies the shops sell in, the countries, the warehouses, the price lists, the payment terms the payment
methods map to, the VAT rates the stores map to shop tax ids. A missing record is a failed probe that says
where to create it, never an exception; a Tryton that does not answer fails the ERP line above them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from erpsync.connectors.erp.base import Needs, Probe
from erpsync.connectors.erp.tryton.session import CREATE_HINTS, TrytonSession
from erpsync.connectors.errors import ConnectorError
from erpsync.core.redact import redact

ACTIVE_OR_NOT = {"active_test": False}
# The orders a missing service product fails, per the option that names it.
_NEEDED_BY = {"shipping_sku": "shipping", "discount_sku": "a discount line", "fee_sku": "a fee line"}


def _union(needs: Sequence[Needs], pick: Callable[[Needs], Sequence[str]]) -> dict[str, list[str]]:
    """Value -> the stores that need it, in first-seen order."""
    found: dict[str, list[str]] = {}
    for need in needs:
        for value in pick(need):
            if value:
                found.setdefault(value, []).append(need.store)
    return found


def _who(stores: list[str]) -> str:
    return f"store{'s' if len(stores) > 1 else ''} {', '.join(stores)}"


def _quoted(values: Sequence[str]) -> str:
    return ", ".join(repr(v) for v in values)


class TrytonPreflight:
    """The probes of one Tryton database (through the connector's session)."""

    def __init__(self, tryton: TrytonSession) -> None:
        self.tryton = tryton

    def probes(self, needs: Sequence[Needs]) -> list[Probe]:
        if not needs:
            return []
        steps: list[tuple[str, Callable[[Sequence[Needs]], str | None]]] = [
            ("erp shipping product", self.shipping),
            ("erp discount and fee products", self.charges),
            ("erp currency", self.currency),
            ("erp countries", self.countries),
            ("erp warehouses", self.warehouses),
            ("erp price lists", self.price_lists),
            ("erp payment terms", self.payment_terms),
            ("erp VAT rates", self.vat_rates),
        ]
        probes = []
        for target, step in steps:
            try:
                detail = step(needs)
            except _Missing as missing:
                probes.append(Probe(target, False, str(missing)))
            except ConnectorError as error:
                probes.append(Probe(target, False, redact(f"{type(error).__name__}: {error}")))
            else:
                if detail is not None:
                    probes.append(Probe(target, True, detail))
        return probes

    # -- one probe each -------------------------------------------------------------------------------------

    def shipping(self, needs: Sequence[Needs]) -> str:
        wanted = _union(needs, lambda n: [n.shipping_sku])
        usable = self._salable(wanted, lambda sku: "shipping_sku", ["code", "salable", "active", "type"])
        return ", ".join(f"{sku!r} salable {row.get('type') or 'product'}" for sku, row in usable.items())

    def charges(self, needs: Sequence[Needs]) -> str:
        """The service products discount and fee lines go on (``discount_sku``, ``fee_sku``)."""
        options: dict[str, str] = {}
        for need in needs:
            for option, sku in (("discount_sku", need.discount_sku), ("fee_sku", need.fee_sku)):
                if sku:
                    options.setdefault(sku, option)
        wanted = _union(needs, lambda n: [n.discount_sku, n.fee_sku])
        usable = self._salable(wanted, options.__getitem__, ["code", "salable", "active"])
        return ", ".join(f"{sku!r} salable" for sku in usable)

    def _salable(
        self, wanted: dict[str, list[str]], option_of: Callable[[str], str], fields: list[str]
    ) -> dict[str, dict[str, Any]]:
        """The first active, salable product row per wanted SKU, in order; ``_Missing`` if any SKU has none.

        ``option_of`` names the ``[stores.orders]`` option a SKU comes from (for the fix the problem suggests).
        """
        rows = self.tryton.search_read("product.product", [("code", "in", list(wanted))], fields, context=ACTIVE_OR_NOT)
        by_code: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            by_code.setdefault(str(row.get("code")), []).append(row)
        problems, usable = [], {}
        for sku, stores in wanted.items():
            option = option_of(sku)
            found = by_code.get(sku, [])
            where = f"({option} of {_who(stores)})"
            good = [r for r in found if r.get("active") and r.get("salable")]
            if good:
                usable[sku] = good[0]
            elif not found:
                problems.append(
                    f"{sku!r} {where} is not in Tryton: create it as a salable service product (Product > "
                    f"Products, code {sku!r}) or set [stores.orders] {option}; every order with "
                    f"{_NEEDED_BY[option]} fails the run without it"
                )
            elif not any(r.get("active") for r in found):
                problems.append(f"{sku!r} {where} is inactive in Tryton: activate it")
            else:
                problems.append(f"{sku!r} {where} is not salable in Tryton: tick Salable on its product")
        if problems:
            raise _Missing("; ".join(problems))
        return usable

    def currency(self, needs: Sequence[Needs]) -> str:
        wanted = _union(needs, lambda n: n.currencies or ("RON",))
        company = self._company_currency()
        rows = self.tryton.search_read(
            "currency.currency", [("code", "in", list(wanted))], ["code", "rate"], context=ACTIVE_OR_NOT
        )
        by_code = {str(r.get("code")): r for r in rows}
        problems, good = [], []
        for code, stores in wanted.items():
            row = by_code.get(code)
            what = f"{code!r} (what {_who(stores)} sell{'' if len(stores) > 1 else 's'} in)"
            if row is None:
                problems.append(
                    f"{what} is not in Tryton: {CREATE_HINTS['currency.currency']} (company currency: "
                    f"{company or '?'}); every order in {code} fails until then"
                )
            elif code == company:
                good.append(f"{code}, the company's currency")
            elif not Decimal(str(row.get("rate") or 0)):
                problems.append(
                    f"{what} is not the company's currency ({company or '?'}) and has no rate in Tryton: add "
                    f"one under Currency > Currencies > {code} > Rates, or Tryton cannot book its sales"
                )
            else:
                good.append(f"{code} (rate {row.get('rate')} against the company's {company or '?'})")
        if problems:
            raise _Missing("; ".join(problems))
        return "; ".join(good)

    def _company_currency(self) -> str | None:
        company = self.tryton.rpc.context.get("company")
        if not company:
            return None
        rows = self.tryton.search_read("company.company", [("id", "=", company)], ["currency.code"])
        currency = rows[0].get("currency.") if rows else None
        return str(currency.get("code")) if isinstance(currency, dict) else None

    def countries(self, needs: Sequence[Needs]) -> str:
        wanted = _union(needs, lambda n: ("RO", *n.countries))
        rows = self.tryton.search_read(
            "country.country", [("code", "in", list(wanted))], ["code"], context=ACTIVE_OR_NOT
        )
        have = {str(r.get("code")) for r in rows}
        missing = [c for c in wanted if c not in have]
        if missing:
            raise _Missing(
                f"{_quoted(missing)} not in Tryton: {CREATE_HINTS['country.country']}; an order billed or "
                f"shipped there fails (alone) until then"
            )
        return f"{', '.join(wanted)} present"

    def warehouses(self, needs: Sequence[Needs]) -> str:
        wanted = _union(needs, lambda n: n.warehouses)
        rows = self.tryton.search_read(
            "stock.location", [("code", "in", list(wanted)), ("type", "=", "warehouse")], ["code"]
        )
        have = {str(r.get("code")) for r in rows}
        missing = {c: s for c, s in wanted.items() if c not in have}
        if missing:
            raise _Missing(
                "; ".join(
                    f"warehouse code {code!r} ({_who(stores)}) is not in Tryton: give the warehouse that code "
                    f"(Inventory > Locations, type Warehouse) or fix [[stores]] warehouses"
                    for code, stores in missing.items()
                )
            )
        return f"{', '.join(wanted)} present"

    def price_lists(self, needs: Sequence[Needs]) -> str | None:
        wanted = _union(needs, lambda n: [n.price_list])
        if not wanted:
            return None
        rows = self.tryton.search_read("product.price_list", [("name", "in", list(wanted))], ["name"])
        counts: dict[str, int] = {}
        for row in rows:
            counts[str(row.get("name"))] = counts.get(str(row.get("name")), 0) + 1
        problems = []
        for name, stores in wanted.items():
            if counts.get(name, 0) == 0:
                problems.append(
                    f"{name!r} ({_who(stores)}) is not in Tryton: create it under Product > Price Lists "
                    f"(module sale_price_list) or fix [[stores]] price_list"
                )
            elif counts[name] > 1:
                problems.append(f"{name!r} ({_who(stores)}) names {counts[name]} active price lists: rename one")
        if problems:
            raise _Missing("; ".join(problems))
        return f"{_quoted(list(wanted))} present"

    def vat_rates(self, needs: Sequence[Needs]) -> str | None:
        """Every VAT rate a store maps to a shop tax id ([stores.products] vat_taxes) has a Tryton customer tax
        (an account category whose customer taxes make it): products and order lines of that rate need one.
        A store that reads its rates from the shop's tax table has nothing to probe here (each order line's
        rate is checked when it is booked)."""
        wanted = _union(needs, lambda n: n.vat_rates)
        if not wanted:
            return None
        known = {c.vat_rate for c in self.tryton.account_categories().values() if c.vat_rate is not None}
        missing = [rate for rate in wanted if Decimal(rate).normalize() not in {k.normalize() for k in known}]
        if missing:
            raise _Missing(
                "; ".join(f"{rate}% ({_who(wanted[rate])})" for rate in missing)
                + " has no customer tax in Tryton: create the tax and an account category using it under "
                "Financial > Configuration, or drop the rate from [stores.products] vat_taxes "
                f"(Tryton has: {', '.join(sorted(str(k) for k in known)) or 'none'})"
            )
        return f"{', '.join(f'{rate}%' for rate in wanted)} each have a customer tax"

    def payment_terms(self, needs: Sequence[Needs]) -> str | None:
        wanted = _union(needs, lambda n: n.payment_terms)
        if not wanted:
            return None
        rows = self.tryton.search_read("account.invoice.payment_term", [("name", "in", list(wanted))], ["name"])
        have = {str(r.get("name")) for r in rows}
        missing = [t for t in wanted if t not in have]
        if missing:
            raise _Missing(
                f"{_quoted(missing)} ([stores.orders] payment_methods targets) not in Tryton: "
                f"{CREATE_HINTS['account.invoice.payment_term']}, or map the shop's methods to existing terms"
            )
        return f"{_quoted(list(wanted))} present"


class _Missing(Exception):
    """A probe found something missing: its text is the probe's detail (what, for whom, the fix)."""
