"""The webhook receiver: signature over the raw body, what triggers and what does not, replays, bad bodies."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import httpx
import pytest

from erpsync.app.webhooks import Dispatcher, ReplayGuard, create_app, order_id_of
from erpsync.connectors.asgi import SyncASGITransport
from erpsync.connectors.merchantpro.webhooks import SIGNATURE_HEADER, sign
from erpsync.core.config import settings_from_dict

SECRET = "whsec-main-0001"


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, store: str, order_id: str) -> None:
        self.gate.wait(5)
        self.calls.append((store, order_id))


@pytest.fixture
def receiver() -> Iterator[tuple[httpx.Client, Recorder, Dispatcher]]:
    settings = settings_from_dict(
        {
            "erp": {"type": "tryton", "database": "x", "password": "literal:pw"},
            "stores": [
                {
                    "name": "main",
                    "url": "https://a.example.ro",
                    "api_key": "k",
                    "api_secret": "literal:s",
                    "webhook_secret": f"literal:{SECRET}",
                },
                {
                    "name": "quiet",
                    "url": "https://b.example.ro",
                    "api_key": "k",
                    "api_secret": "literal:s",
                    "orders": {"reference_prefix": "Q-"},
                },  # two stores share the ERP: distinct order references
            ],
        }
    )
    recorder = Recorder()
    dispatcher = Dispatcher(recorder)
    app = create_app(settings, dispatcher, max_body_bytes=4096, replay=ReplayGuard())
    with httpx.Client(transport=SyncASGITransport(app), base_url="http://receiver.test") as client:
        yield client, recorder, dispatcher
    dispatcher.stop()


def post(
    client: httpx.Client,
    body: bytes,
    *,
    signature: str | None = None,
    store: str = "main",
    content_type: str = "application/json",
) -> tuple[int, dict[str, str]]:
    headers = {"Content-Type": content_type}
    if signature is not None:
        headers[SIGNATURE_HEADER] = signature
    response = client.post(f"/webhooks/{store}", content=body, headers=headers)
    return response.status_code, response.json()


def test_a_signed_order_event_triggers_the_order_once(receiver: tuple[httpx.Client, Recorder, Dispatcher]) -> None:
    client, recorder, dispatcher = receiver
    body = b'{"event": "order.created", "id": "95750870.3"}'
    assert post(client, body, signature=sign(body, SECRET)) == (202, {"status": "queued"})
    dispatcher.join()
    assert recorder.calls == [("main", "95750870.3")]


def test_bad_or_missing_signature_is_401_and_triggers_nothing(
    receiver: tuple[httpx.Client, Recorder, Dispatcher],
) -> None:
    client, recorder, dispatcher = receiver
    body = b'{"event": "order.created", "id": "42209911"}'
    assert post(client, body)[0] == 401
    assert post(client, body, signature=sign(body, "another-secret"))[0] == 401
    assert post(client, body, signature="bm90IGEgc2lnbmF0dXJl")[0] == 401
    altered = body.replace(b"42209911", b"42209912")
    assert post(client, altered, signature=sign(body, SECRET))[0] == 401
    dispatcher.join()
    assert recorder.calls == []


def test_a_replay_does_no_harm(receiver: tuple[httpx.Client, Recorder, Dispatcher]) -> None:
    client, recorder, dispatcher = receiver
    body = b'{"event": "order.updated", "order_id": 42209911}'
    signature = sign(body, SECRET)
    assert post(client, body, signature=signature)[0] == 202
    dispatcher.join()
    assert post(client, body, signature=signature) == (200, {"status": "duplicate"})
    dispatcher.join()
    assert recorder.calls == [("main", "42209911")]


def test_an_order_already_waiting_is_not_queued_twice(receiver: tuple[httpx.Client, Recorder, Dispatcher]) -> None:
    client, recorder, dispatcher = receiver
    recorder.gate.clear()  # hold the worker on the first trigger
    first = b'{"event": "order.created", "id": "1"}'
    second = b'{"event": "order.updated", "id": "2"}'
    third = b'{"event": "order.paid", "id": "2"}'
    for body in (first, second):
        assert post(client, body, signature=sign(body, SECRET))[0] == 202
    assert post(client, third, signature=sign(third, SECRET)) == (202, {"status": "already_queued"})
    recorder.gate.set()
    dispatcher.join()
    assert recorder.calls == [("main", "1"), ("main", "2")]


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        (b"{not json", "application/json", (400, "malformed")),
        (b"[1, 2]", "application/json", (400, "malformed")),
        (b'{"event": "order.created"}', "application/json", (422, "no_order_id")),
        (b'{"event": "product.updated", "id": 5}', "application/json", (202, "ignored")),
        (b"id=5", "application/x-www-form-urlencoded", (415, "not_json")),
    ],
)
def test_bad_bodies_get_a_clear_status_and_trigger_nothing(
    receiver: tuple[httpx.Client, Recorder, Dispatcher], body: bytes, content_type: str, expected: tuple[int, str]
) -> None:
    client, recorder, dispatcher = receiver
    status, reply = post(client, body, signature=sign(body, SECRET), content_type=content_type)
    assert (status, reply["status"]) == expected
    dispatcher.join()
    assert recorder.calls == []


def test_oversized_body_is_413(receiver: tuple[httpx.Client, Recorder, Dispatcher]) -> None:
    client, recorder, _ = receiver
    body = json.dumps({"id": "1", "pad": "x" * 5000}).encode()
    assert post(client, body, signature=sign(body, SECRET))[0] == 413
    assert recorder.calls == []


def test_unknown_store_or_store_without_secret_is_404(receiver: tuple[httpx.Client, Recorder, Dispatcher]) -> None:
    client, _, _ = receiver
    body = b'{"id": "1"}'
    assert post(client, body, signature=sign(body, SECRET), store="nope")[0] == 404
    assert post(client, body, signature=sign(body, SECRET), store="quiet")[0] == 404


def test_order_ids_are_found_and_kept_whole() -> None:
    assert order_id_of({"data": {"id": "95750870.3"}}) == "95750870.3"
    assert order_id_of({"order": {"id": 42}}) == "42"
    assert order_id_of({"id": True}) is None
    assert order_id_of({"nothing": 1}) is None


def test_orders_waiting_while_a_trigger_runs_go_together_per_store() -> None:
    """A burst of webhooks: the orders that waited while one ran go in one run per store, in their order."""
    started, release = threading.Event(), threading.Event()
    singles: list[tuple[str, str]] = []
    batches: list[tuple[str, list[str]]] = []

    def one(store: str, order_id: str) -> None:
        singles.append((store, order_id))
        started.set()
        release.wait(10)

    dispatcher = Dispatcher(one, lambda store, ids: batches.append((store, ids)))
    try:
        assert dispatcher.submit("main", "1")
        assert started.wait(10)  # the first runs alone and blocks: the rest waits
        for store, order_id in (("main", "2"), ("quiet", "7"), ("main", "3"), ("main", "4")):
            assert dispatcher.submit(store, order_id)
        assert not dispatcher.submit("main", "3")  # already waiting
        release.set()
        dispatcher.join()
    finally:
        dispatcher.stop()
    assert singles == [("main", "1"), ("quiet", "7")]  # a store with one waiting order: the single trigger
    assert batches == [("main", ["2", "3", "4"])]


def test_without_a_batch_trigger_each_order_runs_alone() -> None:
    seen: list[str] = []
    dispatcher = Dispatcher(lambda store, order_id: seen.append(order_id))
    try:
        for order_id in ("1", "2", "3"):
            dispatcher.submit("main", order_id)
        dispatcher.join()
    finally:
        dispatcher.stop()
    assert seen == ["1", "2", "3"]
