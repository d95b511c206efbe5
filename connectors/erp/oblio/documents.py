"""Shop orders as Oblio documents: an invoice with ``useStock`` (goods leave ``order_warehouse``) or a proforma,
POSTed with ``idempotencyKey`` = the order's reference, remembered in the registry."""

from __future__ import annotations

import logging

from erpsync.connectors.erp.oblio.checks import Checks
from erpsync.connectors.erp.oblio.client import SYSTEM
from erpsync.connectors.erp.oblio.common import doc_id, link
from erpsync.connectors.erp.oblio.mapping import document_body
from erpsync.connectors.errors import FatalError, RecordError, record_error
from erpsync.core.models import Customer, Order

log = logging.getLogger("erpsync.oblio")


class Documents(Checks):
    """``find_order`` and ``create_order``."""

    def find_order(self, reference: str) -> str | None:
        """The document issued for this order reference, from the registry (no call)."""
        return self.registry.get(reference)

    def create_order(self, order: Order, customer: Customer) -> str:
        """Issue the invoice (``useStock``: goods leave ``order_warehouse``) or proforma of a shop order.

        ``idempotencyKey`` = the reference, so the POST may be repeated after a lost reply (the HTTP layer does,
        on a timeout or 5xx) and Oblio answers with the document issued the first time. An unknown SKU or too
        little stock is a ``RecordError`` naming the SKU.
        """
        reference = order.reference or order.shop_id
        if not reference:
            raise ValueError("create_order needs order.reference or order.shop_id: it is the idempotency key")
        known = self.registry.get(reference)
        if known is not None:
            return known
        invoice = self.document == "invoice"
        if invoice and self.order_warehouse is None:
            raise FatalError(SYSTEM, "order_warehouse is not configured: cannot issue invoices with useStock")
        default_vat = max(self.vat_rates(), default=None) if order.shipping_amount > 0 else None
        body = document_body(
            order,
            customer,
            reference,
            cif=self.cif,
            series=self.invoice_series,
            management=self.order_warehouse if invoice else None,
            measuring_unit=self.measuring_unit,
            shipping_name=self.shipping_name,
            issue_date=self._today(),
            use_stock=invoice,
            default_vat=default_vat,
        )
        path = "docs/invoice" if invoice else "docs/proforma"
        try:
            reply = self.client.request(
                "POST", path, json_body=body, kind="write", idempotent=True, record_key=reference
            )
        except RecordError as error:
            raise _name_sku(error, order, reference) from None
        doc = doc_id(reply, self.invoice_series, proforma=not invoice, reference=reference)
        erp_id = str(doc)
        log.info("Oblio %s %s issued for order %s", doc.kind, erp_id, reference)
        details = {
            "issued": body["issueDate"],
            "url": link(reply),
            "client": body["client"],
            "currency": body["currency"],
            "lines": body["products"],
        }
        try:
            self.registry.put(reference, erp_id, details)
        except Exception as exc:
            raise FatalError(
                SYSTEM, f"{doc.kind} {erp_id} issued for order {reference} but not recorded ({exc})"
            ) from exc
        return erp_id


def _name_sku(error: RecordError, order: Order, reference: str) -> RecordError:
    """Re-word a refused document so that the failure names the SKU Oblio complained about."""
    text = error.message.removeprefix(f"{reference}: ")
    named = [line.sku for line in order.lines if line.sku and line.sku in text]
    if not named:
        return error
    return record_error(
        SYSTEM, reference, f"SKU {named[0]!r} refused by Oblio: {text}", status=error.status, method=error.method
    )
