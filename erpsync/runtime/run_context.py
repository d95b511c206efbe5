"""What a flow run says about itself in the Prefect UI: its name (``flow-store-time``), its store tags, and the store
its deployment is fixed to (a run of ``stock-bucuresti`` with ``store=cluj`` is refused, not synced under the
wrong tag)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

STORE_TAG = "store:"
RUN_TIME_FORMAT = "%Y%m%d-%H%M%S"  # UTC: the UI shows the local start time next to the name


class StoreMismatch(ValueError):
    """A run of one store's deployment was given another store."""


def store_tags(flow_key: str, store: str) -> list[str]:
    """The tags of every run of ``flow_key`` for ``store``: the deployments' and the CLI's alike."""
    return ["erpsync", f"{STORE_TAG}{store}", f"flow:{flow_key}"]


def format_run_name(flow_name: str, store: str, at: datetime) -> str:
    """``orders-bucuresti-20261205-111203`` (the time in UTC)."""
    return f"{flow_name}-{store}-{at.astimezone(UTC).strftime(RUN_TIME_FORMAT)}"


def run_name() -> str:
    """The ``flow_run_name`` callable of every flow: the flow, the ``store`` parameter and the UTC start time."""
    from prefect.runtime import flow_run

    store = str(flow_run.parameters.get("store") or "no-store")
    return format_run_name(str(flow_run.flow_name), store, datetime.now(UTC))


def tagged_stores(tags: Iterable[str]) -> set[str]:
    """The stores named by ``store:<name>`` tags."""
    return {tag.removeprefix(STORE_TAG) for tag in tags if tag.startswith(STORE_TAG)}


def mismatch_message(store: str, fixed: set[str], flow_name: str) -> str | None:
    """Why a run for ``store`` tagged for the stores ``fixed`` is refused (None: it is not)."""
    if not fixed or store in fixed:
        return None
    owner = ", ".join(sorted(fixed))
    return (
        f"this run belongs to store {owner} (its deployment or tags say store:{owner}) but was given "
        f"store={store!r}: nothing was synced. Run the deployment of store {store} instead "
        f"({flow_name}-{store} in the Deployments list), or `erpsync run ... --store {store}`"
    )


def check_run_store(store: str) -> None:
    """Refuse a flow run whose ``store:`` tags name another store than its ``store`` (outside a run: nothing)."""
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    run = context.flow_run if context is not None else None
    if run is None:
        return
    deployment_flow = next((t.removeprefix("flow:") for t in run.tags if t.startswith("flow:")), "<flow>")
    message = mismatch_message(store, tagged_stores(run.tags), deployment_flow)
    if message is not None:
        raise StoreMismatch(message)
