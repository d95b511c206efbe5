"""Parties: customers found (by VAT code or e-mail), created or brought up to date with their addresses, and
the suppliers."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from stdnum.ro import onrc

from erpsync.connectors.erp.tryton import mapping as tm
from erpsync.connectors.erp.tryton.rpc import SYSTEM
from erpsync.connectors.erp.tryton.session import TrytonSession
from erpsync.connectors.errors import record_error
from erpsync.core.models import Address, Customer, Page, Supplier

ADDRESS_FIELDS = ["street", "city", "postal_code", "country.code", "invoice", "delivery", "party_name", "party"]
PARTY_FIELDS = ["name", "email", "phone", "identifiers.type", "identifiers.code"]
# What a sale needs of its party: the name, the payment term and the addresses (street, city, postal code, roles).
SALE_PARTY_FIELDS = [
    "name",
    "customer_payment_term",
    *(f"addresses.{f}" for f in ("street", "city", "postal_code", "invoice", "delivery", "sequence")),
]
# A party row of a batch serves both a customer look-up and a sale: one read holds both sets of fields.
BATCH_PARTY_FIELDS = list(dict.fromkeys([*PARTY_FIELDS, *SALE_PARTY_FIELDS]))


@dataclass
class PartyBatch:
    """What one batch of orders needs of its parties, read in a few calls (``Parties.prefetch``).

    ``rows``: party id -> its row (``PARTY_FIELDS`` + ``SALE_PARTY_FIELDS``; addresses created since are appended);
    ``by_email`` / ``by_vat``: the parties the batch's unlinked buyers match, for the e-mails and VAT codes that
    were searched (``emails`` / ``vats``): a searched key without a match is a buyer Tryton does not know.
    """

    rows: dict[int, dict[str, Any]] = field(default_factory=dict)
    emails: set[str] = field(default_factory=set)
    by_email: dict[str, int] = field(default_factory=dict)
    vats: set[str] = field(default_factory=set)
    by_vat: dict[str, int] = field(default_factory=dict)


def _digits(candidates: Sequence[str]) -> str:
    """The VAT code without its country prefix (``tm.vat_candidates``' first form)."""
    return tm.VAT_PREFIX.sub("", candidates[0])


def _best_vat_match(rows: Sequence[dict[str, Any]], candidates: Sequence[str]) -> int | None:
    """Of identifier rows, the party stored under one of ``candidates`` exactly, else under the same digits with
    any country prefix (the first by id)."""
    digits = _digits(candidates)
    exact = [r for r in rows if r.get("code_compact") in candidates]
    prefixed = [
        r
        for r in rows
        if tm.VAT_PREFIX.match(str(r.get("code_compact") or "")) and str(r.get("code_compact"))[2:] == digits
    ]
    best = exact or prefixed
    return int(best[0]["party"]) if best else None


def _register(number: str) -> dict[str, str]:
    """The trade register number (J40/1234/2020) as a party identifier of Tryton's type ``ro_onrc`` (added only
    when ``stdnum.ro.onrc`` accepts it: Tryton would refuse the whole party otherwise)."""
    return {"type": "ro_onrc", "code": "".join(number.split()).upper()}


class Parties:
    """``find_customer``, ``create_customer``, ``update_customer`` and ``iter_suppliers`` of the connector; the
    party and the addresses of a sale (``party_for``, ``address_for``)."""

    def __init__(self, tryton: TrytonSession) -> None:
        self.tryton = tryton
        self.batch: PartyBatch | None = None

    # -- a batch of orders ------------------------------------------------------------------------------

    def prefetch(self, customers: Sequence[Customer]) -> None:
        """Read what a batch of orders needs of its buyers in at most four calls: the unlinked buyers' e-mails
        (one search), their VAT codes (one search), then every party involved (one read, with the addresses a
        sale needs). ``end_batch`` forgets it all."""
        batch = PartyBatch()
        wanted = {int(c.erp_id) for c in customers if c.erp_id}
        unlinked = [c for c in customers if not c.erp_id]
        vats = {
            c.vat_code: tm.vat_candidates(c.vat_code, tm.country_of(c)) for c in unlinked if c.is_company and c.vat_code
        }
        if vats:
            domain: list[Any] = ["OR", ("code_compact", "in", sorted({v for cs in vats.values() for v in cs}))]
            domain += [("code_compact", "like", "__" + tm.like_escape(_digits(cs))) for cs in vats.values()]
            rows = self.tryton.search_read("party.identifier", domain, ["party", "code_compact"], order=[("id", "ASC")])
            for vat, candidates in vats.items():
                found = _best_vat_match(rows, candidates)
                if found is not None:
                    batch.by_vat[vat] = found
            batch.vats = set(vats)
        emails = sorted({c.email.strip().lower() for c in unlinked if c.email and c.email.strip()})
        if emails:
            domain = ["OR", *(("value", "ilike", tm.like_escape(e)) for e in emails)]
            rows = self.tryton.search_read(
                "party.contact_mechanism",
                [("type", "=", "email"), domain],
                ["party", "value"],
                order=[("id", "ASC")],
            )
            for row in rows:
                batch.by_email.setdefault(str(row.get("value") or "").strip().lower(), int(row["party"]))
            batch.emails = set(emails)
        wanted |= set(batch.by_email.values()) | set(batch.by_vat.values())
        if wanted:
            rows = self.tryton.read("party.party", "read", sorted(wanted), BATCH_PARTY_FIELDS)
            batch.rows = {int(r["id"]): r for r in rows}
        self.batch = batch

    def end_batch(self) -> None:
        self.batch = None

    def sale_party(self, party_id: int) -> dict[str, Any]:
        """The party's name, payment term and addresses (``SALE_PARTY_FIELDS``): from the batch when it read
        them, else one read (kept for the rest of the batch)."""
        if self.batch is not None and party_id in self.batch.rows:
            return self.batch.rows[party_id]
        fields = SALE_PARTY_FIELDS if self.batch is None else BATCH_PARTY_FIELDS  # a batch's rows serve _customer
        row: dict[str, Any] = self.tryton.read("party.party", "read", [party_id], fields)[0]
        if self.batch is not None:
            self.batch.rows[party_id] = row
        return row

    # -- customers --------------------------------------------------------------------------------------

    def find_customer(self, customer: Customer) -> Customer | None:
        """The party with this VAT identifier (companies) or e-mail contact mechanism, if any."""
        party_id: int | None = None
        batch = self.batch
        if customer.is_company and customer.vat_code:
            if batch is not None and customer.vat_code in batch.vats:
                party_id = batch.by_vat.get(customer.vat_code)
            else:
                party_id = self._party_by_vat(customer.vat_code, tm.country_of(customer))
        if party_id is None and customer.email:
            email = customer.email.strip().lower()
            if batch is not None and email in batch.emails:
                party_id = batch.by_email.get(email)
            else:
                rows = self.tryton.search_read(
                    "party.contact_mechanism",
                    [("type", "=", "email"), ("value", "ilike", tm.like_escape(email))],
                    ["party", "value"],
                    order=[("id", "ASC")],
                )
                exact = [r for r in rows if str(r.get("value") or "").strip().lower() == email]
                party_id = exact[0]["party"] if exact else None
        if party_id is None:
            return None
        return self._customer(party_id)

    def _party_by_vat(self, vat: str, country: str | None) -> int | None:
        """The party whose identifier is this VAT code, stored with or without its country prefix."""
        candidates = tm.vat_candidates(vat, country)
        rows = self.tryton.search_read(
            "party.identifier",
            [
                "OR",
                ("code_compact", "in", candidates),
                ("code_compact", "like", "__" + tm.like_escape(_digits(candidates))),
            ],
            ["party", "code_compact"],
            order=[("id", "ASC")],
        )
        return _best_vat_match(rows, candidates)

    def _customer(self, party_id: int) -> Customer:
        if self.batch is not None and party_id in self.batch.rows:
            return tm.customer_from(self.batch.rows[party_id])
        party = self.tryton.read("party.party", "read", [party_id], PARTY_FIELDS)[0]
        return tm.customer_from(party)

    def create_customer(self, customer: Customer) -> Customer:
        """Create the party: e-mail/phone contacts, invoice and delivery addresses, VAT identifier (companies)."""
        key = customer.email or customer.vat_code or customer.name or "customer"
        name = (customer.company_name if customer.is_company and customer.company_name else customer.name) or key
        contacts: list[dict[str, Any]] = []
        if customer.email:
            contacts.append({"type": "email", "value": customer.email})
        phone = customer.phone or (customer.billing.phone if customer.billing else None)
        if phone:
            contacts.append({"type": "phone", "value": phone})
        addresses = [
            self._address_values(address, invoice, delivery, name, key=key)
            for address, invoice, delivery in tm.address_roles(customer.billing, customer.shipping)
        ]
        values: dict[str, Any] = {"name": name}
        if contacts:
            values["contact_mechanisms"] = [["create", contacts]]
        if addresses:
            values["addresses"] = [["create", addresses]]
        identifiers = []
        if customer.is_company and customer.vat_code:
            code = customer.vat_code.replace(" ", "").upper()
            kind = "eu_vat" if tm.VAT_PREFIX.match(code) else "ro_cf"
            identifiers.append({"type": kind, "code": code})
        if customer.is_company and customer.registration_number and onrc.is_valid(customer.registration_number):
            identifiers.append(_register(customer.registration_number))
        if identifiers:
            values["identifiers"] = [["create", identifiers]]
        created = self.tryton.write("party.party", "create", [values], key=key)
        if self.batch is not None:  # a later order of the batch from the same buyer finds this party
            if customer.email and customer.email.strip().lower() in self.batch.emails:
                self.batch.by_email[customer.email.strip().lower()] = int(created[0])
            if customer.is_company and customer.vat_code in self.batch.vats:
                self.batch.by_vat[customer.vat_code] = int(created[0])
        return customer.model_copy(update={"erp_id": str(created[0])})

    def update_customer(self, customer: Customer) -> bool:
        """Add to the linked party what the shop account has and the party lacks: an address (the old ones stay:
        past invoices point at them), an e-mail or phone contact, the trade register number. Two reads, and one
        write only when something is missing."""
        if not customer.erp_id:
            raise ValueError("update_customer needs a linked party (erp_id)")
        party_id, key = int(customer.erp_id), customer.shop_id or customer.email or customer.erp_id
        party = self.tryton.read("party.party", "read", [party_id], [*PARTY_FIELDS, "contact_mechanisms.value"])[0]
        rows = self.tryton.search_read("party.address", [("party", "=", party_id)], ["street", "city", "postal_code"])
        known = {tm.address_key(r.get("street"), r.get("city"), r.get("postal_code")) for r in rows}
        name = party.get("name") or customer.name
        addresses = [
            self._address_values(address, invoice, delivery, name, key=key)
            for address, invoice, delivery in tm.address_roles(customer.billing, customer.shipping)
            if tm.address_key(address.street, address.city, address.postal_code) not in known
        ]
        values: dict[str, Any] = {}
        if addresses:
            values["addresses"] = [["create", addresses]]
        contacts = {str(c.get("value") or "").strip().lower() for c in party.get("contact_mechanisms.") or []}
        wanted = [("email", customer.email), ("phone", customer.phone)]
        new_contacts = [{"type": t, "value": v} for t, v in wanted if v and v.strip().lower() not in contacts]
        if new_contacts:
            values["contact_mechanisms"] = [["create", new_contacts]]
        codes = {str(i.get("code") or "") for i in party.get("identifiers.") or []}
        register = customer.registration_number
        if customer.is_company and register and onrc.is_valid(register) and _register(register)["code"] not in codes:
            values["identifiers"] = [["create", [_register(register)]]]
        if not values:
            return False
        self.tryton.write("party.party", "write", [party_id], values, key=key)
        return True

    def _address_values(
        self, address: Address, invoice: bool, delivery: bool, party_name: str, *, key: str
    ) -> dict[str, Any]:
        """The values of a ``party.address``; a country missing in Tryton is ``MissingInErp`` for ``key``."""
        values: dict[str, Any] = {
            "street": address.street or None,
            "city": address.city or None,
            "postal_code": address.postal_code or None,
            "invoice": invoice,
            "delivery": delivery,
        }
        recipient = address.company or address.name
        if recipient and recipient != party_name:
            values["party_name"] = recipient
        if address.country_code:
            values["country"] = self.tryton.id_of(
                "country.country",
                address.country_code.upper(),
                [("code", "=", address.country_code.upper())],
                "country",
                key=key,
            )
        return values

    def party_for(self, customer: Customer, reference: str) -> int:
        if customer.erp_id:
            return int(customer.erp_id)
        found = self.find_customer(customer)
        if found is None:
            if not (customer.email or customer.name or customer.company_name):
                raise record_error(SYSTEM, reference, "the customer has no e-mail and no name")
            found = self.create_customer(customer)
        assert found.erp_id is not None
        return int(found.erp_id)

    def address_for(self, party: dict[str, Any], address: Address | None, *, invoice: bool, key: str) -> int:
        """The address of ``party`` (a ``sale_party`` row) matching ``address`` (street, city, postal code),
        created when missing (and added to the row, so the sale's other address finds it)."""
        party_id, party_name = int(party["id"]), str(party.get("name") or "")
        rows = sorted(
            party.get("addresses.") or [], key=lambda r: (r.get("sequence") is None, r.get("sequence") or 0, r["id"])
        )
        if address is None:
            flag = "invoice" if invoice else "delivery"
            preferred = [r for r in rows if r.get(flag)] or rows
            if not preferred:
                raise record_error(SYSTEM, key, f"customer {party_name!r} has no address in Tryton or the order")
            return int(preferred[0]["id"])
        wanted = tm.address_key(address.street, address.city, address.postal_code)
        for row in rows:
            if tm.address_key(row.get("street"), row.get("city"), row.get("postal_code")) == wanted:
                return int(row["id"])
        values = self._address_values(address, invoice, not invoice, party_name, key=key)
        created = int(self.tryton.write("party.address", "create", [{**values, "party": party_id}], key=key)[0])
        party["addresses."] = [*rows, {**values, "id": created, "sequence": None}]
        return created

    def iter_suppliers(self) -> Iterator[Page[Supplier]]:
        """Parties that supply: named on a purchase, a supplier shipment or a product's supplier list, each with
        the SKUs whose supplier list names it (a variant's row: the variant's code, else the template's)."""
        ids: set[int] = set()
        for model, column in (("purchase.purchase", "party"), ("stock.shipment.in", "supplier")):
            for rows in self.tryton.keyset_pages(model, [], [column]):
                ids.update(int(r[column]) for r in rows if r.get(column))
        skus: dict[int, set[str]] = defaultdict(set)
        fields = ["party", "template.code", "product.code"]
        for rows in self.tryton.keyset_pages("purchase.product_supplier", [], fields):
            for row in rows:
                if not row.get("party"):
                    continue
                ids.add(int(row["party"]))
                code = (row.get("product.") or {}).get("code") or (row.get("template.") or {}).get("code")
                if code:
                    skus[int(row["party"])].add(str(code))
        for chunk in tm.chunks(sorted(ids), self.tryton.page_size):
            parties = self.tryton.read("party.party", "read", chunk, PARTY_FIELDS)
            page = Page[Supplier]()
            for party in parties:
                customer = tm.customer_from(party)
                page.items.append(
                    Supplier(
                        erp_id=str(party["id"]),
                        name=party.get("name") or "",
                        vat_code=customer.vat_code,
                        email=customer.email,
                        skus=sorted(skus.get(int(party["id"]), ())),
                    )
                )
            yield page
