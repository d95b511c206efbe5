"""The MerchantPro simulator's field rules: field sets, value validation, filter parsing, the error reply."""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable, Iterable
from datetime import date
from typing import Any

from erpsync.testing import _catalogue as cat

try:
    import orjson as _orjson
except ImportError:  # pragma: no cover - orjson comes with prefect
    _orjson = None  # type: ignore[assignment]

Json = dict[str, Any]

API_PREFIX = "/api/v2/"
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
LIST_CONTROLS = frozenset({"start", "limit", "fields", "include", "sort", "ignore_nonexistent_fields"})
WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})
ORDER_STATUS_ACTIONS = ("in_process", "shipped", "delivered", "returned", "cancelled")
SHIPPING_STATUSES = ("temporary", "awaiting", "confirmed", *ORDER_STATUS_ACTIONS)
PAYMENT_STATUSES = ("awaiting", "paid")

DATE_OPS: dict[str, Callable[[str, str], bool]] = {
    "gte": operator.ge,
    "gt": operator.gt,
    "lte": operator.le,
    "lt": operator.lt,
}
DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})


def date_filters(*names: str) -> frozenset[str]:
    """The bracket filter names `name[gte|gt|lte|lt]` for each name."""
    return frozenset(f"{name}[{op}]" for name in names for op in DATE_OPS)


PRODUCT_FILTERS = frozenset({"sku", "ean", "ext_ref", "ids", "type", "status", "category_id"}) | date_filters(
    "created", "modified"
)
ORDER_FILTERS = frozenset(
    {"created_after", "created_before", "ids", "shipping_status", "payment_status", "payment_method_code"}
) | date_filters("created", "modified")
CUSTOMER_FILTERS = frozenset({"email", "group_id", "status", "newsletter", "country_code", "city"}) | date_filters(
    "created", "modified"
)
CATEGORY_FILTERS = frozenset({"parent_id", "status"})

PRODUCT_SIDELOADS = frozenset({"variants", "images"})
ORDER_SIDELOADS = frozenset({"line_items"})

PRODUCT_KEYS = (
    "id", "type", "sku", "ean", "ext_ref", "name", "description", "meta_title", "meta_description", "url",
    "status", "inventory_enabled", "stock", "stock_reserved", "allow_backorders", "availability_text", "price_net",
    "price_gross",
    "old_price_net", "old_price_gross", "cost_net", "cost_gross", "tax_id", "tax_value", "tax_name",
    "quantity_multiplier", "weight", "category_id", "category_name", "categories", "images", "image_url",
    "variant_attributes", "variants", "date_created", "date_modified",
)  # fmt: skip
PRODUCT_READONLY = frozenset(
    {"id", "stock_reserved", "tax_value", "tax_name", "category_name", "image_url", "variant_attributes",
     "date_created", "date_modified"}
)  # fmt: skip
PRODUCT_WRITABLE = frozenset(PRODUCT_KEYS) - PRODUCT_READONLY
PARENT_FORBIDDEN = ("stock", "price_net", "price_gross", "old_price_net", "old_price_gross", "weight")
VARIANT_WRITABLE = frozenset(
    {"id", "sku", "ean", "ext_ref", "inventory_enabled", "stock", "price_net", "price_gross",
     "old_price_net", "old_price_gross", "weight", "variant_options"}
)  # fmt: skip

