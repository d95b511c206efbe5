"""The demo data of the dev Tryton database: constants the tests rely on, and the proteus seeding run.

Importing this module is cheap (no trytond/proteus import); `seed()` runs in a child process started by
`devservers.tryton.ensure_database` (`python -m devservers.tryton_seed CONF DB MANIFEST`), because proteus
configures trytond globally for the whole process.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

# Bump when the seeded content changes: the cached database is keyed by it.
SEED_VERSION = "3"

COMPANY_NAME = "Demo Shop SRL"
COMPANY_VAT = "RO18605420"
CURRENCY_CODE = "RON"
COUNTRY_CODE = "RO"
TIMEZONE = "Europe/Bucharest"
FISCAL_YEARS = (2025, 2026, 2027, 2028)
PAYMENT_TERM_NAME = "Direct"

# Warehouse codes; their location ids are in the manifest (`TrytonServer.manifest["warehouses"]`).
WAREHOUSE_CODES = ("WH", "WH2")
DEFAULT_WAREHOUSE = "WH"

TAX_NAMES = {
    ("customer", 19): "TVA 19% (vânzări)",
    ("customer", 9): "TVA 9% (vânzări)",
    ("supplier", 19): "TVA 19% (achiziții)",
    ("supplier", 9): "TVA 9% (achiziții)",
}
ACCOUNT_CATEGORY_NAMES = {19: "Mărfuri TVA 19%", 9: "Mărfuri TVA 9%"}


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


def _party(model: Any, country: Any, spec: SeedParty) -> Any:
    party = model(name=spec.name)
    if spec.street or spec.city:
        address = party.addresses[0] if party.addresses else party.addresses.new()
        address.street = spec.street
        address.city = spec.city
        address.postal_code = spec.postal_code
        address.country = country
    if spec.vat:
        party.identifiers.new(type="eu_vat", code=spec.vat)
    if spec.email:
        party.contact_mechanisms.new(type="email", value=spec.email)
    if spec.phone:
        party.contact_mechanisms.new(type="phone", value=spec.phone)
    party.save()
    return party


def _fiscal_years(company: Any) -> None:
    from proteus import Model
    from trytond.modules.account_invoice.tests.tools import set_fiscalyear_invoice_sequences

    fiscal_year_model = Model.get("account.fiscalyear")
    sequence_model = Model.get("ir.sequence.strict")
    sequence_type_model = Model.get("ir.sequence.type")
    (move_type,) = sequence_type_model.find([("name", "=", "Account Move")], limit=1)
    for year in FISCAL_YEARS:
        move_sequence = sequence_model(name=f"Note contabile {year}", sequence_type=move_type, company=company)
        move_sequence.save()
        fiscal_year = fiscal_year_model(
            name=str(year),
            company=company,
            move_sequence=move_sequence,
            start_date=dt.date(year, 1, 1),
            end_date=dt.date(year, 12, 31),
        )
        set_fiscalyear_invoice_sequences(fiscal_year)
        fiscal_year.save()
        fiscal_year.click("create_period")


def _taxes(company: Any, accounts: dict[str, Any]) -> dict[tuple[str, int], Any]:
    from proteus import Model

    tax_model = Model.get("account.tax")
    group_model = Model.get("account.tax.group")
    groups = {
        "customer": group_model(name="Vânzări", code="SALE", kind="sale"),
        "supplier": group_model(name="Achiziții", code="PURCHASE", kind="purchase"),
    }
    for group in groups.values():
        group.save()
    taxes = {}
    for (side, rate), name in TAX_NAMES.items():
        tax = tax_model(
            name=name,
            description=name,
            type="percentage",
            rate=Decimal(rate) / 100,
            company=company,
            group=groups[side],
            invoice_account=accounts["tax"],
            credit_note_account=accounts["tax"],
        )
        tax.save()
        taxes[(side, rate)] = tax
    return taxes


def _warehouse2() -> Any:
    from proteus import Model

    location_model = Model.get("stock.location")
    zones = {
        kind: location_model(name=f"{label} WH2", code=f"{code}2", type="storage")
        for kind, label, code in (
            ("input", "Intrare", "IN"),
            ("output", "Ieșire", "OUT"),
            ("storage", "Depozitare", "STO"),
        )
    }
    for zone in zones.values():
        zone.save()
    lost_found = location_model(name="Pierderi WH2", type="lost_found")
    lost_found.save()
    warehouse = location_model(
        name="Depozit secundar",
        code="WH2",
        type="warehouse",
        input_location=zones["input"],
        output_location=zones["output"],
        storage_location=zones["storage"],
        lost_found_location=lost_found,
    )
    warehouse.save()
    return warehouse


def _products(
    categories: dict[int, Any],
    unit: Any,
    shop_categories: dict[str, Any],
) -> dict[str, Any]:
    from proteus import Model

    template_model = Model.get("product.template")
    by_template: dict[str, list[SeedProduct]] = {}
    for spec in SEED_PRODUCTS:
        by_template.setdefault(spec.template_code, []).append(spec)
    products: dict[str, Any] = {}
    for template_code, specs in by_template.items():
        first = specs[0]
        template = template_model(
            name=first.name,
            code=template_code,
            type="goods",
            default_uom=unit,
            salable=True,
            purchasable=True,
            list_price=first.list_price,
            account_category=categories[first.vat],
        )
        shop_category = shop_categories["apparel" if template_code in VARIANT_TEMPLATE_CODES else "general"]
        # a proteus record can sit in one list only: append a fresh instance per template
        template.categories.append(Model.get("product.category")(shop_category.id))
        for index, spec in enumerate(specs):
            variant = template.products[0] if index == 0 else template.products.new()
            variant.suffix_code = spec.suffix_code
            variant.description = spec.description
            variant.cost_price = spec.cost_price
            if spec.list_price != first.list_price:
                variant.list_price = spec.list_price
            if spec.ean:
                variant.identifiers.new(type="ean", code=spec.ean)
        template.save()
        for variant, spec in zip(template.products, specs, strict=True):
            products[spec.sku] = variant
    return products


def _shipping_and_suppliers(category: Any, unit: Any, supplier: Any, products: dict[str, Any]) -> Any:
    """The shipping service product, and the supplier's product_supplier rows for SUPPLIED_SKUS."""
    from proteus import Model

    shipping = Model.get("product.template")(
        name="Transport",
        code=SHIPPING_SKU,
        type="service",
        default_uom=unit,
        salable=True,
        purchasable=False,
        list_price=Decimal(0),
        account_category=category,
    )
    shipping.save()
    product_supplier_model = Model.get("purchase.product_supplier")
    for sku in SUPPLIED_SKUS:
        product_supplier_model(template=products[sku].template, party=supplier).save()
    return shipping.products[0]


