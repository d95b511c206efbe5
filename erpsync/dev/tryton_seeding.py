"""The proteus seeding run of the dev Tryton database: writes the data of `tryton_seed` into it.

`seed()` runs in a child process started by `erpsync.dev.tryton.ensure_database`
(`python -m erpsync.dev.tryton_seeding CONF DB MANIFEST`), because proteus configures trytond globally for the
whole process.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

from erpsync.dev.tryton_seed import (
    ACCOUNT_CATEGORY_NAMES,
    COMPANY_NAME,
    COMPANY_VAT,
    COUNTRY_CODE,
    CURRENCY_CODE,
    CUSTOMERS,
    DISCOUNT_SKU,
    FEE_SKU,
    FISCAL_YEARS,
    PAYMENT_TERM_NAME,
    PRICE_LISTS,
    SEED_PRODUCTS,
    SEED_VERSION,
    SHIPPING_SKU,
    SUPPLIED_SKUS,
    SUPPLIER,
    TAX_NAMES,
    TIMEZONE,
    VARIANT_TEMPLATE_CODES,
    SeedParty,
    SeedProduct,
)


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


def _service(name: str, code: str, category: Any, unit: Any) -> Any:
    """A salable service product (shipping, discount, fee lines go on one)."""
    from proteus import Model

    service = Model.get("product.template")(
        name=name,
        code=code,
        type="service",
        default_uom=unit,
        salable=True,
        purchasable=False,
        list_price=Decimal(0),
        account_category=category,
    )
    service.save()
    return service.products[0]


def _shipping_and_suppliers(category: Any, unit: Any, supplier: Any, products: dict[str, Any]) -> Any:
    """The shipping service product, and the supplier's product_supplier rows for SUPPLIED_SKUS."""
    from proteus import Model

    shipping = _service("Transport", SHIPPING_SKU, category, unit)
    product_supplier_model = Model.get("purchase.product_supplier")
    for sku in SUPPLIED_SKUS:
        product_supplier_model(template=products[sku].template, party=supplier).save()
    return shipping


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
    discount = _service("Discount", DISCOUNT_SKU, account_categories[19], unit)
    fee = _service("Taxă", FEE_SKU, account_categories[19], unit)
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
        "discount_product": discount.id,
        "fee_product": fee.id,
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
