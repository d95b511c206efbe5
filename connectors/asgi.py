"""A synchronous httpx transport over an ASGI app, so simulators plug into sync clients in-process.

``httpx.ASGITransport`` only serves ``httpx.AsyncClient``. This wraps it: the app runs on an event loop in a
background thread; each request waits for the reply with the client's read timeout, so a simulated hang is a
real ``httpx.ReadTimeout`` and an app that aborts mid-reply is a real ``httpx.ReadError``, as over a socket.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from typing import Any

import httpx


class SyncASGITransport(httpx.BaseTransport):
    """Serve sync httpx requests from an ASGI app running on a private event loop thread."""

    def __init__(self, app: Any, *, client: tuple[str, int] = ("127.0.0.1", 50000)) -> None:
        self._inner = httpx.ASGITransport(app=app, client=client)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="asgi-transport", daemon=True)
        self._thread.start()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        inner_request = httpx.Request(
            request.method, request.url, headers=request.headers, content=body, extensions=request.extensions
        )

        async def call() -> tuple[int, httpx.Headers, bytes]:
            response = await self._inner.handle_async_request(inner_request)
            content = await response.aread()
            return response.status_code, response.headers, content

        future = asyncio.run_coroutine_threadsafe(call(), self._loop)
        timeout = (request.extensions.get("timeout") or {}).get("read")
        try:
            status, headers, content = future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise httpx.ReadTimeout("timed out waiting for the app's reply", request=request) from None
        except (OSError, RuntimeError) as exc:
            raise httpx.ReadError(f"connection aborted: {type(exc).__name__}: {exc}", request=request) from exc
        return httpx.Response(status, headers=headers, content=content, request=request)

    def close(self) -> None:
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
        if not self._loop.is_running() and not self._loop.is_closed():
            self._loop.close()
