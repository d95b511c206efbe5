"""Which Prefect API ``erpsync run`` uses (erpsync/app/prefect_api.py): the configured one, else the local server
``erpsync serve`` marked or one on the default port when it answers, else Prefect's temporary API — said in one
line. The time it saves is measured by ``python -m bench cli_run``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from erpsync.app import prefect_api
from erpsync.app.prefect_api import choose_prefect_api, remove_marker, runs_going_to, write_marker
from erpsync.app.prefect_server import free_port
from erpsync.testing.server import RunningServer, serve_in_thread


@pytest.fixture
def health_server() -> Iterator[RunningServer]:
    async def health(_: object) -> JSONResponse:
        return JSONResponse(True)

    server = serve_in_thread(Starlette(routes=[Route("/api/health", health)]))
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _nothing_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prefect_api, "configured_api", lambda: None)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)


def test_the_server_erpsync_serve_marked_is_used_and_named(
    tmp_path: Path, health_server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = f"{health_server.url}/api"
    write_marker(api, tmp_path)
    choice = choose_prefect_api(tmp_path, probe_default=False)
    assert (choice.url, choice.source) == (api, "the local server `erpsync serve` started")
    assert choice.line() == f"Prefect: runs go to {api} (the local server `erpsync serve` started)"
    assert os.environ["PREFECT_API_URL"] == api  # what Prefect's client then uses
    remove_marker(tmp_path)
    monkeypatch.delenv("PREFECT_API_URL")
    assert choose_prefect_api(tmp_path, probe_default=False).url is None


def test_a_dead_marked_server_falls_back_to_the_temporary_api_and_says_why(tmp_path: Path) -> None:
    write_marker(f"http://127.0.0.1:{free_port()}/api", tmp_path)  # serve was killed: its marker stayed
    choice = choose_prefect_api(tmp_path, probe_default=False)
    assert choice.url is None and choice.source == "temporary"
    assert "starts a temporary one" in choice.line() and "erpsync serve" in choice.line()


def test_a_configured_api_wins_and_says_where_it_came_from(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prefect_api, "configured_api", lambda: "http://prefect.example:4200/api")
    write_marker("http://127.0.0.1:1/api", tmp_path)
    assert choose_prefect_api(tmp_path).source == "profile"
    monkeypatch.setenv("PREFECT_API_URL", "http://prefect.example:4200/api")
    assert choose_prefect_api(tmp_path).line() == "Prefect: runs go to http://prefect.example:4200/api (environment)"


def test_the_found_server_reaches_prefects_settings_for_the_runs(tmp_path: Path, health_server: RunningServer) -> None:
    from prefect.settings import PREFECT_API_URL

    api = f"{health_server.url}/api"
    write_marker(api, tmp_path)
    choice = choose_prefect_api(tmp_path, probe_default=False)
    with runs_going_to(choice):  # Prefect read its settings before the server was found
        assert PREFECT_API_URL.value() == api
