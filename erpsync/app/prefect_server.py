"""A real ``prefect server start`` in a subprocess: on a chosen (or free) port, with its own PREFECT_HOME and database.

Used by the deployment tests (a server on PostgreSQL, workers, ``prefect deploy``) and by ``erpsync serve`` when no
PREFECT_API_URL is set (Prefect's temporary server runs no scheduler, so schedules would never fire there).
``start_prefect_server()`` returns once ``/api/health`` answers; ``stop()`` ends the server's whole process group.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from erpsync.core.redact import redact, register_secret

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4200
# A fresh database runs every migration first: ~20 s on 2 cores; leave room for a loaded CI machine.
DEFAULT_START_TIMEOUT = 120.0
LOG_FILE = "prefect-server.log"


class PrefectServerError(RuntimeError):
    """The Prefect server did not start (the message carries the tail of its log)."""


def free_port(host: str = DEFAULT_HOST) -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_open(host: str, port: int) -> bool:
    """Whether something accepts connections on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def asyncpg_url(url: str) -> str:
    """The ``postgresql+asyncpg://`` form of a PostgreSQL URL (the driver Prefect's server uses)."""
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme.startswith("postgresql"):
        raise ValueError("not a postgresql:// URL")
    return f"postgresql+asyncpg://{rest}"


def server_environment(home: Path, database_url: str | None = None, *, ui: bool = True) -> dict[str, str]:
    """The environment a server subprocess runs with: its own home and database, no telemetry, no client URL."""
    env = {key: value for key, value in os.environ.items() if key not in ("PREFECT_API_URL", "PREFECT_API_KEY")}
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        DO_NOT_TRACK="1",
        PREFECT_SERVER_UI_ENABLED="true" if ui else "false",
    )
    if database_url:
        env["PREFECT_API_DATABASE_CONNECTION_URL"] = database_url
    else:
        env.pop("PREFECT_API_DATABASE_CONNECTION_URL", None)  # SQLite in PREFECT_HOME
    return env


@dataclass
class PrefectServer:
    """A running ``prefect server start`` subprocess (its own process group)."""

    process: subprocess.Popen[bytes]
    host: str
    port: int
    home: Path
    log_path: Path
    start_seconds: float

    @property
    def url(self) -> str:
        """The UI (and the base of the API)."""
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        """What clients, workers and ``serve`` use as PREFECT_API_URL."""
        return f"{self.url}/api"

    def running(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of the server's log, secrets masked."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return redact("\n".join(text.splitlines()[-lines:]))

    def stop(self, timeout: float = 20.0) -> None:
        """Stop the server and everything it started (SIGTERM to its group, SIGKILL after ``timeout``)."""
        stop_group(self.process, timeout)
        with contextlib.suppress(ValueError):
            atexit.unregister(self.stop)

    def __enter__(self) -> PrefectServer:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


def stop_group(process: subprocess.Popen[Any], timeout: float) -> None:
    """Stop a process started with ``start_new_session`` and its group: SIGTERM, ``timeout`` s, then SIGKILL."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=timeout)
    # Also after a clean exit of the leader: nothing it spawned may outlive it.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)


def _register_database_password(database_url: str | None) -> None:
    if not database_url:
        return
    from sqlalchemy.engine import make_url

    with contextlib.suppress(Exception):
        password = make_url(database_url).password
        if password:
            register_secret(str(password), also=(database_url,))


def start_prefect_server(
    home: Path,
    *,
    database_url: str | None = None,
    host: str = DEFAULT_HOST,
    port: int | None = None,
    ui: bool = True,
    timeout: float = DEFAULT_START_TIMEOUT,
    log_path: Path | None = None,
) -> PrefectServer:
    """Start ``prefect server start`` (port None = a free one) and wait until ``/api/health`` answers.

    ``database_url`` is Prefect's own database (``postgresql+asyncpg://...``; None = SQLite in ``home``).
    """
    _register_database_password(database_url)
    home.mkdir(parents=True, exist_ok=True)
    port = free_port(host) if port is None else port
    if port_is_open(host, port):
        raise PrefectServerError(f"port {port} on {host} is already in use (choose another with --port)")
    log_path = log_path or home / LOG_FILE
    command = [sys.executable, "-m", "prefect", "server", "start", "--host", host, "--port", str(port)]
    started = time.monotonic()
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=server_environment(home, database_url, ui=ui),
            start_new_session=True,  # its own process group: stop() reaches every child
        )
    server = PrefectServer(process, host, port, home, log_path, 0.0)
    atexit.register(server.stop)
    try:
        _wait_healthy(server, started + timeout)
    except BaseException:
        server.stop()
        raise
    server.start_seconds = round(time.monotonic() - started, 2)
    return server


def _wait_healthy(server: PrefectServer, deadline: float) -> None:
    with httpx.Client(timeout=2.0) as client:
        while True:
            if not server.running():
                raise PrefectServerError(
                    f"prefect server exited with code {server.process.returncode}; log tail:\n{server.log_tail()}"
                )
            try:
                if client.get(f"{server.api_url}/health").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() >= deadline:
                raise PrefectServerError(
                    f"prefect server not healthy at {server.api_url} in time; log tail:\n{server.log_tail()}"
                )
            time.sleep(0.25)
