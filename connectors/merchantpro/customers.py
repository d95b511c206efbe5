"""Shop customer accounts -> canonical ``ShopCustomer`` records.

The reference confirms that customers exist in the API (filterable by group, status, registration date) but
not their path or fields. *(inference)*: the path is ``/api/v2/customers`` (configurable: ``customers_path``);
an account carries ``email``, ``first_name``/``last_name``, ``phone``, ``type`` (``individual``/``company``),
``company_name``, ``fiscal_code`` (CUI), ``reg_no`` (trade register number), a billing address as flat fields
(``address``, ``city``, ``state``, ``postal_code``, ``country_code``) and a delivery address as the ``shipping_*``
set with ``shipping_as_billing`` — named as the order's ``billing_*``/``shipping_*`` fields are; ``modified[gte]``
filters by change date (date-only, as for products and orders); an account deleted or anonymised by the shop
comes back with ``anonymized`` true and its personal fields emptied. Several names are accepted for each field.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from erpsync.connectors.merchantpro.mapping import MappingError, parse_timestamp, shop_id
from erpsync.core.models import Address, Customer, ShopCustomer

COMPANY_KEYS = ("company_name", "company", "billing_company")
VAT_KEYS = ("fiscal_code", "vat_code", "cui", "cif", "billing_fiscal_code")
REG_KEYS = ("reg_no", "registration_number", "reg_com", "billing_reg_no")
GONE_KEYS = ("anonymized", "anonymised", "deleted")
GONE_STATUSES = frozenset({"deleted", "anonymized", "anonymised"})


def _text(row: Mapping[str, Any], keys: Iterable[str]) -> str | None:
    for key in keys:
        value = row.get(key)
        if value not in (None, ""):
            return str(value).strip()
    return None


def _name(row: Mapping[str, Any]) -> str:
    joined = " ".join(str(row[k]).strip() for k in ("first_name", "last_name") if row.get(k))
    return joined or str(row.get("name") or "").strip()


def _billing(row: Mapping[str, Any], name: str, company: str | None) -> Address | None:
    street = _text(row, ("address", "billing_address"))
    city = _text(row, ("city", "billing_city"))
    if not (street or city):
        return None
    return Address(
        name=name,
        company=company,
        street=street or "",
        city=city or "",
        region=_text(row, ("state", "billing_state")) or "",
        postal_code=_text(row, ("postal_code", "billing_postal_code")) or "",
        country_code=(_text(row, ("country_code", "billing_country_code")) or "RO").upper(),
        phone=_text(row, ("phone", "billing_phone")),
    )


def _shipping(row: Mapping[str, Any], billing: Address | None, name: str) -> Address | None:
    if row.get("shipping_as_billing", True) is not False or not row.get("shipping_address"):
        return billing
    return Address(
        name=_text(row, ("shipping_name",)) or name,
        street=_text(row, ("shipping_address",)) or "",
        city=_text(row, ("shipping_city",)) or "",
        region=_text(row, ("shipping_state",)) or "",
        postal_code=_text(row, ("shipping_postal_code",)) or "",
        country_code=(_text(row, ("shipping_country_code",)) or "RO").upper(),
        phone=_text(row, ("shipping_phone",)),
    )


def customer_from_shop(row: Mapping[str, Any]) -> ShopCustomer:
    """One shop customer account as a ``ShopCustomer`` (``MappingError`` when it has no id)."""
    account = shop_id(row.get("id"))
    if account is None:
        raise MappingError("customer without id")
    modified = parse_timestamp(row.get("date_modified") or row.get("date_created"), "date_modified")
    gone = any(row.get(k) is True for k in GONE_KEYS) or str(row.get("status") or "").lower() in GONE_STATUSES
    name = _name(row)
    is_company = str(row.get("type") or "individual").lower() not in ("individual", "person", "")
    company = _text(row, COMPANY_KEYS) if is_company else None
    billing = _billing(row, name, company)
    email = _text(row, ("email",))
    customer = Customer(
        email=email if email and "@" in email else None,
        name=name,
        phone=_text(row, ("phone",)),
        is_company=is_company,
        company_name=company or (name if is_company else None),
        vat_code=_text(row, VAT_KEYS) if is_company else None,
        registration_number=_text(row, REG_KEYS) if is_company else None,
        billing=billing,
        shipping=_shipping(row, billing, name),
        shop_id=account,
    )
    return ShopCustomer(customer=customer, modified_at=modified, anonymised=gone)
