"""The SmartBill simulator behaves like the reference: auth, stock, invoices, errorText, rate limit with lock-out."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from erpsync.connectors.asgi import SyncASGITransport
from erpsync.testing.smartbill import SimStats, SmartBillSimulator

CIF = "RO12345678"
USER, TOKEN = "shop@example.com", "sb-token-0001"
TODAY = "2026-11-28"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sim(clock: FakeClock) -> SmartBillSimulator:
    return SmartBillSimulator(
        cif=CIF,
        users={USER: TOKEN},
        warehouses={"Depozit": {"A1": 10, "B2": 3}, "Magazin": {"A1": 4}},
        clock=clock,
    )


@pytest.fixture
def client(sim: SmartBillSimulator) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url="http://smartbill.test/SBORO/api", auth=(USER, TOKEN), transport=SyncASGITransport(sim)
    ) as http:
        yield http


def invoice(*lines: dict[str, Any], series: str = "WEB", use_stock: bool = True) -> dict[str, Any]:
    return {
        "companyVatCode": CIF,
        "client": {"name": "Ion Pop"},
        "seriesName": series,
        "useStock": use_stock,
        "products": list(lines),
    }


def line(code: str, quantity: float = 1, warehouse: str = "Depozit", **extra: Any) -> dict[str, Any]:
    return {
        "name": f"Produs {code}",
        "code": code,
        "measuringUnitName": "buc",
        "quantity": quantity,
        "price": 12.5,
        "isTaxIncluded": True,
        "taxName": "Normala",
        "taxPercentage": 21,
        "warehouseName": warehouse,
        "isService": False,
        **extra,
    }


def test_wrong_token_or_no_auth_gets_401_and_is_not_counted(sim: SmartBillSimulator) -> None:
    with httpx.Client(base_url="http://t/SBORO/api", transport=SyncASGITransport(sim)) as anonymous:
        assert anonymous.get("/tax", params={"cif": CIF}).status_code == 401
        reply = anonymous.get("/tax", params={"cif": CIF}, auth=(USER, "wrong"))
    assert reply.status_code == 401
    assert "Autentificare" in reply.json()["errorText"]
    assert sim.stats.auth_failures == 2
    assert sim.stats.calls == 0


def test_stocks_lists_every_warehouse_in_one_reply(client: httpx.Client) -> None:
    reply = client.get("/stocks", params={"cif": CIF, "date": TODAY})
    assert reply.status_code == 200
    body = reply.json()
    assert body["errorText"] == ""
    by_warehouse = {e["warehouse"]["warehouseName"]: e["products"] for e in body["list"]}
    assert set(by_warehouse) == {"Depozit", "Magazin"}
    assert {p["productCode"]: p["quantity"] for p in by_warehouse["Depozit"]} == {"A1": 10, "B2": 3}
    assert set(by_warehouse["Depozit"][0]) == {"measuringUnit", "productCode", "productName", "quantity"}


def test_stocks_without_date_answers_errortext_with_http_200(client: httpx.Client) -> None:
    reply = client.get("/stocks", params={"cif": CIF})
    assert reply.status_code == 200
    assert "Data este obligatorie" in reply.json()["errorText"]
    assert client.get("/stocks", params={"cif": CIF, "date": "28.11.2026"}).json()["errorText"]


def test_routes_outside_errors_as_200_answer_400_with_errortext(sim: SmartBillSimulator, client: httpx.Client) -> None:
    sim.errors_as_200 = set()
    reply = client.get("/stocks", params={"cif": CIF})
    assert reply.status_code == 400
    assert reply.json()["errorText"]


def test_warehouse_filter_is_exact_and_case_sensitive(client: httpx.Client) -> None:
    exact = client.get("/stocks", params={"cif": CIF, "date": TODAY, "warehouseName": "Magazin"}).json()
    assert [e["warehouse"]["warehouseName"] for e in exact["list"]] == ["Magazin"]
    wrong_case = client.get("/stocks", params={"cif": CIF, "date": TODAY, "warehouseName": "magazin"}).json()
    assert wrong_case == {"errorText": "", "message": "", "list": []}
    by_code = client.get("/stocks", params={"cif": CIF, "date": TODAY, "productCode": "B2"}).json()
    assert [[p["productCode"] for p in e["products"]] for e in by_code["list"]] == [["B2"], []]


def test_another_companys_cif_is_refused_with_an_errortext_about_rights(client: httpx.Client) -> None:
    reply = client.get("/tax", params={"cif": "RO999"})
    assert reply.status_code == 200
    assert "drepturi de acces" in reply.json()["errorText"]


def test_invoice_is_numbered_in_its_series_and_takes_stock_out(sim: SmartBillSimulator, client: httpx.Client) -> None:
    first = client.post("/invoice", json=invoice(line("A1", 2), line("B2", 1)))
    second = client.post("/invoice", json=invoice(line("A1", 1)))
    assert first.json() == {
        "errorText": "",
        "message": "",
        "number": "0001",
        "series": "WEB",
        "url": f"https://cloud.smartbill.ro/sim/{CIF}/factura/WEB0001",
    }
    assert second.json()["number"] == "0002"
    assert sim.quantity("Depozit", "A1") == Decimal(7)
    assert sim.quantity("Depozit", "B2") == Decimal(2)
    assert sim.quantity("Magazin", "A1") == Decimal(4)
    assert sim.invoices["WEB-0001"].total == Decimal("37.5")
    assert client.get("/series", params={"cif": CIF}).json()["list"] == [{"name": "WEB", "nextNumber": 3, "type": "f"}]


def test_unknown_code_is_refused_whole_and_moves_nothing(sim: SmartBillSimulator, client: httpx.Client) -> None:
    reply = client.post("/invoice", json=invoice(line("A1", 2), line("NOPE", 1)))
    assert reply.status_code == 400
    assert reply.json()["errorText"] == 'Produsul cu codul "NOPE" nu exista in gestiunea "Depozit".'
    assert sim.quantity("Depozit", "A1") == Decimal(10)
    assert sim.invoices == {}
    sim.errors_as_200.add("invoice")
    again = client.post("/invoice", json=invoice(line("NOPE", 1)))
    assert again.status_code == 200
    assert "NOPE" in again.json()["errorText"]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (invoice(line("B2", 4)), "Stoc insuficient"),
        (invoice(line("A1", 1, warehouse="depozit")), "Gestiunea"),
        (invoice(line("A1", 1, taxPercentage=19, taxName=None)), "Cota TVA 19"),
        (invoice(line("A1", 1, taxName="Redusa")), "nu corespunde"),
        (invoice(line("A1", 1), series="XYZ"), "Seria"),
        ({**invoice(line("A1")), "client": {}}, "Numele clientului"),
        (invoice(), "cel putin un produs"),
    ],
)
def test_invoice_validation(client: httpx.Client, body: dict[str, Any], words: str) -> None:
    reply = client.post("/invoice", json=body)
    assert reply.status_code == 400
    assert words in reply.json()["errorText"]


def discount(count: int, **extra: Any) -> dict[str, Any]:
    return {
        "name": "Voucher VARA10",
        "isDiscount": True,
        "numberOfItems": count,
        "measuringUnitName": "buc",
        "isTaxIncluded": True,
        "taxName": "Normala",
        "taxPercentage": 21,
        "discountType": 1,
        "discountValue": -10,
        **extra,
    }


def test_discount_lines_take_off_a_value_or_a_percentage_of_the_lines_before_them(
    sim: SmartBillSimulator, client: httpx.Client
) -> None:
    by_value = client.post("/invoice", json=invoice(line("A1", 8, price=12.5), discount(1)))
    assert by_value.json()["number"] == "0001"
    assert sim.invoices["WEB-0001"].total == Decimal("90.00")  # 8 x 12.50 - 10.00
    assert sim.quantity("Depozit", "A1") == Decimal(2)  # the discount moves no stock
    percent = discount(2, discountType=2, discountValue=None, discountPercentage=15)
    client.post("/invoice", json=invoice(line("A1", 1, price=9.99), line("B2", 1, price=3.33), percent))
    assert sim.invoices["WEB-0002"].total == Decimal("11.32")  # 13.32 - round(1.998, 2)
    params = {"cif": CIF, "seriesname": "WEB", "number": "0001"}
    assert client.put("/invoice/cancel", params=params).json()["errorText"] == ""
    assert sim.quantity("Depozit", "A1") == Decimal(9)  # back once, the discount line skipped


def test_line_totals_are_rounded_to_the_ban_one_by_one(sim: SmartBillSimulator, client: httpx.Client) -> None:
    client.post("/invoice", json=invoice(line("A1", 3, price=3.335), line("B2", 1, price=0.005)))
    assert sim.invoices["WEB-0001"].total == Decimal("10.02")  # 10.01 + 0.01, not round(10.010)


@pytest.mark.parametrize(
    ("lines", "words"),
    [
        ([discount(1)], "numarul de produse"),  # nothing before it
        ([line("A1"), discount(2)], "numarul de produse"),
        ([line("A1"), discount(1, discountValue=10)], "trebuie sa fie negativa"),
        ([line("A1"), discount(1, discountType=3)], "tipul discountului"),
        ([line("A1"), discount(1, discountType=2, discountPercentage=120)], "procentul"),
        ([line("A1"), discount(1, discountValue=-12.51)], "depaseste"),
        ([line("A1"), discount(1, taxPercentage=24, taxName=None)], "Cota TVA 24"),
    ],
)
def test_discount_lines_smartbill_would_refuse(
    sim: SmartBillSimulator, client: httpx.Client, lines: list[dict[str, Any]], words: str
) -> None:
    reply = client.post("/invoice", json=invoice(*lines))
    assert reply.status_code == 400 and words in reply.json()["errorText"]
    assert sim.invoices == {} and sim.quantity("Depozit", "A1") == Decimal(10)


def test_invoice_without_use_stock_needs_no_warehouse(sim: SmartBillSimulator, client: httpx.Client) -> None:
    reply = client.post("/invoice", json=invoice(line("ANY", 5, warehouse=""), use_stock=False))
    assert reply.json()["number"] == "0001"
    assert sim.quantity("Depozit", "A1") == Decimal(10)


def test_negative_stock_when_allowed(sim: SmartBillSimulator, client: httpx.Client) -> None:
    sim.allow_negative_stock = True
    assert client.post("/invoice", json=invoice(line("B2", 5))).json()["number"] == "0001"
    assert sim.quantity("Depozit", "B2") == Decimal(-2)


def test_cancel_puts_stock_back_once(sim: SmartBillSimulator, client: httpx.Client) -> None:
    client.post("/invoice", json=invoice(line("A1", 4), line("SHIP", 1, isService=True, warehouse="")))
    params = {"cif": CIF, "seriesname": "WEB", "number": "0001"}
    assert client.put("/invoice/cancel", params=params).json()["errorText"] == ""
    assert sim.quantity("Depozit", "A1") == Decimal(10)
    assert sim.invoices["WEB-0001"].cancelled
    again = client.put("/invoice/cancel", params=params)
    assert "deja anulata" in again.json()["errorText"]
    assert sim.quantity("Depozit", "A1") == Decimal(10)
    missing = client.put("/invoice/cancel", params={**params, "number": "9"})
    assert "nu exista" in missing.json()["errorText"]


def test_pdf_and_tax(client: httpx.Client) -> None:
    client.post("/invoice", json=invoice(line("A1")))
    pdf = client.get("/invoice/pdf", params={"cif": CIF, "seriesname": "WEB", "number": "1"})
    assert pdf.content.startswith(b"%PDF")
    taxes = client.get("/tax", params={"cif": CIF}).json()["taxes"]
    assert [t["percentage"] for t in taxes] == [21, 11, 0]


def test_more_than_30_calls_in_10_seconds_lock_the_token_for_10_minutes(
    sim: SmartBillSimulator, client: httpx.Client, clock: FakeClock
) -> None:
    remaining = []
    for _ in range(30):
        reply = client.get("/tax", params={"cif": CIF})
        assert reply.status_code == 200
        remaining.append(int(reply.headers["X-RateLimit-Remaining"]))
        clock.advance(0.1)
    assert remaining[0] == 29 and remaining[-1] == 0
    assert reply.headers["X-RateLimit-Limit"] == "30"
    assert reply.headers["X-RateLimit-Reset"] == "8"  # the first call leaves the window in 7.1 s, rounded up
    locked = client.get("/tax", params={"cif": CIF})
    assert locked.status_code == 429
    assert locked.headers["Retry-After"] == "600"
    assert sim.stats.lockouts == 1
    clock.advance(20)  # the window is long clear, but the lock-out holds
    assert client.get("/tax", params={"cif": CIF}).status_code == 429
    clock.advance(579)
    assert client.get("/tax", params={"cif": CIF}).status_code == 429
    clock.advance(1.5)
    assert client.get("/tax", params={"cif": CIF}).status_code == 200
    assert sim.stats.lockouts == 1
    assert sim.stats.rate_limited == 3
    assert sim.stats.calls == 31


def test_calls_spread_over_windows_never_lock(sim: SmartBillSimulator, client: httpx.Client, clock: FakeClock) -> None:
    for _ in range(90):
        assert client.get("/tax", params={"cif": CIF}).status_code == 200
        clock.advance(10 / 30 + 0.001)
    assert sim.stats.lockouts == 0
    assert sim.stats.max_in_window(10) == 30


def test_lockout_is_per_token(sim: SmartBillSimulator, client: httpx.Client) -> None:
    sim.users["other@example.com"] = "sb-token-0002"
    for _ in range(31):
        client.get("/tax", params={"cif": CIF})
    assert client.get("/tax", params={"cif": CIF}).status_code == 429
    other = client.get("/tax", params={"cif": CIF}, auth=("other@example.com", "sb-token-0002"))
    assert other.status_code == 200
    sim.unlock_all()
    assert client.get("/tax", params={"cif": CIF}).status_code == 200


def test_fault_before_processing_does_nothing(sim: SmartBillSimulator, client: httpx.Client) -> None:
    sim.inject("invoice", status=503)
    assert client.get("/tax", params={"cif": CIF}).status_code == 200  # another route is not hit
    assert client.post("/invoice", json=invoice(line("A1"))).status_code == 503
    assert sim.invoices == {}
    assert client.post("/invoice", json=invoice(line("A1"))).status_code == 200


def test_fault_after_processing_issues_the_invoice_anyway(sim: SmartBillSimulator, client: httpx.Client) -> None:
    sim.inject("invoice", status=502, after=True)
    assert client.post("/invoice", json=invoice(line("A1", 2))).status_code == 502
    assert list(sim.invoices) == ["WEB-0001"]
    assert sim.quantity("Depozit", "A1") == Decimal(8)


def test_injected_errortext_and_seeded_random_faults(clock: FakeClock) -> None:
    def run() -> list[int]:
        sim = SmartBillSimulator(cif=CIF, users={USER: TOKEN}, fault_rate=0.3, seed=7, clock=clock, rate_limit=1000)
        with httpx.Client(base_url="http://t/SBORO/api", auth=(USER, TOKEN), transport=SyncASGITransport(sim)) as c:
            return [c.get("/tax", params={"cif": CIF}).status_code for _ in range(20)]

    first = run()
    assert first == run()
    assert 500 in first and 200 in first
    sim = SmartBillSimulator(cif=CIF, users={USER: TOKEN}, clock=clock)
    sim.inject("stocks", error_text="Serviciul este temporar indisponibil.")
    with httpx.Client(base_url="http://t/SBORO/api", auth=(USER, TOKEN), transport=SyncASGITransport(sim)) as c:
        reply = c.get("/stocks", params={"cif": CIF, "date": TODAY})
    assert reply.status_code == 200
    assert reply.json()["errorText"] == "Serviciul este temporar indisponibil."


def test_seeding_generated_skus_and_raw_rows(clock: FakeClock) -> None:
    sim = SmartBillSimulator(cif=CIF, users={USER: TOKEN}, clock=clock)
    sim.seed_generated(250, ["Depozit"], seed=3)
    sim.add_raw_row("Depozit", {"productName": "fara cod", "quantity": 1})
    with httpx.Client(base_url="http://t/SBORO/api", auth=(USER, TOKEN), transport=SyncASGITransport(sim)) as c:
        products = c.get("/stocks", params={"cif": CIF, "date": TODAY}).json()["list"][0]["products"]
    assert len(products) == 251
    assert products[0]["productCode"] == "SKU00001"
    assert products[-1] == {"productName": "fara cod", "quantity": 1}
    assert all(0 <= p["quantity"] <= 50 for p in products)


def test_max_in_window_counts_the_half_open_window() -> None:
    stats = SimStats(call_times=[0.0, 0.5, 1.0, 1.0, 1.4, 2.0])
    assert stats.max_in_window(1.0) == 4  # 0.5, 1.0, 1.0, 1.4 (0.0 has left at 1.0)
    assert stats.max_in_window(10) == 6


# --------------------------------------------------------------------------- after the import: storno, cancel, PDF


def reverse_body(number: str, issue_date: str | None = None) -> dict[str, Any]:
    body = {"companyVatCode": CIF, "seriesName": "WEB", "number": number}
    return body if issue_date is None else body | {"issueDate": issue_date}


@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_reverse_issues_one_negative_storno_in_the_series_and_puts_stock_back(
    sim: SmartBillSimulator, client: httpx.Client, method: str
) -> None:
    client.post("/invoice", json=invoice(line("A1", 2), line("B2", 1)) | {"issueDate": TODAY})
    assert sim.quantity("Depozit", "A1") == 8
    reply = client.request(method, "/invoice/reverse", json=reverse_body("0001", TODAY))
    assert reply.status_code == 200
    assert (reply.json()["errorText"], reply.json()["series"], reply.json()["number"]) == ("", "WEB", "0002")
    storno = sim.invoices["WEB-0002"]
    assert storno.storno_of == "WEB-0001" and sim.invoices["WEB-0001"].reversed_by == "WEB-0002"
    assert [p["quantity"] for p in storno.products] == [-2, -1] and storno.total == Decimal("-37.5")
    assert (sim.quantity("Depozit", "A1"), sim.quantity("Depozit", "B2")) == (10, 3)
    assert [s.key for s in sim.stornos()] == ["WEB-0002"]


def test_a_second_storno_of_an_invoice_is_refused_with_an_errortext(
    sim: SmartBillSimulator, client: httpx.Client
) -> None:
    client.post("/invoice", json=invoice(line("A1", 2)))
    assert client.post("/invoice/reverse", json=reverse_body("0001")).json()["errorText"] == ""
    again = client.post("/invoice/reverse", json=reverse_body("0001"))
    assert again.status_code == 400 and "deja stornata" in again.json()["errorText"]
    of_storno = client.post("/invoice/reverse", json=reverse_body("0002"))
    assert "storno" in of_storno.json()["errorText"]
    assert len(sim.stornos()) == 1 and sim.quantity("Depozit", "A1") == 10  # stock came back once
    missing = client.post("/invoice/reverse", json=reverse_body("0099"))
    assert "nu exista" in missing.json()["errorText"]


def test_a_storno_dated_before_its_invoice_is_refused(sim: SmartBillSimulator, client: httpx.Client) -> None:
    client.post("/invoice", json=invoice(line("A1", 1)) | {"issueDate": TODAY})
    early = client.post("/invoice/reverse", json=reverse_body("0001", "2026-11-27"))
    assert "anterioara" in early.json()["errorText"] and not sim.stornos()


def test_negative_quantities_bring_stock_back_with_use_stock_only(
    sim: SmartBillSimulator, client: httpx.Client
) -> None:
    client.post("/invoice", json=invoice(line("A1", 3)))
    back = client.post("/invoice", json=invoice(line("A1", -2)))
    assert back.json()["errorText"] == "" and sim.invoices["WEB-0002"].total == Decimal(-25)
    assert sim.quantity("Depozit", "A1") == 9
    client.post("/invoice", json=invoice(line("A1", -1), use_stock=False))
    assert sim.quantity("Depozit", "A1") == 9
    zero = client.post("/invoice", json=invoice(line("A1", 0)))
    assert "cantitate" in zero.json()["errorText"]


def test_cancel_is_refused_once_sent_to_e_factura_or_reversed(sim: SmartBillSimulator, client: httpx.Client) -> None:
    client.post("/invoice", json=invoice(line("A1", 1)))
    client.post("/invoice", json=invoice(line("A1", 1)))
    sim.mark_e_factura("WEB-0001")
    params = {"cif": CIF, "seriesname": "WEB", "number": "0001"}
    refused = client.put("/invoice/cancel", params=params)
    assert "e-Factura" in refused.json()["errorText"] and not sim.invoices["WEB-0001"].cancelled
    client.post("/invoice/reverse", json=reverse_body("0002"))
    reversed_one = client.delete("/invoice/cancel", params=params | {"number": "0002"})
    assert "stornari" in reversed_one.json()["errorText"]
    assert sim.quantity("Depozit", "A1") == 9  # one still sold, one reversed


def test_pdf_is_pdf_bytes_for_an_invoice_and_an_errortext_otherwise(
    sim: SmartBillSimulator, client: httpx.Client
) -> None:
    client.post("/invoice", json=invoice(line("A1", 1)))
    pdf = client.get("/invoice/pdf", params={"cif": CIF, "seriesname": "WEB", "number": "0001"})
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-") and b"WEB0001" in pdf.content
    missing = client.get("/invoice/pdf", params={"cif": CIF, "seriesname": "WEB", "number": "0042"})
    assert "nu exista" in missing.json()["errorText"]


# --------------------------------------------------------------------------- estimates and payments


def payment(value: float, number: str = "0001", kind: str = "Card", **extra: Any) -> dict[str, Any]:
    return {
        "companyVatCode": CIF,
        "client": {"name": "Ion Pop"},
        "issueDate": TODAY,
        "value": value,
        "type": kind,
        "isCash": False,
        "useInvoiceDetails": False,
        "invoicesList": [{"seriesName": "WEB", "number": number}],
        **extra,
    }


def test_an_estimate_is_numbered_in_its_own_series_moves_no_stock_and_cancels_once(
    sim: SmartBillSimulator, client: httpx.Client
) -> None:
    body = {**invoice(line("A1", 2), series="PRF"), "useStock": False}
    reply = client.post("/estimate", json=body).json()
    assert (reply["errorText"], reply["series"], reply["number"]) == ("", "PRF", "0001")
    assert sim.invoices == {} and list(sim.estimates) == ["PRF-0001"] and sim.quantity("Depozit", "A1") == 10
    assert client.post("/estimate", json={**body, "seriesName": "WEB"}).json()["errorText"].startswith("Seria")
    assert [s["name"] for s in client.get("/series", params={"cif": CIF, "type": "p"}).json()["list"]] == ["PRF"]
    params = {"cif": CIF, "seriesname": "PRF", "number": "0001"}
    assert client.put("/estimate/cancel", params=params).json()["errorText"] == ""
    again = client.put("/estimate/cancel", params=params)
    assert again.status_code == 400 and "deja anulata" in again.json()["errorText"]


def test_a_payment_pays_an_invoice_never_above_its_total(sim: SmartBillSimulator, client: httpx.Client) -> None:
    assert client.post("/invoice", json=invoice(line("A1", 2))).json()["number"] == "0001"  # 2 x 12.50
    total = float(sim.invoices["WEB-0001"].total)
    assert client.post("/payment", json=payment(total - 5)).json()["errorText"] == ""
    over = client.post("/payment", json=payment(10))
    assert over.status_code == 400 and "depaseste restul de plata" in over.json()["errorText"]
    assert client.post("/payment", json=payment(5)).json()["errorText"] == ""
    assert [(p.type, p.value, p.invoices) for p in sim.payments] == [
        ("Card", Decimal(str(total - 5)), ["WEB-0001"]),
        ("Card", Decimal(5), ["WEB-0001"]),
    ]
    for body, words in (
        (payment(1, number="0099"), "nu exista"),
        (payment(1, kind="Bitcoin"), "nu este valid"),
        (payment(0), "pozitiva"),
        (payment(1, kind="Chitanta"), "Seria chitantei"),
    ):
        assert words in client.post("/payment", json=body).json()["errorText"]
    assert len(sim.payments) == 2