BILLING_TEXT = (
    "billing_name", "billing_company", "billing_fiscal_code", "billing_reg_no",
    "billing_country_code", "billing_state", "billing_city", "billing_address", "billing_postal_code",
    "billing_phone",
)  # fmt: skip
SHIPPING_TEXT = (
    "shipping_name", "shipping_country_code", "shipping_state", "shipping_city", "shipping_address",
    "shipping_postal_code", "shipping_phone",
)  # fmt: skip
ORDER_WRITABLE = frozenset(
    {"payment_status", "payment_method_code", "payment_date", "paid_amount", "shipping_status",
     "shipping_method_id", "shipping_amount", "shipping_awb", "customer_email", "customer_note", "currency",
     "meta_fields", "billing_type", "shipping_as_billing", "line_items", "discount_amount", *BILLING_TEXT,
     *SHIPPING_TEXT}
)  # fmt: skip
ORDER_READONLY = frozenset(
    {"id", "sys_id", "public_code", "channel_id", "source_type", "payment_method_name", "shipping_method_name",
     "shipping_tax_percent", "shipping_tax_amount", "subtotal_including_tax", "subtotal_excluding_tax",
     "tax_amount", "total_amount", "has_returns", "customer_id", "date_created", "date_modified",
     "carrier_tracking", "proforma_url", "info_url", "invoice_series", "invoice_number", "invoice_url", "tags"}
)  # fmt: skip
LINE_WRITABLE = frozenset(
    {"id", "item_type", "product_id", "product_sku", "product_name", "quantity", "unit_price_net",
     "unit_price_gross", "product_tax_percent", "meta_fields"}
)  # fmt: skip
LINE_READONLY = frozenset(
    {"product_ean", "product_stock", "backorder_quantity", "product_tax_name", "unit_tax_amount",
     "line_subtotal_net", "line_tax_amount", "line_subtotal_gross", "weight", "status"}
)  # fmt: skip
# Order lines that are not products (*inference*: the API document says only that vouchers, discounts and fees
# exist). Any item_type other than "product" is such a line: no product, no stock; these types are discounts
# (their price is stored negative), any other type is a fee or charge priced as sent. See docs/simulators.md.
DISCOUNT_ITEM_TYPES = frozenset({"discount", "voucher", "coupon", "gift_card"})
CATEGORY_WRITABLE = frozenset({"name", "parent_id", "position", "status", "url"})
# Customer accounts (*inference*: docs/simulators.md): the billing address as flat fields beside country_code and
# city, the delivery address as the order's shipping_* set; reg_no is the trade register number. DELETE
# anonymises the account (anonymized: true, personal fields emptied) rather than forgetting it.
CUSTOMER_ADDRESS = ("address", "state", "postal_code")
CUSTOMER_SHIPPING = (
    "shipping_name", "shipping_address", "shipping_city", "shipping_state", "shipping_postal_code",
    "shipping_country_code", "shipping_phone",
)  # fmt: skip
CUSTOMER_WRITABLE = frozenset(
    {"email", "first_name", "last_name", "phone", "type", "company_name", "fiscal_code", "reg_no", "group_id",
     "status", "newsletter", "country_code", "city", "shipping_as_billing", *CUSTOMER_ADDRESS, *CUSTOMER_SHIPPING}
)  # fmt: skip
CUSTOMER_READONLY = frozenset({"id", "name", "anonymized", "date_created", "date_modified"})
CUSTOMER_PERSONAL = (
    "first_name", "last_name", "name", "phone", "company_name", "fiscal_code", "reg_no", "city",
    *CUSTOMER_ADDRESS, *CUSTOMER_SHIPPING,
)  # fmt: skip


def dumps(payload: Any) -> bytes:
    """Serialise a reply body as compact UTF-8 JSON."""
    if _orjson is not None:
        return _orjson.dumps(payload)
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


