"""``erpsync run`` as a process against a Prefect server: it ends as soon as its runs are done (``cli.leave`` skips
the interpreter's tear-down) and still hands the server everything — the run's state and its last log lines."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from erpsync.dev.stack import smartbill_erp, start_shop, write_config
from erpsync.testing.server import serve_in_thread
from erpsync.testing.smartbill import SmartBillSimulator

ROOT = Path(__file__).resolve().parents[2]
STORE = "exit-probe"


@pytest.fixture
def config(tmp_path: Path, prefect_harness: None) -> Iterator[Path]:
    sim = SmartBillSimulator(cif="RO12345678", users={"o@example.ro": "tok"}, warehouses={"Depozit": {"A": 5}})
    erp = serve_in_thread(sim)
    shop = start_shop(STORE)
    shop.sim.add_product({"name": "Produs A", "sku": "A", "price_gross": 121, "tax_id": 5, "stock": 2})
    try:
        yield write_config(
            tmp_path / "erpsync.toml",
            erp=smartbill_erp(erp.url, username="o@example.ro", token="tok", cif="RO12345678"),
            shops=[shop],
            state_url=f"sqlite:///{tmp_path / 'state.db'}",
            stores={STORE: {"warehouses": ["Depozit"]}},
        )
    finally:
        shop.stop()
        erp.stop()


def _run_and_logs(tag: str) -> tuple[Any, list[str]]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags, LogFilter, LogFilterFlowRunId
    from prefect.client.schemas.sorting import FlowRunSort

    async def read() -> tuple[Any, list[str]]:
        async with get_client() as client:
            runs = await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[tag])),
                sort=FlowRunSort.START_TIME_DESC,
                limit=1,
            )
            assert runs, f"no run tagged {tag}"
            logs = await client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[runs[0].id])))
            return runs[0], [log.message for log in logs]

    return asyncio.run(read())


def test_a_cli_run_ends_at_once_and_its_last_logs_reach_the_server(config: Path, tmp_path: Path) -> None:
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value()), "ERPSYNC_CONFIG": str(config)}
    done = subprocess.run(
        [sys.executable, "-m", "erpsync.app.cli", "run", "stock", "--store", STORE],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith(f"stock [{STORE}] completed: ") and "shop 1r/1w" in done.stdout, done.stdout
    run, messages = _run_and_logs(f"store:{STORE}")
    assert run.state is not None and run.state.is_completed()
    assert any(message.startswith("Finished in state Completed") for message in messages), messages[-5:]
