"""The settings models: one frozen pydantic model per table of the configuration file.

Field constraints are declared on the fields (see ``core.config.fields``); the validators here are the rules
that span fields or stores: one owner per product field, where prices come from, distinct store names and
distinct order reference prefixes.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from erpsync.core.config.alerts import AlertSettings
from erpsync.core.config.errors import ConfigError, Wording, invalid, show
from erpsync.core.config.fields import (
    Channels,
    Cron,
    HttpUrl,
    Name,
    OptionalDate,
    OptionalSecret,
    OptionalText,
    OptionalVatTaxes,
    ProductField,
    ProductFields,
    Quantity,
    Seconds,
    Share,
    ShippingStatus,
    ShippingStatuses,
    ShopProductField,
    ShopUrl,
    TimeZoneName,
    Warehouses,
    percent_key,
)
from erpsync.core.config.files import FilesSettings
from erpsync.core.config.secrets import DatabaseUrl, Secret

DEFAULT_STATE_URL = "sqlite:///.erpsync/state.db"
ERP_TYPES = ("tryton", "smartbill", "oblio", "files")
ERP_NAMES = {"tryton": "Tryton", "smartbill": "SmartBill", "oblio": "Oblio", "files": "the files ERP"}

_ERP_OWNS: tuple[ProductField, ...] = ("name", "price", "old_price", "ean", "weight", "status", "vat")
_SHOP_OWNS: tuple[ProductField, ...] = ("description", "images", "attributes")
_SKIP_STATUSES: tuple[ShippingStatus, ...] = ("temporary",)

_STORE_NAME = r"[a-z0-9][a-z0-9_-]{0,39}"
_HOOK = r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*"


class _Section(BaseModel):
    # Strict: numbers are never read from strings, booleans are true/false only.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class StateSettings(_Section):
    """[state]: where erpsync keeps links, cursors, pushed state, the order journal and failures."""

    url: DatabaseUrl = Field(default_factory=lambda: DatabaseUrl.parse(DEFAULT_STATE_URL))
    movement_days: int = Field(default=90, ge=1, le=3650)


class TrytonSettings(_Section):
    """[erp] with type = "tryton": JSON-RPC login to a Tryton server."""

    type: Literal["tryton"]
    url: HttpUrl = "http://127.0.0.1:8000"
    database: Name
    username: Name = "admin"
    password: Secret
    timeout_seconds: Seconds = 30.0
    page_size: int = Field(default=500, ge=1, le=5000)
    language: Name = "en"
    # A link to an invoice for the shop order, "{id}" = the invoice's id, "{number}" = its number (e.g. a report
    # service or the web client: "https://erp.example.ro/#erp/model/account.invoice/{id}"); "" = no link.
    invoice_url: str = ""


class SmartBillSettings(_Section):
    """[erp] with type = "smartbill": SmartBill Cloud's REST API (HTTP Basic with e-mail and token)."""

    type: Literal["smartbill"]
    url: HttpUrl = "https://ws.smartbill.ro/SBORO/api"
    username: Name
    token: Secret
    cif: Annotated[str, Field(pattern=r"^(RO)?[0-9]{2,10}$"), Wording("must be a VAT code such as 'RO12345678'")]
    invoice_series: Name
    requests_per_10s: int = Field(default=30, ge=1, le=30)
    timeout_seconds: Seconds = 30.0
    measuring_unit: Name = "buc"
    document: Literal["invoice", "estimate"] = "invoice"  # what a shop order becomes: an invoice or a proforma
    # shop payment method code -> SmartBill payment type ("Card", "Ordin plata", "Mandat postal", "Alta incasare"):
    # a paid order of a mapped method gets its payment registered against its invoice (/payment); unmapped: none.
    payments: dict[str, Name] = Field(default_factory=dict)


class OblioSettings(_Section):
    """[erp] with type = "oblio": Oblio's REST API (an OAuth2 client-credentials token, renewed before it expires)."""

    type: Literal["oblio"]
    url: HttpUrl = "https://www.oblio.eu/api"
    email: Name  # the account's login e-mail: the token's client_id
    secret: Secret  # the API secret (Oblio: Setari > Date cont): the token's client_secret
    cif: Annotated[str, Field(pattern=r"^(RO)?[0-9]{2,10}$"), Wording("must be a VAT code such as 'RO12345678'")]
    invoice_series: Name
    document: Literal["invoice", "proforma"] = "invoice"  # what a shop order becomes
    # Oblio locks the token for 10 minutes above 3 requests/s: every client of one token shares this pace.
    requests_per_second: float = Field(default=3.0, gt=0, le=3)
    timeout_seconds: Seconds = 30.0
    measuring_unit: Name = "buc"
    webhook_secret: OptionalSecret = None  # verifies Oblio's stock webhooks (a trigger of the stock sync)


