"""The demo data of the dev Tryton database: the constants the tests rely on.

Importing this module is cheap (no trytond/proteus import). `tryton_seeding` writes this data into a fresh
database through proteus; the cached database is keyed by `SEED_VERSION` and the source of both modules.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

# Bump when the seeded content changes: the cached database is keyed by it.
SEED_VERSION = "4"

COMPANY_NAME = "Demo Shop SRL"
COMPANY_VAT = "RO18605420"
CURRENCY_CODE = "RON"
COUNTRY_CODE = "RO"
TIMEZONE = "Europe/Bucharest"
FISCAL_YEARS = (2025, 2026, 2027, 2028)
PAYMENT_TERM_NAME = "Direct"


def company_today() -> dt.date:
    """Today as the seeded company's Tryton dates it (Europe/Bucharest), not the machine's local date."""
    return dt.datetime.now(ZoneInfo(TIMEZONE)).date()


# Warehouse codes; their location ids are in the manifest (`TrytonServer.manifest["warehouses"]`).
WAREHOUSE_CODES = ("WH", "WH2")
DEFAULT_WAREHOUSE = "WH"

# 19/9 (before 2025-08-01) carry the seeded products; 21/11 (the rates since) are there for orders at today's
# rates (discount and fee lines are booked at the rate they carry).
TAX_NAMES = {
    ("customer", 19): "TVA 19% (vânzări)",
    ("customer", 9): "TVA 9% (vânzări)",
    ("supplier", 19): "TVA 19% (achiziții)",
    ("supplier", 9): "TVA 9% (achiziții)",
    ("customer", 21): "TVA 21% (vânzări)",
    ("customer", 11): "TVA 11% (vânzări)",
    ("supplier", 21): "TVA 21% (achiziții)",
    ("supplier", 11): "TVA 11% (achiziții)",
}
ACCOUNT_CATEGORY_NAMES = {19: "Mărfuri TVA 19%", 9: "Mărfuri TVA 9%", 21: "Mărfuri TVA 21%", 11: "Mărfuri TVA 11%"}


@dataclass(frozen=True)
class SeedParty:
    """A party the seed creates (customers and the supplier)."""

    key: str
    name: str
    email: str | None = None
    phone: str | None = None
    vat: str | None = None
    street: str | None = None
    city: str | None = None
    postal_code: str | None = None


SUPPLIER = SeedParty(
    "supplier",
    "Furnizor Demo SRL",
    email="comenzi@furnizor-demo.example",
    phone="+40212000100",
    vat="RO33456780",
    street="Str. Industriilor 5",
    city="Cluj-Napoca",
    postal_code="400001",
)
CUSTOMERS = (
    SeedParty(
        "client_company",
        "Client Firma SRL",
        email="achizitii@clientfirma.example",
        phone="+40213000200",
        vat="RO44278913",
        street="Bd. Unirii 10",
        city="București",
        postal_code="030167",
    ),
    SeedParty(
        "client_person",
        "Ion Popescu",
        email="ion.popescu@example.com",
        phone="+40722000300",
        street="Str. Florilor 3",
        city="Iași",
        postal_code="700001",
    ),
    SeedParty("client_email_only", "Maria Ionescu", email="maria.ionescu@example.com"),
)


@dataclass(frozen=True)
class SeedProduct:
    """One seeded `product.product` (a variant); `sku` is its `code` = template code + suffix code."""

    sku: str
    template_code: str
    suffix_code: str | None
    name: str
    description: str
    list_price: Decimal
    cost_price: Decimal
    vat: int
    stock_wh: int
    stock_wh2: int = 0
    ean: str | None = None
    active: bool = True


_BASIC_NAMES = (
    "Cană ceramică albă",
    "Tricou bumbac simplu",
    "Rucsac urban 20L",
    "Sticlă apă inox 750ml",
    "Caiet A5 dictando",
    "Pix gel albastru",
    "Lampă birou LED",
    "Mouse wireless",
    "Tastatură compactă",
    "Cablu USB-C 1m",
    "Încărcător 20W",
    'Husă laptop 15"',
    "Căști in-ear",
    "Boxă portabilă",
    "Suport telefon auto",
    "Baterie externă 10000mAh",
    "Prosop bumbac 50x90",
    "Set pahare 6 buc",
    "Tocător bambus",
    "Cuțit bucătar 20cm",
    "Umbrelă pliabilă",
    "Portofel piele",
    "Curea piele 110cm",
    "Ochelari soare",
    "Șosete sport 3 perechi",
    "Carte de bucate",
    "Puzzle 1000 piese",
    "Joc de societate",
    "Ceai verde 100g",
    "Cafea boabe 1kg",
)
# Stock in WH: a few products at zero; WH2 holds every third product.
_ZERO_IN_WH = frozenset({5, 17, 26})
INACTIVE_SKU = "TRY-0030"
# A service product the Tryton connector puts shipping on (connector option `shipping_sku`).
SHIPPING_SKU = "SHIPPING"
# The service products discount and fee lines go on (connector options `discount_sku`, `fee_sku`).
DISCOUNT_SKU = "DISCOUNT"
FEE_SKU = "FEE"
# Basic products the seeded supplier delivers (purchase.product_supplier): makes it a supplier for readers.
SUPPLIED_SKUS = ("TRY-0001", "TRY-0002", "TRY-0003", "TRY-0004", "TRY-0005")


@dataclass(frozen=True)
class SeedPriceList:
    """A sale price list (`product.price_list`, module sale_price_list): one line for every product."""

    name: str
    factor: Decimal  # the price is the list price times this, rounded half-up to the cent
    tax_included: bool  # True: the formula gives the price with VAT (gross); False: without (net)

    @property
    def formula(self) -> str:
        """The Tryton formula of its one line (``list_price`` is the product's list price)."""
        return f"(list_price * Decimal('{self.factor}')).quantize(Decimal('0.01'), rounding='ROUND_HALF_UP')"

    def price(self, list_price: Decimal) -> Decimal:
        """What the list gives for a product of this list price (net, or gross when tax_included)."""
        return (list_price * self.factor).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


# Per-store price lists (a store's `price_list` names one): "Cluj" = list price x 0.95 (net); "Retail" = list
# price x 1.25 with VAT included (gross).
CLUJ_PRICE_LIST = SeedPriceList("Cluj", Decimal("0.95"), tax_included=False)
RETAIL_PRICE_LIST = SeedPriceList("Retail", Decimal("1.25"), tax_included=True)
PRICE_LISTS = (CLUJ_PRICE_LIST, RETAIL_PRICE_LIST)


def _ean13(body12: str) -> str:
    """Complete a 12-digit body with its EAN-13 check digit."""
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body12))
    return body12 + str((10 - total % 10) % 10)


