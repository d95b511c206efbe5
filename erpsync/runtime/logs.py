"""The logger a task's plain-function body writes to: the Prefect run logger inside a flow or task run (so the
lines reach the UI), else the module's own logger (plain calls in tests and scripts)."""

from __future__ import annotations

import logging


def run_logger(fallback: logging.Logger) -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    """Prefect's run logger when there is a run, else ``fallback``."""
    try:
        from prefect import get_run_logger

        return get_run_logger()
    except Exception:  # outside a flow or task run
        return fallback
