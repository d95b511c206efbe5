"""The webhook receiver: ``POST /webhooks/{store}`` from MerchantPro and ``POST /webhooks/erp/oblio`` from Oblio,
verified, de-duplicated, turned into runs.

A webhook is a trigger, not the truth: after the ``X-Webhook-Signature`` (base64 HMAC-SHA256 of the raw body
under the store's ``webhook_secret``) checks out, only the order id is taken from it; the order is re-fetched
from the shop by the order flow, which imports it (exactly once, through the journal) and refreshes the stock
of its SKUs. Polling keeps running as the catch-up, so a lost webhook costs latency, never data.

Replies: 202 queued · 200 duplicate (a replay within the window: nothing triggered) · 202 ignored (not an
order event) · 401 bad or missing signature · 404 unknown store or webhooks off for it · 400 malformed JSON ·
413 body too large · 415 not JSON · 422 no order id.

Oblio's stock notices (``[erp] type = "oblio"`` with a ``webhook_secret``; docs/oblio.md, "Webhooks") carry no
signature: the endpoint registered with Oblio is ``/webhooks/erp/oblio?key=<webhook_secret>`` and must answer 200
with the base64 of ``X-Oblio-Request-Id``. A verified notice is a trigger too: the stock is then re-read from
Oblio by the stock sync of every store — for the product codes the notice names *(inference: the payload is not
documented, so codes are looked for under ``code``/``productCode``/``sku`` anywhere in it)*, or every SKU when it
names none. Notices that arrive while a sync waits are merged into it. Replies: 200 (the echo) · 401 wrong or
missing key or request id · 404 not an Oblio set-up or no ``webhook_secret`` · 413 body too large.
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
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from erpsync.connectors.erp.oblio.webhook import REQUEST_ID_HEADER, verify_oblio_webhook
from erpsync.connectors.merchantpro.webhooks import SIGNATURE_HEADER, verify_signature
from erpsync.core.config import Settings

log = logging.getLogger("erpsync.webhooks")

MAX_BODY_BYTES = 1024 * 1024
REPLAY_WINDOW_SECONDS = 24 * 3600
EVENT_KEYS = ("event", "type", "topic", "event_type", "name")
ID_PATHS = (("id",), ("order_id",), ("data", "id"), ("data", "order_id"), ("order", "id"), ("resource", "id"))

Trigger = Callable[[str, str], None]
BatchTrigger = Callable[[str, "list[str]"], None]  # store, several shop order ids at once
StockTrigger = Callable[[str, "list[str] | None"], None]  # store, ERP SKUs (None: every SKU)
CODE_KEYS = ("code", "productCode", "product_code", "sku")
MAX_CODES = 500  # a notice naming more is read as "everything moved": one full read is cheaper than many pages


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


def codes_of(payload: Any, depth: int = 0) -> set[str]:
    """Product codes named anywhere in an Oblio notice (keys ``CODE_KEYS``, nested up to 5 levels)."""
    found: set[str] = set()
    if depth > 5:
        return found
    if isinstance(payload, Mapping):
        for key, value in payload.items():
            if key in CODE_KEYS and isinstance(value, (str, int)) and not isinstance(value, bool):
                code = str(value).strip()
                if code:
                    found.add(code)
            elif isinstance(value, (Mapping, list)):
                found |= codes_of(value, depth + 1)
    elif isinstance(payload, list):
        for item in payload:
            found |= codes_of(item, depth + 1)
    return found


class StockDispatcher:
    """Runs stock triggers in a background thread, one store at a time; what arrives while a store waits is merged
    into its waiting sync (codes are added; a notice without codes makes it a sync of every SKU)."""

    def __init__(self, trigger: StockTrigger, stores: list[str]) -> None:
        self.trigger = trigger
        self.stores = list(stores)
        self._pending: dict[str, set[str] | None] = {}
        self._order: list[str] = []
        self._busy = 0
        self._stopped = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._work, name="stock-webhook-dispatcher", daemon=True)
        self._thread.start()

    def submit(self, codes: set[str] | None) -> None:
        """Queue a stock sync of ``codes`` (None: every SKU) for every store."""
        with self._cond:
            for store in self.stores:
                if store not in self._pending:
                    self._pending[store] = None if codes is None else set(codes)
                    self._order.append(store)
                else:
                    waiting = self._pending[store]
                    self._pending[store] = None if codes is None or waiting is None else waiting | codes
            self._cond.notify_all()

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._order and not self._stopped:
                    self._cond.wait()
                if self._stopped and not self._order:
                    return
                store = self._order.pop(0)
                codes = self._pending.pop(store)
                self._busy += 1
            try:
                self.trigger(store, None if codes is None else sorted(codes))
            except Exception:
                log.exception("stock trigger for store %s failed; the scheduled stock sync will catch up", store)
            finally:
                with self._cond:
                    self._busy -= 1
                    self._cond.notify_all()

    def join(self, timeout: float = 60.0) -> bool:
        """Wait until nothing is queued or running (tests); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._order or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        self._thread.join(timeout=10)


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
    """Runs triggers one at a time in a background thread; an order already waiting is not queued twice.

    With ``batch_trigger``, the orders of one store that waited while a trigger ran go together in one run
    (``batch_trigger(store, ids)``): a burst of webhooks costs a few runs, not one per order, so the last order of
    the burst does not wait for all the runs before it."""

    def __init__(self, trigger: Trigger, batch_trigger: BatchTrigger | None = None) -> None:
        self.trigger = trigger
        self.batch_trigger = batch_trigger
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
            items: list[tuple[str, str] | None] = [item]
            if item is not None and self.batch_trigger is not None:
                while True:  # everything waiting now goes with it
                    try:
                        items.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
            orders = [i for i in items if i is not None]
            with self._lock:
                self._pending.difference_update(orders)
            by_store: dict[str, list[str]] = {}
            for store, order_id in orders:
                by_store.setdefault(store, []).append(order_id)
            for store, ids in by_store.items():
                self._run(store, ids)
            for _ in items:
                self._queue.task_done()
            if None in items:
                return

    def _run(self, store: str, ids: list[str]) -> None:
        try:
            if len(ids) > 1 and self.batch_trigger is not None:
                self.batch_trigger(store, ids)
            else:
                for order_id in ids:
                    self.trigger(store, order_id)
        except Exception:
            log.exception("webhook trigger for store %s orders %s failed; polling will catch up", store, ids)

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