ErpSettings = Annotated[TrytonSettings | SmartBillSettings | OblioSettings | FilesSettings, Field(discriminator="type")]


class PrefectSettings(_Section):
    """[prefect]: how erpsync names what it creates in Prefect."""

    concurrency_limit_prefix: Annotated[
        str,
        Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,59}$"),
        Wording("must be 1-60 letters, digits, '_', '.' or '-', starting with a letter or digit"),
    ] = "erpsync"


class ProductSettings(_Section):
    """[stores.products]: the product stream of one store."""

    direction: Literal["erp_to_shop", "shop_to_erp", "both"] = "erp_to_shop"
    create_in_shop: bool = True
    create_in_erp: bool = False
    erp_owns: ProductFields = Field(default_factory=lambda: list(_ERP_OWNS))
    shop_owns: ProductFields = Field(default_factory=lambda: list(_SHOP_OWNS))
    hook: Annotated[
        str,
        Field(pattern=rf"^$|^{_HOOK}$"),
        Wording("must be a dotted path 'package.module:function' or empty"),
    ] = ""
    # VAT percent -> shop tax_id; None = from the shop's tax table (GET /taxonomy/taxes), read once per run.
    vat_taxes: OptionalVatTaxes = None
    default_category_id: int = Field(default=0, ge=0)
    # The shop product field that gets the product's main ERP supplier (e.g. "manufacturer"); "" = none. The API
    # reference names no such field: sent with ignore_nonexistent_fields=1, never read back (docs/products.md).
    supplier_field: ShopProductField = ""

    @model_validator(mode="after")
    def _one_owner_per_field(self) -> ProductSettings:
        for field in self.shop_owns:
            if field in self.erp_owns:
                raise invalid(f"{field!r} is also in erp_owns (a field has one owner)", "shop_owns")
        return self

    @model_validator(mode="after")
    def _supplier_goes_to_the_shop(self) -> ProductSettings:
        if self.supplier_field and self.direction == "shop_to_erp":
            raise invalid(
                "the supplier is written ERP -> shop, and this store's products go shop -> ERP only "
                '(direction "shop_to_erp"): set direction to "erp_to_shop" or "both", or supplier_field ""',
                "supplier_field",
            )
        return self

    def tax_id_for(self, vat_percent: Decimal | int | str) -> int | None:
        """The shop tax_id configured for a VAT percentage, or None (also when the shop's table is used)."""
        if self.vat_taxes is None:
            return None
        return self.vat_taxes.get(percent_key(Decimal(str(vat_percent))))


class StockSettings(_Section):
    """[stores.stock]: the stock stream of one store."""

    safety_buffer: Quantity = Decimal(0)
    clamp_warning: bool = True


class OrderSettings(_Section):
    """[stores.orders]: the order stream of one store."""

    direction: Literal["shop_to_erp", "both"] = "shop_to_erp"
    skip_statuses: ShippingStatuses = Field(default_factory=lambda: list(_SKIP_STATUSES))
    max_attempts: int = Field(default=5, ge=1, le=100)
    overlap_days: int = Field(default=1, ge=0, le=31)
    start_date: OptionalDate = None
    channels: Channels = Field(default_factory=list)
    shipping_sku: Name = "SHIPPING"
    # ERP service products that carry an order's discount (voucher, coupon, order discount) and fee lines.
    discount_sku: Name = "DISCOUNT"
    fee_sku: Name = "FEE"
    payment_methods: dict[str, Name] = Field(default_factory=dict)
    # ERP reference of an imported order = this + the shop order id (distinct per store: see Settings).
    reference_prefix: Annotated[
        str, Field(pattern=r"^\S{0,20}$"), Wording("must be at most 20 characters without spaces")
    ] = ""
    # false: imported orders stay quotations in the ERP for a person to confirm (edits in the shop are applied
    # until then); true: confirmed and processed at once (shipments and invoices made, stock reserved).
    confirm: bool = True
    # true: a return's goods are received into the warehouse at once (the shop's stock follows in the same run);
    # false: a person receives the return shipment in the ERP when the parcel arrives.
    receive_returns: bool = True


class ReconcileSettings(_Section):
    """[stores.reconcile]: the guarded full stock reconciliation of one store."""

    row_count_band: Share = 0.2
    max_zero_share: Share = 0.2
    max_missing_share: Share = 0.05
    zero_unknown: bool = False
    batch_size: int = Field(default=100, ge=1, le=10000)


class CustomerSettings(_Section):
    """[stores.customers]: shop customer accounts -> linked ERP parties."""

    enabled: bool = True
    overlap_days: int = Field(default=1, ge=0, le=31)


