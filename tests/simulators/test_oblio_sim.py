"""The Oblio simulator answers as Oblio's API page says (docs/oblio.md): tokens, the lock, pages, documents."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest

from erpsync.connectors.asgi import SyncASGITransport
from erpsync.testing.oblio import OblioSimulator

CIF = "RO12345678"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sim(clock: Clock) -> OblioSimulator:
    return OblioSimulator(cif=CIF, managements={"Depozit": {"A": 10, "B": 2}}, clock=clock, token_ttl=3600)


def _http(sim: OblioSimulator) -> httpx.Client:
    return httpx.Client(base_url="http://oblio.test/api/", transport=SyncASGITransport(sim))


def _token(http: httpx.Client) -> str:
    reply = http.post(
        "authorize/token",
        json={
            "client_id": "office@example.ro",
            "client_secret": "oblio-secret-0001",
            "grant_type": "client_credentials",
        },
    )
    assert reply.status_code == 200 and reply.json()["expires_in"] == "3600"
    return str(reply.json()["access_token"])


def _get(http: httpx.Client, token: str, path: str, **params: Any) -> httpx.Response:
    return http.get(path, params={"cif": CIF, **params}, headers={"Authorization": f"Bearer {token}"})


def test_wrong_secret_unknown_and_expired_tokens_are_401(sim: OblioSimulator, clock: Clock) -> None:
    http = _http(sim)
    refused = http.post("authorize/token", data={"client_id": "office@example.ro", "client_secret": "no"})
    assert refused.status_code == 401 and refused.json()["statusMessage"]
    assert _get(http, "not-a-token", "nomenclature/management").status_code == 401
    token = _token(http)
    assert _get(http, token, "nomenclature/management").json()["data"][0]["management"] == "Depozit"
    clock.now += 3600
    expired = _get(http, token, "nomenclature/management")
    assert expired.status_code == 401 and expired.json()["status"] == 401


def test_a_fourth_call_within_a_second_locks_the_token_for_ten_minutes(sim: OblioSimulator, clock: Clock) -> None:
    http = _http(sim)
    token = _token(http)
    for _ in range(3):
        assert _get(http, token, "nomenclature/series").status_code == 200
        clock.now += 0.2
    locked = _get(http, token, "nomenclature/series")
    assert locked.status_code == 429 and "blocat" in locked.json()["statusMessage"]
    clock.now += 300
    assert _get(http, token, "nomenclature/series").status_code == 429  # still locked, quiet or not
    clock.now += 301
    assert _get(http, token, "nomenclature/series").status_code == 200
    assert sim.stats.locks == 1


def test_products_come_in_pages_of_250_with_stock_per_management(sim: OblioSimulator, clock: Clock) -> None:
    sim.seed_generated(600, "Magazin")
    http = _http(sim)
    token = _token(http)
    sizes = []
    for offset in (0, 250, 500):
        clock.now += 1
        rows = _get(http, token, "nomenclature/products", offset=offset).json()["data"]
        sizes.append(len(rows))
    assert sizes == [250, 250, 102]  # A, B and 600 generated
    first = _get(http, token, "nomenclature/products", code="A").json()["data"][0]
    assert first["stock"] == [first["stock"][0] | {"management": "Depozit", "quantity": 10, "workStation": "Sediu"}]


def _invoice(key: str | None, quantity: float = 3) -> dict[str, Any]:
    body: dict[str, Any] = {
        "cif": CIF,
        "client": {"name": "Ion Pop"},
        "seriesName": "FCT",
        "useStock": 1,
        "products": [
            {"name": "A", "code": "A", "price": 10, "quantity": quantity, "management": "Depozit", "vatPercentage": 21}
        ],
    }
    if key is not None:
        body["idempotencyKey"] = key
    return body


def test_the_same_idempotency_key_returns_the_same_invoice_and_moves_stock_once(
    sim: OblioSimulator, clock: Clock
) -> None:
    http = _http(sim)
    headers = {"Authorization": f"Bearer {_token(http)}"}
    first = http.post("docs/invoice", json=_invoice("WEB-1"), headers=headers).json()["data"]
    clock.now += 1
    again = http.post("docs/invoice", json=_invoice("WEB-1"), headers=headers).json()["data"]
    assert first == again and first["number"] == "0001" and first["link"].startswith("https://")
    assert len(sim.invoices()) == 1 and sim.quantity("Depozit", "A") == Decimal(7)
    clock.now += 1
    back = http.post("docs/invoice", json=_invoice("WEB-1/R1", -1), headers=headers).json()["data"]
    assert back["number"] == "0002" and sim.quantity("Depozit", "A") == Decimal(8)  # a negative line comes back


def test_storno_reverses_the_whole_invoice_once_and_too_little_stock_is_refused(
    sim: OblioSimulator, clock: Clock
) -> None:
    http = _http(sim)
    headers = {"Authorization": f"Bearer {_token(http)}"}
    http.post("docs/invoice", json=_invoice("K1"), headers=headers)
    storno = {
        "cif": CIF,
        "client": {"name": "Ion Pop"},
        "seriesName": "FCT",
        "referenceDocument": {"type": "Factura", "seriesName": "FCT", "number": "0001"},
    }
    clock.now += 1
    assert http.post("docs/invoice", json=storno, headers=headers).json()["data"]["number"] == "0002"
    assert sim.quantity("Depozit", "A") == Decimal(10) and sim.stornos("FCT-0001")[0].total == Decimal(-30)
    clock.now += 1
    twice = http.post("docs/invoice", json=storno, headers=headers)
    assert twice.status_code == 400 and "stornata" in twice.json()["statusMessage"]
    clock.now += 1
    short = http.post("docs/invoice", json=_invoice("K2", 50), headers=headers)
    assert short.status_code == 400 and "'A'" in short.json()["statusMessage"]
    assert sim.quantity("Depozit", "A") == Decimal(10)
