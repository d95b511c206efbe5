"""The one way a shop buyer becomes a linked ERP party, for the customers flow and the order import alike.

Key: ``core.customers.key_of`` (``vat:<CUI>`` for a company with one, else ``email:<address>``), linked to the
party's id in ``links`` (entity ``customer``; unique on both sides). A buyer already linked costs no ERP call;
otherwise the ERP is searched (VAT code, then e-mail) and the party created only when none matches, so the same
buyer never becomes two parties.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass

from erpsync.connectors.erp.base import ErpConnector
from erpsync.core.customers import key_of
from erpsync.core.models import Customer
from erpsync.core.state import LinkConflict, StateStore

CUSTOMER = "customer"  # links: key_of(customer) <-> ERP party id


@dataclass(frozen=True)
class Linked:
    """The buyer with its ``erp_id`` (None when the ERP keeps no parties), and how it was found."""

    customer: Customer
    how: str  # "linked" (known before) | "found" (matched in the ERP) | "created" | "none"


def link_customer(
    erp: ErpConnector,
    state: StateStore,
    store: str,
    customer: Customer,
    known: Mapping[str, str] | None = None,
    pending: list[tuple[str, str, str | None]] | None = None,
) -> Linked:
    """The buyer as the ERP knows it: linked before, found (VAT code, e-mail) or created with its addresses.

    ``known``: the links of a whole batch read beforehand (key -> party id), so a batch costs one query, not one
    per buyer; a key not in it is looked up in the ERP (which finds a party linked meanwhile). ``pending``: new
    links are appended there (``(key, party id, None)``, for one ``link_many`` per batch) instead of written."""
    caps = erp.capabilities
    if not (caps.customers_find or caps.customers_create):
        return Linked(customer, "none")  # the buyer travels inside each document (SmartBill)
    key = key_of(customer)
    if key is not None:
        if known is not None:
            erp_id = known.get(key)
        else:
            link = state.find_link(store, CUSTOMER, shop_id=key)
            erp_id = link.erp_id if link is not None else None
        if erp_id is not None:
            return Linked(customer.model_copy(update={"erp_id": erp_id}), "linked")
    found = erp.find_customer(customer) if caps.customers_find else None
    how = "found"
    if found is None and caps.customers_create:
        found, how = erp.create_customer(customer), "created"
    if found is None or not found.erp_id:
        return Linked(customer, "none")
    if key is not None and pending is not None:
        pending.append((key, found.erp_id, None))
    elif key is not None:
        # LinkConflict: the party is known under another key (same e-mail, other VAT code): use it unlinked.
        with suppress(LinkConflict):
            state.link(store, CUSTOMER, shop_id=key, erp_id=found.erp_id)
    return Linked(customer.model_copy(update={"erp_id": found.erp_id}), how)
