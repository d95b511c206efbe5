"""Oblio's stock notices at the receiver (``/webhooks/erp/oblio``): the key and the echo, what triggers a stock sync
of which SKUs, replays, and waiting syncs merged. The flow end to end: tests/flows/test_oblio_stock.py."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator

import httpx
import pytest

from erpsync.app.webhooks import Dispatcher, ReplayGuard, StockDispatcher, codes_of, create_app
from erpsync.connectors.asgi import SyncASGITransport
from erpsync.core.config import settings_from_dict

HOOK = "oblio-hook-0001"
STORES = [
    {"name": "main", "url": "https://a.example.ro", "api_key": "k", "api_secret": "literal:s"},
    {
        "name": "cluj",
        "url": "https://b.example.ro",
        "api_key": "k",
        "api_secret": "literal:s",
        "orders": {"reference_prefix": "CLUJ-"},
    },
]
OBLIO = {"type": "oblio", "email": "o@example.ro", "secret": "literal:x", "cif": "RO12345678", "invoice_series": "F"}


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, list[str] | None]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()

    def __call__(self, store: str, skus: list[str] | None) -> None:
        self.entered.set()
        self.gate.wait(5)
        self.calls.append((store, skus))


@pytest.fixture
def receiver() -> Iterator[tuple[httpx.Client, Recorder, StockDispatcher]]:
    settings = settings_from_dict({"erp": {**OBLIO, "webhook_secret": f"literal:{HOOK}"}, "stores": STORES})
    recorder = Recorder()
    stock = StockDispatcher(recorder, ["main", "cluj"])
    orders = Dispatcher(lambda store, order_id: None)
    app = create_app(settings, orders, stock=stock, max_body_bytes=4096, replay=ReplayGuard())
    with httpx.Client(transport=SyncASGITransport(app), base_url="http://receiver.test") as client:
        yield client, recorder, stock
    stock.stop()
    orders.stop()


def notify(
    client: httpx.Client, body: object, *, key: str | None = HOOK, request_id: str | None = "r-1"
) -> httpx.Response:
    headers = {} if request_id is None else {"X-Oblio-Request-Id": request_id}
    params = {} if key is None else {"key": key}
    return client.post("/webhooks/erp/oblio", params=params, content=json.dumps(body), headers=headers)


def test_a_verified_notice_is_echoed_and_syncs_its_codes_in_every_store(
    receiver: tuple[httpx.Client, Recorder, StockDispatcher],
) -> None:
    client, recorder, stock = receiver
    reply = notify(client, {"topic": "stock", "data": {"products": [{"code": "P1"}, {"code": "P2"}]}})
    assert reply.status_code == 200 and reply.text == base64.b64encode(b"r-1").decode()
    assert stock.join(10)
    assert sorted(recorder.calls) == [("cluj", ["P1", "P2"]), ("main", ["P1", "P2"])]


@pytest.mark.parametrize(("key", "request_id"), [("wrong", "r-1"), (None, "r-1"), (HOOK, None)])
def test_a_wrong_key_or_no_request_id_is_refused_and_triggers_nothing(
    receiver: tuple[httpx.Client, Recorder, StockDispatcher], key: str | None, request_id: str | None
) -> None:
    client, recorder, stock = receiver
    reply = notify(client, {"code": "P1"}, key=key, request_id=request_id)
    assert reply.status_code == 401 and reply.json() == {"status": "bad_key"}
    assert stock.join(10) and recorder.calls == []


def test_a_notice_without_codes_re_reads_every_sku_and_a_replay_is_answered_not_re_run(
    receiver: tuple[httpx.Client, Recorder, StockDispatcher],
) -> None:
    client, recorder, stock = receiver
    for _ in range(2):  # Oblio re-sends what it thinks was lost: the same request id
        assert notify(client, {"topic": "stock"}, request_id="r-9").status_code == 200
    reply = client.post(
        "/webhooks/erp/oblio", params={"key": HOOK}, content=b"not json", headers={"X-Oblio-Request-Id": "r-10"}
    )
    assert reply.status_code == 200  # verified, unreadable body: stock moved somewhere, read it all
    assert stock.join(10)
    assert recorder.calls.count(("main", None)) in (1, 2) and recorder.calls.count(("cluj", None)) in (1, 2)
    assert len(recorder.calls) <= 4


def test_notices_that_arrive_while_a_sync_waits_are_merged_into_it(
    receiver: tuple[httpx.Client, Recorder, StockDispatcher],
) -> None:
    client, recorder, stock = receiver
    recorder.gate.clear()  # the first sync is busy
    notify(client, {"code": "P1"}, request_id="a")
    assert recorder.entered.wait(5)  # main's sync of P1 has started
    for n, code in enumerate(["P2", "P3", "P2"]):
        notify(client, {"code": code}, request_id=f"b{n}")
    recorder.gate.set()
    assert stock.join(10)
    # main ran P1 at once; what came later for it waited as one sync; cluj waited all along: one sync of all
    assert recorder.calls[0] == ("main", ["P1"])
    assert sorted(recorder.calls[1:]) == [("cluj", ["P1", "P2", "P3"]), ("main", ["P2", "P3"])]


def test_oblio_notices_need_an_oblio_set_up_with_a_secret() -> None:
    tryton = settings_from_dict({"erp": {"type": "tryton", "database": "x", "password": "literal:p"}, "stores": STORES})
    no_secret = settings_from_dict({"erp": OBLIO, "stores": STORES})
    for settings in (tryton, no_secret):
        stock = StockDispatcher(lambda store, skus: None, ["main"])
        app = create_app(settings, Dispatcher(lambda store, order_id: None), stock=stock)
        with httpx.Client(transport=SyncASGITransport(app), base_url="http://receiver.test") as client:
            assert notify(client, {"code": "P1"}).status_code == 404
        stock.stop()


def test_codes_are_found_anywhere_in_the_notice() -> None:
    assert codes_of({"data": {"products": [{"productCode": "A"}, {"sku": 12}, {"code": " "}]}}) == {"A", "12"}
    assert codes_of([{"code": "B", "flag": True}]) == {"B"}
    assert codes_of({"topic": "stock", "quantity": 3}) == set()
