"""The configuration file (TOML) as typed, validated settings, with secrets held by reference.

``load_config()`` finds the file (``--config``, else ``$ERPSYNC_CONFIG``, else ``./erpsync.toml``), parses
it and validates it against the models below. Every problem is a ``ConfigError`` whose text is one line naming the
file, the key and the problem. Secret fields take ``env:NAME`` (read at load time), ``prefect-secret:NAME``
(read from a Prefect Secret block on first use) or a literal value; a ``Secret`` never shows its value in
``repr``, ``str`` or a dump, and every value it resolves is registered with ``core.redact``.
"""

from __future__ import annotations

import json
import math
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, Literal, Self
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    PlainSerializer,
    PrivateAttr,
    StrictBool,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError, core_schema

from erpsync.core.redact import redact, register_secret

__all__ = [
    "DEFAULT_CONFIG_FILE",
    "DEFAULT_STATE_URL",
    "ENV_CONFIG",
    "ERP_TYPES",
    "PRODUCT_FIELDS",
    "SHIPPING_STATUSES",
    "ConfigError",
    "DatabaseUrl",
    "ErpSettings",
    "OrderSettings",
    "PrefectSettings",
    "ProductSettings",
    "ReconcileSettings",
    "Secret",
    "SecretError",
    "Settings",
    "SmartBillSettings",
    "StateSettings",
    "StockSettings",
    "StoreSettings",
    "TrytonSettings",
    "load_config",
    "percent_key",
    "resolve_config_path",
    "settings_from_dict",
]

ENV_CONFIG = "ERPSYNC_CONFIG"
DEFAULT_CONFIG_FILE = "erpsync.toml"
DEFAULT_STATE_URL = "sqlite:///.erpsync/state.db"
ERP_TYPES = ("tryton", "smartbill")

# Product fields a store can give to one side when products sync both ways.
PRODUCT_FIELDS = (
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
)

# MerchantPro order shipping_status values (docs/reference: merchantpro-api.md).
SHIPPING_STATUSES = (
    "temporary",
    "awaiting",
    "confirmed",
    "in_process",
    "shipped",
    "delivered",
    "returned",
    "cancelled",
)


# --------------------------------------------------------------------------------------------- errors


class ConfigError(Exception):
    """A problem with the configuration; ``str()`` is one line naming file, key and problem."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.splitlines()))


class SecretError(ConfigError):
    """A secret reference could not be resolved (the message names the reference, never a value)."""


def _invalid(problem: str, *subloc: str | int) -> PydanticCustomError:
    """A validation error with our own wording; ``subloc`` extends the key it is reported at."""
    return PydanticCustomError("erpsync", "{problem}", {"problem": problem, "subloc": subloc})


def _show(value: object) -> str:
    """A short, TOML-flavoured rendering of a bad value for an error message."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = value if len(value) <= 60 else value[:57] + "..."
        return repr(text)
    if isinstance(value, int | float | Decimal):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__


# --------------------------------------------------------------------------------------------- secrets

_REFERENCE = re.compile(r"^([a-z][a-z0-9-]*):(?!//)")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_BLOCK_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")  # Prefect block names: lowercase letters, digits, dashes
_SCHEMES_HINT = "use env:NAME, prefect-secret:NAME or literal:VALUE"


def _load_prefect_secret(name: str) -> str:
    """Read a Prefect Secret block's value (Prefect is imported here only, so core starts without it)."""
    from prefect.blocks.system import Secret as PrefectSecret

    load: Any = PrefectSecret.load  # dispatches to a coroutine in async contexts unless _sync=True
    block = load(name, _sync=True)
    # Secret.get() JSON-decodes the value ("0123" would come back as 123); the raw string is what we stored.
    raw = block.value.get_secret_value()
    if not isinstance(raw, str):
        raise TypeError("the Secret block does not hold a string")
    return raw


