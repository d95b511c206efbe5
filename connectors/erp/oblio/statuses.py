"""What Oblio's documents say back to the shop: one ``/docs/<kind>/list`` read per document (number, date, link,
cancelled), stornos and returns from the registry."""

from __future__ import annotations

from collections.abc import Sequence

from erpsync.connectors.erp.oblio.common import OblioBase, parse_date
from erpsync.connectors.erp.oblio.mapping import DocId
from erpsync.core.models import ErpInvoice, ErpOrderStatus


class Statuses(OblioBase):
    """``order_statuses``."""

    def order_statuses(self, erp_ids: Sequence[str]) -> list[ErpOrderStatus]:
        """One ``/docs/<kind>/list`` read per document (number, date, link, cancelled); stornos and returns
        from the registry."""
        statuses = []
        for erp_id in erp_ids:
            doc = DocId.parse(erp_id)
            rows = self._get(f"docs/{doc.kind}/list", seriesName=doc.series, number=doc.number)
            row = rows[0] if isinstance(rows, list) and rows and isinstance(rows[0], dict) else None
            if row is None:
                statuses.append(ErpOrderStatus(erp_id=erp_id, state="missing"))
                continue
            invoices = [
                ErpInvoice(
                    erp_id=erp_id,
                    number=doc.printed,
                    issued=parse_date(row.get("issueDate")),
                    url=row.get("link") or None,
                )
            ]
            cancelled = str(row.get("canceled")) == "1"
            for credit in (self.registry.details(erp_id) or {}).get("credits", []):
                credit_id = DocId.parse(str(credit["erp_id"]))
                invoices.append(
                    ErpInvoice(
                        erp_id=str(credit_id),
                        number=credit_id.printed,
                        issued=parse_date(credit.get("issued")),
                        url=credit.get("url") or None,
                        credit=True,
                    )
                )
                cancelled = cancelled or credit.get("kind") == "storno"
            statuses.append(
                ErpOrderStatus(
                    erp_id=erp_id,
                    state="cancelled" if cancelled else ("proforma" if doc.proforma else "invoiced"),
                    invoiced=not doc.proforma,
                    invoice_number=None if doc.proforma else doc.printed,
                    cancelled=cancelled,
                    invoices=invoices,
                )
            )
        return statuses
