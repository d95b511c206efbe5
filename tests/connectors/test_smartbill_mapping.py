"""SmartBill's mapping without HTTP: replies in (``/stocks``, ``/tax``), the invoice body of an order out."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from erpsync.connectors.erp.smartbill.mapping import (
    invoice_body,
    invoice_client,
    invoice_total,
    parse_stock,
    parse_taxes,
    stock_entries,
)
from erpsync.connectors.errors import BadRequestError, RecordError
from erpsync.core.models import Address, Customer, Order, OrderLine, StockLevel

TAXES = {Decimal(21): "Normala", Decimal(11): "Redusa", Decimal(0): "SDD"}
SETTINGS: dict[str, Any] = {
    "taxes": TAXES,
    "cif": "RO12345678",
    "series": "WEB",
    "warehouse": "Depozit",
    "measuring_unit": "buc",
    "shipping_name": "Transport",
    "issue_date": "2026-11-29",
}
BILLING = Address(name="Ion Pop", street="Str. Lunga 1", city="Cluj-Napoca", region="Cluj", phone="0722000000")
PERSON = Customer(email="ion@example.ro", name="Ion P.", billing=BILLING)


def stock_of(page_items: list[StockLevel]) -> dict[tuple[str, str], Decimal]:
    return {(s.warehouse, s.sku): s.on_hand for s in page_items}


def an_order(*lines: OrderLine, **fields: Any) -> Order:
    return Order(shop_id="1001", customer=PERSON, billing=BILLING, lines=list(lines), **fields)


# --------------------------------------------------------------------------- /stocks


@pytest.mark.parametrize(
    ("quantity", "readable"),
    [
        (3, True),
        (2.5, True),
        ("4.000", True),
        (-1, True),
        (None, False),
        (True, False),
        ("NaN", False),
        ("", False),
        ([1], False),
    ],
)
def test_quantity_parsing(quantity: object, readable: bool) -> None:
    entries = [{"warehouse": {"warehouseName": "W"}, "products": [{"productCode": "X", "quantity": quantity}]}]
    page = parse_stock(entries, ["W"])
    assert (len(page.items), len(page.errors)) == ((1, 0) if readable else (0, 1))


def test_malformed_entries_do_not_stop_the_read() -> None:
    entries: list[Any] = [
        "junk",
        {"warehouse": {"warehouseName": "W"}, "products": None},
        {"warehouse": {"warehouseName": "W"}, "products": [{"productCode": "   ", "quantity": 1}, "row"]},
        {"warehouse": {"warehouseName": "W"}, "products": [{"productCode": "OK", "quantity": 1}]},
    ]
    page = parse_stock(entries, ["W"])
    assert stock_of(page.items) == {("W", "OK"): 1}
    assert [e.key for e in page.errors] == ["warehouse:?", "warehouse:W", "W#0", "W#1"]


def test_lots_of_one_sku_are_summed_and_negative_stock_passes_through() -> None:
    entries = [
        {
            "warehouse": {"warehouseName": "W"},
            "products": [
                {"productCode": "A", "quantity": "2.5", "measuringUnit": "kg"},
                {"productCode": "A", "quantity": 1, "measuringUnit": "kg"},
                {"productCode": "B", "quantity": -3, "measuringUnit": "buc"},
            ],
        },
        {"warehouse": {"warehouseName": "Other"}, "products": [{"productCode": "A", "quantity": 9}]},
    ]
    page = parse_stock(entries, ["W"])
    assert stock_of(page.items) == {("W", "A"): Decimal("3.5"), ("W", "B"): Decimal(-3)}
    assert all(s.reserved == 0 for s in page.items)
    assert page.errors == []


def test_a_sku_with_one_bad_row_is_dropped_for_that_warehouse_only() -> None:
    entries = [
        {"warehouse": {"warehouseName": "W"}, "products": [{"productCode": "A", "quantity": 1}]},
        {"warehouse": {"warehouseName": "W"}, "products": [{"productCode": "A", "quantity": "n/a"}]},
        {"warehouse": {"warehouseName": "W"}, "products": [{"productCode": "A", "quantity": 5}]},
        {"warehouse": {"warehouseName": "V"}, "products": [{"productCode": "A", "quantity": 2}]},
    ]
    page = parse_stock(entries, ["W", "V"], skus=["A"])
    assert stock_of(page.items) == {("V", "A"): 2}
    [error] = page.errors
    assert error.key == "A" and "in 'W' is not a number" in error.error


def test_a_warehouse_missing_from_the_reply_is_a_row_error_with_a_case_hint() -> None:
    entries = [{"warehouse": {"warehouseName": "Magazin"}, "products": []}]
    page = parse_stock(entries, ["magazin", "Depozit"])
    assert page.items == []
    assert [(e.key, e.payload) for e in page.errors] == [
        ("warehouse:magazin", {"known": ["Magazin"]}),
        ("warehouse:Depozit", {"known": ["Magazin"]}),
    ]
    assert "did you mean 'Magazin'? (names are case-sensitive)" in page.errors[0].error
    assert "did you mean" not in page.errors[1].error


@pytest.mark.parametrize("reply", [None, [], {"list": None}, {"errorText": ""}, "text"])
def test_an_unexpected_stocks_reply_is_a_bad_request(reply: Any) -> None:
    with pytest.raises(BadRequestError, match="unexpected /stocks reply"):
        stock_entries(reply)


def test_stock_entries_are_the_list_of_the_reply() -> None:
    assert stock_entries({"errorText": "", "list": [{"warehouse": {}}]}) == [{"warehouse": {}}]


# --------------------------------------------------------------------------- /tax


def test_taxes_by_normalized_rate_first_name_wins_unreadable_rows_skipped() -> None:
    reply = {
        "taxes": [
            {"name": "Normala", "percentage": "21.00"},
            {"name": "Redusa", "percentage": 11},
            {"name": "Alta 21", "percentage": 21},
            {"name": "", "percentage": 5},
            {"name": "Fara cota", "percentage": None},
            "junk",
        ]
    }
    assert parse_taxes(reply) == {Decimal(21): "Normala", Decimal(11): "Redusa"}


@pytest.mark.parametrize("reply", [None, {"taxes": "x"}, {"list": []}])
def test_an_unexpected_tax_reply_is_a_bad_request(reply: Any) -> None:
    with pytest.raises(BadRequestError, match="unexpected /tax reply"):
        parse_taxes(reply)


# Everything of a person's invoice for order S-1001 but its products (the two full-body tests below).
PERSON_INVOICE: dict[str, Any] = {
    "companyVatCode": "RO12345678",
    "client": {
        "name": "Ion Pop",
        "vatCode": "",
        "regCom": "",
        "isTaxPayer": False,
        "address": "Str. Lunga 1",
        "city": "Cluj-Napoca",
        "county": "Cluj",
        "country": "Romania",
        "email": "ion@example.ro",
        "phone": "0722000000",
        "saveToDb": False,
    },
    "issueDate": "2026-11-29",
    "seriesName": "WEB",
    "currency": "RON",
    "language": "RO",
    "precision": 2,
    "isDraft": False,
    "useStock": True,
    "mentions": "Comanda online S-1001",
}


# --------------------------------------------------------------------------- the invoice body


def test_the_invoice_body_of_a_person_order() -> None:
    line = OrderLine(
        sku="A1", name="Cana", quantity=Decimal(2), unit_price_gross=Decimal("24.99"), vat_rate=Decimal(21)
    )
    body = invoice_body(an_order(line), PERSON, "S-1001", **SETTINGS)
    assert body == {
        **PERSON_INVOICE,
        "products": [
            {
                "name": "Cana",
                "code": "A1",
                "measuringUnitName": "buc",
                "quantity": 2.0,
                "price": 24.99,
                "isTaxIncluded": True,
                "taxName": "Normala",
                "taxPercentage": 21.0,
                "warehouseName": "Depozit",
                "isService": False,
            }
        ],
    }


def test_net_prices_become_gross_and_shipping_is_a_service_line() -> None:
    line = OrderLine(sku="B2", quantity=Decimal(1), unit_price_net=Decimal("10.00"), vat_rate=Decimal("11.0"))
    body = invoice_body(an_order(line, shipping_amount=Decimal("15.99")), PERSON, "1001", **SETTINGS)
    product, shipping = body["products"]
    assert (product["name"], product["price"], product["taxName"]) == ("B2", 11.10, "Redusa")
    assert shipping == {
        "name": "Transport",
        "code": "",
        "measuringUnitName": "buc",
        "quantity": 1.0,
        "price": 15.99,
        "isTaxIncluded": True,
        "taxName": "Normala",  # no shipping_vat_rate: the highest rate SmartBill lists
        "taxPercentage": 21.0,
        "isService": True,
    }
    body = invoice_body(
        an_order(line, shipping_amount=Decimal(5), shipping_vat_rate=Decimal(11)), PERSON, "1001", **SETTINGS
    )
    assert (body["products"][1]["taxName"], body["products"][1]["price"]) == ("Redusa", 5.0)


@pytest.mark.parametrize(
    ("lines", "words"),
    [
        ([], "the order has no lines"),
        (
            [OrderLine(sku="A1", quantity=Decimal(1), unit_price_gross=Decimal(5), vat_rate=Decimal(19))],
            r"A1: VAT rate 19% is not defined in SmartBill \(defined: 0%, 11%, 21%\)",
        ),
        ([OrderLine(sku="A1", quantity=Decimal(1), unit_price_gross=Decimal(5))], "SKU 'A1' has no VAT rate"),
        ([OrderLine(sku="A1", quantity=Decimal(1), vat_rate=Decimal(21))], "SKU 'A1' has no price"),
        ([OrderLine(sku=" ", name="Cana", quantity=Decimal(1), vat_rate=Decimal(21))], r"a line has no SKU \(Cana\)"),
    ],
)
def test_a_line_smartbill_would_refuse_is_a_record_error_keyed_by_the_reference(
    lines: list[OrderLine], words: str
) -> None:
    with pytest.raises(RecordError, match=words) as raised:
        invoice_body(an_order(*lines), PERSON, "S-1001", **SETTINGS)
    assert raised.value.key == "S-1001"
    assert raised.value.system == "smartbill"


def voucher(amount: str, rate: int | None = 21, name: str = "Voucher VARA10") -> OrderLine:
    return OrderLine(
        sku="",
        kind="discount",
        name=name,
        quantity=Decimal(1),
        unit_price_gross=Decimal(amount),
        vat_rate=None if rate is None else Decimal(rate),
    )


def test_the_invoice_body_of_an_order_with_a_voucher() -> None:
    line = OrderLine(
        sku="A1", name="Cana", quantity=Decimal(1), unit_price_gross=Decimal("100.00"), vat_rate=Decimal(21)
    )
    order = an_order(line, voucher("-10.00"), total=Decimal("90.00"))
    body = invoice_body(order, PERSON, "S-1001", **SETTINGS)
    assert body == {
        **PERSON_INVOICE,
        "products": [
            {
                "name": "Cana",
                "code": "A1",
                "measuringUnitName": "buc",
                "quantity": 1.0,
                "price": 100.0,
                "isTaxIncluded": True,
                "taxName": "Normala",
                "taxPercentage": 21.0,
                "warehouseName": "Depozit",
                "isService": False,
            },
            {
                "name": "Voucher VARA10",
                "isDiscount": True,
                "numberOfItems": 1,
                "measuringUnitName": "buc",
                "isTaxIncluded": True,
                "taxName": "Normala",
                "taxPercentage": 21.0,
                "discountType": 1,
                "discountValue": -10.0,
            },
        ],
    }
    assert invoice_total(body["products"]) == Decimal("90.00")


def test_discounts_follow_the_lines_of_their_rate_and_fees_are_service_lines_last() -> None:
    lines = [
        OrderLine(sku="A1", name="Cana", quantity=Decimal(2), unit_price_gross=Decimal("24.99"), vat_rate=Decimal(21)),
        OrderLine(sku="B2", name="Carte", quantity=Decimal(1), unit_price_gross=Decimal("40.00"), vat_rate=Decimal(11)),
        OrderLine(sku="C3", name="Pix", quantity=Decimal(3), unit_price_gross=Decimal("3.33"), vat_rate=Decimal(21)),
        voucher("-5.00", 11, "Reducere (TVA 11%)"),
        voucher("-6.00", 21, "Reducere (TVA 21%)"),
        OrderLine(
            sku="",
            kind="fee",
            name="Taxă ramburs",
            quantity=Decimal(1),
            unit_price_gross=Decimal("4.99"),
            vat_rate=Decimal(21),
        ),
    ]
    order = an_order(*lines, shipping_amount=Decimal("15.00"), shipping_vat_rate=Decimal(11), total=Decimal("108.96"))
    products = invoice_body(order, PERSON, "1001", **SETTINGS)["products"]
    assert [(p["name"], p.get("numberOfItems"), p.get("discountValue"), p.get("isService")) for p in products] == [
        ("Cana", None, None, False),
        ("Pix", None, None, False),
        ("Reducere (TVA 21%)", 2, -6.0, None),  # on the two 21 % lines right before it
        ("Carte", None, None, False),
        ("Transport", None, None, True),  # shipping at 11 %: in that rate's group
        ("Reducere (TVA 11%)", 2, -5.0, None),
        ("Taxă ramburs", None, None, True),
    ]
    assert products[-1]["code"] == "" and "warehouseName" not in products[-1]
    # 49.98 + 9.99 - 6.00 + 40.00 + 15.00 - 5.00 + 4.99
    assert invoice_total(products) == Decimal("108.96")


@pytest.mark.parametrize(
    ("lines", "total", "words"),
    [
        ([voucher("-10.00", 11)], None, r"'Voucher VARA10' is at VAT 11%, and no line of the invoice is"),
        ([voucher("-30.01")], None, r"takes off more than the 21% lines before it come to"),
        ([voucher("-10.00", None)], None, r"The discount line 'Voucher VARA10' has no VAT rate"),
        ([voucher("-10.00", 19)], None, r"VAT rate 19% is not defined in SmartBill"),
        (
            [voucher("-10.00")],
            Decimal("30.00"),
            r"total mismatch: the SmartBill invoice would total 20.00, the shop's total is 30.00 \(difference -10.00\)",
        ),
    ],
)
def test_an_invoice_that_cannot_total_the_shops_total_is_refused_before_any_call(
    lines: list[OrderLine], total: Decimal | None, words: str
) -> None:
    product = OrderLine(sku="A1", quantity=Decimal(1), unit_price_gross=Decimal("30.00"), vat_rate=Decimal(21))
    with pytest.raises(RecordError, match=words) as raised:
        invoice_body(an_order(product, *lines, total=total), PERSON, "S-1001", **SETTINGS)
    assert raised.value.key == "S-1001"


def test_invoice_total_rounds_each_line_and_takes_percent_discounts_off_the_lines_before() -> None:
    products: list[dict[str, Any]] = [
        {"quantity": 3, "price": 3.335},
        {"quantity": 1, "price": 0.005},
        {"isDiscount": True, "discountType": 2, "discountPercentage": 10, "numberOfItems": 1},
        {"isDiscount": True, "discountType": 1, "discountValue": -1.5, "numberOfItems": 2},
    ]
    assert invoice_total(products) == Decimal("8.52")  # 10.01 + 0.01 - round(0.001) - 1.50


# --------------------------------------------------------------------------- the client block


def test_a_company_client_is_the_company_and_pays_vat_when_its_code_starts_with_ro() -> None:
    company = Customer(
        email="office@firma.ro",
        name="Ana",
        is_company=True,
        company_name="Firma SRL",
        vat_code=" ro765432 ",
        registration_number="J12/1/2020",
    )
    client = invoice_client(company, BILLING)
    assert (client["name"], client["vatCode"], client["regCom"], client["isTaxPayer"]) == (
        "Firma SRL",
        "ro765432",
        "J12/1/2020",
        True,
    )
    foreign = company.model_copy(update={"company_name": None, "vat_code": "DE123"})
    client = invoice_client(foreign, Address(company="Firma GmbH", country_code="de"))
    assert (client["name"], client["vatCode"], client["isTaxPayer"], client["country"]) == (
        "Firma GmbH",
        "DE123",
        False,
        "Germania",
    )


def test_a_person_client_carries_no_company_codes_and_falls_back_to_the_address() -> None:
    person = Customer(name="Ion", vat_code="RO1", registration_number="J1", phone=None)
    address = Address(name="", country_code="FR", email="ion@a.ro", phone="0700")
    client = invoice_client(person, address)
    assert (client["name"], client["vatCode"], client["regCom"], client["isTaxPayer"]) == ("Ion", "", "", False)
    assert (client["country"], client["email"], client["phone"]) == ("FR", "ion@a.ro", "0700")
    assert invoice_client(person, None)["country"] == "Romania"  # no address: Address() defaults
