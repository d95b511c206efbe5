"""Shop rows as MerchantPro sends them, shared by the mapper and write-body tests."""

from __future__ import annotations

MULTI = {
    "id": 12,
    "type": "multi_variant",
    "sku": "TS",
    "name": "T-shirt",
    "ext_ref": "77",
    "tax_value": "19",
    "status": "active",
    "date_modified": "2025-12-18T10:40:46+02:00",
    "variants": [
        {
            "id": 1201,
            "sku": "TS-S",
            "stock": 3,
            "price_net": "10.00",
            "price_gross": "11.90",
            "variant_options": [{"name": "Size", "value": "S"}],
        },
        {
            "id": 1202,
            "sku": "TS-M",
            "stock": "0",
            "price_net": 10,
            "price_gross": 11.9,
            "variant_options": [{"name": "Size", "value": "M"}],
        },
    ],
}

ORDER = {
    "id": "95750870.3",
    "sys_id": 95750870,
    "payment_status": "paid",
    "payment_method_code": "wire",
    "shipping_status": "confirmed",
    "customer_email": " Ana@Example.RO ",
    "billing_type": "company",
    "billing_name": "Ana Pop",
    "billing_company": "Pop SRL",
    "billing_fiscal_code": "RO123456",
    "billing_city": "Cluj-Napoca",
    "billing_address": "Str. Lunga 1",
    "billing_country_code": "ro",
    "shipping_as_billing": True,
    "shipping_amount": "15.00",
    "shipping_tax_percent": 19,
    "total_amount": "134.00",
    "date_created": "2026-11-20T09:00:00+02:00",
    "line_items": [
        {
            "id": 1,
            "item_type": "product",
            "product_id": 12,
            "product_sku": "TS-S",
            "product_name": "T-shirt S",
            "product_stock": "-1.000",
            "quantity": 2,
            "unit_price_net": "10.00",
            "unit_price_gross": "11.90",
            "product_tax_percent": "19",
        },
        {"id": 2, "item_type": "discount", "product_sku": "", "quantity": 1},
    ],
}
