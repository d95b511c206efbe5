"""One machine: ``erpsync serve`` registers every flow x store with its schedule on a real Prefect server, runs
what is triggered there, and shares the shop's rate limit through a Prefect global concurrency limit. Without
PREFECT_API_URL it starts (and on exit stops) its own ``prefect server start``."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from erpsync.app.deployments import MANUAL, SCHEDULED
from erpsync.app.prefect_server import PrefectServer, free_port, port_is_open
from erpsync.dev.stack import start_shop, write_config
from tests.deploy.conftest import (
    ERP_QUANTITY,
    RARE_SCHEDULES,
    SHOP_RATE,
    VENV_BIN,
    DeployStack,
    assert_completed,
    assert_store_deployments,
    background,
    operator_env,
    prefect_client,
    store_deployments,
    wait_final,
    wait_until,
)

pytestmark = pytest.mark.slow


@pytest.mark.postgres
@pytest.mark.tryton
def test_serve_registers_every_flow_and_runs_a_triggered_one(
    prefect_server: PrefectServer, make_stack: Callable[[str], DeployStack], tmp_path: Path
) -> None:
    store = "served"
    stack = make_stack(store)
    env = operator_env(tmp_path / "prefect-home", api_url=prefect_server.api_url, config=stack.config_path)
    env["PREFECT_RUNNER_POLL_FREQUENCY"] = "1"  # pick a triggered run up within a second (default 10 s)
    log = tmp_path / "serve.log"
    # From a folder of its own, as an operator runs it: the flows come from the installed package.
    with (
        background([str(VENV_BIN / "erpsync"), "serve"], env, log, cwd=tmp_path) as serving,
        prefect_client(prefect_server.api_url) as client,
    ):
        deployments = wait_until(
            lambda: serving.poll() is None and len(found := store_deployments(client, store)) == PER_STORE and found,
            timeout=90,
            what=f"erpsync serve to register its deployments (log: {log})",
        )
        assert_store_deployments(deployments, store)
        limit = client.read_global_concurrency_limit_by_name(f"erpsync-shop-{store}")
        assert (limit.limit, limit.slot_decay_per_second) == (1, SHOP_RATE)

        triggered = time.monotonic()
        flow_run = client.create_flow_run_from_deployment(deployments["stock"].id)
        run = wait_final(client, flow_run.id, timeout=90)
        print(f"\nserve: trigger to completed {time.monotonic() - triggered:.1f} s")
        assert_completed(run)
        assert run.name.startswith(f"stock-sync-{store}-"), run.name
        assert stack.shop_stock() == ERP_QUANTITY, log.read_text()[-3000:]
        stock_form = deployments["stock"].parameter_openapi_schema["properties"]["store"]
        assert (stock_form["enum"], stock_form["readOnly"]) == ([store], True)  # the form offers its own store only
        with pytest.raises(Exception, match="store"):  # the API refuses a run of this deployment for another store
            client.create_flow_run_from_deployment(deployments["stock"].id, parameters={"store": "cluj"})
        assert serving.poll() is None, log.read_text()[-3000:]


PER_STORE = len(SCHEDULED) + len(MANUAL)


def test_serve_without_api_url_runs_its_own_server_and_stops_it(tmp_path: Path) -> None:
    shop = start_shop("solo")
    try:
        config = write_config(
            tmp_path / "erpsync.toml",
            erp={"type": "tryton", "url": "http://127.0.0.1:9", "database": "unused", "password": "literal:unused"},
            shops=[shop],
            state_url=f"sqlite:///{tmp_path / 'state.db'}",
            stores={"solo": {"requests_per_second": SHOP_RATE, "schedules": RARE_SCHEDULES}},
        )
        home = tmp_path / "prefect-home"
        env = operator_env(home, api_url=None, config=config)
        port = free_port()
        log = tmp_path / "serve.log"
        started = time.monotonic()
        with background([str(VENV_BIN / "erpsync"), "serve", "--port", str(port)], env, log) as serving:
            printed = wait_until(
                lambda: re.search(r"Prefect UI: (http://\S+)", log.read_text()) or serving.poll() is not None,
                timeout=120,
                what="the local Prefect server",
            )
            assert serving.poll() is None, log.read_text()[-3000:]
            assert printed.group(1) == f"http://127.0.0.1:{port}"
            api_url = f"http://127.0.0.1:{port}/api"
            with prefect_client(api_url) as client:
                deployments = wait_until(
                    lambda: len(found := store_deployments(client, "solo")) == PER_STORE and found,
                    timeout=60,
                    what=f"the served deployments (log: {log})",
                )
                assert_store_deployments(deployments, "solo")
                limit = client.read_global_concurrency_limit_by_name("erpsync-shop-solo")
                assert limit.slot_decay_per_second == SHOP_RATE
            print(f"\nserve without PREFECT_API_URL: server up and deployments served in "
                  f"{time.monotonic() - started:.1f} s")  # fmt: skip
            assert (home / "prefect.db").exists()  # the server's database is in PREFECT_HOME

            os.kill(serving.pid, signal.SIGINT)  # Ctrl-C: only erpsync is signalled, it must stop its server
            try:
                serving.wait(timeout=60)
            except subprocess.TimeoutExpired:
                raise AssertionError("erpsync serve did not stop on Ctrl-C:\n" + log.read_text()[-3000:]) from None
            # 0 when Prefect's serve caught the interrupt, 130 when it reached erpsync's own handler first.
            assert serving.returncode in (0, 130), log.read_text()[-3000:]
        assert not port_is_open("127.0.0.1", port), "the local Prefect server outlived erpsync serve"
    finally:
        shop.stop()
