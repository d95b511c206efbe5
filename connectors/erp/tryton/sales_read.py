"""Tryton's sales read back: every sale changed since a time as an ``Order`` (with its channel), and statuses.

``Order.channel``: the name after ``channel:`` at the start of the sale description; ``"erpsync"`` for sales
erpsync created (``sales.Sales``); else None. The return sales erpsync made (``returns.AfterSales``) are not
orders and are left out.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from erpsync.connectors.erp.tryton import mapping as tm
from erpsync.connectors.erp.tryton.parties import ADDRESS_FIELDS, PARTY_FIELDS
from erpsync.connectors.erp.tryton.rpc import like_prefix, to_utc
from erpsync.connectors.erp.tryton.sales import CHANNEL_PREFIX, ERPSYNC_CHANNEL, ERPSYNC_PREFIX, RETURN_PREFIX
from erpsync.connectors.erp.tryton.session import TrytonSession
from erpsync.core.models import (
    ErpInvoice,
    ErpOrderStatus,
    ErpShipment,
    LineKind,
    Order,
    OrderLine,
    Page,
    PaymentStatus,
    RowError,
    gross_from_net,
)

SALE_FIELDS = [
    "number",
    "reference",
    "description",
    "comment",
    "state",
    "invoice_state",
    "shipment_state",
    "party",
    "invoice_address",
    "shipment_address",
    "currency.code",
    "total_amount",
    "create_date",
    "last_modified_at",
    "invoices",
    "shipments",
]
INVOICE_FIELDS = ["number", "state", "invoice_date", "total_amount"]


class SalesRead:
    """``order_statuses`` and ``iter_orders`` of the connector (``shipping_sku``: the shipping product's code;
    lines of ``discount_sku`` / ``fee_sku`` are read back as discount and fee lines; ``invoice_url``: the link
    to an invoice, ``{id}`` and ``{number}`` filled in, "" for none)."""

    def __init__(
        self,
        tryton: TrytonSession,
        *,
        shipping_sku: str,
        discount_sku: str = "DISCOUNT",
        fee_sku: str = "FEE",
        invoice_url: str = "",
    ) -> None:
        self.tryton = tryton
        self.shipping_sku = shipping_sku
        self.kinds: dict[str, LineKind] = {discount_sku: "discount", fee_sku: "fee"}
        self.invoice_url = invoice_url
        self._carrier: bool | None = None

    def order_statuses(self, erp_ids: Sequence[str]) -> list[ErpOrderStatus]:
        """State, posted invoices (number, date, link, credit), shipments (state, AWB = the shipment's reference,
        carrier) and whether still editable: ONE read of the sales with their shipments and invoices, one more
        for the credit notes of their returns when a sale is processing or done (plus, once per connector,
        whether shipments have a carrier field). ``invoices`` lists the sale's posted invoices, then the posted
        credit notes of its return sales (``credit=True``); ``invoiced`` and ``invoice_number`` stay the sale's.

        ``cancelled``: the sale is cancelled, or ``cancel_order`` undid it while processing (Tryton then makes it
        ``done`` with every shipment cancelled and nothing invoiced).
        """
        ids = [int(i) for i in erp_ids]
        fields = [
            "state",
            "reference",
            "invoice_state",
            "shipment_state",
            *(f"invoices.{f}" for f in INVOICE_FIELDS),
            "shipments.state",
            "shipments.reference",
        ]
        if self._has_carrier():
            fields.append("shipments.carrier.rec_name")
        sales = {r["id"]: r for r in self.tryton.search_read("sale.sale", [("id", "in", ids)], fields)}
        credits = self._return_credits(list(sales.values()))
        statuses: list[ErpOrderStatus] = []
        for erp_id, sale_id in zip(erp_ids, ids, strict=True):
            sale = sales.get(sale_id)
            if sale is None:
                statuses.append(ErpOrderStatus(erp_id=erp_id, state="missing"))
                continue
            posted = [i for i in sale.get("invoices.") or [] if i.get("state") in ("posted", "paid")]
            shipment_rows = sale.get("shipments.") or []
            done = [s for s in shipment_rows if s.get("state") == "done"]
            awb = next((s["reference"] for s in done if s.get("reference")), None)
            undone = (
                sale["state"] == "done"
                and bool(shipment_rows)
                and all(s.get("state") == "cancelled" for s in shipment_rows)
                and not posted
            )
            statuses.append(
                ErpOrderStatus(
                    erp_id=erp_id,
                    reference=sale.get("reference"),
                    state=sale["state"],
                    invoiced=bool(posted),
                    invoice_number=", ".join(str(i["number"]) for i in posted if i.get("number")) or None,
                    shipped=sale.get("shipment_state") == "sent" or (bool(done) and sale["state"] == "done"),
                    cancelled=sale["state"] == "cancelled" or undone,
                    awb=awb,
                    editable=sale["state"] in ("draft", "quotation"),
                    shipments=[self._shipment(row) for row in shipment_rows],
                    invoices=[self._invoice(row) for row in [*posted, *credits.get(sale_id, [])]],
                )
            )
        return statuses

    def _return_credits(self, sales: list[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
        """The posted credit notes of the return sales erpsync made for these sales (reference = the sale's +
        ``/R...``), by original sale id: one more read, only when a sale could have been returned."""
        originals = {
            str(s["reference"]) + "/R": int(s["id"])
            for s in sales
            if s.get("reference") and s["state"] in ("processing", "done")
        }
        if not originals:
            return {}
        prefixes: list[Any] = [("reference", "like", like_prefix(prefix)) for prefix in originals]
        rows = self.tryton.search_read(
            "sale.sale",
            [("description", "like", like_prefix(RETURN_PREFIX)), ["OR", *prefixes]],
            ["reference", *(f"invoices.{f}" for f in INVOICE_FIELDS)],
            order=[("id", "ASC")],
        )
        found: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for row in rows:
            reference = str(row.get("reference") or "")
            original = next((sid for prefix, sid in originals.items() if reference.startswith(prefix)), None)
            if original is None:
                continue
            found[original].extend(i for i in row.get("invoices.") or [] if i.get("state") in ("posted", "paid"))
        return found

    def _has_carrier(self) -> bool:
        """Whether ``stock.shipment.out`` has a ``carrier`` (the carrier module is activated), asked once."""
        if self._carrier is None:
            found = self.tryton.read("stock.shipment.out", "fields_get", ["carrier"])
            self._carrier = "carrier" in (found or {})
        return self._carrier

    @staticmethod
    def _shipment(row: dict[str, Any]) -> ErpShipment:
        carrier = (row.get("carrier.") or {}).get("rec_name") if isinstance(row.get("carrier."), dict) else None
        return ErpShipment(
            erp_id=str(row["id"]),
            state=str(row.get("state") or ""),
            shipped=row.get("state") == "done",
            awb=row.get("reference") or None,
            carrier=carrier or None,
        )

    def _invoice(self, row: dict[str, Any]) -> ErpInvoice:
        number = str(row.get("number") or "")
        total = tm.to_decimal(row.get("total_amount"))
        url = self.invoice_url.format(id=row["id"], number=number) if self.invoice_url else None
        return ErpInvoice(
            erp_id=str(row["id"]),
            number=number,
            issued=row.get("invoice_date"),
            url=url,
            credit=total is not None and total < 0,
        )

    def iter_orders(self, *, changed_since: datetime | None = None) -> Iterator[Page[Order]]:
        """Sales written since a time, ``page_size`` a page (about six calls a page), with their channel.

        ``Order.channel``: the name after ``channel:`` at the start of the sale description; ``"erpsync"`` for
        sales erpsync created (description ``erpsync:<shop code>``, reference = the store's reference prefix +
        the shop order id, which such an order also carries as its ``shop_id``); else None.
        """
        domain: list[Any] = []
        if changed_since is not None:
            domain.append(("last_modified_at", ">=", changed_since))
        for sales in self.tryton.keyset_pages("sale.sale", domain, SALE_FIELDS):
            sale_ids = [s["id"] for s in sales]
            lines = self.tryton.search_read(
                "sale.line",
                [("sale", "in", sale_ids), ("type", "=", "line")],
                ["sale", "product.code", "description", "quantity", "unit_price", "taxes"],
                order=[("sale", "ASC"), ("sequence", "ASC"), ("id", "ASC")],
            )
            parties = {
                r["id"]: r
                for r in self.tryton.read("party.party", "read", sorted({s["party"] for s in sales}), PARTY_FIELDS)
            }
            address_ids = sorted({a for s in sales for a in (s.get("invoice_address"), s.get("shipment_address")) if a})
            addresses = {r["id"]: r for r in self.tryton.read("party.address", "read", address_ids, ADDRESS_FIELDS)}
            invoice_ids = sorted({i for s in sales for i in s.get("invoices") or []})
            invoices = (
                {r["id"]: r for r in self.tryton.read("account.invoice", "read", invoice_ids, ["number", "state"])}
                if invoice_ids
                else {}
            )
            by_sale: dict[int, list[dict[str, Any]]] = defaultdict(list)
            for line in lines:
                by_sale[line["sale"]].append(line)
            page = Page[Order]()
            tax_rates = self.tryton.tax_rates()
            for sale in sales:
                if str(sale.get("description") or "").startswith(RETURN_PREFIX):
                    continue
                try:
                    page.items.append(self._order(sale, by_sale[sale["id"]], parties, addresses, invoices, tax_rates))
                except ValueError as exc:
                    page.errors.append(RowError(key=f"sale:{sale['id']}", error=str(exc), payload=tm.jsonable(sale)))
            yield page

    def _order(
        self,
        sale: dict[str, Any],
        lines: list[dict[str, Any]],
        parties: dict[int, dict[str, Any]],
        addresses: dict[int, dict[str, Any]],
        invoices: dict[int, dict[str, Any]],
        tax_rates: dict[int, Decimal],
    ) -> Order:
        description = str(sale.get("description") or "")
        channel: str | None = None
        if description.startswith(CHANNEL_PREFIX):
            channel = (
                description[len(CHANNEL_PREFIX) :].split()[0] if description[len(CHANNEL_PREFIX) :].strip() else None
            )
        elif description.startswith(ERPSYNC_PREFIX):
            channel = ERPSYNC_CHANNEL
        order_lines: list[OrderLine] = []
        shipping_amount = Decimal(0)
        shipping_rate: Decimal | None = None
        for line in lines:
            code = (line.get("product.") or {}).get("code")
            quantity = tm.to_decimal(line.get("quantity"))
            net = tm.to_decimal(line.get("unit_price"))
            if quantity is None or net is None:
                raise ValueError(f"line {line['id']}: quantity or price is not a number")
            taxes = line.get("taxes") or []
            rate = tax_rates.get(taxes[0]) if len(taxes) == 1 else (Decimal(0) if not taxes else None)
            if code == self.shipping_sku:
                shipping_amount += gross_from_net(net * quantity, rate or Decimal(0))
                shipping_rate = rate
                continue
            if not code:
                raise ValueError(f"line {line['id']} has no product code (SKU)")
            kind = self.kinds.get(code, "product")
            order_lines.append(
                OrderLine(
                    sku=code if kind == "product" else "",
                    kind=kind,
                    name=line.get("description") or "",
                    quantity=quantity,
                    unit_price_net=net,
                    unit_price_gross=gross_from_net(net, rate) if rate is not None else None,
                    vat_rate=rate,
                )
            )
        party = parties.get(sale["party"], {"id": sale["party"], "name": ""})
        customer = tm.customer_from(party)
        billing = tm.address_from(addresses.get(sale.get("invoice_address") or 0), party.get("name") or "")
        shipping = tm.address_from(addresses.get(sale.get("shipment_address") or 0), party.get("name") or "")
        posted = [
            invoices[i]
            for i in sale.get("invoices") or []
            if i in invoices and invoices[i].get("state") in ("posted", "paid")
        ]
        public_code = description[len(ERPSYNC_PREFIX) :] if channel == ERPSYNC_CHANNEL else sale.get("number")
        return Order(
            shop_id=sale.get("reference") if channel == ERPSYNC_CHANNEL else None,
            erp_id=str(sale["id"]),
            reference=sale.get("reference"),
            public_code=public_code or None,
            channel=channel,
            created_at=to_utc(sale.get("create_date")),
            modified_at=to_utc(sale.get("last_modified_at")),
            customer=customer,
            billing=billing,
            shipping=shipping,
            lines=order_lines,
            currency=(sale.get("currency.") or {}).get("code") or "RON",
            shipping_amount=shipping_amount,
            shipping_vat_rate=shipping_rate,
            payment_status=PaymentStatus.PAID if sale.get("invoice_state") == "paid" else PaymentStatus.AWAITING,
            shipping_status=tm.shipping_status_of(sale),
            total=tm.to_decimal(sale.get("total_amount")),
            note=str(sale.get("comment") or ""),
            invoice_number=next((str(i["number"]) for i in posted if i.get("number")), None),
        )