class Secret:
    """A secret held by reference (``env:NAME``, ``prefect-secret:NAME`` or a literal); ``.get()`` reads it."""

    __slots__ = ("_kind", "_name", "_origin", "_value")

    def __init__(
        self, kind: Literal["env", "prefect-secret", "literal"], name: str = "", value: str | None = None
    ) -> None:
        self._kind = kind
        self._name = name
        self._value = value
        self._origin = ""

    @classmethod
    def parse(cls, text: str) -> Self:
        """Parse a reference, resolving ``env:`` and literal values now; ``ValueError`` if it is bad."""
        match = _REFERENCE.match(text)
        scheme = match.group(1) if match else None
        rest = text[match.end() :] if match else text
        if scheme == "env":
            if not _ENV_NAME.match(rest):
                raise ValueError("env: reference needs an environment variable name, e.g. env:MP_SECRET")
            value = os.environ.get(rest)
            if value is None:
                raise ValueError(f"environment variable {rest} is not set")
            if not value:
                raise ValueError(f"environment variable {rest} is empty")
            secret = cls("env", rest)
            secret._accept(value)
            return secret
        if scheme == "prefect-secret":
            if not _BLOCK_NAME.match(rest):
                raise ValueError(
                    "prefect-secret: reference needs a Prefect block name "
                    "(lowercase letters, digits and dashes), e.g. prefect-secret:mp-main-secret"
                )
            return cls("prefect-secret", rest)
        if scheme == "literal":
            text = rest
        elif scheme is not None:
            # The text before the colon is not echoed: it may be the start of a literal secret.
            raise ValueError(f"unknown secret reference scheme ({_SCHEMES_HINT})")
        if not text:
            raise ValueError("must not be empty")
        secret = cls("literal")
        secret._accept(text)
        return secret

    @property
    def reference(self) -> str:
        """Where the value comes from: ``env:NAME``, ``prefect-secret:NAME`` or ``literal``."""
        return "literal" if self._kind == "literal" else f"{self._kind}:{self._name}"

    @property
    def resolved(self) -> bool:
        """Whether the value has been read (a ``prefect-secret:`` reference is read on first ``get()``)."""
        return self._value is not None

    def get(self) -> str:
        """The secret value, resolving a lazy reference on first use (registered for redaction)."""
        if self._value is not None:
            return self._value
        where = f"{self._origin}: " if self._origin else "secret "
        if self._kind == "env":  # only after unpickling: values are not pickled
            value = os.environ.get(self._name)
            if not value:
                raise SecretError(f"{where}{self.reference}: environment variable {self._name} is not set")
        else:
            try:
                value = _load_prefect_secret(self._name)
            except Exception as exc:
                detail = redact(str(exc).splitlines()[0] if str(exc) else "")[:200]
                raise SecretError(
                    f"{where}{self.reference}: could not load the Prefect Secret block "
                    f"({type(exc).__name__}{': ' + detail if detail else ''})"
                ) from None
            if not value:
                raise SecretError(f"{where}{self.reference}: the Prefect Secret block is empty")
        try:
            self._accept(value)
        except ValueError as exc:
            raise SecretError(f"{where}{self.reference}: {exc}") from None
        assert self._value is not None
        return self._value

    def _accept(self, value: str) -> None:
        self._check(value)
        self._register(value)
        self._value = value

    def _check(self, value: str) -> None:
        """Validate a resolved value (subclasses); raise ``ValueError`` without quoting the value."""

    def _register(self, value: str) -> None:
        register_secret(value)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.reference!r})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, Secret)
        if self._kind == "literal":
            return other._kind == "literal" and self._value == other._value
        return self.reference == other.reference

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.reference))

    def __getstate__(self) -> tuple[str, str, str | None, str]:
        # Only a literal's value travels in a pickle; references are resolved again where they are used.
        return (self._kind, self._name, self._value if self._kind == "literal" else None, self._origin)

    def __setstate__(self, state: tuple[str, str, str | None, str]) -> None:
        self._kind, self._name, self._value, self._origin = state  # type: ignore[assignment]

    @classmethod
    def _validate(cls, value: Any) -> Self:
        if isinstance(value, cls):
            return value
        if not isinstance(value, str):
            raise _invalid(f"must be a string ({_SCHEMES_HINT})")
        try:
            return cls.parse(value)
        except ValueError as exc:
            raise _invalid(str(exc)) from None

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            cls._validate,
            serialization=core_schema.plain_serializer_function_ser_schema(
                lambda secret: secret.reference, when_used="always"
            ),
        )