def _basic_products() -> tuple[SeedProduct, ...]:
    products = []
    for i, name in enumerate(_BASIC_NAMES, start=1):
        sku = f"TRY-{i:04d}"
        list_price = Decimal(9 + i * 7) + Decimal("0.90")
        inactive = sku == INACTIVE_SKU
        products.append(
            SeedProduct(
                sku=sku,
                template_code=sku,
                suffix_code=None,
                name=name,
                description=f"{name} — produs demo {i} pentru sincronizarea erpsync.",
                list_price=list_price,
                cost_price=(list_price * Decimal("0.6")).quantize(Decimal("0.01")),
                vat=9 if name.startswith(("Ceai", "Cafea", "Carte")) else 19,
                stock_wh=0 if (i in _ZERO_IN_WH or inactive) else (i * 37) % 97 + 3,
                stock_wh2=0 if inactive else (i * 11 % 40 if i % 3 == 0 else 0),
                ean=_ean13(f"594000{i:06d}") if i <= 10 else None,
                active=not inactive,
            )
        )
    return tuple(products)


def _variant_products() -> tuple[SeedProduct, ...]:
    families = (
        ("TRY-TSHIRT", "Tricou logo", Decimal("59.90"), ("S", "M", "L"), (12, 0, 30)),
        ("TRY-HOODIE", "Hanorac cu glugă", Decimal("149.00"), ("S", "M", "L"), (4, 9, 0)),
        ("TRY-SHOE", "Pantofi sport", Decimal("289.50"), ("40", "42", "44"), (6, 15, 2)),
    )
    products = []
    for template_code, name, price, sizes, stocks in families:
        for j, (size, stock) in enumerate(zip(sizes, stocks, strict=True)):
            variant_price = price + (Decimal(10) if j == 2 else Decimal(0))  # the largest size costs more
            products.append(
                SeedProduct(
                    sku=f"{template_code}-{size}",
                    template_code=template_code,
                    suffix_code=f"-{size}",
                    name=name,
                    description=f"{name}, mărimea {size}.",
                    list_price=variant_price,
                    cost_price=(variant_price * Decimal("0.5")).quantize(Decimal("0.01")),
                    vat=19,
                    stock_wh=stock,
                    stock_wh2=3 if j == 1 else 0,
                )
            )
    return tuple(products)


BASIC_PRODUCTS = _basic_products()
VARIANT_PRODUCTS = _variant_products()
SEED_PRODUCTS: tuple[SeedProduct, ...] = BASIC_PRODUCTS + VARIANT_PRODUCTS
SEED_PRODUCTS_BY_SKU = {p.sku: p for p in SEED_PRODUCTS}
VARIANT_TEMPLATE_CODES = ("TRY-TSHIRT", "TRY-HOODIE", "TRY-SHOE")
