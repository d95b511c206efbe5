"""A fault-injecting HTTP proxy for the ERP side of the order tests: an ASGI app that forwards every request to
a target URL (the real Tryton) and, with seeded probabilities, answers 500 without forwarding, or forwards and
then cuts the reply half-way (the ERP did the work, the client cannot know). Serve it with
``simulators.server.serve_in_thread`` and point the configuration's ``[erp] url`` at it."""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import httpx

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
HOP_HEADERS = {"host", "content-length", "connection", "transfer-encoding", "keep-alive"}


class SimulatedProxyReset(ConnectionResetError):
    simulated = True  # simulators.server keeps its traceback out of the log


class FaultProxy:
    """Forwards to ``target``; ``error_500`` and ``reset_after`` are probabilities per request (seeded)."""

    def __init__(self, target: str, *, error_500: float = 0.0, reset_after: float = 0.0, seed: int = 0) -> None:
        self.target = target.rstrip("/")
        self.error_500 = error_500
        self.reset_after = reset_after
        self.enabled = True
        self.counts: Counter[str] = Counter()
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._client: httpx.AsyncClient | None = None

    def _draw(self) -> str | None:
        with self._lock:
            self.counts["requests"] += 1
            if not self.enabled:
                return None
            draw = self._rng.random()
        if draw < self.error_500:
            return "error_500"
        if draw < self.error_500 + self.reset_after:
            return "reset_after"
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    if self._client is not None:
                        await self._client.aclose()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        fault = self._draw()
        if fault == "error_500":
            self.counts[fault] += 1
            await send({"type": "http.response.start", "status": 500, "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"injected fault"})
            return
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=120)
        headers = [(k, v) for k, v in scope["headers"] if k.decode().lower() not in HOP_HEADERS]
        query = scope.get("query_string", b"").decode()
        url = self.target + scope["path"] + (f"?{query}" if query else "")
        reply = await self._client.request(scope["method"], url, content=body, headers=headers)
        content = reply.content
        response_headers = [
            (k.encode(), v.encode())
            for k, v in reply.headers.items()
            if k.lower() not in HOP_HEADERS | {"content-encoding"}
        ]
        response_headers.append((b"content-length", str(len(content)).encode()))
        await send({"type": "http.response.start", "status": reply.status_code, "headers": response_headers})
        if fault == "reset_after":
            self.counts[fault] += 1
            await send({"type": "http.response.body", "body": content[: len(content) // 2], "more_body": True})
            raise SimulatedProxyReset("injected reset after the ERP handled the request")
        await send({"type": "http.response.body", "body": content})
