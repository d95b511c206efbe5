"""Pure rules of the customers stream: the key a buyer is matched by, the CUI check, what counts as a change.

The same key links a shop buyer to an ERP party for the customers flow and for the order import
(``core.order_rules.customer_key``): ``vat:<CUI>`` for a company with one, else ``email:<address>``.
"""

from __future__ import annotations

import hashlib
import json

from stdnum.eu import vat as eu_vat
from stdnum.exceptions import ValidationError
from stdnum.ro import cui as ro_cui

from erpsync.core.models import Address, Customer


def key_of(customer: Customer) -> str | None:
    """How a buyer is known across orders and accounts: ``vat:<code>`` (company with one), else ``email:...``."""
    if customer.is_company and customer.vat_code:
        return "vat:" + "".join(customer.vat_code.split()).upper()
    if customer.email:
        return f"email:{customer.email}"
    return None


def cui_problem(vat_code: str) -> str | None:
    """Why this CUI / VAT code is not valid (checksum, length, characters), or None when it is.

    Romanian codes (``RO`` + CUI, or the bare CUI) are checked by ``stdnum.ro.cui``; other EU VAT numbers
    (a two-letter prefix) by ``stdnum.eu.vat``.
    """
    code = "".join(vat_code.split()).upper()
    try:
        if code[:2].isalpha() and code[:2] != "RO":
            eu_vat.validate(code)
        else:
            ro_cui.validate(code[2:] if code.startswith("RO") else code)
    except ValidationError as exc:
        return f"CUI {vat_code!r} is not valid: {str(exc).rstrip('.').lower()}"
    return None


def customer_problem(customer: Customer) -> str | None:
    """What stops this buyer from becoming a party before anything is written, or None."""
    if customer.is_company and customer.vat_code:
        return cui_problem(customer.vat_code)
    if not (customer.email or customer.name or customer.company_name):
        return "the customer has no e-mail and no name"
    return None


def _address(address: Address | None) -> list[str] | None:
    if address is None:
        return None
    return [address.street.strip(), address.city.strip(), address.postal_code.strip(), address.country_code]


def account_digest(customer: Customer) -> str:
    """A digest of what the customers flow writes to a party (contacts, identifiers, addresses): a change of
    anything else in the shop account costs no ERP call."""
    data = {
        "key": key_of(customer),
        "name": customer.company_name if customer.is_company else customer.name,
        "phone": customer.phone,
        "reg": customer.registration_number,
        "billing": _address(customer.billing),
        "shipping": _address(customer.shipping),
    }
    blob = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:32]
