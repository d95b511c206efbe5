"""Deployment tests' fixtures: ONE real ``prefect server start`` on PostgreSQL for this folder (started only when
a test here asks), a stack whose state is on PostgreSQL, and helpers that run commands as an operator would.

Every subprocess runs in its own process group and is killed with it, so nothing outlives a failed test.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from erpsync.app.prefect_server import PrefectServer, asyncpg_url, start_prefect_server, stop_group
from erpsync.dev.stack import SimShop, start_shop, tryton_erp, write_config
from erpsync.dev.tryton import TrytonServer
from tests.pg import create_test_database, drop_test_database
from tests.tryton_fixture import create_stocked_product, unique_code

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
# Schedules that never fire during a test (1 January), distinct per flow so the mapping can be checked.
RARE_SCHEDULES = {
    "orders": "0 3 1 1 *",
    "stock": "5 3 1 1 *",
    "products": "10 3 1 1 *",
    "reconcile": "15 3 1 1 *",
    "receipts": "20 3 1 1 *",
    "watch": "25 3 1 1 *",
    "customers": "30 3 1 1 *",
    "purchases": "35 3 1 1 *",
    "prune": "40 3 1 1 *",
}
ERP_QUANTITY = 7
SHOP_RATE = 20.0


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    """A real Prefect server (API only, no UI) on a throw-away PostgreSQL database, for this folder's tests."""
    database = create_test_database()
    try:
        home = tmp_path_factory.mktemp("prefect-server")
        with start_prefect_server(home, database_url=asyncpg_url(database), ui=False) as server:
            print(f"\nprefect server on PostgreSQL healthy in {server.start_seconds:.1f} s")
            yield server
    finally:
        drop_test_database(database)


def operator_env(home: Path, *, api_url: str | None, config: Path | None = None) -> dict[str, str]:
    """The environment of an operator's shell: the venv on PATH, its own PREFECT_HOME, no prompts."""
    env = {key: value for key, value in os.environ.items() if key not in ("PREFECT_API_URL", "ERPSYNC_CONFIG")}
    env.update(
        PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        PREFECT_HOME=str(home),
        PREFECT_CLI_PROMPT="false",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        DO_NOT_TRACK="1",
    )
    if api_url:
        env["PREFECT_API_URL"] = api_url
    if config is not None:
        env["ERPSYNC_CONFIG"] = str(config)
    return env


def descendants(pid: int) -> list[int]:
    """Every living process below ``pid`` (from /proc), also those in sessions of their own."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def kill_group(process: subprocess.Popen[Any], timeout: float = 15.0) -> None:
    """Stop a process started with ``start_new_session``, its group, and every process it spawned elsewhere."""
    below = descendants(process.pid)  # before they are orphaned (e.g. a Prefect server in its own session)
    stop_group(process, timeout)
    for pid in below:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def run_command(args: list[str], env: dict[str, str], *, cwd: Path = ROOT, timeout: float = 180.0) -> tuple[str, float]:
    """Run a command to its end (its whole process group is killed on timeout); its output and seconds."""
    started = time.monotonic()
    process = subprocess.Popen(
        args, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(process)
        output, _ = process.communicate()
        raise AssertionError(f"{' '.join(args[:4])} did not finish in {timeout:.0f} s:\n{output[-4000:]}") from None
    finally:
        kill_group(process)
    seconds = time.monotonic() - started
    assert process.returncode == 0, f"{' '.join(args)} exited {process.returncode}:\n{output[-4000:]}"
    return output, seconds


def deploy_to_pool(env: dict[str, str], pool: str, folder: Path) -> tuple[str, Path, float]:
    """What docs/operations.md has the operator do: ``erpsync prefect-yaml`` for ``pool`` into ``folder`` (not the
    checkout: the entrypoints are modules of the installed package), the process pool created, ``prefect deploy
    --all``. Returns prefect-yaml's output, the spec and the deploy's seconds."""
    spec = folder / "prefect.yaml"
    command = ["prefect-yaml", "--output", str(spec), "--work-pool", pool, "--project-dir", str(folder)]
    output, _ = run_command([str(VENV_BIN / "erpsync"), *command], env)
    run_command([str(VENV_BIN / "prefect"), "work-pool", "create", pool, "--type", "process"], env)
    _, seconds = run_command([str(VENV_BIN / "prefect"), "deploy", "--all", "--prefect-file", str(spec)], env)
    return output, spec, seconds


def trigger_deployment(env: dict[str, str], deployment: str) -> tuple[str, float]:
    """``prefect deployment run <flow>/<deployment>``: the new flow run's id and the command's seconds."""
    output, seconds = run_command([str(VENV_BIN / "prefect"), "deployment", "run", deployment], env)
    match = re.search(r"UUID: ([0-9a-f-]{36})", output)
    assert match, output
    return match.group(1), seconds


def worker_once(pool: str) -> list[str]:
    """A worker that takes one run of ``pool`` and exits when it ended (--limit 1 makes --run-once wait for it)."""
    return [str(VENV_BIN / "prefect"), "worker", "start", "--pool", pool, "--run-once", "--limit", "1"]


def _terminal_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@contextlib.contextmanager
def background(
    args: list[str], env: dict[str, str], log: Path, *, cwd: Path = ROOT
) -> Iterator[subprocess.Popen[bytes]]:
    """A long-running command (output to ``log``), stopped with its whole process group on exit.

    It starts with Ctrl-C's default handling, as in an operator's terminal: a test run started in the background
    of a non-interactive shell (`make test &`, nohup) has SIGINT ignored, and a child would inherit that.
    """
    with log.open("ab") as out:
        process = subprocess.Popen(
            args, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=_terminal_signals,
        )  # fmt: skip
    try:
        yield process
    finally:
        kill_group(process)


def wait_until(condition: Callable[[], Any], timeout: float, what: str, *, every: float = 0.5) -> Any:
    """Poll ``condition`` until it returns something truthy; that value (AssertionError naming ``what``)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


