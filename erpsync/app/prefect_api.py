"""Which Prefect API a command's runs go to, said once at start (``erpsync run`` and the manual commands).

1. ``PREFECT_API_URL`` from the environment or the active Prefect profile: that server.
2. Else the local server ``erpsync serve`` started (it leaves ``erpsync-server.json`` in ``PREFECT_HOME`` while it
   runs), or a ``prefect server start`` on the default 127.0.0.1:4200, when its ``/api/health`` answers within
   half a second: that one — the run starts in seconds and shows in its UI.
3. Else none: Prefect starts a temporary API in this process (~10–15 s on 2 cores, gone with it), and the line
   says so and how to avoid it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

MARKER = "erpsync-server.json"
DEFAULT_LOCAL_API = "http://127.0.0.1:4200/api"
HEALTH_TIMEOUT = 0.5


@dataclass(frozen=True)
class ApiChoice:
    url: str | None  # None: Prefect's temporary in-process API
    source: str  # "environment", "profile", "erpsync serve", "local server", "temporary"

    def line(self) -> str:
        """What the command says at start (stderr)."""
        if self.url is None:
            return (
                "Prefect: no server is running, so this run starts a temporary one (~10-15 s, and its runs are not "
                "kept); start `erpsync serve` or set PREFECT_API_URL and runs start in seconds"
            )
        return f"Prefect: runs go to {self.url} ({self.source})"


def marker_path(home: Path | None = None) -> Path:
    return (home or Path(os.environ.get("PREFECT_HOME", ".prefect"))) / MARKER


def write_marker(api_url: str, home: Path | None = None) -> Path:
    """What ``erpsync serve`` leaves while its local server runs."""
    path = marker_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"api_url": api_url, "pid": os.getpid()}), encoding="utf-8")
    return path


def remove_marker(home: Path | None = None) -> None:
    marker_path(home).unlink(missing_ok=True)


def healthy(api_url: str, timeout: float = HEALTH_TIMEOUT) -> bool:
    try:
        return httpx.get(f"{api_url.rstrip('/')}/health", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def _marked_api(home: Path | None) -> str | None:
    try:
        data = json.loads(marker_path(home).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    url = data.get("api_url") if isinstance(data, dict) else None
    return url if isinstance(url, str) and url else None


def configured_api() -> str | None:
    """``PREFECT_API_URL`` from the environment or the active Prefect profile."""
    from prefect.settings import PREFECT_API_URL

    value = PREFECT_API_URL.value()
    return str(value) if value else None


def choose_prefect_api(home: Path | None = None, *, probe_default: bool = True) -> ApiChoice:
    """Find the API (see the module's docstring); a found local server is put in ``PREFECT_API_URL``."""
    configured = configured_api()
    if configured:
        return ApiChoice(str(configured), "environment" if os.environ.get("PREFECT_API_URL") else "profile")
    candidates = [(_marked_api(home), "the local server `erpsync serve` started")]
    if probe_default:
        candidates.append((DEFAULT_LOCAL_API, "a local Prefect server"))
    for url, source in candidates:
        if url and healthy(url):
            os.environ["PREFECT_API_URL"] = url
            return ApiChoice(url, source)
    return ApiChoice(None, "temporary")


@contextmanager
def runs_going_to(choice: ApiChoice) -> Iterator[None]:
    """Prefect's settings for the runs of this command: a found local server replaces the temporary API (Prefect
    has read its settings already, so the variable set by ``choose_prefect_api`` alone would not reach them)."""
    if choice.url is None or choice.source in ("environment", "profile"):
        yield
        return
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: choice.url}):
        yield