class ApiError(Exception):
    """An error reply: an HTTP status and the body `{"error": {"name": ..., "message": ...}}`."""

    def __init__(self, status: int, name: str, message: str, headers: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__(f"{status} {name}: {message}")
        self.status = status
        self.name = name
        self.message = message
        self.headers = list(headers)

    def body(self) -> Json:
        """The JSON error body."""
        return {"error": {"name": self.name, "message": self.message}}


def bad(name: str, message: str) -> ApiError:
    """A 400 error reply."""
    return ApiError(400, name, message)


# --- field validation -------------------------------------------------------------------------------------


def is_number(value: Any) -> bool:
    """A JSON number (not a bool, not NaN)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and value == value


def number(name: str, value: Any, *, nullable: bool = False, positive: bool = False) -> float | int | None:
    """Validate a number >= 0 (> 0 when positive); None passes when nullable."""
    if value is None and nullable:
        return None
    if not is_number(value) or value < 0 or (positive and value == 0):
        bound = "> 0" if positive else ">= 0"
        raise bad("invalid_value", f"Field `{name}` must be a number {bound}, got {json.dumps(value)}")
    return value


def signed_number(name: str, value: Any) -> float | int:
    """Validate a number of either sign (the price of a discount line is negative)."""
    if not is_number(value):
        raise bad("invalid_value", f"Field `{name}` must be a number, got {json.dumps(value)}")
    return value


def text(name: str, value: Any, *, nullable: bool = True, max_length: int = 65535) -> str | None:
    """Validate a string (non-empty unless nullable); None passes when nullable."""
    if value is None and nullable:
        return None
    if not isinstance(value, str) or (not nullable and not value.strip()) or len(value) > max_length:
        raise bad("invalid_value", f"Field `{name}` must be a non-empty string, got {json.dumps(value)}")
    return value


def choice(name: str, value: Any, options: Iterable[str]) -> str:
    """Validate one of a fixed set of words."""
    options = tuple(options)
    if value not in options:
        raise bad("invalid_value", f"Field `{name}` must be one of {', '.join(options)}, got {json.dumps(value)}")
    return value


def boolean(name: str, value: Any) -> bool:
    """Validate a JSON boolean."""
    if not isinstance(value, bool):
        raise bad("invalid_value", f"Field `{name}` must be true or false, got {json.dumps(value)}")
    return value


def integer(name: str, value: Any, *, nullable: bool = False) -> int | None:
    """Validate an integer (not a bool); None passes when nullable."""
    if value is None and nullable:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise bad("invalid_value", f"Field `{name}` must be an integer, got {json.dumps(value)}")
    return value


def writable(payload: Json, writable: frozenset[str], readonly: frozenset[str], ignore_unknown: bool) -> Json:
    """The writable fields of a payload; read-only ones are dropped, unknown ones fail (or are dropped)."""
    result = {}
    for name, value in payload.items():
        if name in writable:
            result[name] = value
        elif name not in readonly and not ignore_unknown:
            raise bad("undefined_field", f"No such field `{name}` defined")
    return result


def pair_prices(obj: Json, net_key: str, gross_key: str, sent: Json, vat: float, tax_changed: bool) -> None:
    """Keep a net/gross pair consistent with the VAT when only one side (or the tax) was written."""
    if net_key in sent and gross_key in sent:
        return
    if gross_key in sent or (tax_changed and net_key not in sent):
        gross = obj.get(gross_key)
        obj[net_key] = None if gross is None else cat.net_from_gross(gross, vat)
    elif net_key in sent:
        net = obj.get(net_key)
        obj[gross_key] = None if net is None else cat.gross_from_net(net, vat)


def date_filter_value(name: str, value: str) -> str:
    """Validate a date-only filter value (YYYY-MM-DD); anything else is a 400."""
    if DATE_ONLY.fullmatch(value):
        try:
            date.fromisoformat(value)
            return value
        except ValueError:
            pass
    raise bad("invalid_filter_value", f"Filter `{name}` takes a date (YYYY-MM-DD), got `{value}`")


def date_predicate(key: str, compare: Callable[[str, str], bool], value: str) -> Callable[[Json], bool]:
    """A predicate comparing the local calendar date of `obj[key]` with `value`."""
    return lambda obj: compare(obj[key][:10], value)


def date_predicates(filters: Iterable[tuple[str, str]], shown: str | None = None) -> list[Callable[[Json], bool]]:
    """Predicates for `created[op]` / `modified[op]` filters: calendar-date comparisons in shop local time."""
    predicates = []
    for name, raw in filters:
        if "[" not in name:
            continue
        base, op = name[:-1].split("[")
        key = "date_created" if base == "created" else "date_modified"
        predicates.append(date_predicate(key, DATE_OPS[op], date_filter_value(shown or name, raw)))
    return predicates


def enum_filter(name: str, raw: str, options: Iterable[str]) -> frozenset[str]:
    """Parse a comma list filter whose values must come from `options`."""
    values = frozenset(v.strip() for v in raw.split(",") if v.strip())
    options = frozenset(options)
    if not values or not values <= options:
        raise bad("invalid_filter_value", f"Filter `{name}` takes {', '.join(sorted(options))}, got `{raw}`")
    return values


def int_filter(name: str, raw: str) -> int:
    """Parse an integer filter value."""
    try:
        return int(raw)
    except ValueError:
        raise bad("invalid_filter_value", f"Filter `{name}` takes an integer, got `{raw}`") from None


def int_list_filter(name: str, raw: str) -> list[int]:
    """Parse a comma list of integers."""
    return [int_filter(name, part.strip()) for part in raw.split(",") if part.strip()]