@dataclass
class DeployStack:
    """One simulated shop + the real Tryton, state on PostgreSQL; one SKU whose ERP stock the shop lacks."""

    store: str
    config_path: Path
    shop: SimShop
    state_url: str
    sku: str
    shop_product_id: int

    def shop_stock(self) -> Decimal:
        return Decimal(str(self.shop.sim.products[self.shop_product_id]["stock"]))

    def state_rows(self, table: str) -> list[dict[str, Any]]:
        """The rows of one state table for this store (read straight from PostgreSQL)."""
        engine = create_engine(self.state_url)
        try:
            with engine.connect() as conn:
                result = conn.execute(text(f"SELECT * FROM {table} WHERE store = :store"), {"store": self.store})
                return [dict(row._mapping) for row in result]
        finally:
            engine.dispose()


@pytest.fixture
def make_stack(tmp_path: Path, tryton_server: TrytonServer) -> Iterator[Callable[..., DeployStack]]:
    """Build a DeployStack for a store name (state in a fresh PostgreSQL database; the ERP at ``erp_url`` when
    given, e.g. a proxy in front of Tryton); all torn down after."""
    shops: list[SimShop] = []
    databases: list[str] = []

    def build(store: str, erp_url: str | None = None) -> DeployStack:
        sku = unique_code("DEPLOY")
        with tryton_server.session() as session:
            create_stocked_product(session, tryton_server.manifest, sku, {"WH": ERP_QUANTITY})
        shop = start_shop(store)
        shops.append(shop)
        product = shop.sim.add_product(
            {"name": f"Produs {sku}", "sku": sku, "price_gross": 25, "tax_id": 1, "inventory_enabled": "on", "stock": 0}
        )
        databases.append(state_url := create_test_database())
        config = write_config(
            tmp_path / f"{store}.toml",
            erp={**tryton_erp(tryton_server), **({"url": erp_url} if erp_url else {})},
            shops=[shop],
            state_url=state_url,
            stores={store: {"requests_per_second": SHOP_RATE, "schedules": RARE_SCHEDULES}},
        )
        return DeployStack(store, config, shop, state_url, sku, int(product["id"]))

    try:
        yield build
    finally:
        for shop in shops:
            shop.stop()
        for database in databases:
            drop_test_database(database)


@contextlib.contextmanager
def prefect_client(api_url: str) -> Iterator[Any]:
    """A synchronous Prefect client for one server (independent of this process's Prefect settings)."""
    from prefect.client.orchestration import SyncPrefectClient

    with SyncPrefectClient(api_url) as client:
        yield client


def store_deployments(client: Any, store: str) -> dict[str, Any]:
    """The deployments tagged ``store:<store>``, by flow key (from their ``flow:<key>`` tag)."""
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterTags

    found = client.read_deployments(
        deployment_filter=DeploymentFilter(tags=DeploymentFilterTags(all_=[f"store:{store}"]))
    )
    return {tag.removeprefix("flow:"): d for d in found for tag in d.tags if tag.startswith("flow:")}


def assert_store_deployments(deployments: dict[str, Any], store: str) -> None:
    """Every flow of the store is deployed once, named ``<flow>-<store>``, with its cron (or none) and its tags."""
    from erpsync.app.deployments import MANUAL, SCHEDULED

    assert sorted(deployments) == sorted((*SCHEDULED, *MANUAL))
    for key, deployment in deployments.items():
        assert deployment.name == f"{key}-{store}"
        assert set(deployment.tags) == {"erpsync", f"store:{store}", f"flow:{key}"}
        assert deployment.parameters == {"store": store}
        crons = [(s.schedule.cron, s.schedule.timezone) for s in deployment.schedules]
        assert crons == ([(RARE_SCHEDULES[key], "Europe/Bucharest")] if key in SCHEDULED else []), key


def wait_final(client: Any, flow_run_id: Any, timeout: float) -> Any:
    """The flow run once it reached a final state."""

    def final() -> Any:
        run = client.read_flow_run(flow_run_id)
        return run if run.state is not None and run.state.is_final() else None

    return wait_until(final, timeout, f"flow run {flow_run_id} to finish", every=0.25)


def assert_completed(run: Any) -> None:
    """Completed, or the documented "Partially failed" (type FAILED, its message saying so: records failed, the
    run went on)."""
    from prefect.client.schemas.objects import StateType

    state = run.state
    partial = state.type == StateType.FAILED and (state.message or "").startswith("Partially failed:")
    assert state.type == StateType.COMPLETED or partial, f"{run.name}: {state.type} {state.name}: {state.message}"
    assert state.name in ("Completed", "Failed"), state.name
