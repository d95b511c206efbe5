"""The value types of the settings: pydantic constraints, plus the few checks pydantic cannot declare.

Constraints are declared on the types (``Field(ge=..., pattern=...)``, ``Literal``); how an error is worded
comes from the bounds or from a ``Wording`` next to them (``core.config.loading`` turns pydantic's errors into
one-line messages). The models validate strictly (no number from a string, no bool as a number), which these
types rely on. The validators below are only for what pydantic has no constraint for: URLs without credentials,
IANA time zones, cron expressions, items listed twice, VAT percentages as table keys.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal, TypeVar, get_args
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError
from pydantic import AfterValidator, BeforeValidator, Field, PlainSerializer

from erpsync.core.config.errors import Wording, invalid, show
from erpsync.core.config.secrets import Secret

T = TypeVar("T")

# Product fields a store can give to one side when products sync both ways.
ProductField = Literal[
    "name",
    "description",
    "price",
    "old_price",
    "ean",
    "weight",
    "status",
    "vat",
    "category",
    "images",
    "attributes",
    "meta_title",
    "meta_description",
]
PRODUCT_FIELDS: tuple[str, ...] = get_args(ProductField)

# The shop product fields erpsync writes itself (POST/PATCH /products): a store's supplier_field cannot be one.
WRITTEN_SHOP_PRODUCT_FIELDS = frozenset(
    {
        "id",
        "type",
        "sku",
        "ext_ref",
        "name",
        "description",
        "status",
        "ean",
        "tax_id",
        "category_id",
        "images",
        "variant_attributes",
        "variants",
        "variant_options",
        "price_net",
        "price_gross",
        "old_price_net",
        "old_price_gross",
        "cost_net",
        "cost_gross",
        "weight",
        "stock",
        "allow_backorders",
        "availability_text",
        "meta_title",
        "meta_description",
    }
)


def _free_shop_field(value: str) -> str:
    """A shop product field name erpsync does not write otherwise (or "" for none)."""
    if value in WRITTEN_SHOP_PRODUCT_FIELDS:
        raise invalid(f'{show(value)} is a product field erpsync writes itself: name another field, or "" for none')
    return value


# MerchantPro order shipping_status values (docs/reference: merchantpro-api.md).
ShippingStatus = Literal[
    "temporary", "awaiting", "confirmed", "in_process", "shipped", "delivered", "returned", "cancelled"
]
SHIPPING_STATUSES: tuple[str, ...] = get_args(ShippingStatus)


def percent_key(percent: Decimal) -> str:
    """A VAT percentage as the ``vat_taxes`` keys spell it (``19.00`` -> ``"19"``, ``5.50`` -> ``"5.5"``)."""
    return format(percent.normalize(), "f")


def distinct(items: list[T]) -> list[T]:
    """The items, each listed once (pydantic has no uniqueness constraint for a list that keeps its order)."""
    for index, item in enumerate(items):
        if item in items[:index]:
            raise invalid(f"{show(item)} is listed twice", index)
    return items


def _http_url(value: str, *, shop: bool = False) -> str:
    """An http(s) base URL, trailing ``/`` dropped; a shop URL must not include ``/api``."""
    try:
        parts = urlsplit(value)
        has_credentials = bool(parts.username or parts.password)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        raise invalid(f"must be an http(s) URL (got {show(value)})") from None
    if has_credentials:
        raise invalid("must not contain credentials (put them in the secret keys)")
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        raise invalid(f"must be an http(s) URL, e.g. 'https://www.example.ro' (got {show(value)})")
    if parts.query or parts.fragment:
        raise invalid(f"must not have a query or fragment (got {show(value)})")
    if shop and re.search(r"/api(/|$)", parts.path):
        raise invalid(f"must be the shop's address without the /api path (got {show(value)})")
    return value.rstrip("/")


def _known_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise invalid(f"unknown time zone {show(value)}") from None
    return value


_CRON_START = datetime(2000, 1, 1)


def _cron(value: str) -> str:
    """A five-field cron expression (parsed by cronsim), or "" for no schedule (run by hand only)."""
    fields = value.split()
    if not fields:
        return ""
    requirement = f"must be a five-field cron expression such as '*/5 * * * *' (got {show(value)}"
    if len(fields) != 5:
        raise invalid(requirement + ")")
    expression = " ".join(fields)
    try:
        CronSim(expression, _CRON_START)
    except CronSimError as exc:
        reason = str(exc)
        raise invalid(f"{requirement}: {reason[:1].lower()}{reason[1:]})") from None
    # cronsim reads these; Prefect's scheduler (croniter) rejects them or spells "last weekday" as L5, not 5L.
    if "W" in fields[2].upper() or "L" in fields[4].upper():
        raise invalid(f"{requirement}: Prefect's scheduler takes no 'W' and no day-of-week 'L')")
    return expression


def _vat_percent_keys(value: dict[str, int]) -> dict[str, int]:
    """VAT percent keys (decimal strings, 0-100) normalised: "19.0" -> "19"; two spellings of one are an error."""
    result: dict[str, int] = {}
    for key, tax_id in value.items():
        try:
            percent = Decimal(key)
        except InvalidOperation:
            percent = Decimal("NaN")
        if not percent.is_finite() or not 0 <= percent <= 100:
            raise invalid(f"key must be a VAT percentage between 0 and 100 (got {show(key)})", key)
        normalised = percent_key(percent)
        if normalised in result:
            raise invalid(f"the VAT percentage {normalised} is listed twice", key)
        result[normalised] = tax_id
    return result


def _empty_is_none(value: Any) -> Any:
    return None if value == "" else value  # TOML has no null: "" stands for none


def _toml_decimal(value: Any) -> Any:
    """A TOML number as a Decimal (a float through its shortest repr); other values are left to fail."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return Decimal(str(value))
    return value


