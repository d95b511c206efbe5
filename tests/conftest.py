"""Test-wide set-up: Prefect's environment (before anything imports Prefect), secret redaction in logs."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Prefect reads these at import time: keep its home inside the project, no telemetry, a start-up timeout
# that fits a 2-core machine (see stack-notes).
os.environ.setdefault("PREFECT_HOME", str(ROOT / ".prefect"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")

from core.redact import install_log_redaction  # noqa: E402

install_log_redaction()

from collections.abc import Iterator  # noqa: E402

import pytest  # noqa: E402

from tests.tryton_fixture import tryton_server, tryton_session  # noqa: E402, F401


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """ONE temporary Prefect API for the whole session (it takes 15-20 s to start); flow tests request it."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        yield
