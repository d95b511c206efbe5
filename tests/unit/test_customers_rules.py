"""Customers stream, pure parts: the CUI check, the matching key, the digest, the shop account mapping."""

from __future__ import annotations

from erpsync.connectors.merchantpro.customers import customer_from_shop
from erpsync.core.customers import account_digest, cui_problem, customer_problem, key_of
from erpsync.core.models import Address, Customer


def test_cui_checksum_is_checked_with_or_without_ro() -> None:
    assert cui_problem("RO18547290") is None and cui_problem("18547290") is None
    assert cui_problem(" ro 18547290 ") is None
    bad = cui_problem("RO18547291")
    assert bad is not None and "RO18547291" in bad and "check digit" in bad
    assert cui_problem("RO12A45") is not None
    assert cui_problem("DE136695976") is None and cui_problem("DE136695977") is not None  # other EU VAT numbers


def test_a_company_with_an_invalid_cui_is_refused_a_person_is_not_checked() -> None:
    company = Customer(email="a@b.ro", name="X", is_company=True, company_name="X SRL", vat_code="RO18547291")
    assert "CUI 'RO18547291'" in (customer_problem(company) or "")
    assert customer_problem(Customer(email="a@b.ro", name="Ana")) is None
    assert customer_problem(Customer()) == "the customer has no e-mail and no name"


def test_key_is_cui_for_companies_else_email_and_digest_follows_addresses_only() -> None:
    company = Customer(email="A@B.ro", is_company=True, company_name="X", vat_code="ro 18547290")
    assert key_of(company) == "vat:RO18547290"
    assert key_of(Customer(email="A@B.ro")) == "email:a@b.ro" and key_of(Customer(name="n")) is None
    home = Customer(email="a@b.ro", name="Ana", billing=Address(street="Str 1", city="Cluj"))
    moved = home.model_copy(update={"billing": Address(street="Str 2", city="Cluj")})
    assert account_digest(home) != account_digest(moved)
    assert account_digest(home) == account_digest(home.model_copy(update={"shop_id": "9"}))


def test_shop_account_mapping_company_addresses_and_anonymised() -> None:
    row = {
        "id": 7,
        "email": "Ion@Firma.ro",
        "first_name": "Ion",
        "last_name": "Pop",
        "type": "company",
        "company_name": "Firma SRL",
        "fiscal_code": "RO18547290",
        "reg_no": "J12/345/2020",
        "address": "Bd. Eroilor 10",
        "city": "Cluj",
        "postal_code": "400129",
        "shipping_as_billing": False,
        "shipping_address": "Str. Fabricii 9",
        "shipping_city": "Cluj",
        "date_modified": "2026-12-01T10:00:00+02:00",
    }
    account = customer_from_shop(row)
    c = account.customer
    assert (c.shop_id, c.email, c.is_company, c.vat_code, c.registration_number) == (
        "7",
        "ion@firma.ro",
        True,
        "RO18547290",
        "J12/345/2020",
    )
    assert c.billing is not None and c.billing.street == "Bd. Eroilor 10" and c.billing.company == "Firma SRL"
    assert c.shipping is not None and c.shipping.street == "Str. Fabricii 9"
    assert account.modified_at is not None and account.modified_at.utcoffset() is not None
    assert not account.anonymised
    gone = customer_from_shop({"id": 8, "email": "anonymized-8@invalid", "anonymized": True})
    assert gone.anonymised and gone.customer.billing is None
