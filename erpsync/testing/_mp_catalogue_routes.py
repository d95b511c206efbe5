"""The MerchantPro simulator's catalogue routes: products (the multi-variant rule) and inventory units."""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable
from typing import Any

from erpsync.testing import _catalogue as cat
from erpsync.testing._mp_rules import (
    PARENT_FORBIDDEN,
    PRODUCT_FILTERS,
    PRODUCT_KEYS,
    PRODUCT_READONLY,
    PRODUCT_SIDELOADS,
    PRODUCT_WRITABLE,
    VARIANT_WRITABLE,
    ApiError,
    Json,
    bad,
    boolean,
    choice,
    date_predicates,
    enum_filter,
    int_filter,
    int_list_filter,
    integer,
    number,
    pair_prices,
    text,
    writable,
)
from erpsync.testing._mp_state import ListQuery, Request, ShopState


class CatalogueRoutes(ShopState):
    """Products, variants and inventory units (categories and the taxonomy lists: ``_mp_taxonomy_routes``)."""

    def _list_products(self, request: Request) -> tuple[int, Any]:
        query = self._list_query(request, PRODUCT_FILTERS)
        ids = self._filtered_product_ids(query)
        hidden = self._hidden(query.fields, query.include, PRODUCT_SIDELOADS)
        fields = None if query.fields is None else query.fields | (query.include & PRODUCT_SIDELOADS)
        products = self.products
        data = [self._project(products[pid], fields, hidden) for pid in ids[query.start : query.start + query.limit]]
        return 200, self._envelope(request, data, len(ids), query)

    def _filtered_product_ids(self, query: ListQuery) -> list[int]:
        sort = self._sort_key(query.sort, ("id", "sku", "name", "date_created", "date_modified"))
        filters = dict(query.filters)
        predicates = self._product_predicates(filters)  # validates every filter value, cache or not
        if not filters and sort in (None, ("id", False)):
            return self._product_ids
        return self._cached(("products", query.filters, sort), lambda: self._select_products(filters, predicates, sort))

    def _product_predicates(self, filters: dict[str, str]) -> list[Callable[[Json], bool]]:
        predicates = date_predicates(filters.items())
        if "type" in filters:
            types = enum_filter("type", filters["type"], ("basic", "multi_variant"))
            predicates.append(lambda p: p["type"] in types)
        if "status" in filters:
            statuses = enum_filter("status", filters["status"], ("active", "inactive"))
            predicates.append(lambda p: p["status"] in statuses)
        if "category_id" in filters:
            cid = int_filter("category_id", filters["category_id"])
            predicates.append(lambda p: p["category_id"] == cid or any(c["id"] == cid for c in p["categories"]))
        if "ids" in filters:
            int_list_filter("ids", filters["ids"])
        return predicates

    def _select_products(
        self, filters: dict[str, str], predicates: list[Callable[[Json], bool]], sort: tuple[str, bool] | None
    ) -> list[int]:
        candidates: set[int] | None = None

        def narrow(found: Iterable[int]) -> None:
            nonlocal candidates
            found = {pid for pid in found if pid in self.products}
            candidates = found if candidates is None else candidates & found

        if "ids" in filters:
            narrow(int_list_filter("ids", filters["ids"]))
        if "sku" in filters:
            narrow([self._sku[filters["sku"]]] if filters["sku"] in self._sku else [])
        if "ean" in filters:
            narrow(self._ean.get(filters["ean"], ()))
        if "ext_ref" in filters:
            narrow(self._ext_ref.get(filters["ext_ref"], ()))
        ids: Iterable[int] = self._product_ids if candidates is None else sorted(candidates)
        selected = [self.products[pid] for pid in ids if all(pred(self.products[pid]) for pred in predicates)]
        if sort is not None:
            selected = self._sorted(selected, sort)
        return [p["id"] for p in selected]

    def _product_or_404(self, raw_id: str) -> Json:
        product = self.products.get(int(raw_id)) if raw_id.isdigit() else None
        if product is None:
            raise ApiError(404, "not_found", f"Product `{raw_id}` not found")
        return product

    def _get_product(self, request: Request, raw_id: str) -> tuple[int, Any]:
        return 200, self._render_one(request, self._product_or_404(raw_id))

    def _post_product(self, request: Request) -> tuple[int, Any]:
        payload = request.json_object()
        new = self._apply_product(None, payload, ignore_unknown=request.flag("ignore_nonexistent_fields"))
        committed = self._commit_product(new, None, {})
        self._note_ignored(committed["id"], payload)
        return 201, self._render_one(request, committed)

    def _patch_product(self, request: Request, raw_id: str) -> tuple[int, Any]:
        current = self._product_or_404(raw_id)
        payload = request.json_object()
        new = self._apply_product(current, payload, ignore_unknown=request.flag("ignore_nonexistent_fields"))
        committed = self._commit_product(new, current, {})
        self._note_ignored(committed["id"], payload)
        return 200, self._render_one(request, committed)

    def _note_ignored(self, product_id: int, payload: Json) -> None:
        """Keep the unknown top-level fields a write sent (they reached here: ignore_nonexistent_fields was on)."""
        unknown = {k: v for k, v in payload.items() if k not in PRODUCT_WRITABLE and k not in PRODUCT_READONLY}
        if unknown:
            self.ignored_product_fields.setdefault(product_id, {}).update(unknown)

    def _delete_product(self, request: Request, raw_id: str) -> tuple[int, Any]:
        product = self._product_or_404(raw_id)
        self._unindex_product(product)
        del self.products[product["id"]]
        self.ignored_product_fields.pop(product["id"], None)
        self._product_ids.remove(product["id"])
        self._version += 1
        return 204, None

    def _blank_product(self, ptype: str) -> Json:
        basic = ptype == "basic"
        tax = self.taxes[1]
        product: Json = {key: None for key in PRODUCT_KEYS if key not in ("variants", "variant_attributes")}
        product.update(
            type=ptype,
            status="active",
            inventory_enabled="on",
            stock=0 if basic else None,
            stock_reserved=0,
            allow_backorders=False,
            price_net=0.0 if basic else None,
            price_gross=0.0 if basic else None,
            tax_id=tax["id"],
            tax_value=tax["value"],
            tax_name=tax["name"],
            quantity_multiplier=1,
            categories=[],
            images=[],
        )
        if not basic:
            product["variant_attributes"] = []
            product["variants"] = []
        return product

    def _product_field(self, name: str, value: Any) -> Any:
        if name in ("sku", "name"):
            return text(name, value, nullable=False, max_length=255)
        if name in ("ean", "ext_ref", "description", "meta_title", "meta_description", "url"):
            return text(name, value)
        if name == "status":
            return choice(name, value, ("active", "inactive"))
        if name == "inventory_enabled":
            return choice(name, value, ("on", "off"))
        if name == "allow_backorders":
            return boolean(name, value)
        if name == "availability_text":  # *inference*: the text shown when the product is out of stock
            return text(name, value, max_length=255)
        if name in ("stock", "price_net", "price_gross"):
            return number(name, value)
        if name in ("old_price_net", "old_price_gross", "cost_net", "cost_gross", "weight"):
            return number(name, value, nullable=True)
        if name == "quantity_multiplier":
            return number(name, value, positive=True)
        if name == "tax_id":
            if integer(name, value) not in self.taxes:
                raise bad("invalid_value", f"Tax `{value}` does not exist")
            return value
        if name == "category_id":
            if integer(name, value, nullable=True) is not None and value not in self.categories:
                raise bad("invalid_value", f"Category `{value}` does not exist")
            return value
        if name == "categories":
            return self._category_refs(value)
        if name == "images":
            return self._image_refs(value)
        raise AssertionError(f"unhandled product field {name}")

    def _category_refs(self, value: Any) -> list[Json]:
        if not isinstance(value, list):
            raise bad("invalid_value", "Field `categories` must be a list of {id}")
        refs = []
        for item in value:
            cid = item.get("id") if isinstance(item, dict) else item
            if isinstance(cid, bool) or not isinstance(cid, int) or cid not in self.categories:
                raise bad("invalid_value", f"Category `{cid}` does not exist")
            refs.append({"id": cid, "name": self.categories[cid]["name"]})
        return refs

    @staticmethod
    def _image_refs(value: Any) -> list[Json]:
        if not isinstance(value, list):
            raise bad("invalid_value", "Field `images` must be a list of {url}")
        refs = []
        for item in value:
            url = item.get("url") if isinstance(item, dict) else item
            if not isinstance(url, str) or not url:
                raise bad("invalid_value", "Every entry of `images` needs a `url`")
            refs.append({"url": url})
        return refs

    def _apply_product(self, current: Json | None, payload: Json, *, ignore_unknown: bool) -> Json:
        """Validate a POST/PATCH payload and return the new product (a copy); the shop is not touched yet."""
        sent = writable(payload, PRODUCT_WRITABLE, PRODUCT_READONLY, ignore_unknown)
        ptype = choice("type", sent.get("type", current["type"] if current else "basic"), ("basic", "multi_variant"))
        if current is not None and ptype != current["type"]:
            raise bad("invalid_field", "Field `type` cannot be changed once a product exists")
        if ptype == "multi_variant":
            forbidden = [name for name in PARENT_FORBIDDEN if name in sent]
            if forbidden:
                names = ", ".join(f"`{name}`" for name in forbidden)
                raise bad(
                    "invalid_field",
                    f"Field(s) {names} cannot be set on a multi_variant product: set them on its variants",
                )
        elif "variants" in sent:
            raise bad("invalid_field", "Field `variants` is only valid on multi_variant products")
        if current is None and not sent.get("name"):
            raise bad("missing_field", "Field `name` is required")
        new = dict(current) if current is not None else self._blank_product(ptype)
        for name, value in sent.items():
            if name not in ("type", "variants"):
                new[name] = self._product_field(name, value)
        old_tax = current["tax_id"] if current is not None else None
        tax = self.taxes[new["tax_id"]]
        new["tax_value"], new["tax_name"] = tax["value"], tax["name"]
        tax_changed = current is not None and new["tax_id"] != old_tax
        self._link_categories(new, current, sent)
        if "images" in sent:
            first = new["images"][0]["url"] if new["images"] else None
            new["image_url"] = None if first is None else {"thumb": first, "medium": first, "large": first}
        if ptype == "basic":
            for net, gross in (
                ("price_net", "price_gross"),
                ("old_price_net", "old_price_gross"),
                ("cost_net", "cost_gross"),
            ):
                pair_prices(new, net, gross, sent, tax["value"], tax_changed)
        else:
            pair_prices(new, "cost_net", "cost_gross", sent, tax["value"], tax_changed)
            new["variants"] = self._apply_variants(new, current, sent.get("variants"), ignore_unknown, tax_changed)
            if not new["variants"]:
                raise bad("invalid_field", "A multi_variant product needs at least one variant")
            new["variant_attributes"] = cat.variant_attributes_for(new["variants"])
        self._check_skus(new, current)
        return new

    def _link_categories(self, new: Json, current: Json | None, sent: Json) -> None:
        if "categories" in sent and "category_id" not in sent:
            ids = [c["id"] for c in new["categories"]]
            if new["category_id"] not in ids:
                new["category_id"] = ids[0] if ids else None
        elif "category_id" in sent and "categories" not in sent:
            old_main = current["category_id"] if current else None
            others = [c for c in new["categories"] if c["id"] not in (old_main, new["category_id"])]
            main = [] if new["category_id"] is None else [{"id": new["category_id"], "name": ""}]
            new["categories"] = main + others
        if new["category_id"] is not None and all(c["id"] != new["category_id"] for c in new["categories"]):
            new["categories"] = [{"id": new["category_id"], "name": ""}, *new["categories"]]
        new["categories"] = [{"id": c["id"], "name": self.categories[c["id"]]["name"]} for c in new["categories"]]
        cid = new["category_id"]
        new["category_name"] = None if cid is None else self.categories[cid]["name"]

    def _apply_variants(
        self, product: Json, current: Json | None, entries: Any, ignore_unknown: bool, tax_changed: bool
    ) -> list[Json]:
        vat = product["tax_value"]
        variants = list(current["variants"]) if current is not None else []
        if tax_changed:
            variants = [dict(v) for v in variants]
            for variant in variants:
                pair_prices(variant, "price_net", "price_gross", {}, vat, True)
                pair_prices(variant, "old_price_net", "old_price_gross", {}, vat, True)
        if entries is None:
            return variants
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise bad("invalid_value", "Field `variants` must be a list of objects")
        position = {v["id"]: i for i, v in enumerate(variants)}
        touched: set[int] = set()
        for entry in entries:
            sent = writable(entry, VARIANT_WRITABLE, frozenset(), ignore_unknown)
            if "id" in entry:
                vid = entry["id"]
                if isinstance(vid, bool) or vid not in position:
                    raise bad("invalid_variant", f"Variant `{vid}` does not belong to product `{product.get('id')}`")
                if vid in touched:
                    raise bad("invalid_variant", f"Variant `{vid}` is listed twice")
                touched.add(vid)
                variant = dict(variants[position[vid]])
            else:
                if "sku" not in sent:
                    raise bad("missing_field", "A new variant needs a `sku`")
                variant = {
                    "id": None, "sku": None, "ean": None, "ext_ref": None, "inventory_enabled": "on", "stock": 0,
                    "price_net": 0.0, "price_gross": 0.0, "old_price_net": None, "old_price_gross": None,
                    "weight": None, "variant_options": [],
                }  # fmt: skip
            for name, value in sent.items():
                if name != "id":
                    variant[name] = self._variant_field(name, value)
            pair_prices(variant, "price_net", "price_gross", sent, vat, False)
            pair_prices(variant, "old_price_net", "old_price_gross", sent, vat, False)
            if variant["id"] is None:
                variants.append(variant)
            else:
                variants[position[variant["id"]]] = variant
        return variants

    def _variant_field(self, name: str, value: Any) -> Any:
        if name == "sku":
            return text(name, value, nullable=False, max_length=255)
        if name in ("ean", "ext_ref"):
            return text(name, value)
        if name == "inventory_enabled":
            return choice(name, value, ("on", "off"))
        if name in ("stock", "price_net", "price_gross"):
            return number(name, value)
        if name in ("old_price_net", "old_price_gross", "weight"):
            return number(name, value, nullable=True)
        if name == "variant_options":
            if not isinstance(value, list) or not all(
                isinstance(o, dict) and isinstance(o.get("name"), str) and isinstance(o.get("value"), str)
                for o in value
            ):
                raise bad("invalid_value", "Field `variant_options` must be a list of {name, value}")
            return self.variant_options.options_for([(o["name"], o["value"]) for o in value])
        raise AssertionError(f"unhandled variant field {name}")

    def _check_skus(self, new: Json, current: Json | None) -> None:
        own: set[int] = set()
        if current is not None:
            own.add(current["id"])
            own.update(v["id"] for v in current.get("variants", ()))
        seen: set[str] = set()
        for unit in (new, *new.get("variants", ())):
            sku = unit["sku"]
            if sku is None:
                raise bad("missing_field", "Field `sku` is required")
            owner = self._sku.get(sku)
            if sku in seen or (owner is not None and owner not in own):
                raise bad("duplicate_sku", f"SKU `{sku}` is already used by another product or variant")
            seen.add(sku)

    def _commit_product(self, new: Json, current: Json | None, overrides: Json) -> Json:
        stamp = cat.iso(self.now())
        if current is None:
            new["id"] = overrides.get("id") or self._allocate_unit_id()
            self._next_unit = max(self._next_unit, new["id"] + 1)
            new["date_created"] = overrides.get("date_created", stamp)
            new["url"] = new["url"] or f"/{new['sku'].lower()}-{new['id']}"
            new["meta_title"] = new["meta_title"] or new["name"]
        else:
            self._unindex_product(current)
        for variant in new.get("variants", ()):
            if variant["id"] is None:
                variant["id"] = self._allocate_unit_id()
        new["date_modified"] = overrides.get("date_modified", stamp)
        ordered = {key: new[key] for key in PRODUCT_KEYS if key in new}
        self._index_product(ordered)
        self.products[ordered["id"]] = ordered
        if current is None:
            bisect.insort(self._product_ids, ordered["id"])
        self._version += 1
        return ordered

    def _index_product(self, product: Json) -> None:
        pid = product["id"]
        self._sku[product["sku"]] = pid
        if product["ean"]:
            self._ean.setdefault(product["ean"], set()).add(pid)
        if product["ext_ref"]:
            self._ext_ref.setdefault(product["ext_ref"], set()).add(pid)
        for variant in product.get("variants", ()):
            self._sku[variant["sku"]] = variant["id"]
            self._variant_parent[variant["id"]] = pid
            if variant["ean"]:
                self._ean.setdefault(variant["ean"], set()).add(variant["id"])

    def _unindex_product(self, product: Json) -> None:
        self._sku.pop(product["sku"], None)
        if product["ean"]:
            self._ean.get(product["ean"], set()).discard(product["id"])
        if product["ext_ref"]:
            self._ext_ref.get(product["ext_ref"], set()).discard(product["id"])
        for variant in product.get("variants", ()):
            self._sku.pop(variant["sku"], None)
            self._variant_parent.pop(variant["id"], None)
            if variant["ean"]:
                self._ean.get(variant["ean"], set()).discard(variant["id"])

    # --- inventory ---------------------------------------------------------------------------------------

    def _inventory_unit(self, unit_id: int | None, label: str) -> Json:
        """One inventory unit (a basic product or a variant): stock and prices; see docs/simulators.md."""
        if unit_id is None:
            raise ApiError(404, "not_found", f"Inventory unit {label} not found")
        parent_id = self._variant_parent.get(unit_id)
        if parent_id is not None:
            parent = self.products[parent_id]
            unit = next(v for v in parent["variants"] if v["id"] == unit_id)
            options = ", ".join(o["value"] for o in unit["variant_options"])
            name = f"{parent['name']} ({options})" if options else parent["name"]
        else:
            found = self.products.get(unit_id)
            if found is None:
                raise ApiError(404, "not_found", f"Inventory unit {label} not found")
            parent = unit = found
            if unit["type"] == "multi_variant":
                raise ApiError(
                    404, "not_found", f"Product {label} is multi_variant: its inventory units are its variants"
                )
            name = unit["name"]
        return {
            "id": unit["id"],
            "product_id": parent["id"],
            "variant_id": unit["id"] if parent_id is not None else None,
            "sku": unit["sku"],
            "ean": unit["ean"],
            "ext_ref": unit["ext_ref"],
            "name": name,
            "status": parent["status"],
            "inventory_enabled": unit["inventory_enabled"],
            "stock": unit["stock"],
            "stock_reserved": parent["stock_reserved"] if parent_id is None else 0,
            "allow_backorders": parent["allow_backorders"],
            "price_net": unit["price_net"],
            "price_gross": unit["price_gross"],
            "old_price_net": unit["old_price_net"],
            "old_price_gross": unit["old_price_gross"],
            "tax_value": parent["tax_value"],
            "date_modified": parent["date_modified"],
        }

    def _inventory_by_id(self, request: Request, raw_id: str) -> tuple[int, Any]:
        return 200, self._render_one(
            request, self._inventory_unit(int(raw_id) if raw_id.isdigit() else None, f"`{raw_id}`")
        )

    def _inventory_by_sku(self, request: Request, sku: str) -> tuple[int, Any]:
        return 200, self._render_one(request, self._inventory_unit(self._sku.get(sku), f"with SKU `{sku}`"))

    def _inventory_by_ean(self, request: Request, ean: str) -> tuple[int, Any]:
        units = self._ean.get(ean)
        return 200, self._render_one(request, self._inventory_unit(min(units) if units else None, f"with EAN `{ean}`"))