class DatabaseUrl(Secret):
    """A SQLAlchemy URL that may hold a password: a secret-capable string; only the password is registered."""

    def _check(self, value: str) -> None:
        if not value.startswith(("sqlite:", "sqlite+", "postgresql:", "postgresql+")):
            raise ValueError("must be a sqlite:/// or postgresql+psycopg:// URL")

    def _register(self, value: str) -> None:
        try:
            password = urlsplit(value).password
        except ValueError:
            password = None
        if password:
            # The URL carries it percent-encoded; drivers and SQLAlchemy's URL object hold it decoded.
            register_secret(password, also=(unquote(password), value))

    @staticmethod
    def _has_password(value: str) -> bool:
        try:
            return bool(urlsplit(value).password)
        except ValueError:
            return True

    @property
    def reference(self) -> str:
        """Like ``Secret.reference``, but a literal URL without a password is shown as itself."""
        if self._kind == "literal" and self._value is not None and not self._has_password(self._value):
            return self._value
        return super().reference


# --------------------------------------------------------------------------------------------- field types


def _describe_range(gt: float | None, ge: float | None, le: float | None) -> str:
    parts = []
    if ge is not None and le is not None:
        return f" between {ge:g} and {le:g}"
    if gt is not None:
        parts.append(f"greater than {gt:g}")
    if ge is not None:
        parts.append(f"at least {ge:g}")
    if le is not None:
        parts.append(f"at most {le:g}")
    return (" " + " and ".join(parts)) if parts else ""


def _number(
    kind: type[int] | type[float] | type[Decimal],
    *,
    gt: float | None = None,
    ge: float | None = None,
    le: float | None = None,
) -> Callable[[Any], Any]:
    """A validator for a TOML number of ``kind`` within bounds, with one message for every way it can fail."""
    noun = "an integer" if kind is int else "a number"
    requirement = f"must be {noun}{_describe_range(gt, ge, le)}"

    def validate(value: Any) -> Any:
        ok_type = int if kind is int else (int, float, Decimal)
        if isinstance(value, bool) or not isinstance(value, ok_type):
            raise _invalid(f"{requirement} (got {_show(value)})")
        number = Decimal(str(value)) if kind is Decimal else kind(value)
        if not math.isfinite(number):
            raise _invalid(f"{requirement} (got {_show(value)})")
        if (
            (gt is not None and not number > gt)
            or (ge is not None and not number >= ge)
            or (le is not None and not number <= le)
        ):
            raise _invalid(f"{requirement} (got {_show(value)})")
        return number

    return validate


def _text(*, allow_empty: bool = False, pattern: str | None = None, requirement: str = "") -> Callable[[Any], str]:
    """A validator for a TOML string, maybe empty, maybe matching ``pattern`` (described by ``requirement``)."""
    regex = re.compile(pattern) if pattern else None

    def validate(value: Any) -> str:
        if not isinstance(value, str):
            raise _invalid(f"must be a string (got {_show(value)})")
        if not value and allow_empty:
            return value
        if not value.strip():
            raise _invalid("must not be empty")
        if regex is not None and not regex.fullmatch(value):
            raise _invalid(f"{requirement} (got {_show(value)})")
        return value

    return validate


def _http_url(*, shop: bool = False) -> Callable[[Any], str]:
    """A validator for an http(s) base URL (trailing ``/`` dropped); a shop URL must not include ``/api``."""

    def validate(value: Any) -> str:
        if not isinstance(value, str):
            raise _invalid(f"must be an http(s) URL (got {_show(value)})")
        try:
            parts = urlsplit(value)
            has_credentials = bool(parts.username or parts.password)
            port_ok = parts.port is None or parts.port > 0
        except ValueError:
            raise _invalid(f"must be an http(s) URL (got {_show(value)})") from None
        if has_credentials:
            raise _invalid("must not contain credentials (put them in the secret keys)")
        if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
            raise _invalid(f"must be an http(s) URL, e.g. 'https://www.example.ro' (got {_show(value)})")
        if parts.query or parts.fragment:
            raise _invalid(f"must not have a query or fragment (got {_show(value)})")
        url = value.rstrip("/")
        if shop and re.search(r"/api(/|$)", parts.path):
            raise _invalid(f"must be the shop's address without the /api path (got {_show(value)})")
        return url

    return validate


