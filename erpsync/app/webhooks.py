"""The webhook receiver: ``POST /webhooks/{store}`` from MerchantPro, verified, de-duplicated, turned into runs.

A webhook is a trigger, not the truth: after the ``X-Webhook-Signature`` (base64 HMAC-SHA256 of the raw body
under the store's ``webhook_secret``) checks out, only the order id is taken from it; the order is re-fetched
from the shop by the order flow, which imports it (exactly once, through the journal) and refreshes the stock
of its SKUs. Polling keeps running as the catch-up, so a lost webhook costs latency, never data.

Replies: 202 queued · 200 duplicate (a replay within the window: nothing triggered) · 202 ignored (not an
order event) · 401 bad or missing signature · 404 unknown store or webhooks off for it · 400 malformed JSON ·
413 body too large · 415 not JSON · 422 no order id.
"""

from __future__ import annotations

import hashlib
import json
import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from erpsync.connectors.merchantpro.webhooks import SIGNATURE_HEADER, verify_signature
from erpsync.core.config import Settings

log = logging.getLogger("erpsync.webhooks")

MAX_BODY_BYTES = 1024 * 1024
REPLAY_WINDOW_SECONDS = 24 * 3600
EVENT_KEYS = ("event", "type", "topic", "event_type", "name")
ID_PATHS = (("id",), ("order_id",), ("data", "id"), ("data", "order_id"), ("order", "id"), ("resource", "id"))

Trigger = Callable[[str, str], None]


class BodyTooLarge(Exception):
    pass


def order_id_of(payload: Mapping[str, Any]) -> str | None:
    """The order id a webhook names, as a string kept whole (ids like ``"95750870.3"``)."""
    for path in ID_PATHS:
        value: Any = payload
        for key in path:
            value = value.get(key) if isinstance(value, Mapping) else None
        if isinstance(value, str) and value.strip():
            return value.strip()
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
    return None


def event_name_of(payload: Mapping[str, Any]) -> str | None:
    for key in EVENT_KEYS:
        value = payload.get(key)
        if isinstance(value, str) and value:
            return value
    return None


@dataclass
class ReplayGuard:
    """Remembers what was accepted (by body digest and by event) for a window, so a replay triggers nothing."""

    window_seconds: float = REPLAY_WINDOW_SECONDS
    max_entries: int = 100_000
    clock: Callable[[], float] = time.monotonic
    _seen: OrderedDict[str, float] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def first_time(self, key: str) -> bool:
        now = self.clock()
        with self._lock:
            while self._seen and (
                next(iter(self._seen.values())) < now - self.window_seconds or len(self._seen) > self.max_entries
            ):
                self._seen.popitem(last=False)
            if key in self._seen:
                return False
            self._seen[key] = now
            return True


class Dispatcher:
    """Runs triggers one at a time in a background thread; an order already waiting is not queued twice."""

    def __init__(self, trigger: Trigger) -> None:
        self.trigger = trigger
        self._queue: queue.Queue[tuple[str, str] | None] = queue.Queue()
        self._pending: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._work, name="webhook-dispatcher", daemon=True)
        self._thread.start()

    def submit(self, store: str, order_id: str) -> bool:
        """Queue a trigger; False when the same order is already waiting."""
        with self._lock:
            if (store, order_id) in self._pending:
                return False
            self._pending.add((store, order_id))
        self._queue.put((store, order_id))
        return True

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            with self._lock:
                self._pending.discard(item)
            try:
                self.trigger(*item)
            except Exception:
                log.exception("webhook trigger for store %s order %s failed; polling will catch up", *item)
            finally:
                self._queue.task_done()

    def join(self) -> None:
        """Wait until every queued trigger has run (tests)."""
        self._queue.join()

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)


async def _read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _reply(status: int, outcome: str, detail: str = "") -> JSONResponse:
    body = {"status": outcome}
    if detail:
        body["detail"] = detail
    return JSONResponse(body, status_code=status)


def create_app(
    settings: Settings,
    dispatcher: Dispatcher,
    *,
    max_body_bytes: int = MAX_BODY_BYTES,
    replay: ReplayGuard | None = None,
) -> Starlette:
    """The receiver as an ASGI app (served by ``erpsync webhooks``)."""
    guard = replay or ReplayGuard()
    secrets = {s.name: s.webhook_secret for s in settings.stores}

    async def receive(request: Request) -> JSONResponse:
        store = request.path_params["store"]
        secret = secrets.get(store)
        if secret is None:
            return _reply(404, "unknown_store", f"no store {store!r} with a webhook_secret")
        try:
            raw = await _read_limited(request, max_body_bytes)
        except BodyTooLarge:
            return _reply(413, "too_large", f"bodies are limited to {max_body_bytes} bytes")
        if not verify_signature(raw, request.headers.get(SIGNATURE_HEADER), secret.get()):
            log.warning("webhook for store %s refused: bad or missing %s", store, SIGNATURE_HEADER)
            return _reply(401, "bad_signature")
        content_type = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
        if content_type not in ("application/json", "text/json", ""):
            return _reply(415, "not_json", f"content type {content_type!r}")
        try:
            payload = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return _reply(400, "malformed", "the body is not valid JSON")
        if not isinstance(payload, dict):
            return _reply(400, "malformed", "the body is not a JSON object")
        event = event_name_of(payload)
        if event is not None and "order" not in event.lower():
            return _reply(202, "ignored", f"event {event!r} triggers nothing")
        order_id = order_id_of(payload)
        if order_id is None:
            return _reply(422, "no_order_id", "no order id in the payload")
        digest = hashlib.sha256(raw).hexdigest()
        if not guard.first_time(f"{store}:{digest}"):
            return _reply(200, "duplicate")
        queued = dispatcher.submit(store, order_id)
        log.info(
            "webhook %s for store %s order %s: %s",
            event or "order",
            store,
            order_id,
            "queued" if queued else "already queued",
        )
        return _reply(202, "queued" if queued else "already_queued")

    async def health(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[Route("/webhooks/{store}", receive, methods=["POST"]), Route("/health", health, methods=["GET"])]
    )


def run_order_trigger(store: str, order_id: str) -> None:
    """The default trigger: re-fetch and import the order (and refresh its SKUs' stock) in this process."""
    from erpsync.flows.manual import resync_order

    resync_order(store=store, order_id=order_id)