class PurchaseSettings(_Section):
    """[stores.purchases]: goods on the way (confirmed purchases) shown in the shop as orderable with a date."""

    enabled: bool = False
    max_lead_days: int = Field(default=30, ge=1, le=365)
    availability_text: Annotated[
        str, Field(max_length=200, pattern=r"\{date\}"), Wording("must contain {date} and be at most 200 characters")
    ] = "Disponibil la comanda, livrare de la {date}"


class ScheduleSettings(_Section):
    """[stores.schedules]: when each flow runs for this store (cron in the store's time zone; "" = by hand only)."""

    orders: Cron = "*/2 * * * *"
    stock: Cron = "*/5 * * * *"
    products: Cron = "*/15 * * * *"
    reconcile: Cron = "30 2 * * *"
    receipts: Cron = "*/2 * * * *"
    watch: Cron = "*/30 * * * *"  # the store watcher: each run watches 30 minutes, then the next one takes over
    customers: Cron = "*/30 * * * *"
    purchases: Cron = "*/30 * * * *"
    prune: Cron = "15 3 * * *"


class StoreSettings(_Section):
    """[[stores]]: one MerchantPro shop and how it syncs with the ERP."""

    name: Annotated[
        str,
        Field(pattern=rf"^{_STORE_NAME}$"),
        Wording("must be 1-40 lowercase letters, digits, '_' or '-', starting with a letter or digit"),
    ]
    url: ShopUrl
    api_key: Secret
    api_secret: Secret
    requests_per_second: float = Field(default=4.0, gt=0, le=50)
    timeout_seconds: Seconds = 30.0
    connect_timeout_seconds: Seconds = 10.0
    max_retries: int = Field(default=5, ge=0, le=10)
    warehouses: Warehouses = Field(default_factory=lambda: ["WH"])
    price_list: OptionalText = ""
    sku_prefix: OptionalText = ""
    customers_path: Annotated[str, Field(pattern=r"^/\S*$"), Wording("must be a path starting with '/'")] = (
        "/api/v2/customers"
    )
    webhook_secret: OptionalSecret = None
    timezone: TimeZoneName = "Europe/Bucharest"
    products: ProductSettings = Field(default_factory=ProductSettings)
    stock: StockSettings = Field(default_factory=StockSettings)
    orders: OrderSettings = Field(default_factory=OrderSettings)
    reconcile: ReconcileSettings = Field(default_factory=ReconcileSettings)
    customers: CustomerSettings = Field(default_factory=CustomerSettings)
    purchases: PurchaseSettings = Field(default_factory=PurchaseSettings)
    schedules: ScheduleSettings = Field(default_factory=ScheduleSettings)

    @model_validator(mode="after")
    def _price_list_prices_stay_in_the_erp(self) -> StoreSettings:
        products = self.products
        price_to_erp = (products.direction == "shop_to_erp" and "price" not in products.erp_owns) or (
            products.direction == "both" and "price" in products.shop_owns
        )
        if self.price_list and price_to_erp:
            raise invalid(
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
    alerts: AlertSettings | None = None  # [alerts]: optional (docs/operations.md, "Alerts")
    stores: list[StoreSettings] = Field(default_factory=list, validate_default=True)

    _path: Path | None = PrivateAttr(default=None)
    _source: str = PrivateAttr(default="<dict>")

    @field_validator("stores", mode="after")
    @classmethod
    def _stores_present_and_unique(cls, stores: list[StoreSettings]) -> list[StoreSettings]:
        if not stores:
            raise invalid("at least one [[stores]] entry is required")
        seen: set[str] = set()
        for index, store in enumerate(stores):
            if store.name in seen:
                raise invalid(f"duplicate store name {store.name!r}", index, "name")
            seen.add(store.name)
        return stores

    @model_validator(mode="after")
    def _stores_fit_the_erp(self) -> Settings:
        for index, store in enumerate(self.stores):
            if store.price_list and self.erp.type in ("smartbill", "oblio", "files"):
                raise invalid(
                    f'{ERP_NAMES[self.erp.type]} has no price lists erpsync can use: leave price_list "" '
                    f'with erp.type = "{self.erp.type}"',
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
            f"{show(prefix)} is also the reference prefix of store {clash.name!r}"
            if prefix == other
            else f"{show(prefix)} and the prefix {show(other)} of store {clash.name!r} can give two orders one "
            f"ERP reference ({short!r} + '{long[len(short) :]}7' = {long!r} + '7')"
        )
        raise invalid(
            f"{problem}: stores sharing the ERP need distinct prefixes, because two shops can have the same order "
            f"id; e.g. reference_prefix = {json.dumps(suggestion)}",
            "stores",
            index,
            "orders",
            "reference_prefix",
        )