def _timezone(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise _invalid(f"must be an IANA time zone name such as 'Europe/Bucharest' (got {_show(value)})")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise _invalid(f"unknown time zone {_show(value)}") from None
    return value


_CRON_FIELD = re.compile(r"^[0-9*/,\-A-Za-z?LW#]+$")


def _cron(value: Any) -> str:
    """A five-field cron expression, or "" for no schedule (run by hand only)."""
    if not isinstance(value, str):
        raise _invalid(f"must be a cron expression such as '*/5 * * * *' or \"\" (got {_show(value)})")
    fields = value.split()
    if value.strip() and (len(fields) != 5 or not all(_CRON_FIELD.match(f) for f in fields)):
        raise _invalid(f"must be a five-field cron expression such as '*/5 * * * *' (got {_show(value)})")
    return " ".join(fields)


def _string_list(
    *, min_items: int = 0, allowed: tuple[str, ...] = (), what: str = "item"
) -> Callable[[Any], list[str]]:
    """A validator for an array of distinct non-empty strings, optionally from a fixed set."""

    def validate(value: Any) -> list[str]:
        if not isinstance(value, list):
            raise _invalid(f"must be an array of strings (got {_show(value)})")
        seen: set[str] = set()
        for index, item in enumerate(value):
            if not isinstance(item, str) or not item.strip():
                raise _invalid(f"must be a non-empty string (got {_show(item)})", index)
            if allowed and item not in allowed:
                known = ", ".join(repr(a) for a in allowed)
                raise _invalid(f"unknown {what} {_show(item)} (known: {known})", index)
            if item in seen:
                raise _invalid(f"{_show(item)} is listed twice", index)
            seen.add(item)
        if len(value) < min_items:
            raise _invalid(f"must list at least {min_items} {what}{'s' if min_items > 1 else ''}")
        return list(value)

    return validate


def _vat_taxes(value: Any) -> dict[str, int]:
    """VAT percent (a decimal string key) -> shop tax_id; keys are normalised ("19.0" -> "19")."""
    if not isinstance(value, dict):
        raise _invalid(f"must be a table of VAT percent -> shop tax_id (got {_show(value)})")
    result: dict[str, int] = {}
    for key, tax_id in value.items():
        try:
            percent = Decimal(key)
        except InvalidOperation:
            percent = Decimal("NaN")
        if not percent.is_finite() or not 0 <= percent <= 100:
            raise _invalid(f"key must be a VAT percentage between 0 and 100 (got {_show(key)})", key)
        if isinstance(tax_id, bool) or not isinstance(tax_id, int) or tax_id < 1:
            raise _invalid(f"must be a shop tax_id, an integer at least 1 (got {_show(tax_id)})", key)
        normalised = percent_key(percent)
        if normalised in result:
            raise _invalid(f"the VAT percentage {normalised} is listed twice", key)
        result[normalised] = tax_id
    return result


def _json_number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def percent_key(percent: Decimal) -> str:
    """A VAT percentage as the ``vat_taxes`` keys spell it (``19.00`` -> ``"19"``, ``5.50`` -> ``"5.5"``)."""
    return format(percent.normalize(), "f")


def _string_map(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise _invalid(f"must be a table of strings (got {_show(value)})")
    for key, item in value.items():
        if not isinstance(item, str) or not item.strip():
            raise _invalid(f"must be a non-empty string (got {_show(item)})", key)
    return dict(value)


def _start_date(value: Any) -> date | None:
    if value == "" or value is None:  # None: from a dump (TOML has no null)
        return None
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise _invalid(f'must be a date YYYY-MM-DD or "" (got {_show(value)})')


Share = Annotated[float, BeforeValidator(_number(float, ge=0, le=1))]
Seconds = Annotated[float, BeforeValidator(_number(float, gt=0, le=3600))]
Name = Annotated[str, BeforeValidator(_text())]
OptionalText = Annotated[str, BeforeValidator(_text(allow_empty=True))]
HttpUrl = Annotated[str, BeforeValidator(_http_url())]
OptionalSecret = Annotated[Secret | None, BeforeValidator(lambda v: None if v == "" else v)]  # "" = none
ProductFields = Annotated[list[str], BeforeValidator(_string_list(allowed=PRODUCT_FIELDS, what="product field"))]

_STORE_NAME = r"[a-z0-9][a-z0-9_-]{0,39}"
_HOOK = r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*"
_CIF = r"(RO)?[0-9]{2,10}"
_LIMIT_PREFIX = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,59}"


# --------------------------------------------------------------------------------------------- models


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StateSettings(_Section):
    """[state]: where erpsync keeps links, cursors, pushed state, the order journal and failures."""

    url: DatabaseUrl = Field(default_factory=lambda: DatabaseUrl.parse(DEFAULT_STATE_URL))


class TrytonSettings(_Section):
    """[erp] with type = "tryton": JSON-RPC login to a Tryton server."""

    type: Literal["tryton"]
    url: HttpUrl = "http://127.0.0.1:8000"
    database: Name
    username: Name = "admin"
    password: Secret
    timeout_seconds: Seconds = 30.0
    page_size: Annotated[int, BeforeValidator(_number(int, ge=1, le=5000))] = 500
    language: Name = "en"


class SmartBillSettings(_Section):
    """[erp] with type = "smartbill": SmartBill Cloud's REST API (HTTP Basic with e-mail and token)."""

    type: Literal["smartbill"]
    url: HttpUrl = "https://ws.smartbill.ro/SBORO/api"
    username: Name
    token: Secret
    cif: Annotated[str, BeforeValidator(_text(pattern=_CIF, requirement="must be a VAT code such as 'RO12345678'"))]
    invoice_series: Name
    requests_per_10s: Annotated[int, BeforeValidator(_number(int, ge=1, le=30))] = 30
    timeout_seconds: Seconds = 30.0
    measuring_unit: Name = "buc"


ErpSettings = Annotated[TrytonSettings | SmartBillSettings, Field(discriminator="type")]


class PrefectSettings(_Section):
    """[prefect]: how erpsync names what it creates in Prefect."""

    concurrency_limit_prefix: Annotated[
        str,
        BeforeValidator(
            _text(
                pattern=_LIMIT_PREFIX,
                requirement="must be 1-60 letters, digits, '_', '.' or '-', starting with a letter or digit",
            )
        ),
    ] = "erpsync"


class ProductSettings(_Section):
    """[stores.products]: the product stream of one store."""

    direction: Literal["erp_to_shop", "shop_to_erp", "both"] = "erp_to_shop"
    create_in_shop: StrictBool = True
    create_in_erp: StrictBool = False
    erp_owns: ProductFields = Field(
        default_factory=lambda: ["name", "price", "old_price", "ean", "weight", "status", "vat"]
    )
    shop_owns: ProductFields = Field(default_factory=lambda: ["description", "images", "attributes"])
    hook: Annotated[
        str,
        BeforeValidator(
            _text(
                allow_empty=True,
                pattern=_HOOK,
                requirement="must be a dotted path 'package.module:function' or empty",
            )
        ),
    ] = ""
    vat_taxes: Annotated[dict[str, int], BeforeValidator(_vat_taxes)] = Field(
        default_factory=lambda: {"19": 1, "9": 2, "5": 3, "0": 4}
    )
    default_category_id: Annotated[int, BeforeValidator(_number(int, ge=0))] = 0

    @model_validator(mode="after")
    def _one_owner_per_field(self) -> ProductSettings:
        for field in self.shop_owns:
            if field in self.erp_owns:
                raise _invalid(f"{field!r} is also in erp_owns (a field has one owner)", "shop_owns")
        return self

    def tax_id_for(self, vat_percent: Decimal | int | str) -> int | None:
        """The shop tax_id configured for a VAT percentage, or None."""
        return self.vat_taxes.get(percent_key(Decimal(str(vat_percent))))


class StockSettings(_Section):
    """[stores.stock]: the stock stream of one store."""

    # BeforeValidator, not Plain: a BeforeValidator on Decimal trips a pydantic serializer warning in JSON mode.
    # Dumped as a JSON number (not pydantic's string) so that a dump validates again as configuration.
    safety_buffer: Annotated[
        Decimal, BeforeValidator(_number(Decimal, ge=0)), PlainSerializer(_json_number, when_used="json")
    ] = Decimal(0)
    clamp_warning: StrictBool = True


class OrderSettings(_Section):
    """[stores.orders]: the order stream of one store."""

    direction: Literal["shop_to_erp", "both"] = "shop_to_erp"
    skip_statuses: Annotated[
        list[str], BeforeValidator(_string_list(allowed=SHIPPING_STATUSES, what="shipping status"))
    ] = Field(default_factory=lambda: ["temporary"])
    max_attempts: Annotated[int, BeforeValidator(_number(int, ge=1, le=100))] = 5
    overlap_days: Annotated[int, BeforeValidator(_number(int, ge=0, le=31))] = 1
    start_date: Annotated[date | None, BeforeValidator(_start_date)] = None
    channels: Annotated[list[str], BeforeValidator(_string_list(what="channel"))] = Field(default_factory=list)
    shipping_sku: Name = "SHIPPING"
    payment_methods: Annotated[dict[str, str], BeforeValidator(_string_map)] = Field(default_factory=dict)
    # ERP reference of an imported order = this + the shop order id (distinct per store: see Settings).
    reference_prefix: Annotated[
        str,
        BeforeValidator(
            _text(allow_empty=True, pattern=r"\S{1,20}", requirement="must be at most 20 characters without spaces")
        ),
    ] = ""


class ReconcileSettings(_Section):
    """[stores.reconcile]: the guarded full stock reconciliation of one store."""

    row_count_band: Share = 0.2
    max_zero_share: Share = 0.2
    max_missing_share: Share = 0.05
    zero_unknown: StrictBool = False
    batch_size: Annotated[int, BeforeValidator(_number(int, ge=1, le=10000))] = 100


Cron = Annotated[str, BeforeValidator(_cron)]


class ScheduleSettings(_Section):
    """[stores.schedules]: when each flow runs for this store (cron in the store's time zone; "" = by hand only)."""

    orders: Cron = "*/2 * * * *"
    stock: Cron = "*/5 * * * *"
    products: Cron = "*/15 * * * *"
    reconcile: Cron = "30 2 * * *"
    receipts: Cron = "*/2 * * * *"


class StoreSettings(_Section):
    """[[stores]]: one MerchantPro shop and how it syncs with the ERP."""

    name: Annotated[
        str,
        BeforeValidator(
            _text(
                pattern=_STORE_NAME,
                requirement=("must be 1-40 lowercase letters, digits, '_' or '-', starting with a letter or digit"),
            )
        ),
    ]
    url: Annotated[str, BeforeValidator(_http_url(shop=True))]
    api_key: Secret
    api_secret: Secret
    requests_per_second: Annotated[float, BeforeValidator(_number(float, gt=0, le=50))] = 4.0
    timeout_seconds: Seconds = 30.0
    connect_timeout_seconds: Seconds = 10.0
    max_retries: Annotated[int, BeforeValidator(_number(int, ge=0, le=10))] = 5
    warehouses: Annotated[list[str], BeforeValidator(_string_list(min_items=1, what="warehouse"))] = Field(
        default_factory=lambda: ["WH"]
    )
    price_list: OptionalText = ""
    sku_prefix: OptionalText = ""
    customers_path: Annotated[
        str, BeforeValidator(_text(pattern=r"/\S*", requirement="must be a path starting with '/'"))
    ] = "/api/v2/customers"
    webhook_secret: OptionalSecret = None
    timezone: Annotated[str, BeforeValidator(_timezone)] = "Europe/Bucharest"
    products: ProductSettings = Field(default_factory=ProductSettings)
    stock: StockSettings = Field(default_factory=StockSettings)
    orders: OrderSettings = Field(default_factory=OrderSettings)
    reconcile: ReconcileSettings = Field(default_factory=ReconcileSettings)
    schedules: ScheduleSettings = Field(default_factory=ScheduleSettings)

    @model_validator(mode="after")
    def _price_list_prices_stay_in_the_erp(self) -> StoreSettings:
        products = self.products
        price_to_erp = (products.direction == "shop_to_erp" and "price" not in products.erp_owns) or (
            products.direction == "both" and "price" in products.shop_owns
        )
        if self.price_list and price_to_erp:
            raise _invalid(
                "the shop's prices come from this ERP price list, so they cannot also be written to the ERP "
                "([stores.products] writes 'price' shop -> ERP): give 'price' to erp_owns, or leave price_list \"\"",
                "price_list",
            )
        return self

    @property
    def zone(self) -> ZoneInfo:
        """The shop's local time zone."""
        return ZoneInfo(self.timezone)


class Settings(_Section):
    """The whole configuration file."""

    state: StateSettings = Field(default_factory=StateSettings)
    erp: ErpSettings
    prefect: PrefectSettings = Field(default_factory=PrefectSettings)
    stores: list[StoreSettings] = Field(default_factory=list, validate_default=True)

    _path: Path | None = PrivateAttr(default=None)
    _source: str = PrivateAttr(default="<dict>")

    @field_validator("stores", mode="after")
    @classmethod
    def _stores_present_and_unique(cls, stores: list[StoreSettings]) -> list[StoreSettings]:
        if not stores:
            raise _invalid("at least one [[stores]] entry is required")
        seen: set[str] = set()
        for index, store in enumerate(stores):
            if store.name in seen:
                raise _invalid(f"duplicate store name {store.name!r}", index, "name")
            seen.add(store.name)
        return stores

    @model_validator(mode="after")
    def _stores_fit_the_erp(self) -> Settings:
        for index, store in enumerate(self.stores):
            if store.price_list and self.erp.type == "smartbill":
                raise _invalid(
                    'SmartBill has no price lists (erpsync cannot read its catalogue): leave price_list "" '
                    'with erp.type = "smartbill"',
                    "stores",
                    index,
                    "price_list",
                )
        _distinct_reference_prefixes(self.stores)
        return self

    @property
    def path(self) -> Path | None:
        """The file these settings were loaded from (None when built from a dict)."""
        return self._path

    @property
    def source(self) -> str:
        """How error messages name where these settings came from (the file path or ``<dict>``)."""
        return self._source

    def store(self, name: str) -> StoreSettings:
        """The store called ``name``; ConfigError (listing the configured names) when there is none."""
        for store in self.stores:
            if store.name == name:
                return store
        configured = ", ".join(repr(s.name) for s in self.stores)
        raise ConfigError(f"{self._source}: stores: no store named {name!r} (configured: {configured})")


def _references_can_collide(first: str, second: str) -> bool:
    """Whether ``first`` + a shop order id can equal ``second`` + another one (shop order ids are digits)."""
    shorter, longer = sorted((first, second), key=len)
    rest = longer[len(shorter) :]
    return longer.startswith(shorter) and (not rest or rest.isdigit())


def _distinct_reference_prefixes(stores: list[StoreSettings]) -> None:
    """Stores share the one ERP: no two may give an order the same ERP reference (two shops can have one id)."""
    for index, store in enumerate(stores):
        prefix = store.orders.reference_prefix
        clash = next(
            (other for other in stores[:index] if _references_can_collide(other.orders.reference_prefix, prefix)), None
        )
        if clash is None:
            continue
        taken = [s.orders.reference_prefix for s in stores if s is not store]
        stem = store.name.upper()[:12]
        candidates = (f"{stem}-", f"{stem}{index}-", f"SHOP{index}-")
        suggestion = next(
            (c for c in candidates if not any(_references_can_collide(c, t) for t in taken)), candidates[-1]
        )
        other = clash.orders.reference_prefix
        short, long = sorted((prefix, other), key=len)
        problem = (
            f"{_show(prefix)} is also the reference prefix of store {clash.name!r}"
            if prefix == other
            else f"{_show(prefix)} and the prefix {_show(other)} of store {clash.name!r} can give two orders one "
            f"ERP reference ({short!r} + '{long[len(short) :]}7' = {long!r} + '7')"
        )
        raise _invalid(
            f"{problem}: stores sharing the ERP need distinct prefixes, because two shops can have the same order "
            f"id; e.g. reference_prefix = {json.dumps(suggestion)}",
            "stores",
            index,
            "orders",
            "reference_prefix",
        )


# --------------------------------------------------------------------------------------------- loading


def _resolve(explicit: str | Path | None) -> tuple[Path, str]:
    if explicit is not None and str(explicit) != "":
        return Path(explicit).expanduser(), "file not found"
    from_env = os.environ.get(ENV_CONFIG, "")
    if from_env:
        return Path(from_env).expanduser(), f"file not found (named by {ENV_CONFIG})"
    return Path(DEFAULT_CONFIG_FILE), f"file not found (pass --config or set {ENV_CONFIG})"


def resolve_config_path(explicit: str | Path | None) -> Path:
    """The configuration file to use: ``explicit`` (--config), else $ERPSYNC_CONFIG, else ./erpsync.toml."""
    return _resolve(explicit)[0]


def load_config(path: str | Path | None = None) -> Settings:
    """Read, parse and validate the configuration file; every problem is a one-line ConfigError."""
    file, not_found = _resolve(path)
    source = str(file)
    try:
        raw = file.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{source}: {not_found}") from None
    except IsADirectoryError:
        raise ConfigError(f"{source}: is a directory, not a file") from None
    except OSError as exc:
        raise ConfigError(f"{source}: cannot be read ({exc.strerror or type(exc).__name__})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{source}: not valid UTF-8 (byte {exc.start})") from None
    data = _parse_toml(text, source)
    return _build(data, source, file)


_TOML_POSITION = re.compile(r"^(?P<message>.*?) \(at (?:line (?P<line>\d+), column (?P<column>\d+)|end of document)\)$")


def _parse_toml(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        match = _TOML_POSITION.match(message)
        if match is None:
            raise ConfigError(f"{source}: TOML syntax error: {message}") from None
        if match.group("line"):
            line, column = int(match.group("line")), int(match.group("column"))
        else:
            line = text.count("\n") + 1
            column = len(text) - (text.rfind("\n") + 1) + 1
        raise ConfigError(f"{source}:{line}:{column}: TOML syntax error: {match.group('message')}") from None


def settings_from_dict(data: Mapping[str, Any], source: str = "<dict>") -> Settings:
    """Validate already-parsed configuration data (tests, the demo); errors name ``source``."""
    return _build(data, source, None)


def _build(data: Mapping[str, Any], source: str, path: Path | None) -> Settings:
    try:
        settings = Settings.model_validate(dict(data))
    except ValidationError as exc:
        # The first error only, and never the input values pydantic would print (a literal secret may be one).
        key, problem = _describe_error(exc.errors()[0])
        raise ConfigError(f"{source}: {key}: {problem}" if key else f"{source}: {problem}") from None
    settings._path = path
    settings._source = source
    _label_secrets(settings, "", source)
    return settings


def _label_secrets(value: object, key: str, source: str) -> None:
    """Tell every Secret where it was configured, so a late resolution failure can say so."""
    if isinstance(value, Secret):
        value._origin = f"{source}: {key}"
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            _label_secrets(getattr(value, name), f"{key}.{name}" if key else name, source)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _label_secrets(item, f"{key}[{index}]", source)


_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _format_key(loc: list[str | int]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            name = part if _BARE_KEY.match(part) else '"' + part.replace('"', '\\"') + '"'
            out += f".{name}" if out else name
    return out


def _describe_error(error: ErrorDetails) -> tuple[str, str]:
    """(key, problem) for one pydantic error, in our wording."""
    loc: list[str | int] = list(error["loc"])
    if len(loc) >= 2 and loc[0] == "erp" and loc[1] in ERP_TYPES:
        del loc[1]  # the discriminated union's tag is not a key of the file
    kind = error["type"]
    ctx: dict[str, Any] = dict(error.get("ctx") or {})
    got = error.get("input")
    if kind == "erpsync":
        loc.extend(ctx.get("subloc", ()))
        problem = str(ctx["problem"])
    elif kind == "union_tag_invalid":
        loc.append("type")
        problem = f"must be one of {ctx['expected_tags']} (got {_show(ctx['tag'])})"
    elif kind == "union_tag_not_found":
        loc.append("type")
        problem = "required key is missing"
    elif kind == "missing":
        problem = "required key is missing"
    elif kind == "extra_forbidden":
        problem = "unknown key"
    elif kind == "literal_error":
        expected = str(ctx.get("expected", "")).replace(" or ", ", ")
        problem = f"must be one of {expected} (got {_show(got)})"
    elif kind in ("model_type", "model_attributes_type", "dict_type"):
        problem = f"must be a table (got {_show(got)})"
    elif kind == "list_type":
        problem = f"must be an array (got {_show(got)})"
        if loc == ["stores"]:
            problem = f"must be an array of tables, written [[stores]] (got {_show(got)})"
    elif kind in ("bool_type", "bool_parsing"):
        problem = f"must be true or false (got {_show(got)})"
    elif kind == "string_type":
        problem = f"must be a string (got {_show(got)})"
    else:  # not expected with the validators above; pydantic's own wording, without the input
        problem = error["msg"][:1].lower() + error["msg"][1:]
    return _format_key(loc), problem
