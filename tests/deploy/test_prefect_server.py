"""``erpsync.app.prefect_server``: the URL Prefect's server needs, and start-up failures that say why."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from erpsync.app.prefect_server import PrefectServerError, asyncpg_url, server_environment, start_prefect_server
from tests.pg import server_url


def test_asyncpg_url_keeps_everything_but_the_driver() -> None:
    url = "postgresql+psycopg://prefect:pw@db.internal:5432/prefect?sslmode=require"
    assert asyncpg_url(url) == "postgresql+asyncpg://prefect:pw@db.internal:5432/prefect?sslmode=require"
    assert asyncpg_url("postgresql://u@h/d") == "postgresql+asyncpg://u@h/d"
    with pytest.raises(ValueError):
        asyncpg_url("sqlite:///prefect.db")


def test_server_environment_has_its_own_home_and_database_and_no_client_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PREFECT_API_URL", "http://elsewhere:4200/api")
    monkeypatch.setenv("PREFECT_API_DATABASE_CONNECTION_URL", "postgresql+asyncpg://u@h/other")
    env = server_environment(tmp_path, ui=False)
    assert "PREFECT_API_URL" not in env
    assert "PREFECT_API_DATABASE_CONNECTION_URL" not in env  # SQLite in its home
    assert (env["PREFECT_HOME"], env["PREFECT_SERVER_UI_ENABLED"]) == (str(tmp_path), "false")
    with_db = server_environment(tmp_path, "postgresql+asyncpg://u@h/prefect")
    assert with_db["PREFECT_API_DATABASE_CONNECTION_URL"] == "postgresql+asyncpg://u@h/prefect"


def test_a_port_in_use_is_refused_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(PrefectServerError, match=f"port {port} .* already in use"):
            start_prefect_server(tmp_path, port=port)
    assert not (tmp_path / "prefect-server.log").exists()


@pytest.mark.slow
@pytest.mark.postgres
def test_a_server_that_cannot_start_fails_with_its_reason_and_no_password(tmp_path: Path) -> None:
    missing = server_url().set(database="erpsync_test_missing_db", password="s3cret-pw")
    url = asyncpg_url(missing.render_as_string(hide_password=False))
    with pytest.raises(PrefectServerError) as raised:
        start_prefect_server(tmp_path, database_url=url, ui=False, timeout=90)
    message = str(raised.value)
    assert "exited with code" in message
    assert "erpsync_test_missing_db" in message  # the log tail names the problem
    assert "s3cret-pw" not in message
