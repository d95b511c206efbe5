"""The states flows end in (telling the truth about partial failure) and which failed task runs Prefect may retry."""

from __future__ import annotations

from typing import Any

from prefect.states import Completed, State

from erpsync.connectors.errors import RetriableError
from erpsync.core.summary import RunState, RunSummary

PARTIAL_STATE_NAME = "Partially failed"
SKIPPED_STATE_NAME = "Skipped"


def retriable_only(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect ``retry_condition_fn``: retry only a ``RetriableError`` that outlived the HTTP layer's retries."""
    return isinstance(state.result(raise_on_failure=False), RetriableError)


def final_state(summary: RunSummary) -> State[Any]:
    """The state a flow returns: Completed, named "Partially failed" when records failed, "Skipped" when locked out."""
    summary.finish()
    if summary.state is RunState.PARTIAL:
        return Completed(name=PARTIAL_STATE_NAME, message=summary.line(), data=summary)
    if summary.state is RunState.SKIPPED:
        return Completed(name=SKIPPED_STATE_NAME, message=summary.message or summary.line(), data=summary)
    return Completed(message=summary.line(), data=summary)
