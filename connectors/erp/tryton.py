"""Tryton 8.2 as an ERP, over its JSON-RPC (``connectors.erp.tryton_rpc``): products, stock with reservations,
customers, sales, invoices, shipments and supplier receipts.

How Tryton's records become canonical ones (details and the reasons in ``docs/erp-connectors.md``):

- a product template is a ``Product`` (``erp_id`` = template id); with several variants (``product.product``) its
  SKU is the template code and each variant's SKU is its own code (template code + suffix code); with one
  variant it is a basic product whose SKU is that variant's code;
- prices are Tryton's list prices (net), or with the option ``price_list`` each product's sale price under that
  price list (module ``sale_price_list``); the VAT rate comes from the customer taxes of the account category;
- stock is read at each warehouse's storage location: on hand = ``quantity``; reserved = what moves planned out
  of the storage zone (draft or assigned, i.e. confirmed sales not yet picked) will take;
- a shop order is a ``sale.sale`` with ``reference`` = the order's reference (the store's reference prefix + the
  shop order id), quoted and confirmed.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterator, Sequence
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import httpx

from erpsync.connectors.erp import tryton_mapping as tm
from erpsync.connectors.erp.base import Capabilities
from erpsync.connectors.erp.tryton_rpc import SYSTEM, TrytonRpc, decode, to_utc
from erpsync.connectors.errors import FatalError, RecordError, record_error
from erpsync.connectors.http import Counters, RetryPolicy
from erpsync.core.models import (
    Address,
    Customer,
    ErpOrderStatus,
    GoodsReceipt,
    Order,
    OrderLine,
    Page,
    PaymentStatus,
    Product,
    ProductStatus,
    ReceiptLine,
    RowError,
    StockLevel,
    Supplier,
    gross_from_net,
)

if TYPE_CHECKING:
    from erpsync.core.config import TrytonSettings

log = logging.getLogger("erpsync.tryton")

CAPABILITIES = Capabilities(
    products_read=True,
    products_changed_since=True,
    products_create=True,
    products_update=True,
    stock_read=True,
    stock_changed_since=True,
    stock_reservations=True,
    customers_find=True,
    customers_create=True,
    orders_create=True,
    orders_read=True,
    orders_read_status=True,
    orders_cancel=True,
    invoices=True,
    goods_receipts_read=True,
    suppliers_read=True,
)

# Sale descriptions that name where an order came from (see iter_orders).
CHANNEL_PREFIX = "channel:"
ERPSYNC_PREFIX = "erpsync:"
ERPSYNC_CHANNEL = "erpsync"
OPEN_MOVE_STATES = ["draft", "assigned"]
STORABLE_TYPES = ["goods", "assets"]

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
ADDRESS_FIELDS = ["street", "city", "postal_code", "country.code", "invoice", "delivery", "party_name", "party"]
PARTY_FIELDS = ["name", "email", "phone", "identifiers.type", "identifiers.code"]
SALE_FIELDS = [
    "number",
    "reference",
    "description",
    "comment",
    "state",
    "invoice_state",
    "shipment_state",
    "party",
    "invoice_address",
    "shipment_address",
    "currency.code",
    "total_amount",
    "create_date",
    "last_modified_at",
    "invoices",
    "shipments",
]


class TrytonConnector:
    """A Tryton 8.2 server through JSON-RPC (no rate limit: Tryton has none)."""

    system = SYSTEM
    capabilities = CAPABILITIES
    # The product fields (core.mapping.SYNC_FIELDS) Tryton holds and update_product writes; the product sync
    # leaves the others (weight, old price, images, attributes) out of its comparisons.
    product_fields = frozenset({"name", "description", "price", "ean", "status", "vat"})

    def __init__(
        self,
        url: str,
        database: str,
        username: str,
        password: str,
        *,
        language: str = "en",
        timeout_seconds: float = 30.0,
        page_size: int = 500,
        shipping_sku: str = "SHIPPING",
        order_warehouse: str = "WH",
        price_list: str = "",
        transport: httpx.BaseTransport | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        if page_size < 1:
            raise ValueError("page_size must be >= 1")
        self.url = url.rstrip("/")
        self.database = database
        self.page_size = page_size
        self.shipping_sku = shipping_sku
        self.order_warehouse = order_warehouse
        self.price_list = price_list
        self.rpc = TrytonRpc(
            self.url,
            database,
            username,
            password,
            language=language,
            timeout_seconds=timeout_seconds,
            transport=transport,
            retry=retry,
        )
        self.counters: Counters = self.rpc.counters
        self._warehouses: dict[str, tm.Warehouse] = {}
        self._categories: dict[int, tm.Category] | None = None
        self._unit: int | None = None
        self._ids: dict[tuple[str, str], int] = {}
        self._price_list: tm.PriceList | None = None

    @classmethod
    def from_settings(
        cls,
        settings: TrytonSettings,
        *,
        transport: httpx.BaseTransport | None = None,
        shipping_sku: str = "SHIPPING",
        order_warehouse: str = "WH",
        price_list: str = "",
    ) -> TrytonConnector:
        """The connector of an ``[erp] type = "tryton"`` section (``price_list``: the store's, by name)."""
        return cls(
            str(settings.url),
            settings.database,
            settings.username,
            settings.password.get(),
            language=settings.language,
            timeout_seconds=settings.timeout_seconds,
            page_size=settings.page_size,
            shipping_sku=shipping_sku,
            order_warehouse=order_warehouse,
            price_list=price_list,
            transport=transport,
        )

    def close(self) -> None:
        """Close the HTTP client."""
        self.rpc.close()

    def __enter__(self) -> TrytonConnector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing -------------------------------------------------------------------------------------------

    def _read(self, model: str, method: str, *params: Any, context: dict[str, Any] | None = None) -> Any:
        return self.rpc.model(model, method, *params, kind="read", context=context)

    def _write(self, model: str, method: str, *params: Any, key: str) -> Any:
        return self.rpc.model(model, method, *params, kind="write", record_key=key)

    def _search_read(
        self,
        model: str,
        domain: list[Any],
        fields: list[str],
        *,
        limit: int | None = None,
        order: list[tuple[str, str]] | None = None,
        context: dict[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        rows = self._read(model, "search_read", domain, 0, limit, order, fields, context=context)
        return list(rows or [])

    def _keyset_pages(
        self,
        model: str,
        domain: list[Any],
        fields: list[str],
        *,
        context: dict[str, Any] | None = None,
    ) -> Iterator[list[dict[str, Any]]]:
        """Pages of ``page_size`` rows ordered by id; each page asks for ids above the last one seen."""
        last = 0
        while True:
            rows = self._search_read(
                model,
                [*domain, ("id", ">", last)],
                fields,
                limit=self.page_size,
                order=[("id", "ASC")],
                context=context,
            )
            if rows:
                yield rows
            if len(rows) < self.page_size:
                return
            last = rows[-1]["id"]

    def _id_of(self, model: str, code: str, domain: list[Any], what: str) -> int:
        """The id of a configuration record (unit, currency, country ...), cached; FatalError when missing."""
        key = (model, code)
        if key not in self._ids:
            ids = self._read(model, "search", domain, 0, 1, None)
            if not ids:
                raise FatalError(SYSTEM, f"{what} {code!r} not found in Tryton")
            self._ids[key] = int(ids[0])
        return self._ids[key]

    def check(self) -> str:
        """Log in and read the preferences: ``"Tryton 8.2 at URL, database D, company C[, price list P]"``."""
        self.rpc.login()
        response = self.rpc.http.request(
            "POST",
            "/rpc/",
            json_body={"id": 1, "method": "common.server.version", "params": []},
            kind="read",
            expect_json=False,
        )
        version = decode(response.content).get("result") or "?"
        company = self.rpc.context.get("company.rec_name") or f"#{self.rpc.context.get('company')}"
        described = f"Tryton {version} at {self.url}, database {self.database}, company {company}"
        price_list = self._resolve_price_list()
        return described + (f", price list {price_list.name!r}" if price_list else "")

    # -- taxes, units, warehouses -----------------------------------------------------------------------

    def _account_categories(self) -> dict[int, tm.Category]:
        """Account categories -> their customer taxes and VAT rate (sum of percentage taxes), read once."""
        if self._categories is None:
            rows = self._search_read("product.category", [("accounting", "=", True)], ["customer_taxes_used"])
            tax_ids = sorted({t for row in rows for t in row.get("customer_taxes_used") or []})
            taxes = (
                {
                    row["id"]: row
                    for row in self._search_read(
                        "account.tax",
                        [("id", "in", tax_ids)],
                        ["rate", "type"],
                        context={"active_test": False},
                    )
                }
                if tax_ids
                else {}
            )
            categories: dict[int, tm.Category] = {}
            for row in rows:
                ids = tuple(row.get("customer_taxes_used") or [])
                used = [taxes[t] for t in ids if t in taxes]
                rate: Decimal | None = None
                if used and all(t.get("type") == "percentage" for t in used):
                    rate = (sum((Decimal(str(t.get("rate") or 0)) for t in used), Decimal(0)) * 100).normalize()
                    rate = rate.quantize(Decimal(1)) if rate == rate.to_integral_value() else rate
                categories[row["id"]] = tm.Category(rate, ids)
            self._categories = categories
        return self._categories

    def _category_for_rate(self, rate: Decimal | None, key: str) -> int:
        if rate is None:
            raise record_error(SYSTEM, key, "no VAT rate: Tryton needs one to pick the account category")
        matches = sorted(
            cid for cid, cat in self._account_categories().items() if cat.vat_rate is not None and cat.vat_rate == rate
        )
        if not matches:
            known = sorted({str(c.vat_rate) for c in self._account_categories().values() if c.vat_rate is not None})
            raise record_error(
                SYSTEM,
                key,
                f"no account category with a {rate}% customer tax in Tryton (known: {', '.join(known) or 'none'})",
            )
        return matches[0]

    def _resolve_price_list(self) -> tm.PriceList | None:
        """The configured price list, looked up by name once (None without one); FatalError when it is not there."""
        if not self.price_list:
            return None
        if self._price_list is None:
            rows = self._search_read(
                "product.price_list",
                [("name", "=", self.price_list)],
                ["name", "tax_included", "last_modified_at", "lines.last_modified_at"],
            )
            if len(rows) != 1:
                known = sorted({str(r.get("name")) for r in self._search_read("product.price_list", [], ["name"])})
                problem = "not found" if not rows else f"is the name of {len(rows)} active price lists"
                raise FatalError(
                    SYSTEM,
                    f"price list {self.price_list!r} {problem} in Tryton (the store's "
                    f"price_list; known: {', '.join(map(repr, known)) or 'none'})",
                )
            row = rows[0]
            stamps = [to_utc(r.get("last_modified_at")) for r in [row, *(row.get("lines.") or [])]]
            self._price_list = tm.PriceList(
                id=int(row["id"]),
                name=str(row.get("name")),
                tax_included=bool(row.get("tax_included")),
                changed_at=max((t for t in stamps if t is not None), default=None),
            )
        return self._price_list

    def _variant_read(self) -> tuple[list[str], dict[str, Any] | None, tm.PriceList | None]:
        """Fields and context of variant reads: with a price list, its sale price (``sale_price_uom``) too."""
        price_list = self._resolve_price_list()
        if price_list is None:
            return VARIANT_FIELDS, None, None
        # Tryton's sale price of one unit in the sale unit under that list (product.get_sale_price).
        return [*VARIANT_FIELDS, "sale_price_uom"], {"price_list": price_list.id, "quantity": 1}, price_list

    def _unit_id(self) -> int:
        if self._unit is None:
            rows = self._search_read("product.uom", [("symbol", "=", "u")], ["id"], limit=1)
            if not rows:
                raise FatalError(SYSTEM, "the unit of measure 'u' (Unit) is missing in Tryton")
            self._unit = int(rows[0]["id"])
        return self._unit

    def _warehouses_of(self, codes: Sequence[str]) -> list[tm.Warehouse]:
        """Warehouse codes -> their storage zones (looked up once); an unknown code is a FatalError naming it."""
        missing = [c for c in dict.fromkeys(codes) if c not in self._warehouses]
        if missing:
            rows = self._search_read(
                "stock.location",
                [("code", "in", missing), ("type", "=", "warehouse")],
                ["code", "storage_location", "input_location"],
            )
            found = {row["code"]: row for row in rows}
            unknown = [c for c in missing if c not in found]
            if unknown:
                raise FatalError(
                    SYSTEM,
                    f"unknown warehouse code(s) {', '.join(map(repr, unknown))} in Tryton "
                    f"(a warehouse's code, e.g. 'WH')",
                )
            storages = [int(row["storage_location"]) for row in rows]
            tree_rows = self._search_read(
                "stock.location", [("parent", "child_of", storages)], ["parent"], context={"active_test": False}
            )
            parents = {row["id"]: row.get("parent") for row in tree_rows}
            for row in rows:
                storage = int(row["storage_location"])
                tree = frozenset(loc for loc in parents if tm.is_under(loc, storage, parents))
                self._warehouses[row["code"]] = tm.Warehouse(
                    row["code"], int(row["id"]), storage, row.get("input_location"), tree | {storage}
                )
        return [self._warehouses[c] for c in codes]

    # -- products ---------------------------------------------------------------------------------------

    def iter_products(self, *, changed_since: datetime | None = None) -> Iterator[Page[Product]]:
        """Templates in pages of ``page_size`` (2 calls a page): one ``Product`` each, variants grouped.

        With a price list its prices are the products' prices; an edit of the list since ``changed_since``
        makes this read the whole catalogue (the products themselves did not change).
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
                ]
            )
        categories = self._account_categories()
        for templates in self._keyset_pages("product.template", domain, TEMPLATE_FIELDS):
            variants = self._search_read(
                "product.product",
                [("template", "in", [t["id"] for t in templates]), ("active", "in", [True, False])],
                fields,
                order=[("template", "ASC"), ("id", "ASC")],
                context=context,
            )
            by_template: dict[int, list[dict[str, Any]]] = defaultdict(list)
            for row in variants:
                by_template[row["template"]].append(row)
            page = Page[Product]()
            for template in templates:
                try:
                    page.items.append(
                        tm.product_from(template, by_template.get(template["id"], []), categories, price_list)
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
        rows = self._search_read(
            "product.template", [("code", "=", code), ("active", "in", [True, False])], TEMPLATE_FIELDS, limit=1
        )
        return rows[0] if rows else None

    def _read_product(self, template: dict[str, Any]) -> Product:
        variants = self._search_read(
            "product.product",
            [("template", "=", template["id"]), ("active", "in", [True, False])],
            VARIANT_FIELDS,
            order=[("id", "ASC")],
        )
        return tm.product_from(template, variants, self._account_categories())

    def create_product(self, product: Product) -> Product:
        """Create a template (and its variants); a template that already has this code is returned instead."""
        existing = self._find_template(product.sku)
        if existing is not None:
            log.info("Tryton already has product %s (template %s): not created again", product.sku, existing["id"])
            return self._merge_ids(product, self._read_product(existing))
        category = self._category_for_rate(product.vat_rate, product.sku)
        unit = self._unit_id()
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
        self._write("product.template", "create", [template_values], key=product.sku)
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
            self._read("product.template", "read", [int(product.erp_id)], TEMPLATE_FIELDS) if product.erp_id else None
        )
        row = template[0] if template else self._find_template(product.sku)
        if row is None:
            raise record_error(SYSTEM, key, "no such product in Tryton")
        stored = self._search_read(
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
            template_values["account_category"] = self._category_for_rate(product.vat_rate, key)
        if "status" in wants:
            template_values["active"] = product.status == ProductStatus.ACTIVE
        vat = (
            product.vat_rate
            if product.vat_rate is not None
            else self._account_categories().get(row.get("account_category") or 0, tm.Category(None, ())).vat_rate
        )
        if "price" in wants:
            price = tm.net_price(product.price_net, product.price_gross, vat)
            if price is not None:
                template_values["list_price"] = price
        if template_values:
            self._write("product.template", "write", [row["id"]], template_values, key=key)
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
                self._write("product.product", "write", [stored_variant["id"]], values, key=code or key)

    # -- stock ------------------------------------------------------------------------------------------

    def iter_stock(
        self,
        warehouses: Sequence[str],
        *,
        skus: Sequence[str] | None = None,
        changed_since: datetime | None = None,
    ) -> Iterator[Page[StockLevel]]:
        """Stock at each warehouse's storage zone, ``page_size`` products a page.

        Calls per page: one ``search_read`` of products with ``quantity`` (first warehouse), one ``read`` of
        ``quantity`` per further warehouse, one ``search_read`` of the open moves leaving the storage zones.
        """
        if not warehouses:
            raise ValueError("iter_stock needs at least one warehouse")
        zones = self._warehouses_of(list(dict.fromkeys(warehouses)))
        base: list[Any] = [("type", "in", STORABLE_TYPES)]
        fields = ["code", "quantity"]
        first = {"locations": [zones[0].storage]}
        if changed_since is not None:
            moved = self._moved_products(changed_since, zones)
            if skus is not None:
                base.append(("code", "in", list(skus)))
            for chunk in tm.chunks(moved, self.page_size):
                rows = self._search_read(
                    "product.product", [*base, ("id", "in", chunk)], fields, order=[("id", "ASC")], context=first
                )
                yield self._stock_page(rows, zones)
        elif skus is not None:
            for chunk in tm.chunks(list(dict.fromkeys(skus)), self.page_size):
                rows = self._search_read(
                    "product.product", [*base, ("code", "in", chunk)], fields, order=[("id", "ASC")], context=first
                )
                yield self._stock_page(rows, zones)
        else:
            for rows in self._keyset_pages("product.product", base, fields, context=first):
                yield self._stock_page(rows, zones)

    def _moved_products(self, since: datetime, zones: Sequence[tm.Warehouse]) -> list[int]:
        """Products with a stock move into or out of these storage zones written since ``since``."""
        locations = sorted(set().union(*(z.tree for z in zones)))
        domain: list[Any] = [
            ("last_modified_at", ">=", since),
            ["OR", ("from_location", "in", locations), ("to_location", "in", locations)],
        ]
        products: dict[int, None] = {}
        for rows in self._keyset_pages("stock.move", domain, ["product"]):
            products.update((int(r["product"]), None) for r in rows if r.get("product"))
        return sorted(products)

    def _stock_page(self, rows: list[dict[str, Any]], zones: Sequence[tm.Warehouse]) -> Page[StockLevel]:
        page = Page[StockLevel]()
        if not rows:
            return page
        ids = [r["id"] for r in rows]
        quantities = {zones[0].code: {r["id"]: r.get("quantity") for r in rows}}
        for zone in zones[1:]:
            more = self._read("product.product", "read", ids, ["quantity"], context={"locations": [zone.storage]})
            quantities[zone.code] = {r["id"]: r.get("quantity") for r in more}
        reserved = self._reserved(ids, zones)
        for row in rows:
            code = row.get("code")
            if not isinstance(code, str) or not code.strip():
                page.errors.append(
                    RowError(
                        key=f"product:{row['id']}", error="a product without a code (SKU)", payload=tm.jsonable(row)
                    )
                )
                continue
            levels: list[StockLevel] = []
            for zone in zones:
                on_hand = tm.to_decimal(quantities[zone.code].get(row["id"]))
                if on_hand is None:
                    page.errors.append(
                        RowError(
                            key=code,
                            error=f"quantity {quantities[zone.code].get(row['id'])!r} in {zone.code} is not a number",
                            payload=tm.jsonable(row),
                        )
                    )
                    levels = []
                    break
                levels.append(
                    StockLevel(
                        sku=code,
                        warehouse=zone.code,
                        on_hand=on_hand,
                        reserved=reserved.get((zone.code, row["id"]), Decimal(0)),
                    )
                )
            page.items.extend(levels)
        return page

    def _reserved(self, product_ids: list[int], zones: Sequence[tm.Warehouse]) -> dict[tuple[str, int], Decimal]:
        """What open moves (draft or assigned) will take out of each storage zone, per product: one call.

        Moves into a zone (supplier receipts) are not subtracted, so a planned receipt never hides a reservation.
        """
        clauses: list[Any] = [
            [("from_location", "in", sorted(z.tree)), ("to_location", "not in", sorted(z.tree))] for z in zones
        ]
        domain: list[Any] = [
            ("product", "in", product_ids),
            ("state", "in", OPEN_MOVE_STATES),
            ["OR", *clauses] if len(clauses) > 1 else clauses[0],
        ]
        moves = self._search_read(
            "stock.move", domain, ["product", "from_location", "to_location", "internal_quantity"]
        )
        reserved: dict[tuple[str, int], Decimal] = defaultdict(Decimal)
        for move in moves:
            quantity = tm.to_decimal(move.get("internal_quantity")) or Decimal(0)
            for zone in zones:
                if move["from_location"] in zone.tree and move["to_location"] not in zone.tree:
                    reserved[(zone.code, move["product"])] += quantity
        return dict(reserved)

    # -- customers --------------------------------------------------------------------------------------

    def find_customer(self, customer: Customer) -> Customer | None:
        """The party with this VAT identifier (companies) or e-mail contact mechanism, if any."""
        party_id: int | None = None
        if customer.is_company and customer.vat_code:
            party_id = self._party_by_vat(customer.vat_code, tm.country_of(customer))
        if party_id is None and customer.email:
            email = customer.email.strip().lower()
            rows = self._search_read(
                "party.contact_mechanism",
                [("type", "=", "email"), ("value", "ilike", tm.like_escape(email))],
                ["party", "value"],
                order=[("id", "ASC")],
            )
            exact = [r for r in rows if str(r.get("value") or "").strip().lower() == email]
            party_id = exact[0]["party"] if exact else None
        if party_id is None:
            return None
        return self._customer(party_id)

    def _party_by_vat(self, vat: str, country: str | None) -> int | None:
        """The party whose identifier is this VAT code, stored with or without its country prefix."""
        candidates = tm.vat_candidates(vat, country)
        digits = tm.VAT_PREFIX.sub("", candidates[0])
        rows = self._search_read(
            "party.identifier",
            ["OR", ("code_compact", "in", candidates), ("code_compact", "like", "__" + tm.like_escape(digits))],
            ["party", "code_compact"],
            order=[("id", "ASC")],
        )
        exact = [r for r in rows if r.get("code_compact") in candidates]
        prefixed = [r for r in rows if tm.VAT_PREFIX.match(str(r.get("code_compact") or ""))]
        best = exact or prefixed
        return int(best[0]["party"]) if best else None

    def _customer(self, party_id: int) -> Customer:
        party = self._read("party.party", "read", [party_id], PARTY_FIELDS)[0]
        return tm.customer_from(party)

    def create_customer(self, customer: Customer) -> Customer:
        """Create the party: e-mail/phone contacts, invoice and delivery addresses, VAT identifier (companies)."""
        key = customer.email or customer.vat_code or customer.name or "customer"
        name = (customer.company_name if customer.is_company and customer.company_name else customer.name) or key
        contacts: list[dict[str, Any]] = []
        if customer.email:
            contacts.append({"type": "email", "value": customer.email})
        phone = customer.phone or (customer.billing.phone if customer.billing else None)
        if phone:
            contacts.append({"type": "phone", "value": phone})
        addresses = [
            self._address_values(address, invoice, delivery, name)
            for address, invoice, delivery in tm.address_roles(customer.billing, customer.shipping)
        ]
        values: dict[str, Any] = {"name": name}
        if contacts:
            values["contact_mechanisms"] = [["create", contacts]]
        if addresses:
            values["addresses"] = [["create", addresses]]
        if customer.is_company and customer.vat_code:
            code = customer.vat_code.replace(" ", "").upper()
            kind = "eu_vat" if tm.VAT_PREFIX.match(code) else "ro_cf"
            values["identifiers"] = [["create", [{"type": kind, "code": code}]]]
        created = self._write("party.party", "create", [values], key=key)
        return customer.model_copy(update={"erp_id": str(created[0])})

    def _address_values(self, address: Address, invoice: bool, delivery: bool, party_name: str) -> dict[str, Any]:
        values: dict[str, Any] = {
            "street": address.street or None,
            "city": address.city or None,
            "postal_code": address.postal_code or None,
            "invoice": invoice,
            "delivery": delivery,
        }
        recipient = address.company or address.name
        if recipient and recipient != party_name:
            values["party_name"] = recipient
        if address.country_code:
            values["country"] = self._id_of(
                "country.country",
                address.country_code.upper(),
                [("code", "=", address.country_code.upper())],
                "country",
            )
        return values

    # -- orders -----------------------------------------------------------------------------------------

    def find_order(self, reference: str) -> str | None:
        """The sale whose ``reference`` is this (the store's reference prefix + the shop order id), if any."""
        found = self._find_sale(reference)
        return str(found["id"]) if found else None

    def _find_sale(self, reference: str) -> dict[str, Any] | None:
        rows = self._search_read(
            "sale.sale", [("reference", "=", reference)], ["state"], order=[("id", "ASC")], limit=1
        )
        return rows[0] if rows else None

    def create_order(self, order: Order, customer: Customer) -> str:
        """Create, quote and confirm a sale for a shop order; idempotent on its reference (= sale reference).

        The reference is ``order.reference`` (the store's reference prefix + the shop order id, as the order flow
        sets it), else ``order.shop_id``.

        An existing sale with that reference is returned (and confirmed, when an earlier attempt stopped
        halfway). All SKUs are looked up in one call; an unknown one raises ``RecordError`` naming it before
        anything is created.
        """
        reference = order.reference or order.shop_id
        if not reference:
            raise ValueError("create_order needs order.reference or order.shop_id: it is the idempotency key")
        existing = self._find_sale(reference)
        if existing is not None:
            if existing["state"] in ("draft", "quotation"):
                self._confirm(existing["id"], existing["state"], reference)
            return str(existing["id"])
        values = self._sale_values(order, customer, reference)
        sale_id = int(self._write("sale.sale", "create", [values], key=reference)[0])
        log.info("Tryton sale %s created for order %s", sale_id, reference)
        self._confirm(sale_id, "draft", reference)
        return str(sale_id)

    def _confirm(self, sale_id: int, state: str, reference: str) -> None:
        try:
            if state == "draft":
                self._write("sale.sale", "quote", [sale_id], key=reference)
            self._write("sale.sale", "confirm", [sale_id], key=reference)
        except RecordError as error:
            raise record_error(
                SYSTEM,
                reference,
                f"sale {sale_id} was created but not confirmed: "
                f"{error.message.removeprefix(reference + ': ')} (fix it in Tryton, or delete the "
                f"sale, then send the order again)",
                status=error.status,
            ) from None
        # With a queue worker, confirm only schedules the processing (shipments, invoices): process now, so
        # that the reservations exist when the next stock read comes.
        state_now = self._read("sale.sale", "read", [sale_id], ["state"])[0]["state"]
        if state_now == "confirmed":
            self._write("sale.sale", "process", [sale_id], key=reference)

    def _sale_values(self, order: Order, customer: Customer, reference: str) -> dict[str, Any]:
        wanted = list(dict.fromkeys(line.sku for line in order.lines))
        if not wanted:
            raise record_error(SYSTEM, reference, "the order has no lines")
        if any(not sku.strip() for sku in wanted):
            raise record_error(SYSTEM, reference, "a line has no SKU")
        shipping = order.shipping_amount > 0
        products = self._sellables([*wanted, self.shipping_sku] if shipping else wanted)
        unknown = [sku for sku in wanted if sku not in products]
        if unknown:
            raise record_error(SYSTEM, reference, f"unknown SKU {', '.join(map(repr, unknown))} in Tryton")
        if shipping and self.shipping_sku not in products:
            raise FatalError(
                SYSTEM,
                f"the shipping product {self.shipping_sku!r} (option shipping_sku) is not "
                f"in Tryton: create it as a salable service product",
            )
        categories = self._account_categories()
        lines: list[dict[str, Any]] = []
        for line in order.lines:
            product = products[line.sku]
            category = categories.get(product.category or 0, tm.Category(None, ()))
            rate = line.vat_rate if line.vat_rate is not None else category.vat_rate
            net = tm.net_price(line.unit_price_net, line.unit_price_gross, rate)
            if net is None:
                raise record_error(
                    SYSTEM, reference, f"SKU {line.sku!r} has no usable price (net, or gross with a VAT rate)"
                )
            lines.append(tm.sale_line(product, line.quantity, net, category.taxes, line.name or product.name))
        if shipping:
            product = products[self.shipping_sku]
            category = categories.get(product.category or 0, tm.Category(None, ()))
            rate = order.shipping_vat_rate if order.shipping_vat_rate is not None else category.vat_rate
            net = tm.net_price(None, order.shipping_amount, rate)
            if net is None:
                raise record_error(SYSTEM, reference, "no VAT rate for the shipping line")
            lines.append(tm.sale_line(product, Decimal(1), net, category.taxes, order.shipping_method or product.name))
        party_id = self._party_for(customer, reference)
        billing = order.billing or customer.billing
        shipping_address = order.shipping or customer.shipping or billing
        party = self._read("party.party", "read", [party_id], ["name", "customer_payment_term"])[0]
        invoice_address = self._address_for(party_id, party["name"], billing, invoice=True, key=reference)
        shipment_address = self._address_for(party_id, party["name"], shipping_address, invoice=False, key=reference)
        code = order.public_code or order.shop_id or reference
        comment = "\n".join(
            filter(
                None,
                [
                    f"Shop order {code} (id {order.shop_id or reference})",
                    f"Payment: {order.payment_method}" if order.payment_method else "",
                    f"Shipping: {order.shipping_method}" if order.shipping_method else "",
                    order.note,
                ],
            )
        )
        values: dict[str, Any] = {
            "party": party_id,
            "reference": reference,
            "description": f"{ERPSYNC_PREFIX}{code}",
            "comment": comment,
            "warehouse": self._warehouses_of([self.order_warehouse])[0].id,
            "invoice_address": invoice_address,
            "shipment_address": shipment_address,
            "currency": self._id_of("currency.currency", order.currency, [("code", "=", order.currency)], "currency"),
            "lines": [["create", lines]],
        }
        if party.get("customer_payment_term"):
            values["payment_term"] = party["customer_payment_term"]
        price_list = self._resolve_price_list()
        if price_list is not None:
            # Records which list the store sells at (lines a person adds in Tryton are priced by it); the lines
            # erpsync writes keep the shop's prices.
            values["price_list"] = price_list.id
        return values

    def _sellables(self, skus: list[str]) -> dict[str, tm.Sellable]:
        """The salable products with these codes, in ONE call."""
        rows = self._search_read(
            "product.product",
            [("code", "in", skus), ("salable", "=", True)],
            ["code", "name", "default_uom", "account_category"],
        )
        found: dict[str, tm.Sellable] = {}
        for row in rows:
            found.setdefault(
                row["code"],
                tm.Sellable(
                    int(row["id"]),
                    row["code"],
                    row.get("name") or row["code"],
                    int(row["default_uom"]),
                    row.get("account_category"),
                ),
            )
        return found

    def _party_for(self, customer: Customer, reference: str) -> int:
        if customer.erp_id:
            return int(customer.erp_id)
        found = self.find_customer(customer)
        if found is None:
            if not (customer.email or customer.name or customer.company_name):
                raise record_error(SYSTEM, reference, "the customer has no e-mail and no name")
            found = self.create_customer(customer)
        assert found.erp_id is not None
        return int(found.erp_id)

    def _address_for(self, party_id: int, party_name: str, address: Address | None, *, invoice: bool, key: str) -> int:
        """The party's address matching ``address`` (street, city, postal code), created when missing."""
        rows = self._search_read(
            "party.address", [("party", "=", party_id)], ADDRESS_FIELDS, order=[("sequence", "ASC"), ("id", "ASC")]
        )
        if address is None:
            flag = "invoice" if invoice else "delivery"
            preferred = [r for r in rows if r.get(flag)] or rows
            if not preferred:
                raise record_error(SYSTEM, key, f"customer {party_name!r} has no address in Tryton or the order")
            return int(preferred[0]["id"])
        wanted = tm.address_key(address.street, address.city, address.postal_code)
        for row in rows:
            if tm.address_key(row.get("street"), row.get("city"), row.get("postal_code")) == wanted:
                return int(row["id"])
        values = self._address_values(address, invoice, not invoice, party_name)
        created = self._write("party.address", "create", [{**values, "party": party_id}], key=key)
        return int(created[0])

    def cancel_order(self, erp_id: str) -> None:
        """Cancel a sale that is draft, quotation or confirmed; a processing or done sale is a RecordError."""
        rows = self._search_read("sale.sale", [("id", "=", int(erp_id))], ["state", "reference", "number"])
        if not rows:
            raise record_error(SYSTEM, erp_id, f"sale {erp_id} does not exist in Tryton")
        sale = rows[0]
        state = sale["state"]
        name = f"sale {sale.get('number') or erp_id} (order {sale.get('reference') or '?'})"
        if state == "cancelled":
            return
        if state in ("processing", "done"):
            raise record_error(
                SYSTEM,
                erp_id,
                f"{name} is {state}: Tryton cannot cancel it any more (cancel its shipments and invoices in Tryton)",
            )
        if state == "confirmed":
            self._write("sale.sale", "draft", [sale["id"]], key=erp_id)
        self._write("sale.sale", "cancel", [sale["id"]], key=erp_id)

    def order_statuses(self, erp_ids: Sequence[str]) -> list[ErpOrderStatus]:
        """State, posted invoice numbers, shipment state and AWB (the shipment's reference): three calls."""
        ids = [int(i) for i in erp_ids]
        sales = {
            r["id"]: r
            for r in self._search_read(
                "sale.sale",
                [("id", "in", ids)],
                ["state", "reference", "invoice_state", "shipment_state", "invoices", "shipments"],
            )
        }
        invoice_ids = sorted({i for s in sales.values() for i in s.get("invoices") or []})
        shipment_ids = sorted({i for s in sales.values() for i in s.get("shipments") or []})
        invoices = (
            {r["id"]: r for r in self._search_read("account.invoice", [("id", "in", invoice_ids)], ["number", "state"])}
            if invoice_ids
            else {}
        )
        shipments = (
            {
                r["id"]: r
                for r in self._search_read("stock.shipment.out", [("id", "in", shipment_ids)], ["state", "reference"])
            }
            if shipment_ids
            else {}
        )
        statuses: list[ErpOrderStatus] = []
        for erp_id, sale_id in zip(erp_ids, ids, strict=True):
            sale = sales.get(sale_id)
            if sale is None:
                statuses.append(ErpOrderStatus(erp_id=erp_id, state="missing"))
                continue
            posted = [
                invoices[i]
                for i in sale.get("invoices") or []
                if i in invoices and invoices[i].get("state") in ("posted", "paid")
            ]
            done = [
                shipments[i]
                for i in sale.get("shipments") or []
                if i in shipments and shipments[i].get("state") == "done"
            ]
            awb = next((s["reference"] for s in done if s.get("reference")), None)
            statuses.append(
                ErpOrderStatus(
                    erp_id=erp_id,
                    reference=sale.get("reference"),
                    state=sale["state"],
                    invoiced=bool(posted),
                    invoice_number=", ".join(str(i["number"]) for i in posted if i.get("number")) or None,
                    shipped=sale.get("shipment_state") == "sent" or (bool(done) and sale["state"] == "done"),
                    cancelled=sale["state"] == "cancelled",
                    awb=awb,
                )
            )
        return statuses

    def iter_orders(self, *, changed_since: datetime | None = None) -> Iterator[Page[Order]]:
        """Sales written since a time, ``page_size`` a page (about six calls a page), with their channel.

        ``Order.channel``: the name after ``channel:`` at the start of the sale description; ``"erpsync"`` for
        sales erpsync created (description ``erpsync:<shop code>``, reference = the store's reference prefix +
        the shop order id, which such an order also carries as its ``shop_id``); else None.
        """
        domain: list[Any] = []
        if changed_since is not None:
            domain.append(("last_modified_at", ">=", changed_since))
        for sales in self._keyset_pages("sale.sale", domain, SALE_FIELDS):
            sale_ids = [s["id"] for s in sales]
            lines = self._search_read(
                "sale.line",
                [("sale", "in", sale_ids), ("type", "=", "line")],
                ["sale", "product.code", "description", "quantity", "unit_price", "taxes"],
                order=[("sale", "ASC"), ("sequence", "ASC"), ("id", "ASC")],
            )
            parties = {
                r["id"]: r for r in self._read("party.party", "read", sorted({s["party"] for s in sales}), PARTY_FIELDS)
            }
            address_ids = sorted({a for s in sales for a in (s.get("invoice_address"), s.get("shipment_address")) if a})
            addresses = {r["id"]: r for r in self._read("party.address", "read", address_ids, ADDRESS_FIELDS)}
            invoice_ids = sorted({i for s in sales for i in s.get("invoices") or []})
            invoices = (
                {r["id"]: r for r in self._read("account.invoice", "read", invoice_ids, ["number", "state"])}
                if invoice_ids
                else {}
            )
            by_sale: dict[int, list[dict[str, Any]]] = defaultdict(list)
            for line in lines:
                by_sale[line["sale"]].append(line)
            page = Page[Order]()
            categories = self._account_tax_rates()
            for sale in sales:
                try:
                    page.items.append(self._order(sale, by_sale[sale["id"]], parties, addresses, invoices, categories))
                except ValueError as exc:
                    page.errors.append(RowError(key=f"sale:{sale['id']}", error=str(exc), payload=tm.jsonable(sale)))
            yield page

    def _account_tax_rates(self) -> dict[int, Decimal]:
        """Customer tax id -> VAT percentage (from the account categories' taxes)."""
        rates: dict[int, Decimal] = {}
        for category in self._account_categories().values():
            if len(category.taxes) == 1 and category.vat_rate is not None:
                rates[category.taxes[0]] = category.vat_rate
        return rates

    def _order(
        self,
        sale: dict[str, Any],
        lines: list[dict[str, Any]],
        parties: dict[int, dict[str, Any]],
        addresses: dict[int, dict[str, Any]],
        invoices: dict[int, dict[str, Any]],
        tax_rates: dict[int, Decimal],
    ) -> Order:
        description = str(sale.get("description") or "")
        channel: str | None = None
        if description.startswith(CHANNEL_PREFIX):
            channel = (
                description[len(CHANNEL_PREFIX) :].split()[0] if description[len(CHANNEL_PREFIX) :].strip() else None
            )
        elif description.startswith(ERPSYNC_PREFIX):
            channel = ERPSYNC_CHANNEL
        order_lines: list[OrderLine] = []
        shipping_amount = Decimal(0)
        shipping_rate: Decimal | None = None
        for line in lines:
            code = (line.get("product.") or {}).get("code")
            quantity = tm.to_decimal(line.get("quantity"))
            net = tm.to_decimal(line.get("unit_price"))
            if quantity is None or net is None:
                raise ValueError(f"line {line['id']}: quantity or price is not a number")
            taxes = line.get("taxes") or []
            rate = tax_rates.get(taxes[0]) if len(taxes) == 1 else (Decimal(0) if not taxes else None)
            if code == self.shipping_sku:
                shipping_amount += gross_from_net(net * quantity, rate or Decimal(0))
                shipping_rate = rate
                continue
            if not code:
                raise ValueError(f"line {line['id']} has no product code (SKU)")
            order_lines.append(
                OrderLine(
                    sku=code,
                    name=line.get("description") or "",
                    quantity=quantity,
                    unit_price_net=net,
                    unit_price_gross=gross_from_net(net, rate) if rate is not None else None,
                    vat_rate=rate,
                )
            )
        party = parties.get(sale["party"], {"id": sale["party"], "name": ""})
        customer = tm.customer_from(party)
        billing = tm.address_from(addresses.get(sale.get("invoice_address") or 0), party.get("name") or "")
        shipping = tm.address_from(addresses.get(sale.get("shipment_address") or 0), party.get("name") or "")
        posted = [
            invoices[i]
            for i in sale.get("invoices") or []
            if i in invoices and invoices[i].get("state") in ("posted", "paid")
        ]
        public_code = description[len(ERPSYNC_PREFIX) :] if channel == ERPSYNC_CHANNEL else sale.get("number")
        return Order(
            shop_id=sale.get("reference") if channel == ERPSYNC_CHANNEL else None,
            erp_id=str(sale["id"]),
            reference=sale.get("reference"),
            public_code=public_code or None,
            channel=channel,
            created_at=to_utc(sale.get("create_date")),
            modified_at=to_utc(sale.get("last_modified_at")),
            customer=customer,
            billing=billing,
            shipping=shipping,
            lines=order_lines,
            currency=(sale.get("currency.") or {}).get("code") or "RON",
            shipping_amount=shipping_amount,
            shipping_vat_rate=shipping_rate,
            payment_status=PaymentStatus.PAID if sale.get("invoice_state") == "paid" else PaymentStatus.AWAITING,
            shipping_status=tm.shipping_status_of(sale),
            total=tm.to_decimal(sale.get("total_amount")),
            note=str(sale.get("comment") or ""),
            invoice_number=next((str(i["number"]) for i in posted if i.get("number")), None),
        )

    # -- purchasing -------------------------------------------------------------------------------------

    def iter_goods_receipts(self, since: datetime, warehouses: Sequence[str]) -> Iterator[Page[GoodsReceipt]]:
        """Supplier shipments done (written) since ``since`` into these warehouses, with their lines."""
        zones = {z.id: z for z in self._warehouses_of(list(dict.fromkeys(warehouses)))}
        domain: list[Any] = [
            ("state", "=", "done"),
            ("warehouse", "in", sorted(zones)),
            ("last_modified_at", ">=", since),
        ]
        fields = [
            "number",
            "reference",
            "warehouse",
            "supplier.name",
            "incoming_moves",
            "effective_date",
            "last_modified_at",
        ]
        for shipments in self._keyset_pages("stock.shipment.in", domain, fields):
            move_ids = sorted({m for s in shipments for m in s.get("incoming_moves") or []})
            moves = {
                m["id"]: m
                for m in self._read("stock.move", "read", move_ids, ["product.code", "internal_quantity", "state"])
            }
            page = Page[GoodsReceipt]()
            for shipment in shipments:
                lines: list[ReceiptLine] = []
                bad: str | None = None
                for move_id in shipment.get("incoming_moves") or []:
                    move = moves.get(move_id)
                    if move is None or move.get("state") == "cancelled":
                        continue
                    code = (move.get("product.") or {}).get("code")
                    quantity = tm.to_decimal(move.get("internal_quantity"))
                    if not code or quantity is None:
                        bad = f"move {move_id} has no product code or no quantity"
                        break
                    lines.append(ReceiptLine(sku=code, quantity=quantity))
                if bad is not None:
                    page.errors.append(
                        RowError(key=f"shipment.in:{shipment['id']}", error=bad, payload=tm.jsonable(shipment))
                    )
                    continue
                received = to_utc(shipment.get("last_modified_at"))
                assert received is not None
                page.items.append(
                    GoodsReceipt(
                        erp_id=str(shipment["id"]),
                        received_at=received,
                        warehouse=zones[shipment["warehouse"]].code,
                        supplier=(shipment.get("supplier.") or {}).get("name"),
                        reference=shipment.get("reference") or shipment.get("number"),
                        lines=lines,
                    )
                )
            yield page

    def iter_suppliers(self) -> Iterator[Page[Supplier]]:
        """Parties that supply: named on a purchase, a supplier shipment or a product's supplier list."""
        ids: set[int] = set()
        for model, field in (
            ("purchase.purchase", "party"),
            ("stock.shipment.in", "supplier"),
            ("purchase.product_supplier", "party"),
        ):
            for rows in self._keyset_pages(model, [], [field]):
                ids.update(int(r[field]) for r in rows if r.get(field))
        for chunk in tm.chunks(sorted(ids), self.page_size):
            parties = self._read("party.party", "read", chunk, PARTY_FIELDS)
            page = Page[Supplier]()
            for party in parties:
                customer = tm.customer_from(party)
                page.items.append(
                    Supplier(
                        erp_id=str(party["id"]),
                        name=party.get("name") or "",
                        vat_code=customer.vat_code,
                        email=customer.email,
                    )
                )
            yield page


# --------------------------------------------------------------------------- pure helpers
