"""What the connector's parts share: one JSON-RPC session, paged reads, and the records read once per connector.

Those records are Tryton's configuration, not data: the account categories with their customer taxes (the VAT
rates), the warehouses' storage zones, the unit, the store's price list, the ids of countries and currencies.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any

from erpsync.connectors.erp.base import missing_in_erp
from erpsync.connectors.erp.tryton import mapping as tm
from erpsync.connectors.erp.tryton.rpc import SYSTEM, TrytonRpc, to_utc
from erpsync.connectors.errors import FatalError, record_error

STORABLE_TYPES = ["goods", "assets"]

# Where a person creates a missing configuration record in Tryton (the reason of the order that needed it).
CREATE_HINTS = {
    "country.country": "create it under Party > Configuration > Countries (or load the country module's data)",
    "currency.currency": "create it under Currency > Currencies, with a rate for today if it is not the "
    "company's currency",
    "product.uom": "create it under Product > Configuration > Units of Measure",
    "account.invoice.payment_term": "create it under Financial > Configuration > Payment Terms",
}
CREATE_HINT = "create it in Tryton"

ACTIVE_MODULE_STATES = ["activated", "to upgrade", "to remove"]  # an upgrade or removal not yet run: still active


class TrytonSession:
    """One Tryton database through ``rpc``: reads, writes, keyset pages of ``page_size`` rows, cached lookups.

    ``price_list`` is the name of the store's price list ("" for none), looked up at its first use.
    """

    def __init__(self, rpc: TrytonRpc, *, page_size: int, price_list: str = "") -> None:
        self.rpc = rpc
        self.page_size = page_size
        self.price_list_name = price_list
        self._warehouses: dict[str, tm.Warehouse] = {}
        self._categories: dict[int, tm.Category] | None = None
        self._unit: int | None = None
        self._ids: dict[tuple[str, str], int] = {}
        self._price_list: tm.PriceList | None = None
        self._modules: dict[str, bool] = {}

    # -- calls ------------------------------------------------------------------------------------------

    def read(self, model: str, method: str, *params: Any, context: dict[str, Any] | None = None) -> Any:
        return self.rpc.model(model, method, *params, kind="read", context=context)

    def write(self, model: str, method: str, *params: Any, key: str) -> Any:
        return self.rpc.model(model, method, *params, kind="write", record_key=key)

    def wizard(self, name: str, model: str, record_id: int, state: str, data: dict[str, Any], *, key: str) -> None:
        """Run the wizard ``name`` on one record straight to its ``state`` with the form ``data``: three calls
        (``create``, ``execute``, ``delete``), as the client does when a person presses the wizard's button."""
        if not self.rpc.context:
            self.rpc.login()
        ctx = {**self.rpc.context, "active_model": model, "active_id": record_id, "active_ids": [record_id]}
        session_id = self.rpc.call(f"wizard.{name}.create", ctx, kind="write", record_key=key)[0]
        try:
            self.rpc.call(f"wizard.{name}.execute", session_id, data, state, ctx, kind="write", record_key=key)
        finally:
            self.rpc.call(f"wizard.{name}.delete", session_id, ctx, kind="write", record_key=key)

    def search_read(
        self,
        model: str,
        domain: list[Any],
        fields: list[str],
        *,
        limit: int | None = None,
        order: list[tuple[str, str]] | None = None,
        context: dict[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        rows = self.read(model, "search_read", domain, 0, limit, order, fields, context=context)
        return list(rows or [])

    def keyset_pages(
        self,
        model: str,
        domain: list[Any],
        fields: list[str],
        *,
        context: dict[str, Any] | None = None,
    ) -> Iterator[list[dict[str, Any]]]:
        """Pages of ``page_size`` rows ordered by id; each page asks for ids above the last one seen."""
        last = 0
        while True:
            rows = self.search_read(
                model,
                [*domain, ("id", ">", last)],
                fields,
                limit=self.page_size,
                order=[("id", "ASC")],
                context=context,
            )
            if rows:
                yield rows
            if len(rows) < self.page_size:
                return
            last = rows[-1]["id"]

    # -- configuration, read once ---------------------------------------------------------------------

    def id_of(self, model: str, code: str, domain: list[Any], what: str, *, key: str | None = None) -> int:
        """The id of a configuration record (unit, currency, country ...), cached (a missing one is asked for
        again next time: a person may create it meanwhile).

        Missing: with ``key`` (the record being written, e.g. an order's reference) only that record cannot be
        written — ``MissingInErp``, a ``RecordError`` saying where to create it; without one, ``FatalError``.
        """
        cache_key = (model, code)
        if cache_key not in self._ids:
            ids = self.read(model, "search", domain, 0, 1, None)
            if not ids:
                if key is not None:
                    raise missing_in_erp(SYSTEM, key, what, code, CREATE_HINTS.get(model, CREATE_HINT))
                raise FatalError(SYSTEM, f"{what} {code!r} not found in Tryton")
            self._ids[cache_key] = int(ids[0])
        return self._ids[cache_key]

    def has_module(self, module: str) -> bool:
        """Whether the module (``purchase``, ...) is activated in the database, asked once (``ir.module`` is
        readable by every user). The supplier lists need ``trytond-purchase``, which a Tryton that only sells
        may not have."""
        if module not in self._modules:
            domain = [("name", "=", module), ("state", "in", ACTIVE_MODULE_STATES)]
            self._modules[module] = bool(self.search_read("ir.module", domain, ["id"], limit=1))
        return self._modules[module]

    def account_categories(self) -> dict[int, tm.Category]:
        """Account categories -> their customer taxes and VAT rate (sum of percentage taxes), read once."""
        if self._categories is None:
            rows = self.search_read("product.category", [("accounting", "=", True)], ["customer_taxes_used"])
            tax_ids = sorted({t for row in rows for t in row.get("customer_taxes_used") or []})
            taxes = (
                {
                    row["id"]: row
                    for row in self.search_read(
                        "account.tax",
                        [("id", "in", tax_ids)],
                        ["rate", "type"],
                        context={"active_test": False},
                    )
                }
                if tax_ids
                else {}
            )
            categories: dict[int, tm.Category] = {}
            for row in rows:
                ids = tuple(row.get("customer_taxes_used") or [])
                used = [taxes[t] for t in ids if t in taxes]
                rate: Decimal | None = None
                if used and all(t.get("type") == "percentage" for t in used):
                    rate = (sum((Decimal(str(t.get("rate") or 0)) for t in used), Decimal(0)) * 100).normalize()
                    rate = rate.quantize(Decimal(1)) if rate == rate.to_integral_value() else rate
                categories[row["id"]] = tm.Category(rate, ids)
            self._categories = categories
        return self._categories

    def category_for_rate(self, rate: Decimal | None, key: str) -> int:
        """The account category whose customer taxes make ``rate``; a RecordError for ``key`` when none does."""
        if rate is None:
            raise record_error(SYSTEM, key, "no VAT rate: Tryton needs one to pick the account category")
        matches = sorted(
            cid for cid, cat in self.account_categories().items() if cat.vat_rate is not None and cat.vat_rate == rate
        )
        if not matches:
            known = sorted({str(c.vat_rate) for c in self.account_categories().values() if c.vat_rate is not None})
            raise record_error(
                SYSTEM,
                key,
                f"no account category with a {rate}% customer tax in Tryton (known: {', '.join(known) or 'none'})",
            )
        return matches[0]

    def tax_rates(self) -> dict[int, Decimal]:
        """Customer tax id -> VAT percentage (from the account categories' taxes)."""
        rates: dict[int, Decimal] = {}
        for category in self.account_categories().values():
            if len(category.taxes) == 1 and category.vat_rate is not None:
                rates[category.taxes[0]] = category.vat_rate
        return rates

    def price_list(self) -> tm.PriceList | None:
        """The configured price list, looked up by name once (None without one); FatalError when it is not there."""
        if not self.price_list_name:
            return None
        if self._price_list is None:
            rows = self.search_read(
                "product.price_list",
                [("name", "=", self.price_list_name)],
                ["name", "tax_included", "last_modified_at", "lines.last_modified_at"],
            )
            if len(rows) != 1:
                known = sorted({str(r.get("name")) for r in self.search_read("product.price_list", [], ["name"])})
                problem = "not found" if not rows else f"is the name of {len(rows)} active price lists"
                raise FatalError(
                    SYSTEM,
                    f"price list {self.price_list_name!r} {problem} in Tryton (the store's "
                    f"price_list; known: {', '.join(map(repr, known)) or 'none'})",
                )
            row = rows[0]
            stamps = [to_utc(r.get("last_modified_at")) for r in [row, *(row.get("lines.") or [])]]
            self._price_list = tm.PriceList(
                id=int(row["id"]),
                name=str(row.get("name")),
                tax_included=bool(row.get("tax_included")),
                changed_at=max((t for t in stamps if t is not None), default=None),
            )
        return self._price_list

    def unit_id(self) -> int:
        """The id of the unit of measure 'u' (Unit)."""
        if self._unit is None:
            rows = self.search_read("product.uom", [("symbol", "=", "u")], ["id"], limit=1)
            if not rows:
                raise FatalError(SYSTEM, "the unit of measure 'u' (Unit) is missing in Tryton")
            self._unit = int(rows[0]["id"])
        return self._unit

    def warehouses_of(self, codes: Sequence[str]) -> list[tm.Warehouse]:
        """Warehouse codes -> their storage zones (looked up once); an unknown code is a FatalError naming it."""
        missing = [c for c in dict.fromkeys(codes) if c not in self._warehouses]
        if missing:
            rows = self.search_read(
                "stock.location",
                [("code", "in", missing), ("type", "=", "warehouse")],
                ["code", "storage_location", "input_location"],
            )
            found = {row["code"]: row for row in rows}
            unknown = [c for c in missing if c not in found]
            if unknown:
                raise FatalError(
                    SYSTEM,
                    f"unknown warehouse code(s) {', '.join(map(repr, unknown))} in Tryton "
                    f"(a warehouse's code, e.g. 'WH')",
                )
            storages = [int(row["storage_location"]) for row in rows]
            tree_rows = self.search_read(
                "stock.location", [("parent", "child_of", storages)], ["parent"], context={"active_test": False}
            )
            parents = {row["id"]: row.get("parent") for row in tree_rows}
            for row in rows:
                storage = int(row["storage_location"])
                tree = frozenset(loc for loc in parents if tm.is_under(loc, storage, parents))
                self._warehouses[row["code"]] = tm.Warehouse(
                    row["code"], int(row["id"]), storage, row.get("input_location"), tree | {storage}
                )
        return [self._warehouses[c] for c in codes]
