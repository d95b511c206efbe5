"""[erp] with type = "files": a desktop ERP (SAGA, WinMentor classic, Ciel, Nexus ...) reached through files.

The ERP drops its stock/price export (CSV, XLSX or DBF) into an inbox; erpsync writes one file per shop order
into an outbox for the ERP to import. Both are a local folder or an ``sftp://user@host[:port]/path`` URL whose
password or private key is a secret reference. See docs/files.md.
"""

from __future__ import annotations

import codecs
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from erpsync.core.config.errors import Wording, invalid, show
from erpsync.core.config.fields import Name, OptionalSecret, OptionalText, Share

# The canonical columns a stock/price file can carry (``columns`` maps them to the file's own headers).
FILE_COLUMNS = ("sku", "quantity", "warehouse", "price", "vat", "name", "ean", "reserved")
REQUIRED_COLUMNS = ("sku", "quantity")

# Presets: the headers of the exports named. Every one is an *(inference)*: neither SAGA nor WinMentor publish
# their export layouts; these are the names their stock lists are commonly exported with (docs/files.md).
PRESETS: dict[str, dict[str, str]] = {
    # SAGA C. "Articole"/stocks DBF export (dBase, CP1250) *(inference)*
    "saga": {
        "sku": "COD",
        "name": "DENUMIRE",
        "quantity": "STOC",
        "price": "PRET_VANZ",
        "vat": "TVA",
        "ean": "COD_BARE",
        "warehouse": "GESTIUNE",
    },
    # WinMentor classic stock list exported to CSV/XLSX (semicolon, decimal comma, CP1250) *(inference)*
    "winmentor": {
        "sku": "CodExtern",
        "name": "Denumire",
        "quantity": "Stoc",
        "price": "PretVanzare",
        "vat": "CotaTVA",
        "ean": "CodBare",
        "warehouse": "Gestiune",
    },
    # the neutral layout erpsync documents for any other ERP or an integrator's own export
    "generic": {"sku": "sku", "quantity": "quantity", "warehouse": "warehouse", "price": "price", "vat": "vat"},
}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def _folder(value: str) -> str:
    """A local folder path, or ``sftp://user@host[:port]/path`` without a password (that is a secret key)."""
    text = value.strip()
    if not text:
        raise invalid("must be a folder path or an sftp://user@host/path URL")
    if "://" not in text:
        return text
    try:
        parts = urlsplit(text)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        raise invalid(f"must be an sftp://user@host[:port]/path URL (got {show(text)})") from None
    if parts.scheme != "sftp" or not parts.hostname or not port_ok:
        raise invalid(f"must be a local folder or an sftp://user@host[:port]/path URL (got {show(text)})")
    if parts.password:
        raise invalid("must not contain a password: put it in [erp] password as a secret reference")
    if not parts.username:
        raise invalid(f"needs the user name: sftp://user@{parts.hostname}/path (got {show(text)})")
    return text


def _encoding(value: str) -> str:
    try:
        codecs.lookup(value)
    except LookupError:
        raise invalid(f"unknown encoding {show(value)} (e.g. 'cp1250', 'utf-8', 'utf-8-sig')") from None
    return value


def _columns(value: dict[str, str]) -> dict[str, str]:
    for key, header in value.items():
        if key not in FILE_COLUMNS:
            raise invalid(f"unknown column {show(key)} (known: {', '.join(FILE_COLUMNS)})", key)
        if not header.strip() and key in REQUIRED_COLUMNS:
            raise invalid("must name the file's column", key)
    return value


FolderUrl = Annotated[str, AfterValidator(_folder), Wording("must be a folder path or an sftp://user@host/path URL")]
Encoding = Annotated[str, AfterValidator(_encoding), Wording("must be a text encoding such as 'cp1250'")]
ColumnMap = Annotated[dict[str, str], AfterValidator(_columns)]
OneChar = Annotated[str, Field(min_length=1, max_length=1), Wording("must be one character, e.g. ';'")]


