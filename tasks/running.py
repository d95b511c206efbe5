"""Running flows and ending them with a state that tells the truth about partial failure; which failed task
runs Prefect may retry."""

from __future__ import annotations

from typing import Any

from prefect.states import Completed, State

from connectors.errors import RetriableError
from core.redact import redact
from core.summary import RunState, RunSummary

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


def run_flow(flow_object: Any, flow_name: str, store: str, params: dict[str, Any]) -> RunSummary:
    """Run a flow in this process and return its summary; a failed run becomes a summary that says why."""
    state = flow_object(store=store, **params, return_state=True)
    if state.is_completed():
        result = state.result()
        if isinstance(result, RunSummary):
            return result
        return RunSummary(flow=flow_name, store=store, message=str(result))
    error = state.result(raise_on_failure=False)
    message = str(error) if isinstance(error, BaseException) else (state.message or state.name)
    return RunSummary(flow=flow_name, store=store, state=RunState.FAILED, message=redact(message))
