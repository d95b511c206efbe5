"""Which invoice an order produced: SmartBill invoice ids and the registry that makes ``create_order`` idempotent.

SmartBill cannot say which invoice an order produced (no search by reference), so an ``IssuedRegistry``
remembers it: the state store's links in production (``StateIssuedRegistry``), memory in tests and demos.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

INVOICE_ENTITY = "smartbill_invoice"
CREDIT_ENTITY = "smartbill_credit"  # a storno or a return invoice, keyed by its own reference
SENT_ENTITY = "smartbill_credit_sent"  # write-ahead: a storno/return request for this reference was sent


# --------------------------------------------------------------------------- ids


@dataclass(frozen=True)
class InvoiceId:
    """A SmartBill invoice: series and number (kept as SmartBill wrote it, e.g. ``"0042"``)."""

    series: str
    number: str

    def __str__(self) -> str:
        return f"{self.series}-{self.number}"

    @property
    def printed(self) -> str:
        """The number as a person reads it on the document: ``"WEB 0042"``."""
        return f"{self.series} {self.number}"

    @classmethod
    def parse(cls, erp_id: str) -> InvoiceId:
        """``"WEB-0042"`` -> series ``WEB``, number ``0042`` (the number is the digits after the last dash)."""
        series, dash, number = erp_id.rpartition("-")
        if not dash or not series or not number.isdigit():
            raise ValueError(f"not a SmartBill invoice id (SERIES-NUMBER): {erp_id!r}")
        return cls(series, number)


# --------------------------------------------------------------------------- which invoice an order produced
#
# Details kept beside a link (JSON, the link's ``extra``):
#
# - an invoice: ``{"issued": "YYYY-MM-DD", "url": str | None, "client": {...}, "currency": "RON",
#   "lines": [the products as sent], "credits": [credit, ...]}``;
# - a credit (storno or return): ``{"erp_id": "WEB-0043", "of": "WEB-0042", "kind": "storno" | "return",
#   "issued": ..., "url": ..., "reference": ..., "returned": {sku: quantity as str}}``.
#
# An invoice linked by hand (or issued before details were kept) has no details: it still reads as invoiced.


class IssuedRegistry(Protocol):
    """Remembers the invoice issued for each shop order reference (SmartBill cannot be asked), the details the
    status back-sync and returns need, and the stornos/returns made of it (write-ahead, see ``mark_sent``)."""

    def get(self, reference: str) -> str | None: ...

    def put(self, reference: str, erp_id: str, details: Mapping[str, Any] | None = None) -> None: ...

    def details(self, erp_id: str) -> dict[str, Any] | None: ...

    def credit(self, reference: str) -> dict[str, Any] | None: ...

    def put_credit(self, reference: str, credit: Mapping[str, Any]) -> None: ...

    def is_sent(self, reference: str) -> bool: ...

    def mark_sent(self, reference: str, invoice_id: str) -> None: ...

    def clear_sent(self, reference: str) -> None: ...


def with_credit(details: Mapping[str, Any] | None, credit: Mapping[str, Any]) -> dict[str, Any]:
    """An invoice's details with ``credit`` added once (by its ``erp_id``)."""
    merged = copy.deepcopy(dict(details or {}))
    credits = [c for c in merged.get("credits", []) if c.get("erp_id") != credit.get("erp_id")]
    merged["credits"] = [*credits, dict(credit)]
    return merged


class MemoryIssuedRegistry:
    """An in-process registry (tests, demos): forgotten when the process ends."""

    def __init__(self, issued: Mapping[str, str] | None = None) -> None:
        self._issued: dict[str, str] = dict(issued or {})
        self._details: dict[str, dict[str, Any]] = {}
        self._credits: dict[str, dict[str, Any]] = {}
        self._sent: dict[str, str] = {}
        self._lock = threading.Lock()

    def get(self, reference: str) -> str | None:
        """The invoice id issued for ``reference``, if any."""
        with self._lock:
            return self._issued.get(reference)

    def put(self, reference: str, erp_id: str, details: Mapping[str, Any] | None = None) -> None:
        """Remember the invoice id of ``reference`` (refuses a second, different one), with its details."""
        with self._lock:
            known = self._issued.setdefault(reference, erp_id)
            if known == erp_id and details is not None:
                self._details[erp_id] = copy.deepcopy(dict(details))
        if known != erp_id:
            raise ValueError(f"order {reference!r} is already invoiced as {known!r}, not {erp_id!r}")

    def details(self, erp_id: str) -> dict[str, Any] | None:
        """What is kept of an invoice (date, link, lines, client, credits), if anything."""
        with self._lock:
            found = self._details.get(erp_id)
            return None if found is None else copy.deepcopy(found)

    def credit(self, reference: str) -> dict[str, Any] | None:
        """The storno or return made under ``reference``, if any."""
        with self._lock:
            found = self._credits.get(reference)
            return None if found is None else copy.deepcopy(found)

    def put_credit(self, reference: str, credit: Mapping[str, Any]) -> None:
        """Record a storno/return under its reference and on its invoice's details; clears the sent mark."""
        with self._lock:
            self._credits[reference] = copy.deepcopy(dict(credit))
            invoice = str(credit["of"])
            self._details[invoice] = with_credit(self._details.get(invoice), credit)
            self._sent.pop(reference, None)

    def is_sent(self, reference: str) -> bool:
        """Whether a storno/return request under ``reference`` was sent and its outcome is not recorded."""
        with self._lock:
            return reference in self._sent

    def mark_sent(self, reference: str, invoice_id: str) -> None:
        """Write-ahead mark before a storno/return request leaves."""
        with self._lock:
            self._sent[reference] = invoice_id

    def clear_sent(self, reference: str) -> None:
        """Remove the mark (the request provably did nothing)."""
        with self._lock:
            self._sent.pop(reference, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._issued)


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

    def unlink(self, store: str, entity: str, *, shop_id: str | None = ..., erp_id: str | None = ...) -> bool: ...


