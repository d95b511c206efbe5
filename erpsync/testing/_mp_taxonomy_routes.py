"""The MerchantPro simulator's taxonomy routes: categories (renaming one renames it in its products) and the
static lists (taxes, measurement units)."""

from __future__ import annotations

from typing import Any

from erpsync.testing._mp_rules import (
    CATEGORY_FILTERS,
    CATEGORY_WRITABLE,
    ApiError,
    Json,
    bad,
    choice,
    enum_filter,
    int_filter,
    integer,
    text,
    writable,
)
from erpsync.testing._mp_state import Request, ShopState

# What a product reply leaves out when `omit_tax_value` is on (an independent implementation of the API does).
TAX_DETAIL_KEYS = ("tax_value", "tax_name")
_PRODUCT_ROUTES = ("/products", "/products/{id}")


class TaxonomyRoutes(ShopState):
    """Categories, taxes and measurement units; and how product replies show their tax."""

    # True: product replies (list, one, create, update) carry `tax_id` only, no `tax_value`/`tax_name`, like an
    # independent implementation of this API; a client then maps the id through GET /taxonomy/taxes.
    omit_tax_value: bool = False

    def _tax_view(self, label: str, payload: Any) -> Any:
        """A product route's reply as this shop shows it: without `tax_value`/`tax_name` when they are omitted."""
        if not self.omit_tax_value or label not in _PRODUCT_ROUTES or not isinstance(payload, dict):
            return payload

        def bare(row: Any) -> Any:  # a copy: the reply may be the stored product itself
            return {k: v for k, v in row.items() if k not in TAX_DETAIL_KEYS} if isinstance(row, dict) else row

        rows = payload.get("data")
        if isinstance(rows, list):  # a list's envelope
            return dict(payload, data=[bare(row) for row in rows])
        return bare(payload)  # one product (GET one, POST, PATCH)

    def _static_list(self, request: Request, items: list[Json]) -> tuple[int, Any]:
        query = self._list_query(request, frozenset())
        page = [self._project(i, query.fields, frozenset()) for i in items[query.start : query.start + query.limit]]
        return 200, self._envelope(request, page, len(items), query)

    def _list_taxes(self, request: Request) -> tuple[int, Any]:
        return self._static_list(request, list(self.taxes.values()))

    def _list_units(self, request: Request) -> tuple[int, Any]:
        return self._static_list(request, self.measurement_units)

    def _list_categories(self, request: Request) -> tuple[int, Any]:
        query = self._list_query(request, CATEGORY_FILTERS)
        filters = dict(query.filters)
        items = list(self.categories.values())
        if "parent_id" in filters:
            parent = (
                None if filters["parent_id"] in ("", "0", "null") else int_filter("parent_id", filters["parent_id"])
            )
            items = [c for c in items if c["parent_id"] == parent]
        if "status" in filters:
            statuses = enum_filter("status", filters["status"], ("active", "inactive"))
            items = [c for c in items if c["status"] in statuses]
        page = [self._project(c, query.fields, frozenset()) for c in items[query.start : query.start + query.limit]]
        return 200, self._envelope(request, page, len(items), query)

    def _category_or_404(self, raw_id: str) -> Json:
        category = self.categories.get(int(raw_id)) if raw_id.isdigit() else None
        if category is None:
            raise ApiError(404, "not_found", f"Category `{raw_id}` not found")
        return category

    def _get_category(self, request: Request, raw_id: str) -> tuple[int, Any]:
        return 200, self._render_one(request, self._category_or_404(raw_id))

    def _apply_category(self, current: Json | None, request: Request) -> Json:
        sent = writable(
            request.json_object(), CATEGORY_WRITABLE, frozenset({"id"}), request.flag("ignore_nonexistent_fields")
        )
        new = (
            dict(current)
            if current
            else {"id": None, "name": None, "parent_id": None, "position": 0, "status": "active", "url": None}
        )
        for name, value in sent.items():
            if name == "name":
                new[name] = text(name, value, nullable=False, max_length=255)
            elif name == "parent_id":
                if integer(name, value, nullable=True) is not None and (
                    value not in self.categories or value == new["id"]
                ):
                    raise bad("invalid_value", f"Parent category `{value}` does not exist")
                new[name] = value
            elif name == "position":
                new[name] = integer(name, value)
            elif name == "status":
                new[name] = choice(name, value, ("active", "inactive"))
            else:
                new[name] = text(name, value)
        if new["name"] is None:
            raise bad("missing_field", "Field `name` is required")
        return new

    def _post_category(self, request: Request) -> tuple[int, Any]:
        new = self._apply_category(None, request)
        new["id"] = max(self.categories, default=0) + 1
        new["url"] = new["url"] or f"/{new['name'].lower().replace(' ', '-')}"
        self.categories[new["id"]] = new
        self._version += 1
        return 201, new

    def _patch_category(self, request: Request, raw_id: str) -> tuple[int, Any]:
        current = self._category_or_404(raw_id)
        new = self._apply_category(current, request)
        self.categories[new["id"]] = new
        if new["name"] != current["name"]:
            self._rename_category(new["id"], new["name"])
        self._version += 1
        return 200, self._render_one(request, new)

    def _rename_category(self, cid: int, name: str) -> None:
        for pid, product in self.products.items():
            if product["category_id"] == cid or any(c["id"] == cid for c in product["categories"]):
                categories = [dict(c, name=name) if c["id"] == cid else c for c in product["categories"]]
                renamed = dict(product, categories=categories)
                if product["category_id"] == cid:
                    renamed["category_name"] = name
                self.products[pid] = renamed

    def _delete_category(self, request: Request, raw_id: str) -> tuple[int, Any]:
        category = self._category_or_404(raw_id)
        cid = category["id"]
        if any(c["parent_id"] == cid for c in self.categories.values()) or any(
            p["category_id"] == cid or any(c["id"] == cid for c in p["categories"]) for p in self.products.values()
        ):
            raise bad("category_in_use", f"Category `{cid}` still has products or sub-categories")
        del self.categories[cid]
        self._version += 1
        return 204, None
