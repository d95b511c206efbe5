"""The states flows end in (telling the truth about partial failure) and which failed task runs Prefect may retry.

A run that left records failed ends in a state of type FAILED named "Failed", its message starting with
"Partially failed:". Both the type and the name matter to Prefect's UI and automations (3.9): the dashboard and
the flow pages count runs by state *type* (a COMPLETED-typed "Partially failed" counted as a success and was
green); a deployment's Runs tab lists runs by state *name*, among Prefect's own names only (a custom name such
as "Partially failed" was missing from that list and its search); automations match the event
``prefect.flow-run.<state name>``, so only "Failed" fires the "a run failed" trigger. For the same reason a run
skipped because another held the lease is "Completed" with a message starting "Skipped:".
"""

from __future__ import annotations

from typing import Any

from prefect.states import Completed, Failed, State

from erpsync.connectors.errors import RetriableError
from erpsync.core.summary import RunState, RunSummary

PARTIAL_PREFIX = "Partially failed"
SKIPPED_PREFIX = "Skipped"


def retriable_only(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect ``retry_condition_fn``: retry only a ``RetriableError`` that outlived the HTTP layer's retries."""
    return isinstance(state.result(raise_on_failure=False), RetriableError)


def state_message(summary: RunSummary) -> str:
    """The one-line state message of a finished run: what happened, the store's open failures, what to do."""
    if summary.state is RunState.PARTIAL:
        return f"{PARTIAL_PREFIX}: {summary.failed} record(s) failed, the rest went through; {summary.line()}" + (
            "" if summary.open_failures else f"; `erpsync failures list --store {summary.store}`"
        )
    if summary.state is RunState.FAILED:
        return summary.message or summary.line()
    if summary.state is RunState.SKIPPED:
        held = f"; store {summary.store}: {summary.open_failures}" if summary.open_failures else ""
        return f"{SKIPPED_PREFIX}: {summary.message or summary.line()}{held}"
    return summary.line()


def final_state(summary: RunSummary) -> State[Any]:
    """The state a flow returns: Completed; Failed with "Partially failed: ..." when records failed (see the
    module's docstring); Failed with the reason when the summary says so; Completed with "Skipped: ..." when
    another run held the lease (a custom name would hide it from its deployment's Runs tab too)."""
    summary.finish()
    message = state_message(summary)
    if summary.state in (RunState.PARTIAL, RunState.FAILED):
        return Failed(message=message, data=summary)
    if summary.state is RunState.SKIPPED:
        return Completed(message=message, data=summary)
    return Completed(message=message, data=summary)


def is_partial(state: State[Any]) -> bool:
    """Whether a flow's state is a run that left records failed (the rest went through)."""
    return state.is_failed() and (state.message or "").startswith(PARTIAL_PREFIX)


def summary_of(state: State[Any]) -> RunSummary | None:
    """The summary of a finished flow state: that of a completed or partially failed run (None when it returned
    something else); a run that failed outright raises its exception, as ``state.result()`` does."""
    if state.is_failed():
        result = state.result(raise_on_failure=False)
        if isinstance(result, RunSummary):
            return result
        state.result()  # raises the run's exception
        return None
    result = state.result()
    return result if isinstance(result, RunSummary) else None
