"""The after-sale calls SmartBill's connector shares: the payment of an order (``record_payment``) and the
write-ahead helpers of every document that undoes or settles an invoice (storno, return, payment): a mark before
the request, the outcome recorded under its reference after, an unknown outcome never sent twice.
``SmartBillConnector`` mixes it in."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from erpsync.connectors.erp.base import NotSupported
from erpsync.connectors.erp.smartbill.client import SYSTEM
from erpsync.connectors.erp.smartbill.invoices import InvoiceId, IssuedRegistry
from erpsync.connectors.erp.smartbill.payments import PAYMENT, describe, payment_body, payment_record
from erpsync.connectors.erp.smartbill.statuses import after_sale
from erpsync.connectors.errors import FatalError, RateLimitedError, RecordError, RetriableError, record_error
from erpsync.core.models import AfterSale, Order

log = logging.getLogger("erpsync.smartbill")


class AfterSaleCalls:
    """``record_payment`` and the write-ahead helpers (needs ``issued``, ``cif``, ``document``, ``payments``,
    ``_request``, ``_today`` of the connector)."""

    issued: IssuedRegistry
    cif: str
    document: str
    payments: dict[str, str]

    if TYPE_CHECKING:  # the connector's

        def _request(self, method: str, path: str, **kwargs: Any) -> Any: ...

        def _today(self) -> str: ...

    def record_payment(self, erp_id: str, order: Order, *, reference: str) -> str:
        """Book the shop's payment of ``order`` against its invoice (``POST /payment``, value = the order's total,
        type = ``payments[order.payment_method]``); ``""`` and no call when the method is not mapped.

        Idempotent on ``reference`` with the registry, write-ahead like the storno: a payment recorded under it is
        returned without a call; a request whose outcome is unknown (timeout, 5xx after sending) is never sent
        again (``RecordError``: check SmartBill). The document is ``"Card 151.00 on WEB 0001"``.
        """
        kind = self.payments.get(order.payment_method or "")
        if not kind:
            return ""
        if self.document != "invoice":
            raise NotSupported(SYSTEM, "SmartBill has no API to record a payment against an estimate (pay its invoice)")
        done = self._known_credit(reference, erp_id)
        if done is not None:
            known = self.issued.credit(reference) or {}
            return describe(known) if known.get("kind") == PAYMENT else str(known.get("erp_id") or "")
        invoice = InvoiceId.parse(erp_id)
        body = payment_body(
            invoice,
            order,
            self.issued.details(erp_id),
            kind=kind,
            cif=self.cif,
            issue_date=self._today(),
            reference=reference,
        )
        self.issued.mark_sent(reference, erp_id)
        try:
            reply = self._request(
                "POST", "payment", json_body=body, kind="write", idempotent=False, record_key=reference
            )
        except RecordError:
            self.issued.clear_sent(reference)
            raise
        except RetriableError as error:
            raise self._in_doubt(error, reference, f"the payment of invoice {erp_id}") from None
        payment = payment_record(body, reply, of=erp_id, reference=reference)
        log.info("SmartBill payment %s booked for %s", describe(payment), reference)
        try:
            self.issued.put_credit(reference, payment)
        except Exception as exc:
            raise FatalError(
                SYSTEM, f"payment {describe(payment)} booked for {reference} but not recorded ({exc})"
            ) from exc
        return describe(payment)

    def _known_credit(self, reference: str, erp_id: str) -> AfterSale | None:
        """The storno/return already recorded under ``reference``; ``RecordError`` when one is in doubt."""
        known = self.issued.credit(reference)
        if known is not None:
            return after_sale(known)
        if self.issued.is_sent(reference):
            raise record_error(
                SYSTEM,
                reference,
                f"a storno/return/payment request for invoice {erp_id} was sent and its outcome is unknown: it is not "
                f"sent again. Check SmartBill (series {InvoiceId.parse(erp_id).series}): if it was issued, link it "
                f"(entity smartbill_credit, shop_id {reference!r}); if not, unlink smartbill_credit_sent "
                f"{reference!r}, then resolve this failure",
            )
        return None

    def _send_reverse(self, body: dict[str, Any], reference: str) -> Any:
        """``POST /invoice/reverse``; ``PUT`` when the POST is refused as a wrong method (clients disagree)."""
        try:
            return self._request(
                "POST", "invoice/reverse", json_body=body, kind="write", idempotent=False, record_key=reference
            )
        except (RecordError, FatalError) as error:
            if error.status != 405:
                raise
        return self._request(
            "PUT", "invoice/reverse", json_body=body, kind="write", idempotent=False, record_key=reference
        )

    def _in_doubt(self, error: RetriableError, reference: str, what: str) -> RetriableError | RecordError:
        if isinstance(error, RateLimitedError) or error.not_sent:
            self.issued.clear_sent(reference)  # provably not processed: safe to try again later
            return error
        return record_error(
            SYSTEM,
            reference,
            f"{what} may have been issued ({error.message}); it is not re-sent automatically: check SmartBill, "
            f"then link it or clear the mark (docs/smartbill.md, 'After the import') and resolve this failure",
            status=error.status,
        )

    def _record_credit(self, reference: str, credit: dict[str, Any]) -> AfterSale:
        log.info(
            "SmartBill %s %s issued for %s (invoice %s)", credit["kind"], credit["erp_id"], reference, credit["of"]
        )
        try:
            self.issued.put_credit(reference, credit)
        except Exception as exc:
            # Issued; the write-ahead mark stays, so a retry is held as in doubt, never sent twice.
            raise FatalError(
                SYSTEM,
                f"{credit['kind']} {credit['erp_id']} of invoice {credit['of']} issued for {reference} but not "
                f"recorded ({exc}); link it before retrying",
            ) from exc
        return after_sale(credit)
