"""What an operator sees in the Prefect UI, read through the API the UI reads (the session's Prefect server).

Runs of a deployment are created on the server and run in this process (as a worker's process would): a
partially failed run (and a skipped one) is listed by the deployment's Runs tab filter, the partially failed one
not counted as completed; a held order is in the next run's state message and in the store's open-failures
artifact until it is dismissed; a mistyped ``resync-order`` id is a clear failure that records nothing; a dead
shop stops a run with a line naming it, its address and what to do, and the run still leaves its summary.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from erpsync.core.summary import RunState
from tests.flows.run_helpers import artifact
from tests.flows.test_orders_flow import FakeStack, make_stack  # noqa: F401 - the fixture is used by name

pytestmark = pytest.mark.prefect

UI_ASSETS = Path(__import__("prefect").__file__).parent / "server" / "ui" / "assets"


def ui_state_names() -> list[str]:
    """The state names the bundled UI knows (its deployment Runs tab asks for these, all but Scheduled, by name)."""
    for bundle in sorted(UI_ASSETS.glob("index-*.js")):
        found = re.search(r"\[(`Scheduled`,`Late`,[^\]]*)\]", bundle.read_text(encoding="utf-8", errors="replace"))
        if found:
            return re.findall(r"`([A-Za-z]+)`", found.group(1))
    raise AssertionError(f"the UI's list of state names was not found in {UI_ASSETS}")


def deploy(flow: Any) -> uuid.UUID:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.create_deployment(flow_id=client.create_flow(flow), name=f"ui-{uuid.uuid4().hex[:8]}")


def run_deployment_here(flow: Any, deployment_id: uuid.UUID, **params: Any) -> Any:
    """A run created from the deployment on the server, run in this process; the run as the server has it."""
    from prefect.client.orchestration import get_client
    from prefect.flow_engine import run_flow

    with get_client(sync_client=True) as client:
        flow_run = client.create_flow_run_from_deployment(deployment_id, parameters=params)
        run_flow(flow, flow_run=flow_run, parameters=params, return_type="state")
        return client.read_flow_run(flow_run.id)


def ui_runs_tab(deployment_id: uuid.UUID) -> list[Any]:
    """The deployment page's Runs tab: its runs whose state name is one the UI knows, Scheduled excepted."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateName,
    )

    names = [n for n in ui_state_names() if n != "Scheduled"]
    with get_client(sync_client=True) as client:
        return client.read_flow_runs(
            flow_run_filter=FlowRunFilter(state=FlowRunFilterState(name=FlowRunFilterStateName(any_=names))),
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])),
        )


