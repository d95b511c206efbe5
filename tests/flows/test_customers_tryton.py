"""Issue 15, customers, on the real Tryton (the session's server) and the simulated shop: three shop accounts
(a company with a valid CUI, one with an invalid CUI, a person) become two parties and one failure naming the
CUI; a changed address updates the party once (the old address kept); an order from a linked customer reuses
the party; an anonymised account closes its link and leaves the party alone."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from erpsync.core.summary import RunState
from tests.flows.test_orders_flow import TrytonStack, make_tryton_stack  # noqa: F401 (a fixture)
from tests.tryton_fixture import unique_ro_vat


def _invalid_cui() -> str:
    valid = unique_ro_vat()
    return valid[:-1] + str((int(valid[-1]) + 1) % 10)  # the check digit off by one


def _party(t: TrytonStack, party_id: int) -> dict[str, Any]:
    fields = ["name", "identifiers.type", "identifiers.code", "addresses.street", "contact_mechanisms.value"]
    row: dict[str, Any] = t.session.call("model.party.party.read", [party_id], fields, t.session.context)[0]
    return row


def _parties_named(t: TrytonStack, name: str) -> list[int]:
    found: list[int] = t.session.call(
        "model.party.party.search", [("name", "=", name)], 0, None, None, t.session.context
    )
    return found


def test_e2e_three_accounts_two_parties_one_cui_failure_address_change_and_order_reuse(
    make_tryton_stack: Callable[..., TrytonStack],  # noqa: F811
) -> None:
    t = make_tryton_stack()
    tag = uuid.uuid4().hex[:8]
    good_cui, bad_cui = unique_ro_vat(), _invalid_cui()
    company = t.sim.add_customer(
        {
            "email": f"firma-{tag}@example.ro",
            "first_name": "Ion",
            "last_name": "Ionescu",
            "phone": "0744000111",
            "type": "company",
            "company_name": f"Firma {tag} SRL",
            "fiscal_code": good_cui,
            "reg_no": "J12/345/2020",
            "address": "Bd. Eroilor 10",
            "city": "Cluj-Napoca",
            "postal_code": "400129",
            "shipping_as_billing": False,
            "shipping_name": "Depozit",
            "shipping_address": "Str. Fabricii 9",
            "shipping_city": "Cluj-Napoca",
            "shipping_postal_code": "400620",
        }
    )
    invalid = t.sim.add_customer(
        {
            "email": f"gresit-{tag}@example.ro",
            "first_name": "Vasile",
            "type": "company",
            "company_name": f"Gresit {tag} SRL",
            "fiscal_code": bad_cui,
            "address": "Str. Mica 1",
            "city": "Iasi",
        }
    )
    person = t.sim.add_customer(
        {
            "email": f"ana-{tag}@example.ro",
            "first_name": "Ana",
            "last_name": f"Popescu {tag}",
            "phone": "0722000111",
            "address": "Str. Lalelelor 4",
            "city": "Bucuresti",
            "postal_code": "010101",
        }
    )

    first = t.run("customers")
    assert first.state is RunState.PARTIAL, first.message
    assert (first.created, first.failed) == (2, 1), first
    [failure] = t.state.open_failures("main", "customer")
    assert failure.key == str(invalid["id"]) and bad_cui in failure.error and "checksum" in failure.error
    assert _parties_named(t, f"Gresit {tag} SRL") == []  # nothing was written for it
    accounts = t.state.customer_accounts("main")
    company_party = int(accounts[str(company["id"])].erp_id or 0)
    person_party = int(accounts[str(person["id"])].erp_id or 0)
    assert _parties_named(t, f"Firma {tag} SRL") == [company_party]
    assert _parties_named(t, f"Ana Popescu {tag}") == [person_party]
    party = _party(t, company_party)
    assert sorted((i["type"], i["code"]) for i in party["identifiers."]) == sorted(
        [("eu_vat", good_cui), ("ro_onrc", "J12/345/2020")]
    )
    assert sorted(a["street"] for a in party["addresses."]) == ["Bd. Eroilor 10", "Str. Fabricii 9"]
    assert {c["value"] for c in party["contact_mechanisms."]} == {company["email"], "0744000111"}

    # The person moves: one new address on the same party, the old one kept; the next run writes nothing.
    t.sim.change_customer(person["id"], {"address": "Str. Noua 7", "postal_code": "020202"})
    second = t.run("customers")
    assert (second.created, second.updated, second.failed) == (0, 1, 1), second
    assert sorted(a["street"] for a in _party(t, person_party)["addresses."]) == ["Str. Lalelelor 4", "Str. Noua 7"]
    third = t.run("customers")
    assert (third.created, third.updated) == (0, 0) and third.erp_writes == 0, third
    assert len(_party(t, person_party)["addresses."]) == 2

    # An order from the linked company reuses its party (found through the same link, no new party).
    sku = t.product()
    order_id = t.order(
        sku,
        {
            "customer_email": company["email"],
            "billing_type": "company",
            "billing_name": "Ion Ionescu",
            "billing_company": f"Firma {tag} SRL",
            "billing_fiscal_code": good_cui,
            "billing_address": "Bd. Eroilor 10",
            "billing_city": "Cluj-Napoca",
            "billing_postal_code": "400129",
            "billing_country_code": "RO",
            "shipping_as_billing": True,
        },
    )
    orders = t.run("orders")
    assert orders.created == 1, orders.message
    assert t.sales(order_id)[0]["party"] == company_party
    assert _parties_named(t, f"Firma {tag} SRL") == [company_party]

    # The shop anonymises the person: the link closes, the party and its addresses stay as they were.
    t.sim.anonymise_customer(person["id"])
    gone = t.run("customers")
    assert "1 link(s) closed" in gone.message, gone.message
    assert not t.state.customer_accounts("main")[str(person["id"])].open
    assert t.state.find_link("main", "customer", erp_id=str(person_party)) is None
    assert len(_party(t, person_party)["addresses."]) == 2
