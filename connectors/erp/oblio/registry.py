"""Which Oblio document each shop order produced, and the stornos/returns made of it.

Oblio cannot be asked "which invoice carries idempotency key X" (``/docs/invoice/list`` has no such filter), so
the connector remembers: in memory (tests), or as state-store links of one store in production. Losing the
registry does not double-invoice: a re-sent document carries the same ``idempotencyKey`` and Oblio answers with
the document it issued the first time (``docs/oblio.md``).
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Mapping
from typing import Any, Protocol

INVOICE_ENTITY = "oblio_invoice"
CREDIT_ENTITY = "oblio_credit"


class OblioRegistry(Protocol):
    def get(self, reference: str) -> str | None: ...

    def put(self, reference: str, erp_id: str, details: Mapping[str, Any] | None = None) -> None: ...

    def details(self, erp_id: str) -> dict[str, Any] | None: ...

    def credit(self, reference: str) -> dict[str, Any] | None: ...

    def put_credit(self, reference: str, credit: Mapping[str, Any]) -> None: ...


def with_credit(details: Mapping[str, Any] | None, credit: Mapping[str, Any]) -> dict[str, Any]:
    """A document's details with ``credit`` added once (by its ``erp_id``)."""
    merged = copy.deepcopy(dict(details or {}))
    credits = [c for c in merged.get("credits", []) if c.get("erp_id") != credit.get("erp_id")]
    merged["credits"] = [*credits, dict(credit)]
    return merged


class MemoryOblioRegistry:
    """In-process (tests, demos): forgotten when the process ends."""

    def __init__(self) -> None:
        self._issued: dict[str, str] = {}
        self._details: dict[str, dict[str, Any]] = {}
        self._credits: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def get(self, reference: str) -> str | None:
        with self._lock:
            return self._issued.get(reference)

    def put(self, reference: str, erp_id: str, details: Mapping[str, Any] | None = None) -> None:
        with self._lock:
            known = self._issued.setdefault(reference, erp_id)
            if known == erp_id and details is not None:
                self._details[erp_id] = copy.deepcopy(dict(details))
        if known != erp_id:
            raise ValueError(f"order {reference!r} is already issued as {known!r}, not {erp_id!r}")

    def details(self, erp_id: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._details.get(erp_id)
            return None if found is None else copy.deepcopy(found)

    def credit(self, reference: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._credits.get(reference)
            return None if found is None else copy.deepcopy(found)

    def put_credit(self, reference: str, credit: Mapping[str, Any]) -> None:
        with self._lock:
            self._credits[reference] = copy.deepcopy(dict(credit))
            of = str(credit["of"])
            self._details[of] = with_credit(self._details.get(of), credit)


class _Link(Protocol):
    @property
    def shop_id(self) -> str: ...

    @property
    def erp_id(self) -> str: ...

    @property
    def extra(self) -> dict[str, Any] | None: ...


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
    ) -> _Link | None: ...


class StateOblioRegistry:
    """State-store links of one store: ``oblio_invoice`` (shop_id = order reference, erp_id = the document id,
    extra = its details) and ``oblio_credit`` (shop_id = the storno's/return's reference, erp_id = its id,
    sku = the invoice it credits, extra = the credit)."""

    def __init__(self, state: LinkStore, store: str) -> None:
        self.state = state
        self.store = store

    def get(self, reference: str) -> str | None:
        link = self.state.find_link(self.store, INVOICE_ENTITY, shop_id=reference)
        return None if link is None else link.erp_id

    def put(self, reference: str, erp_id: str, details: Mapping[str, Any] | None = None) -> None:
        extra = None if details is None else dict(details)
        self.state.link(self.store, INVOICE_ENTITY, shop_id=reference, erp_id=erp_id, extra=extra)

    def details(self, erp_id: str) -> dict[str, Any] | None:
        link = self.state.find_link(self.store, INVOICE_ENTITY, erp_id=erp_id)
        extra = None if link is None else getattr(link, "extra", None)
        return dict(extra) if extra else None

    def credit(self, reference: str) -> dict[str, Any] | None:
        link = self.state.find_link(self.store, CREDIT_ENTITY, shop_id=reference)
        if link is None:
            return None
        extra = getattr(link, "extra", None)
        return dict(extra) if extra else {"erp_id": link.erp_id, "reference": reference}

    def put_credit(self, reference: str, credit: Mapping[str, Any]) -> None:
        of = str(credit["of"])
        self.state.link(
            self.store, CREDIT_ENTITY, shop_id=reference, erp_id=str(credit["erp_id"]), sku=of, extra=dict(credit)
        )
        link = self.state.find_link(self.store, INVOICE_ENTITY, erp_id=of)
        if link is not None:
            merged = with_credit(getattr(link, "extra", None), credit)
            self.state.link(self.store, INVOICE_ENTITY, shop_id=link.shop_id, erp_id=of, extra=merged)