class StateIssuedRegistry:
    """The registry kept as state-store links of one store (shop ids and ERP ids unique per store and entity,
    enforced by the database):

    - ``smartbill_invoice``: shop_id = order reference, erp_id = ``"SERIES-NUMBER"``, extra = its details;
    - ``smartbill_credit``: shop_id = the storno's/return's reference, erp_id = its ``"SERIES-NUMBER"``, sku = the
      invoice it credits, extra = the credit;
    - ``smartbill_credit_sent``: shop_id = erp_id = that reference, sku = the invoice: the write-ahead mark.
    """

    def __init__(
        self,
        state: LinkStore,
        store: str,
        *,
        entity: str = INVOICE_ENTITY,
        credit_entity: str = CREDIT_ENTITY,
        sent_entity: str = SENT_ENTITY,
    ) -> None:
        self.state = state
        self.store = store
        self.entity = entity
        self.credit_entity = credit_entity
        self.sent_entity = sent_entity

    def get(self, reference: str) -> str | None:
        """The invoice id linked to ``reference``, if any."""
        link = self.state.find_link(self.store, self.entity, shop_id=reference)
        return None if link is None else link.erp_id

    def put(self, reference: str, erp_id: str, details: Mapping[str, Any] | None = None) -> None:
        """Link ``reference`` to its invoice (idempotent; a different partner raises ``LinkConflict``)."""
        extra = None if details is None else dict(details)
        self.state.link(self.store, self.entity, shop_id=reference, erp_id=erp_id, extra=extra)

    def details(self, erp_id: str) -> dict[str, Any] | None:
        """The details kept beside the invoice's link (None when it has none or is not linked)."""
        link = self.state.find_link(self.store, self.entity, erp_id=erp_id)
        extra = None if link is None else getattr(link, "extra", None)
        return dict(extra) if extra else None

    def credit(self, reference: str) -> dict[str, Any] | None:
        """The storno or return linked to ``reference`` (a hand-made link reads as its erp_id only)."""
        link = self.state.find_link(self.store, self.credit_entity, shop_id=reference)
        if link is None:
            return None
        extra = getattr(link, "extra", None)
        return dict(extra) if extra else {"erp_id": link.erp_id, "reference": reference}

    def put_credit(self, reference: str, credit: Mapping[str, Any]) -> None:
        """Link the storno/return, add it to its invoice's details, then drop the write-ahead mark."""
        invoice = str(credit["of"])
        self.state.link(
            self.store,
            self.credit_entity,
            shop_id=reference,
            erp_id=str(credit["erp_id"]),
            sku=invoice,
            extra=dict(credit),
        )
        link = self.state.find_link(self.store, self.entity, erp_id=invoice)
        if link is not None:
            merged = with_credit(getattr(link, "extra", None), credit)
            self.state.link(self.store, self.entity, shop_id=link.shop_id, erp_id=invoice, extra=merged)
        self.clear_sent(reference)

    def is_sent(self, reference: str) -> bool:
        """Whether a storno/return request under ``reference`` was sent and its outcome is not recorded."""
        return self.state.find_link(self.store, self.sent_entity, shop_id=reference) is not None

    def mark_sent(self, reference: str, invoice_id: str) -> None:
        """Write-ahead mark before a storno/return request leaves."""
        self.state.link(self.store, self.sent_entity, shop_id=reference, erp_id=reference, sku=invoice_id)

    def clear_sent(self, reference: str) -> None:
        """Remove the mark (the request provably did nothing, or its outcome is recorded)."""
        self.state.unlink(self.store, self.sent_entity, shop_id=reference)
