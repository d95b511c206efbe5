"""Which invoice an order produced: SmartBill invoice ids and the registry that makes ``create_order`` idempotent.

SmartBill cannot say which invoice an order produced (no search by reference), so an ``IssuedRegistry``
remembers it: the state store's links in production (``StateIssuedRegistry``), memory in tests and demos.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

INVOICE_ENTITY = "smartbill_invoice"


# --------------------------------------------------------------------------- ids


@dataclass(frozen=True)
class InvoiceId:
    """A SmartBill invoice: series and number (kept as SmartBill wrote it, e.g. ``"0042"``)."""

    series: str
    number: str

    def __str__(self) -> str:
        return f"{self.series}-{self.number}"

    @classmethod
    def parse(cls, erp_id: str) -> InvoiceId:
        """``"WEB-0042"`` -> series ``WEB``, number ``0042`` (the number is the digits after the last dash)."""
        series, dash, number = erp_id.rpartition("-")
        if not dash or not series or not number.isdigit():
            raise ValueError(f"not a SmartBill invoice id (SERIES-NUMBER): {erp_id!r}")
        return cls(series, number)


# --------------------------------------------------------------------------- which invoice an order produced


class IssuedRegistry(Protocol):
    """Remembers the invoice issued for each shop order reference (SmartBill cannot be asked)."""

    def get(self, reference: str) -> str | None: ...

    def put(self, reference: str, erp_id: str) -> None: ...


class MemoryIssuedRegistry:
    """An in-process registry (tests, demos): forgotten when the process ends."""

    def __init__(self, issued: Mapping[str, str] | None = None) -> None:
        self._issued: dict[str, str] = dict(issued or {})
        self._lock = threading.Lock()

    def get(self, reference: str) -> str | None:
        """The invoice id issued for ``reference``, if any."""
        with self._lock:
            return self._issued.get(reference)

    def put(self, reference: str, erp_id: str) -> None:
        """Remember the invoice id of ``reference`` (refuses a second, different one)."""
        with self._lock:
            known = self._issued.setdefault(reference, erp_id)
        if known != erp_id:
            raise ValueError(f"order {reference!r} is already invoiced as {known!r}, not {erp_id!r}")

    def __len__(self) -> int:
        with self._lock:
            return len(self._issued)


class _HasErpId(Protocol):
    @property
    def erp_id(self) -> str: ...


class LinkStore(Protocol):
    """The part of ``core.state.StateStore`` the registry needs."""

    def link(
        self,
        store: str,
        entity: str,
        *,
        shop_id: str,
        erp_id: str,
        sku: str | None = ...,
        extra: dict[str, Any] | None = ...,
    ) -> object: ...

    def find_link(
        self,
        store: str,
        entity: str,
        *,
        shop_id: str | None = ...,
        erp_id: str | None = ...,
        sku: str | None = ...,
    ) -> _HasErpId | None: ...


class StateIssuedRegistry:
    """The registry kept as state-store links: entity ``smartbill_invoice``, shop_id = order reference,
    erp_id = ``"SERIES-NUMBER"`` (both unique per store, enforced by the database)."""

    def __init__(self, state: LinkStore, store: str, *, entity: str = INVOICE_ENTITY) -> None:
        self.state = state
        self.store = store
        self.entity = entity

    def get(self, reference: str) -> str | None:
        """The invoice id linked to ``reference``, if any."""
        link = self.state.find_link(self.store, self.entity, shop_id=reference)
        return None if link is None else link.erp_id

    def put(self, reference: str, erp_id: str) -> None:
        """Link ``reference`` to its invoice (idempotent; a different partner raises ``LinkConflict``)."""
        self.state.link(self.store, self.entity, shop_id=reference, erp_id=erp_id)
