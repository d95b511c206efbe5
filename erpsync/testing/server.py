"""Run ASGI simulators for tests, benchmarks and demos: a loopback uvicorn server or an in-process transport."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from types import TracebackType
from typing import Any

import httpx
import uvicorn

__all__ = ["InProcessTransport", "RunningServer", "answer_lifespan", "serve_in_thread"]

_Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
_Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class _SimulatedFailureFilter(logging.Filter):
    """Drop uvicorn's traceback for failures a simulator raises on purpose (they carry `simulated = True`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not getattr(exc, "simulated", False)


def _install_log_filter() -> None:
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _SimulatedFailureFilter) for f in logger.filters):
        logger.addFilter(_SimulatedFailureFilter())


class RunningServer:
    """A uvicorn server running in a daemon thread; stop it with `.stop()` or use it as a context manager."""

    def __init__(self, server: uvicorn.Server, thread: threading.Thread, host: str, port: int) -> None:
        self._server = server
        self._thread = thread
        self.host = host
        self.port = port

    def open_sockets(self) -> list[Any]:
        """The server's side of each open connection (for checks of socket options such as TCP_NODELAY)."""
        transports = [getattr(c, "transport", None) for c in list(self._server.server_state.connections)]
        return [t.get_extra_info("socket") for t in transports if t is not None]

    @property
    def url(self) -> str:
        """Base URL of the server, e.g. `http://127.0.0.1:8300` (no trailing slash)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the server to exit, forcing it after `timeout` seconds (open connections are dropped)."""
        self._server.should_exit = True
        self._thread.join(timeout / 2)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout / 2)

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def serve_in_thread(
    app: Any,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    log_level: str = "warning",
    startup_timeout: float = 10.0,
) -> RunningServer:
    """Serve `app` with uvicorn in a daemon thread and return once it accepts connections (port 0 = any free)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP: asyncio sets TCP_NODELAY on accepted sockets only then; without it every small reply
    # waits ~40 ms for Nagle + delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound_port = sock.getsockname()[1]
    # log_config=None: uvicorn must not reconfigure the process's logging; only its logger levels are set.
    config = uvicorn.Config(
        app,
        host=host,
        port=bound_port,
        log_config=None,
        log_level=log_level,
        access_log=False,
        lifespan="off",
        http="h11",
        ws="none",
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    _install_log_filter()
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=f"uvicorn-{bound_port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive():
            sock.close()
            raise RuntimeError(f"server on {host}:{bound_port} exited during start-up")
        if time.monotonic() > deadline:
            server.should_exit = True
            raise TimeoutError(f"server on {host}:{bound_port} did not start within {startup_timeout} s")
        time.sleep(0.01)
    with socket.create_connection((host, bound_port), timeout=startup_timeout):
        pass
    return RunningServer(server, thread, host, bound_port)


async def answer_lifespan(
    receive: _Receive, send: _Send, on_shutdown: Callable[[], Awaitable[None]] | None = None
) -> None:
    """Answer an ASGI ``lifespan`` scope: acknowledge start-up, run ``on_shutdown`` then acknowledge shut-down."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if on_shutdown is not None:
                await on_shutdown()
            await send({"type": "lifespan.shutdown.complete"})
            return


class InProcessTransport(httpx.ASGITransport):
    """An `httpx.ASGITransport` that fails like the wire does (asyncio only).

    A connection reset raised by the app (`ConnectionResetError`) surfaces as `httpx.ReadError`, and the
    client's read timeout is enforced (`httpx.ReadTimeout`), so code under test sees the same exception
    types in-process as over a loopback socket.
    """

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Run the app for one request, translating resets and read timeouts into httpx transport errors."""
        read_timeout = (request.extensions.get("timeout") or {}).get("read")
        try:
            if read_timeout is None:
                return await super().handle_async_request(request)
            return await asyncio.wait_for(super().handle_async_request(request), read_timeout)
        except TimeoutError:
            raise httpx.ReadTimeout("simulated read timeout (in-process)", request=request) from None
        except ConnectionResetError as exc:
            raise httpx.ReadError(f"connection reset by peer ({exc})", request=request) from exc
