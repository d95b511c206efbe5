"""An order's life after its invoice on Oblio: a cancellation becomes one storno (a proforma is cancelled), a
return one invoice with negative quantities; each keyed by ``idempotencyKey`` and recorded in the registry."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from erpsync.connectors.erp.oblio.client import SYSTEM
from erpsync.connectors.erp.oblio.common import OblioBase, doc_id, link
from erpsync.connectors.erp.oblio.mapping import DocId, stock_lines
from erpsync.connectors.erp.oblio.returns import after_sale, return_body, storno_body
from erpsync.connectors.errors import RecordError, record_error
from erpsync.core.models import AfterSale, ReturnLine

log = logging.getLogger("erpsync.oblio")


class AfterSaleCalls(OblioBase):
    """``cancel_order`` and ``return_order``."""

    def cancel_order(self, erp_id: str, *, reference: str) -> AfterSale:
        """An invoice: its storno (``POST /docs/invoice`` with ``referenceDocument``, ``idempotencyKey`` =
        ``reference``: one storno whatever the retries), the stock back. A proforma: ``PUT /docs/proforma/cancel``
        (it moved no stock). A storno already recorded is returned without a call."""
        doc = DocId.parse(erp_id)
        known = self.registry.credit(reference)
        if known is not None:
            return after_sale(known)
        details = self.registry.details(erp_id) or {}
        for credit in details.get("credits", []):
            if credit.get("kind") == "storno":
                return after_sale(credit)
        if doc.proforma:
            body = {"cif": self.cif, "seriesName": doc.series, "number": doc.number}
            try:
                self.client.request("PUT", "docs/proforma/cancel", json_body=body, record_key=reference)
            except RecordError as error:
                if "anulat" not in error.message.lower():
                    raise
            return AfterSale(kind="cancelled", erp_id=erp_id, detail=f"proforma {doc.printed} cancelled")
        returns = [str(c.get("erp_id")) for c in details.get("credits", []) if c.get("kind") == "return"]
        if returns:
            raise record_error(
                SYSTEM,
                reference,
                f"invoice {erp_id} has returns ({', '.join(returns)}): a storno would reverse it whole and credit "
                f"them twice; book the rest as a return",
            )
        body = storno_body(self.cif, doc, details.get("client") or self._client_of(doc), reference, self._today())
        reply = self.client.request(
            "POST", "docs/invoice", json_body=body, kind="write", idempotent=True, record_key=reference
        )
        storno = doc_id(reply, doc.series, proforma=False, reference=reference)
        returned = {k: str(v) for k, v in _goods(details).items()}
        return self._record(reference, "storno", storno, erp_id, reply, returned)

    def return_order(self, erp_id: str, lines: Sequence[ReturnLine], *, reference: str) -> AfterSale:
        """A return: one invoice with NEGATIVE quantities of these lines at the invoice's prices (``useStock``:
        the goods come back into their management), ``idempotencyKey`` = ``reference``. ``RecordError`` before
        any call for a SKU not on the invoice, more than invoiced less earlier returns, or an invoice with a
        storno."""
        known = self.registry.credit(reference)
        if known is not None:
            return after_sale(known)
        doc = DocId.parse(erp_id)
        if doc.proforma:
            raise record_error(SYSTEM, reference, f"{erp_id} is a proforma: nothing left the warehouse")
        details = self.registry.details(erp_id)
        body = return_body(self.cif, erp_id, details, lines, reference, self._today())
        reply = self.client.request(
            "POST", "docs/invoice", json_body=body, kind="write", idempotent=True, record_key=reference
        )
        credit = doc_id(reply, doc.series, proforma=False, reference=reference)
        returned = {line.sku: str(line.quantity) for line in lines}
        return self._record(reference, "return", credit, erp_id, reply, returned)

    def _record(
        self, reference: str, kind: str, doc: DocId, of: str, reply: Any, returned: dict[str, str]
    ) -> AfterSale:
        credit = {
            "erp_id": str(doc),
            "of": of,
            "kind": kind,
            "issued": self._today(),
            "url": link(reply),
            "reference": reference,
            "returned": returned,
        }
        log.info("Oblio %s %s issued for %s (invoice %s)", kind, doc, reference, of)
        self.registry.put_credit(reference, credit)
        return after_sale(credit)

    def _client_of(self, doc: DocId) -> dict[str, Any]:
        rows = self._get("docs/invoice/list", seriesName=doc.series, number=doc.number)
        row = rows[0] if isinstance(rows, list) and rows else {}
        client = row.get("client") if isinstance(row, dict) else None
        return dict(client) if isinstance(client, dict) else {"name": "Client"}


def _goods(details: dict[str, Any]) -> dict[str, Decimal]:
    return stock_lines(details.get("lines") or [])