class StockFileSettings(_Section):
    """[erp.stock]: the stock/price export the ERP drops into the inbox."""

    pattern: Name = "*.csv"  # file names (glob, case-insensitive) of the export in the inbox
    format: Literal["auto", "csv", "xlsx", "dbf"] = "auto"  # auto: by the file's extension
    preset: Literal["", "saga", "winmentor", "generic"] = "generic"
    columns: ColumnMap = Field(default_factory=dict)  # canonical -> the file's header; over the preset's
    encoding: Encoding = "utf-8-sig"  # CSV and DBF text (desktop ERPs often write cp1250)
    delimiter: OneChar = ";"
    decimal: Literal[".", ","] = "."
    thousands: Literal["", ".", ",", " "] = ""
    sheet: OptionalText = ""  # XLSX: the sheet's name ("" = the first)
    warehouse: Name = "WH"  # the warehouse of every row when the file has no warehouse column
    prices_include_vat: bool = True
    # the guard: row count within this share of the last accepted file; at most this share of the SKUs that were
    # above zero in it may drop to zero
    row_count_band: Share = 0.2
    max_zero_share: Share = 0.2

    @model_validator(mode="after")
    def _decimal_is_not_thousands(self) -> StockFileSettings:
        if self.thousands == self.decimal:
            raise invalid(f"thousands separator {show(self.thousands)} is also the decimal mark", "thousands")
        if self.delimiter == self.decimal and self.format in ("auto", "csv"):
            raise invalid(f"delimiter {show(self.delimiter)} is also the decimal mark", "delimiter")
        return self

    def mapping(self) -> dict[str, str]:
        """Canonical column -> the file's header: the preset's, then ``columns`` over it ("" drops one)."""
        merged = {**PRESETS.get(self.preset, {}), **self.columns}
        return {key: header for key, header in merged.items() if header.strip()}


class OrderFileSettings(_Section):
    """[erp.orders]: how each shop order is written into the outbox."""

    format: Literal["csv"] = "csv"
    prefix: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{0,30}$"), Wording("must be letters, digits, '_.-'")] = (
        "comanda-"
    )
    encoding: Encoding = "utf-8"
    delimiter: OneChar = ";"
    decimal: Literal[".", ","] = "."
    shipping_sku: Name = "TRANSPORT"  # the service line shipping is written as


# What the words of a status export stand for (case-insensitive) *(inference: the words desktop ERPs and
# integrators' scripts commonly write; extend with [erp.status] states)*.
STATUS_WORDS: dict[str, str] = {
    "facturat": "invoiced",
    "facturata": "invoiced",
    "invoiced": "invoiced",
    "expediat": "shipped",
    "expediata": "shipped",
    "shipped": "shipped",
    "livrat": "delivered",
    "livrata": "delivered",
    "delivered": "delivered",
    "anulat": "cancelled",
    "anulata": "cancelled",
    "cancelled": "cancelled",
    "canceled": "cancelled",
}
StatusState = Literal["open", "invoiced", "shipped", "delivered", "cancelled"]


class StatusFileSettings(_Section):
    """[erp.status]: an optional export of order statuses (order reference -> status, invoice, AWB)."""

    pattern: OptionalText = ""  # "" = the ERP exports no statuses
    format: Literal["auto", "csv", "xlsx", "dbf"] = "auto"
    encoding: Encoding = "utf-8-sig"
    delimiter: OneChar = ";"
    sheet: OptionalText = ""
    # canonical -> the file's header: reference (required), status, invoice, invoice_date, awb, carrier
    columns: dict[str, str] = Field(
        default_factory=lambda: {
            "reference": "reference",
            "status": "status",
            "invoice": "invoice",
            "awb": "awb",
            "carrier": "carrier",
        }
    )
    states: dict[str, StatusState] = Field(default_factory=dict)  # the export's words, over STATUS_WORDS

    def words(self) -> dict[str, str]:
        return {**STATUS_WORDS, **{k.strip().lower(): v for k, v in self.states.items()}}


class FilesSettings(_Section):
    """[erp] with type = "files": the inbox the ERP exports into, the outbox it imports from."""

    type: Literal["files"]
    inbox: FolderUrl
    outbox: FolderUrl
    password: OptionalSecret = None  # SFTP password (a secret reference)
    private_key: OptionalSecret = None  # SFTP private key, the key file's text (a secret reference)
    known_hosts: OptionalText = ""  # a known_hosts file; "" = the server's host key is not checked
    cache_dir: Name = ".erpsync/files"  # a local copy of the last accepted file of each kind
    timeout_seconds: Annotated[float, Field(gt=0, le=600)] = 30.0
    # the complete-file rule: a file is taken only once "<name>.done" is beside it (docs/files.md)
    complete: Literal["done"] = "done"
    stock: StockFileSettings = Field(default_factory=StockFileSettings)
    orders: OrderFileSettings = Field(default_factory=OrderFileSettings)
    status: StatusFileSettings = Field(default_factory=StatusFileSettings)

    @model_validator(mode="after")
    def _sftp_has_credentials(self) -> FilesSettings:
        for key in ("inbox", "outbox"):
            if getattr(self, key).startswith("sftp://") and self.password is None and self.private_key is None:
                raise invalid("an sftp:// folder needs [erp] password or private_key (a secret reference)", key)
        return self
