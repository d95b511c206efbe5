"""The one way to run flows from the command line, the demo and the tests: load a flow by name, run it in this
process for each store in turn, hand each summary on, and tell the exit code."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from erpsync.core.summary import RunState, RunSummary


def run_flow(flow_object: Any, flow_name: str, store: str, params: dict[str, Any]) -> RunSummary:
    """Run a flow in this process and return its summary; a failed run becomes a summary that says why (the
    operator's line: system, address, next step) and how long it took."""
    import time

    from prefect import tags

    from erpsync.connectors.errors import explain
    from erpsync.core.redact import redact
    from erpsync.runtime.run_context import store_tags

    started = time.monotonic()
    with tags(*store_tags(flow_name, store)):  # as a deployment's runs: the UI's store filter finds CLI runs too
        state = flow_object(store=store, **params, return_state=True)
    if state.is_completed():
        result = state.result()
        if isinstance(result, RunSummary):
            return result
        return RunSummary(flow=flow_name, store=store, message=str(result))
    error = state.result(raise_on_failure=False)
    if isinstance(error, RunSummary):  # partially failed, or failed with a summary that says why
        return error
    message = explain(error) if isinstance(error, BaseException) else (state.message or state.name)
    seconds = round(time.monotonic() - started, 3)
    return RunSummary(flow=flow_name, store=store, state=RunState.FAILED, message=redact(message), seconds=seconds)


def run_named(
    flow: str,
    stores: Iterable[str],
    params: dict[str, Any],
    on_summary: Callable[[RunSummary], None] = lambda _summary: None,
) -> list[RunSummary]:
    """Run the flow called ``flow`` for each store in turn; raises ``UnknownFlow`` before running anything."""
    from erpsync.flows.registry import load_flow

    flow_object = load_flow(flow)
    summaries = []
    for store in stores:
        summary = run_flow(flow_object, flow, store, params)
        summaries.append(summary)
        on_summary(summary)
    return summaries


def summary_text(summary: RunSummary, as_json: bool = False) -> str:
    """What a command prints for one run: its JSON, or its line with the reason when there is one."""
    if as_json:
        return summary.model_dump_json()
    return summary.line() + (f" — {summary.message}" if summary.message else "")