def _price_lists(company: Any) -> dict[str, Any]:
    from proteus import Model

    price_list_model = Model.get("product.price_list")
    created = {}
    for spec in PRICE_LISTS:
        price_list = price_list_model(
            name=spec.name, company=company, price="list_price", tax_included=spec.tax_included
        )
        price_list.lines.new(formula=spec.formula)
        price_list.save()
        created[spec.name] = price_list
    return created


def _inventory(location: Any, products: dict[str, Any], field: str) -> None:
    from proteus import Model

    inventory = Model.get("stock.inventory")(location=location)
    for spec in SEED_PRODUCTS:
        quantity = getattr(spec, field)
        if quantity:
            line = inventory.lines.new(product=products[spec.sku])
            line.quantity = float(quantity)
            line.expected_quantity = 0.0
    inventory.save()
    inventory.click("confirm")
    assert inventory.state == "done", inventory.state


def seed() -> dict[str, Any]:
    """Fill the (freshly activated) database the proteus config points at; return the id manifest."""
    from proteus import Model
    from trytond.modules.account.tests.tools import create_chart, get_accounts
    from trytond.modules.account_invoice.tests.tools import create_payment_term
    from trytond.modules.company.tests.tools import create_company, get_company

    currency_model = Model.get("currency.currency")
    currency = currency_model(name="Leu românesc", symbol="lei", code=CURRENCY_CODE, rounding=Decimal("0.01"))
    currency.save()
    country = Model.get("country.country")(name="România", code=COUNTRY_CODE, code3="ROU", code_numeric="642")
    country.save()

    party_model = Model.get("party.party")
    company_party = _party(
        party_model,
        country,
        SeedParty(
            "company",
            COMPANY_NAME,
            email="contact@demoshop.example",
            phone="+40215000000",
            vat=COMPANY_VAT,
            street="Str. Demo 1",
            city="București",
            postal_code="010011",
        ),
    )
    create_company(party=company_party, currency=currency)
    company = get_company()
    company.timezone = TIMEZONE
    company.save()

    employee_party = party_model(name="Administrator Demo")
    employee_party.save()
    employee = Model.get("company.employee")(party=employee_party, company=company)
    employee.save()
    user_model = Model.get("res.user")
    (admin,) = user_model.find([("login", "=", "admin")])
    admin.employees.append(employee)
    admin.employee = employee
    admin.save()

    create_chart(company)
    _fiscal_years(company)
    accounts = get_accounts(company)
    taxes = _taxes(company, accounts)

    category_model = Model.get("product.category")
    account_categories = {}
    for rate, name in ACCOUNT_CATEGORY_NAMES.items():
        category = category_model(
            name=name,
            accounting=True,
            account_expense=accounts["expense"],
            account_revenue=accounts["revenue"],
        )
        category.customer_taxes.append(taxes[("customer", rate)])
        category.supplier_taxes.append(taxes[("supplier", rate)])
        category.save()
        account_categories[rate] = category
    shop_categories = {"general": category_model(name="Diverse"), "apparel": category_model(name="Îmbrăcăminte")}
    for category in shop_categories.values():
        category.save()

    payment_term = create_payment_term()
    payment_term.name = PAYMENT_TERM_NAME
    payment_term.save()
    account_config = Model.get("account.configuration")(1)
    account_config.default_customer_payment_term = payment_term
    account_config.save()

    supplier = _party(party_model, country, SUPPLIER)
    customers = {spec.key: _party(party_model, country, spec) for spec in CUSTOMERS}

    location_model = Model.get("stock.location")
    (warehouse1,) = location_model.find([("code", "=", "WH"), ("type", "=", "warehouse")])
    warehouse1.name = "Depozit principal"
    warehouse1.save()
    warehouse2 = _warehouse2()

    (unit,) = Model.get("product.uom").find([("name", "=", "Unit")])
    products = _products(account_categories, unit, shop_categories)
    shipping = _shipping_and_suppliers(account_categories[19], unit, supplier, products)
    price_lists = _price_lists(company)
    _inventory(warehouse1.storage_location, products, "stock_wh")
    _inventory(warehouse2.storage_location, products, "stock_wh2")
    for spec in SEED_PRODUCTS:
        if not spec.active:
            # searches filter on product.active AND template.active, but a read of `active` shows the
            # product's own flag: clear both so every reader agrees
            product = products[spec.sku]
            product.active = False
            product.save()
            template = product.template
            template.active = False
            template.save()

    def zones(warehouse: Any) -> dict[str, int]:
        return {
            "warehouse": warehouse.id,
            "storage": warehouse.storage_location.id,
            "input": warehouse.input_location.id,
            "output": warehouse.output_location.id,
        }

    (customer_location,) = location_model.find([("code", "=", "CUS")])
    (supplier_location,) = location_model.find([("code", "=", "SUP")])
    return {
        "seed_version": SEED_VERSION,
        "company": company.id,
        "currency": currency.id,
        "country": country.id,
        "employee": employee.id,
        "payment_term": payment_term.id,
        "unit": unit.id,
        "warehouses": {"WH": zones(warehouse1), "WH2": zones(warehouse2)},
        "locations": {"customer": customer_location.id, "supplier": supplier_location.id},
        "taxes": {f"{side}_{rate}": tax.id for (side, rate), tax in taxes.items()},
        "parties": {"supplier": supplier.id, **{key: party.id for key, party in customers.items()}},
        "account_categories": {str(rate): category.id for rate, category in account_categories.items()},
        "product_categories": {key: category.id for key, category in shop_categories.items()},
        "products": {sku: product.id for sku, product in products.items()},
        "templates": {sku: product.template.id for sku, product in products.items()},
        "shipping_product": shipping.id,
        "price_lists": {name: price_list.id for name, price_list in price_lists.items()},
    }


def main(argv: list[str]) -> int:
    """Entry point of the seeding child process: `CONFIG DATABASE MANIFEST_PATH`."""
    config_file, database, manifest_path = argv
    from proteus import config

    config.set_trytond(database=database, user="admin", config_file=config_file)
    manifest = seed()
    Path(manifest_path).write_text(json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
