"""SmartBill's client without the simulator: the errorText classifier table-tested on built replies, the
lock-out after a 429 on a mock transport and a fake clock."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from erpsync.connectors.erp.smartbill.client import (
    LOCKOUT_SECONDS,
    SmartBillClient,
    classify_smartbill,
    error_text,
    is_already_cancelled,
)
from erpsync.connectors.errors import (
    AuthError,
    BadRequestError,
    ConnectorError,
    RateLimitedError,
    RecordError,
    RetriableError,
)
from erpsync.connectors.http import reset_shared_limiters

URL = "http://smartbill.test/SBORO/api"
USER, TOKEN = "shop@example.com", "sb-token-0001"


@pytest.fixture(autouse=True)
def _fresh_limiters() -> Iterator[None]:
    reset_shared_limiters()
    yield
    reset_shared_limiters()


# --------------------------------------------------------------------------- the classifier


def reply(status: int, body: Any = None, headers: dict[str, str] | None = None) -> httpx.Response:
    request = httpx.Request("POST", f"{URL}/invoice")
    if body is None:
        return httpx.Response(status, headers=headers, request=request)
    return httpx.Response(status, json=body, headers=headers, request=request)


@pytest.mark.parametrize(
    ("response", "record_key", "expected"),
    [
        (reply(200, {"errorText": "", "number": "1"}), "o1", None),
        (reply(200, {"errorText": None, "list": []}), None, None),
        (reply(200, {"errorText": 'Produsul cu codul "X" nu exista.'}), "o1", RecordError),
        (reply(200, {"errorText": "Eroare de validare."}), None, BadRequestError),
        (reply(200, {"errorText": "Autentificare esuata."}), "o1", AuthError),
        (reply(200, {"errorText": "Nu aveti drepturi de acces pe firma."}), None, AuthError),
        (reply(200, {"errorText": 'Produsul "TOKEN INVALID ACCES" nu exista.'}), "o1", RecordError),
        (reply(200, {"errorText": "Serviciul este temporar indisponibil."}), None, RetriableError),
        (reply(400, {"errorText": "Tokenul invalid."}), "o1", AuthError),
        (reply(400, {"errorText": "Cota TVA nu exista."}), "o1", RecordError),
        (reply(400, {"errorText": "Cota TVA nu exista."}), None, BadRequestError),
        (reply(401, {"errorText": "x"}), None, AuthError),
        (reply(429, {"errorText": "Too many"}), None, RateLimitedError),
        (reply(503), None, RetriableError),
        (httpx.Response(200, content=b"%PDF-1.4", request=httpx.Request("GET", URL)), None, None),
        (
            httpx.Response(
                200,
                content=b'{"errorText": "Factura nu exista."}',
                headers={"Content-Type": "text/plain"},
                request=httpx.Request("PUT", f"{URL}/invoice/cancel"),
            ),
            "WEB-0001",
            RecordError,
        ),
    ],
)
def test_classifier_table(
    response: httpx.Response, record_key: str | None, expected: type[ConnectorError] | None
) -> None:
    error = classify_smartbill(response, system="smartbill", record_key=record_key)
    if expected is None:
        assert error is None
    else:
        assert type(error) is expected
        assert error is not None and error.system == "smartbill"
        if expected is RecordError:
            assert isinstance(error, RecordError) and error.key == record_key


def test_a_429_without_retry_after_is_taken_as_the_lock_out() -> None:
    error = classify_smartbill(reply(429, {"errorText": "Too many"}), system="smartbill")
    assert isinstance(error, RateLimitedError) and error.retry_after == 600
    error = classify_smartbill(reply(429, {"errorText": "x"}, {"Retry-After": "12"}), system="smartbill")
    assert isinstance(error, RateLimitedError) and error.retry_after == 12


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b'{"errorText": "  Factura nu exista.  "}', "Factura nu exista."),
        (b'  {"errorText": "x"}', "x"),
        (b'{"errorText": "", "number": "1"}', ""),
        (b'{"errorText": null}', ""),
        (b'[{"errorText": "x"}]', ""),
        (b'{"errorText": "x"', ""),
        (b"%PDF-1.4", ""),
        (b"", ""),
    ],
)
def test_error_text_is_read_from_a_json_object_body_only(content: bytes, expected: str) -> None:
    response = httpx.Response(200, content=content, request=httpx.Request("GET", f"{URL}/tax"))
    assert error_text(response) == expected


@pytest.mark.parametrize(
    ("message", "expected"),
    [("Factura este deja anulata.", True), ("Invoice already cancelled", True), ("Factura nu exista.", False)],
)
def test_an_already_cancelled_refusal_is_recognized(message: str, expected: bool) -> None:
    assert is_already_cancelled(message) is expected


# --------------------------------------------------------------------------- the lock-out


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_after_a_429_the_client_makes_no_call_until_the_lock_out_is_over() -> None:
    clock = FakeClock()
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        if len(seen) == 1:
            return httpx.Response(429, json={"errorText": "Too many requests"})
        return httpx.Response(200, json={"errorText": "", "taxes": []})

    client = SmartBillClient(URL, USER, TOKEN, transport=httpx.MockTransport(handler), clock=clock, sleep=clock.sleep)
    try:
        with pytest.raises(RateLimitedError) as raised:
            client.request("GET", "tax", params={"cif": "RO1"})
        assert raised.value.retry_after == LOCKOUT_SECONDS
        assert len(seen) == 1  # not retried into the locked token

        clock.sleep(LOCKOUT_SECONDS - 10)
        with pytest.raises(RateLimitedError, match="not calling for 10 s") as raised:
            client.request("GET", "tax", params={"cif": "RO1"})
        assert raised.value.not_sent is True
        assert raised.value.retry_after == pytest.approx(10)
        assert len(seen) == 1

        clock.sleep(10)
        assert client.request("GET", "tax", params={"cif": "RO1"}) == {"errorText": "", "taxes": []}
        assert seen == ["/SBORO/api/tax", "/SBORO/api/tax"]
        assert (client.counters.reads, client.counters.rate_limited) == (2, 1)  # the refused call is not counted
    finally:
        client.close()


def test_clients_of_one_credential_share_one_window() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={})

    transport = httpx.MockTransport(handler)
    first, second = SmartBillClient(URL, USER, TOKEN, transport=transport), SmartBillClient(URL, USER, TOKEN)
    other = SmartBillClient(URL, USER, "another-token", transport=transport)
    try:
        assert first.limiter is second.limiter
        assert other.limiter is not first.limiter
    finally:
        for client in (first, second, other):
            client.close()
