"""Undoing a shop order in Tryton after its import: a cancel while nothing left, else a return sale.

``cancel_order``: a draft, quotation or confirmed sale is cancelled (``sale.sale`` ``cancel``). Tryton 8.2 has no
way from ``processing`` to ``cancelled``: a processing sale of which nothing left the warehouse (no outgoing
shipment ``shipped`` or ``done``, no move ``done``) and nothing was invoiced (no invoice ``posted`` or ``paid``)
has its customer shipments cancelled (``stock.shipment.out`` ``cancel``, allowed from every state before
``done``; the reservations go with their moves), its draft invoices cancelled, then the sale's two exception
wizards (``sale.handle.shipment.exception``, ``sale.handle.invoice.exception``) ignore every cancelled move and
invoice, so Tryton processes it to ``done`` with nothing shipped nor invoiced (``order_statuses`` reports such a
sale as cancelled). Anything shipped or invoiced raises ``NeedsReturn`` and writes nothing.

``return_order``: a return sale as Tryton's own ``sale.return_sale`` makes it (same party, addresses, warehouse,
currency, price list; the original lines of those SKUs with negative quantities, same unit price and taxes),
``reference`` = the return's key, ``description`` = ``erpsync-return:<original number>``, ``origin`` = the
original sale; quoted, confirmed, processed (a ``stock.shipment.out.return`` and a credit invoice), its return
shipment received and done when ``receive_returns``, its credit note posted.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from erpsync.connectors.erp.base import NeedsReturn
from erpsync.connectors.erp.tryton import mapping as tm
from erpsync.connectors.erp.tryton.rpc import SYSTEM, like_prefix
from erpsync.connectors.erp.tryton.sales import RETURN_PREFIX
from erpsync.connectors.erp.tryton.session import TrytonSession
from erpsync.connectors.errors import RecordError, record_error
from erpsync.core.models import AfterSale, ReturnLine

log = logging.getLogger("erpsync.tryton")

LEFT_STATES = frozenset({"shipped", "done"})  # stock.shipment.out: the goods left the warehouse
ISSUED_STATES = frozenset({"posted", "paid"})  # account.invoice: an invoice was issued
SHIPMENT_EXCEPTION = "sale.handle.shipment.exception"
INVOICE_EXCEPTION = "sale.handle.invoice.exception"
CANCEL_FIELDS = [
    "state",
    "number",
    "reference",
    "shipment_state",
    "invoice_state",
    "shipments.state",
    "invoices.state",
    "moves.state",
]
HEADER_FIELDS = [
    "state",
    "number",
    "reference",
    "party",
    "invoice_address",
    "shipment_address",
    "warehouse",
    "currency",
    "price_list",
    "payment_term",
]
LINE_FIELDS = [
    "sale",
    "type",
    "product",
    "product.code",
    "quantity",
    "unit",
    "unit_price",
    "taxes",
    "description",
    "moves.state",
    "moves.quantity",
]


def needs_return(key: str, message: str) -> NeedsReturn:
    """A ``NeedsReturn`` for the record named ``key`` (its message starts with the key)."""
    error = NeedsReturn(SYSTEM, f"{key}: {message}")
    error.key = key
    return error


def _qty(quantity: Decimal) -> str:
    return format(quantity.normalize(), "f")


class AfterSales:
    """``cancel_order`` and ``return_order`` of the connector (``receive_returns``: receive return shipments)."""

    def __init__(self, tryton: TrytonSession, *, receive_returns: bool = True) -> None:
        self.tryton = tryton
        self.receive_returns = receive_returns

    def _sale(self, erp_id: str, fields: list[str], key: str) -> dict[str, Any]:
        rows = self.tryton.search_read("sale.sale", [("id", "=", int(erp_id))], fields)
        if not rows:
            raise record_error(SYSTEM, key, f"sale {erp_id} does not exist in Tryton")
        return rows[0]

    # -- cancel -----------------------------------------------------------------------------------------

    def cancel_order(self, erp_id: str, *, reference: str) -> AfterSale:
        """Cancel a sale while nothing of it left the warehouse nor was invoiced (see the module's docstring);
        ``NeedsReturn`` otherwise, with nothing written. Idempotent: an undone sale gives ``cancelled`` again.

        A processing sale ends ``done`` (Tryton cannot cancel it), its shipments and invoices cancelled and
        ignored, its reservations freed. Calls: 1 read (+2 for a draft/quotation/confirmed sale; +up to 9 for a
        processing one: cancel shipments, cancel invoices, two wizards of 3 calls, a read back).
        """
        sale = self._sale(erp_id, CANCEL_FIELDS, erp_id)
        sale_id, state = int(sale["id"]), sale["state"]
        name = f"sale {sale.get('number') or erp_id} (order {sale.get('reference') or reference})"
        if state == "cancelled":
            return AfterSale(kind="cancelled", detail=f"{name} was already cancelled")
        if state in ("draft", "quotation", "confirmed"):
            if state != "draft":  # only a draft can be cancelled; confirmed and quotation go back to draft
                self.tryton.write("sale.sale", "draft", [sale_id], key=erp_id)
            self.tryton.write("sale.sale", "cancel", [sale_id], key=erp_id)
            return AfterSale(kind="cancelled", detail=f"{name} cancelled")
        shipments = sale.get("shipments.") or []
        invoices = sale.get("invoices.") or []
        moves = sale.get("moves.") or []
        left = [s for s in shipments if s.get("state") in LEFT_STATES] or [m for m in moves if m.get("state") == "done"]
        issued = [i for i in invoices if i.get("state") in ISSUED_STATES]
        if left or issued:
            what = " and ".join(
                filter(None, ["goods left the warehouse" if left else "", "an invoice was posted" if issued else ""])
            )
            raise needs_return(erp_id, f"{name} cannot be cancelled: {what}; it takes a return")
        if state == "done":  # undone earlier: every shipment and invoice cancelled and ignored
            return AfterSale(kind="cancelled", detail=f"{name} was already undone (done, nothing shipped)")
        open_shipments = [int(s["id"]) for s in shipments if s.get("state") != "cancelled"]
        open_invoices = [int(i["id"]) for i in invoices if i.get("state") != "cancelled"]
        if open_shipments:
            self.tryton.write("stock.shipment.out", "cancel", open_shipments, key=erp_id)
        if open_invoices:
            self.tryton.write("account.invoice", "cancel", open_invoices, key=erp_id)
        move_ids = [int(m["id"]) for m in moves]
        if move_ids and (open_shipments or sale.get("shipment_state") == "exception"):
            # the wizard keeps only the cancelled moves not already ignored: all of them are cancelled now
            ask = {"domain_moves": move_ids, "ignore_moves": move_ids, "recreate_moves": []}
            self.tryton.wizard(SHIPMENT_EXCEPTION, "sale.sale", sale_id, "handle", {"ask": ask}, key=erp_id)
        invoice_ids = [int(i["id"]) for i in invoices]
        if invoice_ids and (open_invoices or sale.get("invoice_state") == "exception"):
            ask = {"domain_invoices": invoice_ids, "ignore_invoices": invoice_ids, "recreate_invoices": []}
            self.tryton.wizard(INVOICE_EXCEPTION, "sale.sale", sale_id, "handle", {"ask": ask}, key=erp_id)
        after = self.tryton.read("sale.sale", "read", [sale_id], ["state", "shipment_state", "invoice_state"])[0]
        if after["state"] != "done":
            raise record_error(
                SYSTEM,
                erp_id,
                f"{name}: its shipments and invoices were cancelled but the sale is {after['state']} (shipments "
                f"{after.get('shipment_state')}, invoices {after.get('invoice_state')}): finish it in Tryton",
            )
        log.info("Tryton %s undone: shipments and invoices cancelled, the sale is done with nothing shipped", name)
        return AfterSale(kind="cancelled", detail=f"{name} undone: shipments and invoices cancelled (sale done)")

    # -- return -----------------------------------------------------------------------------------------

    def return_order(self, erp_id: str, lines: Sequence[ReturnLine], *, reference: str) -> AfterSale:
        """A return sale of these quantities of sale ``erp_id``; idempotent on ``reference`` (see the module's
        docstring). A SKU not on the sale, or more than it sold (or shipped: goods still on the sale's shipment
        never left) minus what earlier returns (references that start with the sale's reference + ``/R``) took
        back, is a ``RecordError`` naming it, before anything is written.
        Calls: 2 reads, then create, quote, confirm, a read, receive, do, a read, post, a read (about 10).
        """
        if not reference:
            raise ValueError("return_order needs a reference: it is the idempotency key")
        rows = self.tryton.search_read(
            "sale.sale", ["OR", ("reference", "=", reference), ("id", "=", int(erp_id))], HEADER_FIELDS
        )
        existing = next((r for r in rows if r.get("reference") == reference and r["id"] != int(erp_id)), None)
        if existing is not None:
            return self._complete(int(existing["id"]), existing["state"], reference)
        original = next((r for r in rows if r["id"] == int(erp_id)), None)
        if original is None:
            raise record_error(SYSTEM, reference, f"sale {erp_id} does not exist in Tryton")
        name = f"sale {original.get('number') or erp_id}"
        if original["state"] not in ("confirmed", "processing", "done"):
            raise record_error(SYSTEM, reference, f"{name} is {original['state']}: there is nothing to return")
        return_lines = self._return_lines(original, lines, reference, name)
        values: dict[str, Any] = {
            "party": original["party"],
            "invoice_address": original.get("invoice_address"),
            "shipment_address": original.get("shipment_address"),
            "warehouse": original.get("warehouse"),
            "currency": original["currency"],
            "reference": reference,
            "description": f"{RETURN_PREFIX}{original.get('number') or erp_id}",
            "origin": f"sale.sale,{original['id']}",
            "lines": [["create", return_lines]],
        }
        for field in ("price_list", "payment_term"):
            if original.get(field):
                values[field] = original[field]
        return_id = int(self.tryton.write("sale.sale", "create", [values], key=reference)[0])
        log.info("Tryton return sale %s created for %s (%s)", return_id, name, reference)
        return self._complete(return_id, "draft", reference)

    def _return_lines(
        self, original: dict[str, Any], lines: Sequence[ReturnLine], reference: str, name: str
    ) -> list[dict[str, Any]]:
        """The return sale's lines: the original lines of these SKUs, first ones first, with negative quantities."""
        wanted: dict[str, Decimal] = defaultdict(Decimal)
        for line in lines:
            if line.quantity <= 0:
                raise record_error(SYSTEM, reference, f"SKU {line.sku!r}: a return quantity must be positive")
            wanted[line.sku] += line.quantity
        if not wanted:
            raise record_error(SYSTEM, reference, "the return has no lines")
        domain: list[Any] = [("sale", "=", original["id"])]
        if original.get("reference"):
            earlier = [
                ("sale.reference", "like", like_prefix(f"{original['reference']}/R")),
                ("sale.reference", "!=", reference),
                ("sale.state", "!=", "cancelled"),
            ]
            domain = ["OR", domain[0], earlier]
        rows = self.tryton.search_read(
            "sale.line", [("type", "=", "line"), domain], LINE_FIELDS, order=[("sequence", "ASC"), ("id", "ASC")]
        )
        sold: dict[str, list[dict[str, Any]]] = defaultdict(list)
        returned: dict[str, Decimal] = defaultdict(Decimal)
        for row in rows:
            code = (row.get("product.") or {}).get("code")
            quantity = tm.to_decimal(row.get("quantity")) or Decimal(0)
            if not code:
                continue
            if row["sale"] == original["id"]:
                if quantity > 0:
                    sold[code].append(row)
            else:
                returned[code] += abs(quantity)
        out: list[dict[str, Any]] = []
        for sku, quantity in wanted.items():
            if sku not in sold:
                raise record_error(SYSTEM, reference, f"SKU {sku!r} is not on {name}: it cannot be returned")
            total = sum((tm.to_decimal(r["quantity"]) or Decimal(0) for r in sold[sku]), Decimal(0))
            left = total - returned[sku]
            if quantity > left:
                raise record_error(
                    SYSTEM,
                    reference,
                    f"SKU {sku!r}: {_qty(quantity)} to return, but {name} sold {_qty(total)} and earlier returns "
                    f"took back {_qty(returned[sku])} ({_qty(left)} left)",
                )
            # A return receives goods back: what never left the warehouse is still on the sale's shipment.
            shipped = sum(
                (
                    tm.to_decimal(m.get("quantity")) or Decimal(0)
                    for r in sold[sku]
                    for m in r.get("moves.") or []
                    if m.get("state") == "done"
                ),
                Decimal(0),
            )
            if quantity > shipped - returned[sku]:
                raise record_error(
                    SYSTEM,
                    reference,
                    f"SKU {sku!r}: {_qty(quantity)} to return, but only {_qty(shipped)} of it left the warehouse "
                    f"with {name} (earlier returns took back {_qty(returned[sku])}); the rest is still on its "
                    f"shipment: ship it, or cancel that shipment in Tryton, then send the return again",
                )
            # the earlier returns took back the first lines first; this one takes what is left, in order
            skip, need = returned[sku], quantity
            for row in sold[sku]:
                on_line = tm.to_decimal(row["quantity"]) or Decimal(0)
                taken = min(skip, on_line)
                skip -= taken
                take = min(on_line - taken, need)
                if take <= 0:
                    continue
                need -= take
                out.append(
                    {
                        "type": "line",
                        "product": row["product"],
                        "quantity": float(-take),
                        "unit": row["unit"],
                        "unit_price": row["unit_price"],
                        "taxes": [["add", list(row.get("taxes") or [])]],
                        "description": row.get("description") or sku,
                    }
                )
        return out

    def _complete(self, sale_id: int, state: str, reference: str) -> AfterSale:
        """Drive a return sale on from ``state``: quote, confirm, process, receive its return shipment (when
        ``receive_returns``), post its credit note; what is done already is skipped."""
        if state == "cancelled":
            return AfterSale(kind="return", erp_id=str(sale_id), detail=f"return sale {sale_id} is cancelled")
        if state == "draft":
            self.tryton.write("sale.sale", "quote", [sale_id], key=reference)
            state = "quotation"
        if state == "quotation":
            self.tryton.write("sale.sale", "confirm", [sale_id], key=reference)
        row = self.tryton.read("sale.sale", "read", [sale_id], ["state", "number", "shipment_returns.state"])[0]
        if row["state"] == "confirmed":  # with a queue worker, confirm only schedules the processing
            self.tryton.write("sale.sale", "process", [sale_id], key=reference)
            row = self.tryton.read("sale.sale", "read", [sale_id], ["state", "number", "shipment_returns.state"])[0]
        shipments = row.get("shipment_returns.") or []
        received = "not received (receive_returns is off)"
        if self.receive_returns:
            to_receive = [int(s["id"]) for s in shipments if s.get("state") == "draft"]
            to_do = [int(s["id"]) for s in shipments if s.get("state") in ("draft", "received")]
            if to_receive:
                self.tryton.write("stock.shipment.out.return", "receive", to_receive, key=reference)
            if to_do:
                self.tryton.write("stock.shipment.out.return", "do", to_do, key=reference)
            received = "received" if shipments else "no return shipment"
        credit_note = self._post_credit_notes(sale_id, reference)
        detail = f"return sale {row.get('number') or sale_id}: goods {received}, credit note {credit_note or 'none'}"
        return AfterSale(kind="return", erp_id=str(sale_id), credit_note=credit_note, detail=detail)

    def _post_credit_notes(self, sale_id: int, reference: str) -> str | None:
        """Post the return sale's draft credit invoices (a refusal is logged: a person posts it); its number."""
        fields = ["invoices.state", "invoices.number"]
        invoices = self.tryton.read("sale.sale", "read", [sale_id], fields)[0].get("invoices.") or []
        to_post = [int(i["id"]) for i in invoices if i.get("state") in ("draft", "validated")]
        if to_post:
            try:
                self.tryton.write("account.invoice", "post", to_post, key=reference)
            except RecordError as error:
                log.warning("Tryton return sale %s: its credit note was not posted: %s", sale_id, error.message)
            else:
                invoices = self.tryton.read("sale.sale", "read", [sale_id], fields)[0].get("invoices.") or []
        numbers = [str(i["number"]) for i in invoices if i.get("state") in ISSUED_STATES and i.get("number")]
        return ", ".join(numbers) or None
