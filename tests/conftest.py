"""Test-wide set-up: Prefect's environment (before anything imports Prefect), secret redaction in logs,
and the session fixtures shared by every folder (the Prefect harness, the real Tryton, a simulated stack)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Prefect reads these at import time: keep its home inside the project, no telemetry, a start-up timeout
# that fits a 2-core machine (see stack-notes).
os.environ.setdefault("PREFECT_HOME", str(ROOT / ".prefect"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "erpsync")
# Our loggers also log outside flow runs (connectors used directly): that is not an error.
os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")

from erpsync.core.redact import install_log_redaction  # noqa: E402

install_log_redaction()

# The real Tryton server: `tryton_server` (session) and `tryton_session`; a real SFTP server: `sftp_server`.
pytest_plugins = ["tests.tryton_fixture", "tests.files.sftp_server"]


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """ONE temporary Prefect API for the whole session (it takes 15-20 s to start); flow tests request it."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        yield


@pytest.fixture
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tryton_server: Any) -> Iterator[Any]:
    """One simulated shop "main" + the real Tryton + a fresh state file; ERPSYNC_CONFIG points at its config."""
    from tests.support.stack import build_stack

    yield from build_stack(tmp_path, monkeypatch, tryton_server)
