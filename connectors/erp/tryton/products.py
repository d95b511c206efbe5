"""Products: Tryton's templates read in pages (variants grouped), created with their variants, updated by field.

A template is a ``Product`` (``erp_id`` = template id); with several variants (``product.product``) its SKU is the
template code and each variant's SKU is its own code (template code + suffix code); with one variant it is a
basic product whose SKU is that variant's code. Prices are Tryton's list prices (net), or with the store's price
list each product's sale price under it; the VAT rate comes from the customer taxes of the account category.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

from erpsync.connectors.erp.tryton import mapping as tm
from erpsync.connectors.erp.tryton.rpc import SYSTEM
from erpsync.connectors.erp.tryton.session import STORABLE_TYPES, TrytonSession
from erpsync.connectors.errors import record_error
from erpsync.core.models import Page, Product, ProductStatus, ProductSupplier, RowError

log = logging.getLogger("erpsync.tryton")

TEMPLATE_FIELDS = ["code", "name", "list_price", "account_category", "active", "salable", "last_modified_at"]
VARIANT_FIELDS = [
    "code",
    "suffix_code",
    "template",
    "list_price",
    "list_price_used",
    "description",
    "active",
    "last_modified_at",
    "identifiers.type",
    "identifiers.code",
]
SUPPLIER_MODULE, SUPPLIER_MODEL = "purchase", "purchase.product_supplier"  # a Tryton that only sells has neither
SUPPLIER_FIELDS = ["template", "party", "party.name"]
# Tryton's order of a template's supplier list (sequence_ordered: empty sequences first), ties by id.
SUPPLIER_ORDER = [("sequence", "ASC NULLS FIRST"), ("id", "ASC")]


class Products:
    """``iter_products``, ``create_product`` and ``update_product`` of the connector."""

    def __init__(self, tryton: TrytonSession) -> None:
        self.tryton = tryton

    def _variant_read(self) -> tuple[list[str], dict[str, Any] | None, tm.PriceList | None]:
        """Fields and context of variant reads: with a price list, its sale price (``sale_price_uom``) too."""
        price_list = self.tryton.price_list()
        if price_list is None:
            return VARIANT_FIELDS, None, None
        # Tryton's sale price of one unit in the sale unit under that list (product.get_sale_price).
        return [*VARIANT_FIELDS, "sale_price_uom"], {"price_list": price_list.id, "quantity": 1}, price_list

    def main_suppliers(self, template_ids: list[int]) -> dict[int, ProductSupplier]:
        """The main supplier of each of these templates that has one (one call, whatever their number; none and
        no call without ``trytond-purchase``)."""
        if not self.tryton.has_module(SUPPLIER_MODULE):
            return {}
        rows = self.tryton.search_read(
            SUPPLIER_MODEL,
            # A deactivated template's supplier rows are inactive too: its product still carries its supplier.
            [("template", "in", template_ids), ("active", "in", [True, False])],
            SUPPLIER_FIELDS,
            order=SUPPLIER_ORDER,
        )
        suppliers: dict[int, ProductSupplier] = {}
        for row in rows:
            party = row.get("party.") or {}
            if row.get("party") and int(row["template"]) not in suppliers:
                suppliers[int(row["template"])] = ProductSupplier(
                    erp_id=str(row["party"]), name=str(party.get("name") or "")
                )
        return suppliers

    def iter_products(self, *, changed_since: datetime | None = None) -> Iterator[Page[Product]]:
        """Templates in pages of ``page_size`` (3 calls a page: templates, variants, suppliers): one ``Product``
        each, variants grouped, with its main supplier.

        With a price list its prices are the products' prices; an edit of the list since ``changed_since``
        makes this read the whole catalogue (the products themselves did not change). A product whose supplier
        list changed (a row added or edited, the party renamed) counts as changed; a row deleted does not
        (Tryton keeps no trace of it): a full read finds that.
        """
        domain: list[Any] = [("active", "in", [True, False]), ("type", "in", STORABLE_TYPES)]
        fields, context, price_list = self._variant_read()
        if (
            price_list is not None
            and changed_since is not None
            and (price_list.changed_at is None or price_list.changed_at >= changed_since)
        ):
            log.info("price list %r changed since %s: every product is read", price_list.name, changed_since)
            changed_since = None
        if changed_since is not None:
            domain.append(
                [
                    "OR",
                    ("last_modified_at", ">=", changed_since),
                    ("products.last_modified_at", ">=", changed_since),
                    ("products.identifiers.last_modified_at", ">=", changed_since),
                    *(
                        [
                            ("product_suppliers.last_modified_at", ">=", changed_since),
                            ("product_suppliers.party.last_modified_at", ">=", changed_since),
                        ]
                        if self.tryton.has_module(SUPPLIER_MODULE)
                        else []
                    ),
                ]
            )
        categories = self.tryton.account_categories()
        for templates in self.tryton.keyset_pages("product.template", domain, TEMPLATE_FIELDS):
            variants = self.tryton.search_read(
                "product.product",
                [("template", "in", [t["id"] for t in templates]), ("active", "in", [True, False])],
                fields,
                order=[("template", "ASC"), ("id", "ASC")],
                context=context,
            )
            suppliers = self.main_suppliers([t["id"] for t in templates])
            by_template: dict[int, list[dict[str, Any]]] = defaultdict(list)
            for row in variants:
                by_template[row["template"]].append(row)
            page = Page[Product]()
            for template in templates:
                try:
                    page.items.append(
                        tm.product_from(
                            template,
                            by_template.get(template["id"], []),
                            categories,
                            price_list,
                            suppliers.get(template["id"]),
                        )
                    )
                except ValueError as exc:
                    page.errors.append(
                        RowError(
                            key=template.get("code") or f"template:{template['id']}",
                            error=str(exc),
                            payload=tm.jsonable(template),
                        )
                    )
            yield page

    def _find_template(self, code: str) -> dict[str, Any] | None:
        rows = self.tryton.search_read(
            "product.template", [("code", "=", code), ("active", "in", [True, False])], TEMPLATE_FIELDS, limit=1
        )
        return rows[0] if rows else None

    def _read_product(self, template: dict[str, Any]) -> Product:
        variants = self.tryton.search_read(
            "product.product",
            [("template", "=", template["id"]), ("active", "in", [True, False])],
            VARIANT_FIELDS,
            order=[("id", "ASC")],
        )
        return tm.product_from(template, variants, self.tryton.account_categories())

    def create_product(self, product: Product) -> Product:
        """Create a template (and its variants); a template that already has this code is returned instead."""
        existing = self._find_template(product.sku)
        if existing is not None:
            log.info("Tryton already has product %s (template %s): not created again", product.sku, existing["id"])
            return self._merge_ids(product, self._read_product(existing))
        category = self.tryton.category_for_rate(product.vat_rate, product.sku)
        unit = self.tryton.unit_id()
        price = tm.net_price(product.price_net, product.price_gross, product.vat_rate)
        variants: list[dict[str, Any]] = []
        if product.variants:
            for variant in product.variants:
                if not variant.sku.startswith(product.sku) or variant.sku == product.sku:
                    raise record_error(
                        SYSTEM,
                        product.sku,
                        f"variant SKU {variant.sku!r} must start with the "
                        f"product SKU {product.sku!r} (Tryton codes are template code + suffix)",
                    )
                values: dict[str, Any] = {
                    "suffix_code": variant.sku[len(product.sku) :],
                    "description": product.description,
                    "active": variant.status == ProductStatus.ACTIVE,
                }
                variant_price = tm.net_price(variant.price_net, variant.price_gross, product.vat_rate)
                if variant_price is not None and variant_price != price:
                    values["list_price"] = variant_price
                if variant.ean:
                    values["identifiers"] = [["create", [{"type": "ean", "code": variant.ean}]]]
                variants.append(values)
            price = (
                price
                if price is not None
                else next(
                    (p for v in product.variants if (p := tm.net_price(v.price_net, v.price_gross, product.vat_rate))),
                    None,
                )
            )
        else:
            values = {"suffix_code": "", "description": product.description}
            if product.ean:
                values["identifiers"] = [["create", [{"type": "ean", "code": product.ean}]]]
            variants.append(values)
        active = product.status == ProductStatus.ACTIVE
        template_values = {
            "name": product.name or product.sku,
            "code": product.sku,
            "type": "goods",
            "default_uom": unit,
            "sale_uom": unit,
            "purchase_uom": unit,
            "salable": True,
            "purchasable": True,
            "list_price": price if price is not None else Decimal(0),
            "account_category": category,
            "active": active,
            "products": [["create", variants]],
        }
        self.tryton.write("product.template", "create", [template_values], key=product.sku)
        created = self._find_template(product.sku)
        if created is None:
            raise record_error(SYSTEM, product.sku, "created, but Tryton does not find it again")
        return self._merge_ids(product, self._read_product(created))

    @staticmethod
    def _merge_ids(product: Product, stored: Product) -> Product:
        ids = {v.sku: v.erp_id for v in stored.variants}
        variants = [v.model_copy(update={"erp_id": ids.get(v.sku, v.erp_id)}) for v in product.variants]
        return product.model_copy(update={"erp_id": stored.erp_id, "variants": variants})

    def update_product(self, product: Product, changed: set[str]) -> None:
        """Write the changed fields (name, description, price, ean, vat, status) of a product to Tryton."""
        key = product.sku
        template = (
            self.tryton.read("product.template", "read", [int(product.erp_id)], TEMPLATE_FIELDS)
            if product.erp_id
            else None
        )
        row = template[0] if template else self._find_template(product.sku)
        if row is None:
            raise record_error(SYSTEM, key, "no such product in Tryton")
        stored = self.tryton.search_read(
            "product.product",
            [("template", "=", row["id"]), ("active", "in", [True, False])],
            VARIANT_FIELDS,
            order=[("id", "ASC")],
        )
        wants = {tm.FIELD_ALIASES.get(name, name) for name in changed}
        template_values: dict[str, Any] = {}
        if "name" in wants and product.name:
            template_values["name"] = product.name
        if "vat" in wants:
            template_values["account_category"] = self.tryton.category_for_rate(product.vat_rate, key)
        if "status" in wants:
            template_values["active"] = product.status == ProductStatus.ACTIVE
        vat = (
            product.vat_rate
            if product.vat_rate is not None
            else self.tryton.account_categories().get(row.get("account_category") or 0, tm.Category(None, ())).vat_rate
        )
        if "price" in wants:
            price = tm.net_price(product.price_net, product.price_gross, vat)
            if price is not None:
                template_values["list_price"] = price
        if template_values:
            self.tryton.write("product.template", "write", [row["id"]], template_values, key=key)
        wanted_variants = {v.sku: v for v in product.variants} if product.variants else {product.sku: None}
        for stored_variant in stored:
            code = str(stored_variant.get("code") or "")
            if code not in wanted_variants:
                continue
            variant = wanted_variants[code]
            values: dict[str, Any] = {}
            if "description" in wants:
                values["description"] = product.description
            ean = variant.ean if variant is not None else product.ean
            if "ean" in wants:
                old = [i for i in stored_variant.get("identifiers.") or [] if i.get("type") == "ean"]
                if [i.get("code") for i in old] != ([ean] if ean else []):
                    actions: list[Any] = []
                    if old:
                        actions.append(["delete", [i["id"] for i in old]])
                    if ean:
                        actions.append(["create", [{"type": "ean", "code": ean}]])
                    values["identifiers"] = actions
            if variant is not None and "price" in wants:
                price = tm.net_price(variant.price_net, variant.price_gross, vat)
                if price is not None:
                    values["list_price"] = price
            if variant is not None and "status" in wants:
                values["active"] = variant.status == ProductStatus.ACTIVE
            if values:
                self.tryton.write("product.product", "write", [stored_variant["id"]], values, key=code or key)
