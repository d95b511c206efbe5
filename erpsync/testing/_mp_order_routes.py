"""The MerchantPro simulator's order routes: orders (string ids, status shortcuts, line items), customers."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from erpsync.core.order_totals import spread
from erpsync.testing import _catalogue as cat
from erpsync.testing._mp_rules import (
    BILLING_TEXT,
    CUSTOMER_FILTERS,
    CUSTOMER_PERSONAL,
    CUSTOMER_READONLY,
    CUSTOMER_SHIPPING,
    CUSTOMER_WRITABLE,
    DISCOUNT_ITEM_TYPES,
    LINE_READONLY,
    LINE_WRITABLE,
    ORDER_FILTERS,
    ORDER_READONLY,
    ORDER_SIDELOADS,
    ORDER_WRITABLE,
    PAYMENT_STATUSES,
    SHIPPING_STATUSES,
    SHIPPING_TEXT,
    TRUE_WORDS,
    ApiError,
    Json,
    bad,
    boolean,
    choice,
    date_predicates,
    enum_filter,
    int_filter,
    integer,
    number,
    signed_number,
    text,
    writable,
)
from erpsync.testing._mp_state import Request, ShopState


class OrderRoutes(ShopState):
    """Orders, their lines and status shortcuts, invoices, tags, and the customers orders create."""

    def _new_order_id(self, rng: random.Random) -> str:
        while True:
            candidate = str(rng.randrange(10_000_000, 100_000_000))
            if candidate not in self.orders and candidate + ".3" not in self.orders:
                return candidate

    def _order_or_404(self, order_id: str) -> Json:
        order = self.orders.get(order_id)
        if order is None:
            raise ApiError(404, "not_found", f"Order `{order_id}` not found")
        return order

    def _list_orders(self, request: Request) -> tuple[int, Any]:
        query = self._list_query(request, ORDER_FILTERS)
        sort = self._sort_key(query.sort, ("sys_id", "id", "date_created", "date_modified", "total_amount"))
        filters = dict(query.filters)
        predicates = self._order_predicates(filters)
        ids = self._cached(("orders", query.filters, sort), lambda: self._select_orders(predicates, sort))
        hidden = self._hidden(query.fields, query.include, ORDER_SIDELOADS)
        fields = None if query.fields is None else query.fields | (query.include & ORDER_SIDELOADS)
        page = ids[query.start : query.start + query.limit]
        data = [self._project(self.orders[oid], fields, hidden) for oid in page]
        return 200, self._envelope(request, data, len(ids), query)

    def _order_predicates(self, filters: dict[str, str]) -> list[Callable[[Json], bool]]:
        predicates = date_predicates(filters.items())
        # created_after = created[gte] and created_before = created[lt] (date-only, like the bracket filters).
        for alias, target in (("created_after", "created[gte]"), ("created_before", "created[lt]")):
            if alias in filters:
                predicates += date_predicates([(target, filters[alias])], shown=alias)
        if "ids" in filters:
            wanted = {part.strip() for part in filters["ids"].split(",") if part.strip()}
            predicates.append(lambda o: o["id"] in wanted)
        if "shipping_status" in filters:
            shipping = enum_filter("shipping_status", filters["shipping_status"], SHIPPING_STATUSES)
            predicates.append(lambda o: o["shipping_status"] in shipping)
        if "payment_status" in filters:
            payment = enum_filter("payment_status", filters["payment_status"], PAYMENT_STATUSES)
            predicates.append(lambda o: o["payment_status"] in payment)
        if "payment_method_code" in filters:
            methods = {part.strip() for part in filters["payment_method_code"].split(",")}
            predicates.append(lambda o: o["payment_method_code"] in methods)
        return predicates

    def _select_orders(self, predicates: list[Callable[[Json], bool]], sort: tuple[str, bool] | None) -> list[str]:
        selected = [o for o in self.orders.values() if all(pred(o) for pred in predicates)]
        if sort is not None:
            selected = self._sorted(selected, sort)
        return [o["id"] for o in selected]

    def _get_order(self, request: Request, order_id: str) -> tuple[int, Any]:
        return 200, self._render_one(request, self._order_or_404(order_id))

    def _post_order(self, request: Request) -> tuple[int, Any]:
        order = self._insert_order(
            request.json_object(),
            ignore_unknown=request.flag("ignore_nonexistent_fields"),
            adjust_stock=True,
            order_id=None,
            created=None,
            modified=None,
            source_type="api",
        )
        return 201, self._render_one(request, order)

    def _patch_order(self, request: Request, order_id: str) -> tuple[int, Any]:
        current = self._order_or_404(order_id)
        sent = writable(
            request.json_object(), ORDER_WRITABLE, ORDER_READONLY, request.flag("ignore_nonexistent_fields")
        )
        new = dict(current)
        self._apply_order_fields(new, sent)
        if "line_items" in sent:
            # The reference's quirk: the list sent replaces the order's lines (omitted lines are dropped).
            lines, _moves = self._build_lines(sent["line_items"], current, request.flag("ignore_nonexistent_fields"))
            new["line_items"] = self._number_lines(lines)
            self._order_totals(new)
        elif "shipping_amount" in sent:
            self._order_totals(new)
        return 200, self._render_one(request, self._store_order(new))

    def _order_status_action(self, request: Request, order_id: str) -> tuple[int, Any]:
        new = dict(self._order_or_404(order_id))
        action = request.segments[-1]
        new["shipping_status"] = action
        if action == "returned":
            new["has_returns"] = True
        return 200, self._render_one(request, self._store_order(new))

    def _create_invoice(self, request: Request, order_id: str) -> tuple[int, Any]:
        new = dict(self._order_or_404(order_id))
        if new["invoice_number"] is not None:
            raise bad(
                "invoice_exists",
                f"Order `{order_id}` already has invoice {new['invoice_series']}{new['invoice_number']}",
            )
        new["invoice_series"] = "MP"
        new["invoice_number"] = f"{self._next_invoice:06d}"
        new["invoice_url"] = f"{self._base(request)}/invoice/{order_id}.pdf"
        self._next_invoice += 1
        return 200, self._render_one(request, self._store_order(new))

    def _post_order_tag(self, request: Request, order_id: str) -> tuple[int, Any]:
        current = self._order_or_404(order_id)
        sent = writable(
            request.json_object(), frozenset({"name"}), frozenset(), request.flag("ignore_nonexistent_fields")
        )
        name = text("name", sent.get("name"), nullable=False, max_length=100)
        assert name is not None
        new = dict(current)
        if all(tag["name"] != name for tag in current["tags"]):
            tag_id = self._tag_ids.setdefault(name, len(self._tag_ids) + 1)
            new["tags"] = [*current["tags"], {"id": tag_id, "name": name}]
        return 201, self._render_one(request, self._store_order(new))

    def _store_order(self, order: Json) -> Json:
        order["date_modified"] = cat.iso(self.now())
        self.orders[order["id"]] = order
        self._version += 1
        return order

    def _apply_order_fields(self, order: Json, sent: Json) -> None:
        for name, value in sent.items():
            if name == "line_items":
                continue
            if name == "payment_status":
                order[name] = choice(name, value, PAYMENT_STATUSES)
            elif name == "shipping_status":
                order[name] = choice(name, value, SHIPPING_STATUSES)
            elif name == "billing_type":
                order[name] = choice(name, value, ("individual", "company"))
            elif name == "payment_method_code":
                order[name] = text(name, value, nullable=False, max_length=64)
                order["payment_method_name"] = cat.PAYMENT_METHODS.get(value, value)
            elif name == "shipping_method_id":
                if integer(name, value) not in cat.SHIPPING_METHODS:
                    raise bad("invalid_value", f"Shipping method `{value}` does not exist")
                order[name], order["shipping_method_name"] = value, cat.SHIPPING_METHODS[value]
            elif name in ("shipping_amount", "paid_amount", "discount_amount"):
                order[name] = number(name, value, nullable=name == "paid_amount")
            elif name == "shipping_as_billing":
                order[name] = boolean(name, value)
            elif name == "meta_fields":
                if not isinstance(value, dict):
                    raise bad("invalid_value", "Field `meta_fields` must be an object")
                order[name] = value
            elif name == "currency":
                order[name] = choice(name, value, ("RON", "EUR", "USD", "HUF", "BGN"))
            elif name == "customer_email":
                email = text(name, value)
                if email is not None and "@" not in email:
                    raise bad("invalid_value", f"Field `customer_email` is not an e-mail address: `{email}`")
                order[name] = email
            else:  # billing_*, shipping_* texts, shipping_awb, customer_note, payment_date
                order[name] = text(name, value)
        if "shipping_awb" in sent:
            awb = order["shipping_awb"]
            order["carrier_tracking"] = (
                [] if awb is None else [{"awb": awb, "carrier": order["shipping_method_name"], "url": None}]
            )

    def _resolve_unit(self, entry: Json) -> tuple[Json, Json]:
        """(product, unit) for a line: by product_sku, else by product_id (a basic product or a variant id)."""
        if "product_sku" in entry:
            unit_id = self._sku.get(entry["product_sku"]) if isinstance(entry["product_sku"], str) else None
            label = f"SKU `{entry['product_sku']}`"
        else:
            raw = entry.get("product_id")
            unit_id = raw if isinstance(raw, int) and not isinstance(raw, bool) else None
            label = f"product_id `{raw}`"
        if unit_id is None:
            raise bad("invalid_value", f"Line item: no product with {label}")
        parent_id = self._variant_parent.get(unit_id)
        if parent_id is not None:
            parent = self.products[parent_id]
            return parent, next(v for v in parent["variants"] if v["id"] == unit_id)
        product = self.products.get(unit_id)
        if product is None:
            raise bad("invalid_value", f"Line item: no product with {label}")
        if product["type"] == "multi_variant":
            raise bad("invalid_value", f"Line item: {label} is a multi_variant product; name one of its variants")
        return product, product

    def _build_lines(
        self, entries: Any, current: Json | None, ignore_unknown: bool
    ) -> tuple[list[Json], list[tuple[Json, Json, float]]]:
        """Validate line items; returns the lines and the stock moves (product, unit, quantity) they imply."""
        if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
            raise bad("invalid_value", "Field `line_items` must be a non-empty list of objects")
        existing = {line["id"]: line for line in current["line_items"]} if current is not None else {}
        lines: list[Json] = []
        moves: list[tuple[Json, Json, float]] = []
        stock_left: dict[int, float] = {}  # per unit, after the lines before this one
        for entry in entries:
            sent = writable(entry, LINE_WRITABLE, LINE_READONLY, ignore_unknown)
            base = existing.get(sent["id"]) if "id" in sent else None
            if "id" in sent and base is None:
                raise bad("invalid_value", f"Line item `{sent['id']}` does not belong to this order")
            item_type = text(
                "item_type", sent.get("item_type", base["item_type"] if base else "product"), nullable=False
            )
            if item_type != "product":
                lines.append(self._charge_line(sent, base, str(item_type)))
                continue
            if base is not None and base["item_type"] != "product":
                raise bad("invalid_value", f"Line item `{sent['id']}` is a `{base['item_type']}` line, not a product")
            if base is None or "product_sku" in sent or "product_id" in sent:
                product, unit = self._resolve_unit(sent)
            else:
                product, unit = self._resolve_unit({"product_sku": base["product_sku"]})
            quantity = number("quantity", sent.get("quantity", base["quantity"] if base else None), positive=True)
            assert quantity is not None
            vat = sent.get("product_tax_percent", base["product_tax_percent"] if base else product["tax_value"])
            number("product_tax_percent", vat)
            if "unit_price_gross" in sent:
                gross = number("unit_price_gross", sent["unit_price_gross"])
            elif "unit_price_net" in sent:
                gross = cat.gross_from_net(number("unit_price_net", sent["unit_price_net"]) or 0, vat)
            else:
                gross = base["unit_price_gross"] if base else unit["price_gross"]
            assert gross is not None
            net = cat.net_from_gross(gross, vat)
            line_gross = cat.money(gross * quantity)
            line_net = cat.net_from_gross(line_gross, vat)
            tracked = unit["inventory_enabled"] == "on"
            stock_before = stock_left.get(unit["id"], unit["stock"] or 0)
            stock_left[unit["id"]] = stock_before - quantity
            # product_stock: the unit's stock once this order took its share ("-1.000": stock not tracked).
            if base is not None and base["product_sku"] == unit["sku"]:
                product_stock, backorder = base["product_stock"], base["backorder_quantity"]
            elif tracked:
                product_stock, backorder = f"{stock_before - quantity:.3f}", max(0, quantity - max(stock_before, 0))
            else:
                product_stock, backorder = "-1.000", 0
            lines.append(
                {
                    "id": base["id"] if base else None,
                    "item_type": "product",
                    "product_id": product["id"],
                    "product_sku": unit["sku"],
                    "product_ean": unit["ean"],
                    "product_name": sent.get("product_name") or (base["product_name"] if base else product["name"]),
                    "product_stock": product_stock,
                    "backorder_quantity": backorder,
                    "product_tax_name": product["tax_name"],
                    "product_tax_percent": vat,
                    "quantity": quantity,
                    "unit_price_net": net,
                    "unit_tax_amount": cat.money(gross - net),
                    "unit_price_gross": gross,
                    "line_subtotal_net": line_net,
                    "line_tax_amount": cat.money(line_gross - line_net),
                    "line_subtotal_gross": line_gross,
                    "weight": unit.get("weight"),
                    "meta_fields": sent.get("meta_fields") or (base["meta_fields"] if base else {}),
                }
            )
            if tracked:
                moves.append((product, unit, quantity))
        return lines, moves

    @staticmethod
    def _charge_line(sent: Json, base: Json | None, item_type: str) -> Json:
        """A line that is not a product (*inference*, see ``DISCOUNT_ITEM_TYPES``): no product, no stock; priced by
        ``unit_price_gross`` (or ``unit_price_net`` with ``product_tax_percent``); a discount's price is stored
        negative, a fee's as sent; ``product_tax_percent`` may be null (a discount over the order's rates)."""
        quantity = number("quantity", sent.get("quantity", base["quantity"] if base else 1), positive=True)
        assert quantity is not None
        vat = sent.get("product_tax_percent", base["product_tax_percent"] if base else None)
        number("product_tax_percent", vat, nullable=True)
        if "unit_price_gross" in sent:
            gross: float | int = signed_number("unit_price_gross", sent["unit_price_gross"])
        elif "unit_price_net" in sent:
            if vat is None:
                raise bad("invalid_value", "Line item: `unit_price_net` needs `product_tax_percent`; send the gross")
            net_sent = signed_number("unit_price_net", sent["unit_price_net"])
            gross = -cat.gross_from_net(-net_sent, vat) if net_sent < 0 else cat.gross_from_net(net_sent, vat)
        elif base is not None:
            gross = base["unit_price_gross"]
        else:
            raise bad("missing_field", f"Line item of type `{item_type}`: field `unit_price_gross` is required")
        if item_type in DISCOUNT_ITEM_TYPES:
            gross = -abs(gross)
        line_gross = cat.money(gross * quantity)
        net = line_net = None
        if vat is not None:
            net = math.copysign(cat.net_from_gross(abs(gross), vat), gross)
            line_net = math.copysign(cat.net_from_gross(abs(line_gross), vat), line_gross)
        default_name = base["product_name"] if base else item_type.replace("_", " ").capitalize()
        return {
            "id": base["id"] if base else None,
            "item_type": item_type,
            "product_id": None,
            "product_sku": None,
            "product_ean": None,
            "product_name": text("product_name", sent.get("product_name")) or default_name,
            "product_stock": None,
            "backorder_quantity": 0,
            "product_tax_name": None if vat is None else f"TVA {vat}%",
            "product_tax_percent": vat,
            "quantity": quantity,
            "unit_price_net": net,
            "unit_tax_amount": None if net is None else cat.money(gross - net),
            "unit_price_gross": gross,
            "line_subtotal_net": line_net,
            "line_tax_amount": None if line_net is None else cat.money(line_gross - line_net),
            "line_subtotal_gross": line_gross,
            "weight": None,
            "meta_fields": sent.get("meta_fields") or (base["meta_fields"] if base else {}),
        }

    def _number_lines(self, lines: list[Json]) -> list[Json]:
        for line in lines:
            if line["id"] is None:
                line["id"] = self._next_line_id
                self._next_line_id += 1
        return lines

    @staticmethod
    def _order_totals(order: Json) -> None:
        """Totals (*inference* for discounts): subtotal = the lines' gross (products, fees, discount lines with
        their negative gross); total_amount = subtotal - the order-level ``discount_amount`` + shipping, i.e.
        products + fees - discounts + shipping. A discount without a VAT rate (a line's, or the order-level one)
        takes its VAT off the product lines' rates in proportion to their gross (``core.order_totals.spread``)."""
        lines = order["line_items"]
        products = [line for line in lines if line["item_type"] == "product"]
        base: dict[Decimal | None, Decimal] = {}
        for line in products:
            rate = Decimal(str(line["product_tax_percent"]))
            base[rate] = base.get(rate, Decimal(0)) + Decimal(str(line["line_subtotal_gross"]))
        base = {rate: value for rate, value in base.items() if value > 0}

        def net_of(gross: float) -> float:  # a gross amount without a rate of its own, spread over the products'
            parts = spread(Decimal(str(abs(gross))), base)
            net = sum((cat.net_from_gross(float(part), float(rate or 0)) for rate, part in parts), 0.0)
            return math.copysign(net, gross)

        gross = cat.money(sum(line["line_subtotal_gross"] for line in lines))
        net = cat.money(
            sum(
                line["line_subtotal_net"]
                if line["line_subtotal_net"] is not None
                else net_of(line["line_subtotal_gross"])
                for line in lines
            )
        )
        discount = order.get("discount_amount") or 0.0
        discount_net = net_of(discount) if discount else 0.0
        shipping = order["shipping_amount"] or 0.0
        shipping_tax = cat.money(shipping - cat.net_from_gross(shipping, order["shipping_tax_percent"]))
        order["shipping_tax_amount"] = shipping_tax
        order["subtotal_including_tax"] = gross
        order["subtotal_excluding_tax"] = net
        order["tax_amount"] = cat.money(gross - net - (discount - discount_net) + shipping_tax)
        order["total_amount"] = cat.money(gross - discount + shipping)

    def _insert_order(
        self,
        payload: Json,
        *,
        ignore_unknown: bool,
        adjust_stock: bool,
        order_id: str | None,
        created: datetime | None,
        modified: datetime | None,
        source_type: str,
    ) -> Json:
        sent = writable(payload, ORDER_WRITABLE, ORDER_READONLY, ignore_unknown)
        if "line_items" not in sent:
            raise bad("missing_field", "Field `line_items` is required")
        order: Json = {
            "id": None, "sys_id": None, "public_code": None, "channel_id": 1, "source_type": source_type,
            "payment_status": "awaiting", "payment_method_code": "cash_delivery",
            "payment_method_name": cat.PAYMENT_METHODS["cash_delivery"], "payment_date": None, "paid_amount": None,
            "shipping_status": "awaiting", "shipping_method_id": 1, "shipping_method_name": cat.SHIPPING_METHODS[1],
            "shipping_amount": 0.0, "shipping_tax_percent": 19, "shipping_tax_amount": 0.0, "shipping_awb": None,
            "subtotal_including_tax": 0.0, "subtotal_excluding_tax": 0.0, "tax_amount": 0.0, "total_amount": 0.0,
            "discount_amount": 0.0,
            "currency": "RON", "has_returns": False, "customer_id": None, "customer_email": None,
            "customer_note": None, "date_created": None, "date_modified": None, "meta_fields": {},
            "billing_type": "individual", **dict.fromkeys(BILLING_TEXT), "shipping_as_billing": False,
            **dict.fromkeys(SHIPPING_TEXT), "carrier_tracking": [], "proforma_url": None, "info_url": None,
            "invoice_series": None, "invoice_number": None, "invoice_url": None, "tags": [], "line_items": [],
        }  # fmt: skip
        self._apply_order_fields(order, sent)
        if order["shipping_as_billing"]:
            for name in SHIPPING_TEXT:
                if name not in sent:
                    order[name] = order["billing_" + name.removeprefix("shipping_")]
        order["line_items"], moves = self._build_lines(sent["line_items"], None, ignore_unknown)
        self._order_totals(order)
        if order["payment_status"] == "paid" and order["paid_amount"] is None:
            order["paid_amount"] = order["total_amount"]
        # Valid: from here on the shop changes.
        created = cat.as_local(created or self.now())
        modified = cat.as_local(modified or created)
        order_id = order_id or self._new_order_id(self._ids_rng)
        base = self.base_url or "http://shop.test"
        order.update(
            id=order_id,
            sys_id=self._next_sys_id,
            public_code=str(self._next_sys_id),
            date_created=cat.iso(created),
            date_modified=cat.iso(modified),
            proforma_url=f"{base}/proforma/{order_id}.pdf",
            info_url=f"{base}/order/info/{order_id}",
        )
        if order["payment_status"] == "paid" and order["payment_date"] is None:
            order["payment_date"] = order["date_created"]
        self._next_sys_id += 1
        self._number_lines(order["line_items"])
        order["customer_id"] = self._customer_for(order, created)
        if adjust_stock:
            self._lower_stock(moves)
        self.orders[order_id] = order
        self._version += 1
        return order

    def _customer_for(self, order: Json, created: datetime) -> int | None:
        email = order["customer_email"]
        if not email:
            return None
        known = self._customer_email.get(email.lower())
        if known is not None:
            return known
        first, _, last = (order["billing_name"] or "").partition(" ")
        company = order["billing_type"] == "company"
        customer = self._store_customer(
            {
                "email": email,
                "first_name": first or None,
                "last_name": last or None,
                "phone": order["billing_phone"],
                "type": order["billing_type"],
                "company_name": order["billing_company"] if company else None,
                "fiscal_code": order["billing_fiscal_code"] if company else None,
                "reg_no": order["billing_reg_no"] if company else None,
                "country_code": order["billing_country_code"],
                "city": order["billing_city"],
                "address": order["billing_address"],
                "postal_code": order["billing_postal_code"],
            },
            created,
        )
        return int(customer["id"])

    def _lower_stock(self, moves: list[tuple[Json, Json, float]]) -> None:
        stamp = cat.iso(self.now())
        for product, unit, quantity in moves:
            current = self.products[product["id"]]
            if unit is product:
                new = dict(current, stock=current["stock"] - quantity)
            else:
                variants = [
                    dict(v, stock=v["stock"] - quantity) if v["id"] == unit["id"] else v for v in current["variants"]
                ]
                new = dict(current, variants=variants, variant_attributes=cat.variant_attributes_for(variants))
            new["date_modified"] = stamp
            self.products[product["id"]] = new

    def _list_customers(self, request: Request) -> tuple[int, Any]:
        query = self._list_query(request, CUSTOMER_FILTERS)
        filters = dict(query.filters)
        predicates = date_predicates(filters.items())
        if "email" in filters:
            email = filters["email"].lower()
            predicates.append(lambda c: c["email"].lower() == email)
        if "group_id" in filters:
            group = int_filter("group_id", filters["group_id"])
            predicates.append(lambda c: c["group_id"] == group)
        if "status" in filters:
            statuses = enum_filter("status", filters["status"], ("active", "inactive"))
            predicates.append(lambda c: c["status"] in statuses)
        if "newsletter" in filters:
            wanted = filters["newsletter"].lower() in TRUE_WORDS
            predicates.append(lambda c: c["newsletter"] is wanted)
        if "country_code" in filters:
            country = filters["country_code"]
            predicates.append(lambda c: c["country_code"] == country)
        if "city" in filters:
            city = filters["city"]
            predicates.append(lambda c: c["city"] == city)
        sort = self._sort_key(query.sort, ("id", "email", "date_created"))
        items = self._cached(
            ("customers", query.filters, sort),
            lambda: [
                c["id"]
                for c in (self._sorted(self._matching(predicates), sort) if sort else self._matching(predicates))
            ],
        )
        page = [
            self._project(self.customers[i], query.fields, frozenset())
            for i in items[query.start : query.start + query.limit]
        ]
        return 200, self._envelope(request, page, len(items), query)

    def _matching(self, predicates: list[Callable[[Json], bool]]) -> list[Json]:
        return [c for c in self.customers.values() if all(pred(c) for pred in predicates)]

    def _get_customer(self, request: Request, raw_id: str) -> tuple[int, Any]:
        return 200, self._render_one(request, self._customer_or_404(raw_id))

    def _post_customer(self, request: Request) -> tuple[int, Any]:
        fields = self._customer_fields(request.json_object(), request.flag("ignore_nonexistent_fields"))
        email = fields.get("email")
        if not email or "@" not in email:
            raise bad("missing_field", "Field `email` is required and must be an e-mail address")
        if email.lower() in self._customer_email:
            raise bad("duplicate_email", f"A customer with e-mail `{email}` already exists")
        return 201, self._render_one(request, self._store_customer(fields, self.now()))

    def _customer_fields(self, payload: Json, ignore_unknown: bool) -> Json:
        sent = writable(payload, CUSTOMER_WRITABLE, CUSTOMER_READONLY, ignore_unknown)
        fields: Json = {}
        for name, value in sent.items():
            if name == "type":
                fields[name] = choice(name, value, ("individual", "company"))
            elif name == "status":
                fields[name] = choice(name, value, ("active", "inactive"))
            elif name in ("newsletter", "shipping_as_billing"):
                fields[name] = boolean(name, value)
            elif name == "group_id":
                fields[name] = integer(name, value)
            else:
                fields[name] = text(name, value, nullable=name != "email", max_length=255)
        return fields

    def _customer_or_404(self, raw_id: str) -> Json:
        customer = self.customers.get(int(raw_id)) if raw_id.isdigit() else None
        if customer is None:
            raise ApiError(404, "not_found", f"Customer `{raw_id}` not found")
        return customer

    def _patch_customer(self, request: Request, raw_id: str) -> tuple[int, Any]:
        customer = self._customer_or_404(raw_id)
        fields = self._customer_fields(request.json_object(), request.flag("ignore_nonexistent_fields"))
        return 200, self._render_one(request, self.change_customer(int(customer["id"]), fields))

    def _delete_customer(self, request: Request, raw_id: str) -> tuple[int, Any]:
        self.anonymise_customer(int(self._customer_or_404(raw_id)["id"]))
        return 204, None

    def change_customer(self, customer_id: int, fields: Json) -> Json:
        """Change an account's fields (as PATCH /customers/{id}); ``date_modified`` becomes now."""
        current = self.customers[customer_id]
        email = fields.get("email")
        if email is not None:
            owner = self._customer_email.get(email.lower())
            if owner is not None and owner != customer_id:
                raise bad("duplicate_email", f"A customer with e-mail `{email}` already exists")
            self._customer_email.pop(str(current["email"]).lower(), None)
            self._customer_email[email.lower()] = customer_id
        updated = {**current, **fields, "date_modified": cat.iso(self.now())}
        updated["name"] = " ".join(p for p in (updated["first_name"], updated["last_name"]) if p) or None
        self.customers[customer_id] = updated
        self._version += 1
        return updated

    def anonymise_customer(self, customer_id: int) -> Json:
        """Delete an account as a shop does for privacy: it stays, anonymised (``anonymized`` true)."""
        current = self.customers[customer_id]
        self._customer_email.pop(str(current["email"]).lower(), None)
        gone = {**current, **dict.fromkeys(CUSTOMER_PERSONAL), "anonymized": True}
        gone["email"] = f"anonymized-{customer_id}@invalid"
        gone["date_modified"] = cat.iso(self.now())
        self.customers[customer_id] = gone
        self._version += 1
        return gone

    def _store_customer(self, fields: Json, created: datetime) -> Json:
        cid = self._next_customer_id
        self._next_customer_id += 1
        customer: Json = {
            "id": cid, "email": None, "first_name": None, "last_name": None, "name": None, "phone": None,
            "type": "individual", "company_name": None, "fiscal_code": None, "reg_no": None, "group_id": 1,
            "status": "active", "newsletter": False, "country_code": "RO", "city": None, "address": None,
            "state": None, "postal_code": None, "shipping_as_billing": True,
            **dict.fromkeys(CUSTOMER_SHIPPING), "anonymized": False,
            "date_created": cat.iso(created), "date_modified": cat.iso(created),
        }  # fmt: skip
        customer.update(fields)
        customer["name"] = " ".join(part for part in (customer["first_name"], customer["last_name"]) if part) or None
        self.customers[cid] = customer
        self._customer_email[customer["email"].lower()] = cid
        self._version += 1
        return customer