def json_number(value: Decimal) -> int | float:
    """A Decimal as a JSON number (pydantic would write a string), so that a JSON dump loads again."""
    return int(value) if value == value.to_integral_value() else float(value)


Share = Annotated[float, Field(ge=0, le=1)]
Seconds = Annotated[float, Field(gt=0, le=3600)]
Name = Annotated[str, Field(pattern=r"\S"), Wording("must be a non-empty string")]
OptionalText = Annotated[str, Field(pattern=r"^$|\S"), Wording('must be "" or a non-blank string')]
HttpUrl = Annotated[str, AfterValidator(_http_url), Wording("must be an http(s) URL")]
ShopUrl = Annotated[str, AfterValidator(lambda v: _http_url(v, shop=True)), Wording("must be an http(s) URL")]
TimeZoneName = Annotated[
    str,
    Field(min_length=1),
    AfterValidator(_known_timezone),
    Wording("must be an IANA time zone name such as 'Europe/Bucharest'"),
]
Cron = Annotated[str, AfterValidator(_cron), Wording("must be a cron expression such as '*/5 * * * *' or \"\"")]
OptionalSecret = Annotated[Secret | None, BeforeValidator(_empty_is_none)]
# Not strict: a dump writes the date as a string, and a dump must load again.
OptionalDate = Annotated[
    Annotated[date, Field(strict=False)] | None,
    BeforeValidator(_empty_is_none),
    Wording('must be a date YYYY-MM-DD or ""'),
]
TaxId = Annotated[int, Field(ge=1), Wording("must be a shop tax_id, an integer at least 1")]
VatTaxes = Annotated[dict[str, TaxId], AfterValidator(_vat_percent_keys)]
# None (the key left out, or "") = the shop's own tax table, read once per product run (docs/products.md).
OptionalVatTaxes = Annotated[VatTaxes | None, BeforeValidator(_empty_is_none)]
# A plain field name of the shop's product (snake_case, as the API spells its fields), or "" for none.
ShopProductField = Annotated[
    str,
    Field(pattern=r"^$|^[a-z][a-z0-9_]{0,63}$"),
    AfterValidator(_free_shop_field),
    Wording("must be a shop product field name (lowercase letters, digits and '_', starting with a letter) or \"\""),
]
ProductFields = Annotated[list[ProductField], AfterValidator(distinct), Wording(noun="product field")]
ShippingStatuses = Annotated[list[ShippingStatus], AfterValidator(distinct), Wording(noun="shipping status")]
Warehouses = Annotated[list[Name], Field(min_length=1), AfterValidator(distinct), Wording(noun="warehouse")]
Channels = Annotated[list[Name], AfterValidator(distinct), Wording(noun="channel")]
Quantity = Annotated[
    Decimal, BeforeValidator(_toml_decimal), Field(ge=0), PlainSerializer(json_number, when_used="json")
]
