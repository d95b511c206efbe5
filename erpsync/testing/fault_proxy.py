"""A fault-injecting HTTP proxy: an ASGI app that forwards every request to a target URL (e.g. the real Tryton)
and plays a seeded ``Faults`` plan on the way (``erpsync.testing.faults``): 500 or 429 without forwarding, a
stall, a reset before forwarding, or — the nasty one — forward, let the target do the work, then cut the reply
half-way (``reset_after_write``: the client cannot know). Serve it with ``erpsync.testing.server.serve_in_thread``
and point the client (e.g. the configuration's ``[erp] url``) at it.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import httpx

from erpsync.testing.faults import Fault, FaultInjector, Faults, send_cut, send_truncated
from erpsync.testing.server import answer_lifespan

__all__ = ["FaultProxy"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
HOP_HEADERS = {"host", "content-length", "connection", "transfer-encoding", "keep-alive"}


class FaultProxy:
    """Forwards to ``target``, injecting the faults of ``faults`` (a seeded plan; None: a plain proxy).

    ``enabled = False`` forwards everything and draws nothing (set up the target's data without faults, then
    switch them on); ``counts`` holds the faults injected, by kind; ``injector`` also takes queued faults.
    """

    def __init__(self, target: str, faults: Faults | None = None) -> None:
        self.target = target.rstrip("/")
        self.injector = FaultInjector(faults)
        self._client: httpx.AsyncClient | None = None

    @property
    def enabled(self) -> bool:
        return self.injector.enabled

    @enabled.setter
    def enabled(self, value: bool) -> None:
        self.injector.enabled = value

    @property
    def counts(self) -> Counter[str]:
        return self.injector.counts

    async def _close_client(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await answer_lifespan(receive, send, self._close_client)
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        method = scope["method"]
        if latency := self.injector.latency(method):
            await asyncio.sleep(latency)
        fault = self.injector.draw(method, scope["path"], body)
        if fault is not None and not fault.after and fault.kind != "truncated":
            await self._play_before(fault, send, method, scope["path"])
            return
        status, headers, content = await self._forward(scope, body)
        if fault is not None and fault.kind == "truncated":
            await send_truncated(send, content, content_type=_content_type(headers))
            return
        headers.append((b"content-length", str(len(content)).encode()))
        if fault is not None and fault.cuts:  # reset_after_write: the target did the work
            await send_cut(send, status, content, headers=headers, what=f"{method} {scope['path']} (proxied)")
        if fault is not None:  # a queued status fault after the work
            await asyncio.sleep(fault.delay)
            await _send_status(send, fault)
            return
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content})

    async def _play_before(self, fault: Fault, send: Send, method: str, path: str) -> None:
        """A fault played without forwarding: nothing reaches the target."""
        await asyncio.sleep(fault.delay)
        if fault.cuts:  # reset: the connection drops before the request got anywhere
            await send_cut(send, 200, b'{"result": "injected reset"}', what=f"{method} {path} (not forwarded)")
        await _send_status(send, fault)

    async def _forward(self, scope: Scope, body: bytes) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=120)
        headers = [(k, v) for k, v in scope["headers"] if k.decode().lower() not in HOP_HEADERS]
        query = scope.get("query_string", b"").decode()
        url = self.target + scope["path"] + (f"?{query}" if query else "")
        reply = await self._client.request(scope["method"], url, content=body, headers=headers)
        response_headers = [
            (k.encode(), v.encode())
            for k, v in reply.headers.items()
            if k.lower() not in HOP_HEADERS | {"content-encoding"}
        ]
        return reply.status_code, response_headers, reply.content


def _content_type(headers: list[tuple[bytes, bytes]]) -> bytes:
    return next((v for k, v in headers if k.lower() == b"content-type"), b"application/octet-stream")


async def _send_status(send: Send, fault: Fault) -> None:
    headers = [(b"content-type", b"text/plain")]
    if fault.status == 429 and fault.retry_after is not None:
        headers.append((b"retry-after", f"{fault.retry_after:g}".encode()))
    text = fault.error_text or f"injected fault {fault.status}"
    await send({"type": "http.response.start", "status": fault.status, "headers": headers})
    await send({"type": "http.response.body", "body": text.encode()})
