"""Products and stock from Oblio's nomenclature: ``/nomenclature/products`` read in pages of 250 (``offset`` 0,
250, 500...), goods only; stock per management, reserved 0 (Oblio reports no reservations)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from erpsync.connectors.erp.base import NotSupported
from erpsync.connectors.erp.oblio.checks import Checks
from erpsync.connectors.erp.oblio.client import SYSTEM
from erpsync.connectors.erp.oblio.common import PAGE
from erpsync.connectors.erp.oblio.mapping import is_service, parse_product, stock_levels
from erpsync.connectors.errors import FatalError
from erpsync.core.models import Page, Product, StockLevel


class Catalogue(Checks):
    """``iter_products`` and ``iter_stock``."""

    def _product_pages(self) -> Iterator[list[Any]]:
        offset = 0
        while True:
            rows = self._get("nomenclature/products", offset=offset)
            rows = rows if isinstance(rows, list) else []
            yield rows
            if len(rows) < PAGE:
                return
            offset += PAGE

    def iter_products(self, *, changed_since: datetime | None = None) -> Iterator[Page[Product]]:
        """Goods of the nomenclature, 250 a page (1 call each); services are left out."""
        if changed_since is not None:
            raise NotSupported(SYSTEM, "Oblio cannot list products changed since a time; read them whole")
        return self._products()

    def _products(self) -> Iterator[Page[Product]]:
        for rows in self._product_pages():
            page = Page[Product]()
            for row in rows:
                if is_service(row):
                    continue
                parsed = parse_product(row)
                (page.errors if not isinstance(parsed, Product) else page.items).append(parsed)  # type: ignore[arg-type]
            yield page

    def iter_stock(
        self,
        warehouses: Sequence[str],
        *,
        skus: Sequence[str] | None = None,
        changed_since: datetime | None = None,
    ) -> Iterator[Page[StockLevel]]:
        """Stock per SKU and management (``warehouses`` = Oblio management names), one page per 250 products
        (1 call each, +1 once for the managements); reserved is 0 (Oblio does not report reservations)."""
        if changed_since is not None:
            raise NotSupported(SYSTEM, "Oblio cannot list stock changed since a time; read it whole")
        if not warehouses:
            raise ValueError("iter_stock needs at least one warehouse")
        known = self.managements()
        unknown = [w for w in warehouses if w not in known]
        if unknown:
            raise FatalError(SYSTEM, f"not an Oblio management: {_unknown(unknown, known)}")
        return self._stock(list(warehouses), None if skus is None else set(skus))

    def _stock(self, warehouses: list[str], skus: set[str] | None) -> Iterator[Page[StockLevel]]:
        for rows in self._product_pages():
            items, errors = stock_levels(rows, warehouses, skus)
            yield Page[StockLevel](items=items, errors=errors)


def _unknown(unknown: list[str], known: list[str]) -> str:
    """``'depozit' (did you mean 'Depozit'? names are case-sensitive) (known: Depozit, Magazin)``."""
    named = []
    for name in unknown:
        near = [k for k in known if k.casefold() == name.casefold()]
        hint = f" (did you mean {near[0]!r}? names are case-sensitive)" if near else ""
        named.append(f"{name!r}{hint}")
    return f"{', '.join(named)} (known: {', '.join(known)})"
