"""A run says what it is in the Prefect API the UI reads: its name ``flow-store-time``, its store tags (CLI runs as
well as deployment runs), and a run given another store than its deployment's is refused before it syncs."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.flows.stock_fixtures import STORE, FakeStack, add_basic, build_fake_stack


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_harness: None) -> Iterator[FakeStack]:
    yield from build_fake_stack(tmp_path, monkeypatch)


def _runs(tag: str) -> list[Any]:
    """The newest runs carrying ``tag`` (newest first: the session's server holds many runs, read in one page)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags
    from prefect.client.schemas.sorting import FlowRunSort

    async def read() -> list[Any]:
        async with get_client() as client:
            return await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[tag])),
                sort=FlowRunSort.START_TIME_DESC,
                limit=50,
            )

    return asyncio.run(read())


def test_a_cli_run_is_named_and_tagged_like_a_deployment_run(fake: FakeStack) -> None:
    from erpsync.app.flowrun import run_named
    from erpsync.core.summary import RunState

    add_basic(fake.shop, "ID-1", 1)
    fake.erp.data.set("ID-1", "WH", 5, 0)
    (summary,) = run_named("stock", [STORE], {})
    assert summary.state is RunState.COMPLETED, summary.message
    runs = _runs(f"store:{STORE}")  # newest first: this test's run leads (other tests' runs of the store follow)
    assert runs, "the CLI run carries no store tag"
    run = runs[0]
    assert {"erpsync", f"store:{STORE}", "flow:stock"} <= set(run.tags)
    assert re.fullmatch(rf"stock-sync-{STORE}-\d{{8}}-\d{{6}}", run.name), run.name


def test_a_cli_run_does_not_wait_for_the_heartbeat_thread(fake: FakeStack) -> None:
    """Prefect's heartbeat context still runs, told not to join its thread (a Prefect that renamed it fails here)."""
    import inspect
    from functools import partial

    from prefect import flow_engine

    from erpsync.app.flowrun import run_named
    from erpsync.core.summary import RunState

    add_basic(fake.shop, "ID-1", 1)
    fake.erp.data.set("ID-1", "WH", 5, 0)
    (summary,) = run_named("stock", [STORE], {})
    assert summary.state is RunState.COMPLETED, summary.message
    heartbeats = flow_engine._send_heartbeats
    assert isinstance(heartbeats, partial) and heartbeats.keywords == {"join_on_exit": False}
    assert "join_on_exit" in inspect.signature(heartbeats.func).parameters


def test_a_run_of_another_stores_deployment_is_refused(fake: FakeStack) -> None:
    from prefect import tags

    from erpsync.flows.stock import stock_sync
    from erpsync.runtime.run_context import StoreMismatch

    add_basic(fake.shop, "ID-2", 1)
    fake.erp.data.set("ID-2", "WH", 7, 0)
    with tags("erpsync", "store:bucuresti", "flow:stock"):  # what a run of the deployment stock-bucuresti carries
        state = stock_sync(store=STORE, return_state=True)
    assert state.is_failed()
    error = state.result(raise_on_failure=False)
    assert isinstance(error, StoreMismatch)
    assert "belongs to store bucuresti" in str(error) and f"stock-{STORE}" in str(error)
    assert fake.shop_stock("ID-2") == 1  # nothing was synced


def _latest_table(key: str) -> list[dict[str, Any]]:
    import json

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    async def read() -> list[Any]:
        async with get_client() as client:
            return await client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])), sort=ArtifactSort.CREATED_DESC
            )

    found = asyncio.run(read())
    assert found, f"no artifact {key}"
    data = found[0].data
    return json.loads(data) if isinstance(data, str) else data


def test_the_stock_run_lists_each_sku_old_to_new(fake: FakeStack) -> None:
    from erpsync.app.flowrun import run_named

    for i in range(3):
        fake.erp.data.set(f"CH{i}", "WH", 10 + i, 2)
        add_basic(fake.shop, f"CH{i}", 0)
    run_named("stock", [STORE], {})
    first = {row["sku"]: row["change"] for row in _latest_table(f"stock-{STORE}-changes")}
    assert first == {"CH0": "0 → 8", "CH1": "0 → 9", "CH2": "0 → 10"}  # the shop's value read in this run
    fake.erp.data.set("CH1", "WH", 30, 5)
    run_named("stock", [STORE], {})
    assert _latest_table(f"stock-{STORE}-changes") == [{"sku": "CH1", "shop sku": "CH1", "change": "9 → 25"}]
