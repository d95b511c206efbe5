"""Many machines, for real: Prefect server on PostgreSQL, a process work pool, ``prefect deploy --all`` from the
``prefect.yaml`` that ``erpsync prefect-yaml`` writes, and a worker that picks a triggered run and completes it,
with erpsync's state on PostgreSQL. The commands are the ones docs/operations.md gives the operator."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from erpsync.app.prefect_server import PrefectServer
from tests.deploy.conftest import (
    ERP_QUANTITY,
    SHOP_RATE,
    DeployStack,
    assert_completed,
    assert_store_deployments,
    deploy_to_pool,
    operator_env,
    prefect_client,
    run_command,
    store_deployments,
    trigger_deployment,
    wait_final,
    worker_once,
)

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.tryton]

POOL = "erpsync-test-pool"
STORE = "fleet"


def test_worker_runs_a_deployed_stock_sync_with_state_on_postgresql(
    prefect_server: PrefectServer, make_stack: Callable[[str], DeployStack], tmp_path: Path
) -> None:
    started = time.monotonic()
    stack = make_stack(STORE)
    env = operator_env(tmp_path / "prefect-home", api_url=prefect_server.api_url, config=stack.config_path)
    timings: dict[str, float] = {}

    output, spec, timings["deploy --all"] = deploy_to_pool(env, POOL, tmp_path)
    assert "entrypoint: erpsync.flows.stock:stock_sync" in spec.read_text()
    assert f"prefect work-pool create {POOL} --type process" in spec.read_text()  # its header names this pool
    assert f"erpsync-shop-{STORE}" in output  # the shared rate limit is created on the server as well

    with prefect_client(prefect_server.api_url) as client:
        deployments = store_deployments(client, STORE)
        assert_store_deployments(deployments, STORE)
        assert {d.work_pool_name for d in deployments.values()} == {POOL}
        limit = client.read_global_concurrency_limit_by_name(f"erpsync-shop-{STORE}")
        assert (limit.limit, limit.slot_decay_per_second) == (1, SHOP_RATE)

        stock = deployments["stock"]
        flow_name = client.read_flow(stock.flow_id).name
        triggered = time.monotonic()
        run_id, timings["deployment run"] = trigger_deployment(env, f"{flow_name}/stock-{STORE}")
        worker_log, timings["worker"] = run_command(worker_once(POOL), env)
        run = wait_final(client, run_id, timeout=60)
        timings["trigger to completed"] = time.monotonic() - triggered
        assert_completed(run)
        assert run.deployment_id == stock.id
        # Logs travel in batches from the run's process; the last ones may land after the state does.
        deadline = time.monotonic() + 30
        while not (messages := [log.message for log in client.read_logs(log_filter=_run_logs(run.id))]):
            if time.monotonic() > deadline:
                break
            time.sleep(0.5)
    assert messages, "the run sent no logs to the server"
    for secret in (stack.shop.api_secret, stack.shop.api_key):
        assert not [m for m in messages if secret in m], "a secret reached the Prefect logs"

    assert stack.shop_stock() == ERP_QUANTITY, worker_log[-3000:]
    pushed = {row["key"]: row for row in stack.state_rows("pushed")}
    assert pushed, "no pushed rows in the PostgreSQL state database"
    assert any(stack.sku in key for key in pushed), sorted(pushed)
    assert stack.state_rows("run_locks") == []  # the run's lease was released
    timings["test"] = time.monotonic() - started
    shown = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in timings.items())
    print(f"\nwork pool timings: server start {prefect_server.start_seconds:.1f} s, {shown}")


def _run_logs(flow_run_id: UUID) -> Any:
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    return LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id]))