def oblio_webhook_secret(settings: Settings) -> str | None:
    """The secret Oblio's notices must carry, or None when the ERP is not Oblio or has no ``webhook_secret``."""
    erp = settings.erp
    if getattr(erp, "type", None) != "oblio" or getattr(erp, "webhook_secret", None) is None:
        return None
    value: str = erp.webhook_secret.get()  # type: ignore[union-attr]
    return value


def create_app(
    settings: Settings,
    dispatcher: Dispatcher,
    *,
    stock: StockDispatcher | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
    replay: ReplayGuard | None = None,
) -> Starlette:
    """The receiver as an ASGI app (served by ``erpsync webhooks``); ``stock`` receives Oblio's stock notices."""
    guard = replay or ReplayGuard()
    secrets = {s.name: s.webhook_secret for s in settings.stores}
    oblio_secret = oblio_webhook_secret(settings)

    async def receive_oblio(request: Request) -> PlainTextResponse | JSONResponse:
        if oblio_secret is None or stock is None:
            return _reply(404, "not_configured", "Oblio notices need [erp] type = 'oblio' and a webhook_secret")
        request_id = request.headers.get(REQUEST_ID_HEADER)
        echo = verify_oblio_webhook(request.query_params.get("key"), oblio_secret, request_id)
        if echo is None:
            log.warning("Oblio webhook refused: wrong or missing key, or no %s", REQUEST_ID_HEADER)
            return _reply(401, "bad_key")
        try:
            raw = await _read_limited(request, max_body_bytes)
        except BodyTooLarge:
            return _reply(413, "too_large", f"bodies are limited to {max_body_bytes} bytes")
        if not guard.first_time(f"oblio:{request_id}"):
            return PlainTextResponse(echo)  # Oblio retries a notice it thinks was lost: answered, not re-run
        try:
            payload: Any = json.loads(raw) if raw.strip() else None
        except (ValueError, UnicodeDecodeError):
            payload = None  # unreadable: still a verified notice that stock moved
        codes = codes_of(payload) if payload is not None else set()
        wanted = codes if codes and len(codes) <= MAX_CODES else None
        stock.submit(wanted)
        log.info(
            "Oblio stock notice %s: stock sync of %s queued",
            request_id,
            f"{len(wanted)} code(s)" if wanted else "every SKU",
        )
        return PlainTextResponse(echo)

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
        routes=[
            Route("/webhooks/erp/oblio", receive_oblio, methods=["POST"]),
            Route("/webhooks/{store}", receive, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
        ]
    )


def run_order_trigger(store: str, order_id: str) -> None:
    """The default trigger: re-fetch and import the order (and refresh its SKUs' stock) in this process."""
    from prefect import tags

    from erpsync.flows.manual import resync_order
    from erpsync.runtime.run_context import store_tags

    with tags(*store_tags("resync-order", store)):
        resync_order(store=store, order_id=order_id, return_state=True)  # its state and artifacts tell the outcome


def run_orders_trigger(store: str, order_ids: list[str]) -> None:
    """The default trigger for several orders of a store at once: one ``resync-order`` run for all of them."""
    from prefect import tags

    from erpsync.flows.manual import resync_order
    from erpsync.runtime.run_context import store_tags

    with tags(*store_tags("resync-order", store)):
        resync_order(store=store, order_id=order_ids[0], also=order_ids[1:], return_state=True)


def run_stock_trigger(store: str, skus: list[str] | None) -> None:
    """The default stock trigger: the stock sync of ``skus`` (None: a full read) in this process."""
    from prefect import tags

    from erpsync.flows.stock import stock_sync
    from erpsync.runtime.run_context import store_tags

    with tags(*store_tags("stock", store)):
        stock_sync(store=store, skus=skus, return_state=True)  # a partially failed sync is a Failed state
