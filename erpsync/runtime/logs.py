"""The logger a task's plain-function body writes to: the Prefect run logger inside a flow or task run (so the
lines reach the UI), else the module's own logger (plain calls in tests and scripts); and run logs without the
long tracebacks of errors that are explained (another system down, refusing, slow)."""

from __future__ import annotations

import logging
import traceback

from erpsync.connectors.errors import ConnectorError, RunStopped

RUN_LOGGERS = ("prefect.flow_runs", "prefect.task_runs")


class ShortConnectorTracebacks(logging.Filter):
    """A ``ConnectorError`` (or a ``RunStopped``) is an expected failure whose message names the system and what
    to do: logged with the one place it was raised instead of a 50-90 line traceback (other errors keep theirs)."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, ConnectorError | RunStopped):
            frames = traceback.extract_tb(error.__traceback__)
            where = ""
            if frames:
                path = "/".join(frames[-1].filename.replace("\\", "/").split("/")[-2:])
                where = f" (raised at {path}:{frames[-1].lineno} in {frames[-1].name})"
            text = record.getMessage()
            if isinstance(error, ConnectorError) and error.explained:  # the operator's line replaces the repr
                text = text.replace(repr(error), f"{type(error).__name__}: {error}")
            record.msg, record.args = f"{text}{where}", None
            record.exc_info, record.exc_text = None, None
        return True


def install_short_tracebacks() -> None:
    """Put ``ShortConnectorTracebacks`` on Prefect's flow- and task-run loggers (once)."""
    for name in RUN_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, ShortConnectorTracebacks) for f in logger.filters):
            logger.addFilter(ShortConnectorTracebacks())


def run_logger(fallback: logging.Logger) -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    """Prefect's run logger when there is a run, else ``fallback``."""
    try:
        from prefect import get_run_logger

        return get_run_logger()
    except Exception:  # outside a flow or task run
        return fallback