def count_by_type(deployment_id: uuid.UUID, *types: str) -> int:
    """How the dashboard counts a deployment's runs: by state type."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    state = FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType(t) for t in types]))
    with get_client(sync_client=True) as client:
        return client.count_flow_runs(
            flow_run_filter=FlowRunFilter(state=state),
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])),
        )


def test_a_partially_failed_run_is_listed_and_red_and_a_held_order_stays_in_view_until_dismissed(
    make_stack: Callable[..., FakeStack],  # noqa: F811
) -> None:
    from erpsync.app.cli import app
    from erpsync.flows.orders import order_sync

    stack = make_stack(max_attempts=1)
    stack.erp.data.known_skus = {"SKU-A"}
    stack.product("SKU-A")
    stack.product("SKU-X")
    stack.order("SKU-A")
    unknown = stack.order("SKU-X")
    deployment_id = deploy(order_sync)

    first = run_deployment_here(order_sync, deployment_id, store="main")
    assert first.state.type.value == "FAILED" and first.state.name == "Failed", first.state
    assert first.state.message.startswith("Partially failed: 1 record(s) failed"), first.state.message
    assert [r.id for r in ui_runs_tab(deployment_id)] == [first.id]  # in the deployment's Runs tab
    assert count_by_type(deployment_id, "COMPLETED") == 0  # the dashboard does not count it as completed
    assert count_by_type(deployment_id, "COMPLETED", "FAILED", "CRASHED") == 1

    assert stack.state.try_lock("main", "orders", "someone-else", 60)  # another run holds the lease
    try:
        skipped = run_deployment_here(order_sync, deployment_id, store="main")
    finally:
        stack.state.unlock("main", "orders", "someone-else")
    assert skipped.state.name == "Completed" and skipped.state.message.startswith("Skipped: "), skipped.state
    assert {r.id for r in ui_runs_tab(deployment_id)} == {first.id, skipped.id}  # listed too

    second = run_deployment_here(order_sync, deployment_id, store="main")  # the order is now held
    assert second.state.type.value == "COMPLETED", second.state
    assert "store main: 1 held for a person: `erpsync failures list --store main`" in second.state.message
    table = artifact("open-failures-main")
    assert table is not None and table.type == "table"
    rows = table.data if isinstance(table.data, list) else __import__("json").loads(table.data)
    assert [(r["status"], r["entity"], r["key"], r["attempts"]) for r in rows] == [("held", "order", unknown, 1)]
    assert "unknown SKU 'SKU-X'" in rows[0]["reason"]
    assert rows[0]["retry"] == f"erpsync resync-order --store main {unknown}"
    summary_md = artifact("orders-main-summary")
    assert summary_md is not None and "1 held for a person" in summary_md.data
    assert {r.id for r in ui_runs_tab(deployment_id)} == {first.id, skipped.id, second.id}

    result = CliRunner().invoke(
        app, ["failures", "dismiss", unknown, "--store", "main", "--reason", "a test order", "-c", str(stack.path)]
    )
    assert result.exit_code == 0, result.output
    assert f"dismissed: main order {unknown}" in result.output
    closed = stack.state.failure("main", "order", unknown)
    assert (
        closed is not None
        and closed.resolved
        and (closed.closed_how, closed.close_reason)
        == (
            "dismissed",
            "a test order",
        )
    )
    assert closed.closed_by  # who: $ERPSYNC_OPERATOR or user@host

    third = run_deployment_here(order_sync, deployment_id, store="main")
    assert third.state.type.value == "COMPLETED" and "held" not in third.state.message, third.state.message
    table = artifact("open-failures-main")
    rows = table.data if isinstance(table.data, list) else __import__("json").loads(table.data)
    assert rows == [] and "none" in table.description


def test_a_mistyped_resync_order_id_is_a_clear_failure_that_records_nothing(
    make_stack: Callable[..., FakeStack],  # noqa: F811
) -> None:
    stack = make_stack()
    summary = stack.run("resync-order", order_id="123456789", force=True)
    assert summary.state is RunState.FAILED
    assert re.search(r"MerchantPro at http://127\.0\.0\.1:\d+/?\S* has no order '123456789'", summary.message)
    assert "check the id" in summary.message and "nothing was recorded" in summary.message
    assert stack.state.failure("main", "order", "123456789") is None
    assert stack.state.open_failures("main") == []


def test_a_run_stopped_by_a_dead_shop_says_where_and_what_to_do_and_leaves_a_summary(
    make_stack: Callable[..., FakeStack],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from erpsync.app.flowrun import summary_text
    from erpsync.runtime.store_runtime import overrides

    stack = make_stack()
    monkeypatch.setitem(overrides.shop_options, "max_retries", 0)  # the HTTP layer's back-off is tested elsewhere
    stack.shop.stop()
    summary = stack.run()
    assert summary.state is RunState.FAILED
    assert re.match(r"MerchantPro at http://127\.0\.0\.1:\d+ refused the connection: is it running", summary.message)
    assert "`erpsync check`" in summary.message and "\n" not in summary.message
    assert summary.seconds > 0  # the real duration, not 0.0
    assert summary.message in summary_text(summary)
    failed = artifact("orders-main-summary")
    assert failed is not None and "**Failed**" in failed.data and "refused the connection" in failed.data
    assert artifact("open-failures-main") is not None
