"""A worker killed mid-run: Prefect server on PostgreSQL, a process work pool, the orders deployment of a store
with its state on PostgreSQL, and real Tryton behind a proxy that slows every call (so the kill lands between
the sales' creation and their confirmation). The worker and its flow-run process are SIGKILLed while the run
holds the store's orders lease and the claims of the orders it is booking. The re-run, triggered at once on a
fresh worker, takes the dead run's lease and claims over (same machine, process gone), finds the sales the
killed run created by their reference, confirms them and books the rest: one sale per shop order, the shop's
stock equal to the ERP's, nothing left locked.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from prefect.states import Crashed
from sqlalchemy.exc import ProgrammingError

from erpsync.app.prefect_server import PrefectServer
from erpsync.dev.tryton import TrytonServer
from erpsync.testing.fault_proxy import FaultProxy
from erpsync.testing.faults import Faults
from erpsync.testing.server import serve_in_thread
from tests.deploy.conftest import (
    ERP_QUANTITY,
    DeployStack,
    assert_completed,
    background,
    deploy_to_pool,
    kill_group,
    operator_env,
    prefect_client,
    run_command,
    store_deployments,
    trigger_deployment,
    wait_final,
    wait_until,
    worker_once,
)
from tests.flows.erp_matrix import buyer, shop_order_id

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.tryton]

POOL = "erpsync-killed-pool"
STORE = "killed"
ORDERS = 6  # below the ERP's 7 units, so the stock after the import is a positive number to compare
LATENCY = 0.25  # seconds added to every Tryton call: creating the six sales takes several seconds


def _place_orders(stack: DeployStack) -> list[str]:
    """Placed shop orders of one unit of the stack's SKU, each from a new buyer; their shop ids."""
    ids = []
    for _ in range(ORDERS):
        order = {
            **buyer(),
            "id": shop_order_id(),
            "payment_status": "paid",
            "payment_method_code": "wire",
            "shipping_status": "awaiting",
            "shipping_amount": 15,
            "line_items": [{"product_sku": stack.sku, "quantity": 1}],
        }
        ids.append(str(stack.shop.sim.add_order(order, adjust_stock=False)["id"]))
    return ids


def _sales(tryton: TrytonServer, references: list[str]) -> dict[str, list[str]]:
    """The Tryton sales' states per reference."""
    with tryton.session() as session:
        rows = session.call(
            "model.sale.sale.search_read", [("reference", "in", references)], 0, None, None, ["reference", "state"], {}
        )
    found: dict[str, list[str]] = {reference: [] for reference in references}
    for row in rows:
        found[row["reference"]].append(row["state"])
    return found


def _journal_size(stack: DeployStack) -> int:
    """Rows in the store's order journal (0 while the run has not created the state tables yet)."""
    try:
        return len(stack.state_rows("order_journal"))
    except ProgrammingError:
        return 0


def test_a_worker_killed_mid_run_then_a_re_run_books_every_order_once(
    prefect_server: PrefectServer,
    make_stack: Callable[..., DeployStack],
    tryton_server: TrytonServer,
    tmp_path: Path,
) -> None:
    proxy = FaultProxy(tryton_server.url, Faults(latency=LATENCY, seed=1))
    proxy_server = serve_in_thread(proxy)
    try:
        stack = make_stack(STORE, erp_url=proxy_server.url)
        ids = _place_orders(stack)
        env = operator_env(tmp_path / "prefect-home", api_url=prefect_server.api_url, config=stack.config_path)
        deploy_to_pool(env, POOL, tmp_path)

        with prefect_client(prefect_server.api_url) as client:
            orders = store_deployments(client, STORE)["orders"]
            deployment = f"{client.read_flow(orders.flow_id).name}/orders-{STORE}"
            killed_id, _ = trigger_deployment(env, deployment)
            worker = worker_once(POOL)
            with background(worker, env, tmp_path / "killed-worker.log") as process:
                # Journal first: an order's row exists before its sale is created. Three rows: two sales made.
                wait_until(lambda: _journal_size(stack) >= 3, 180, "the run to book three orders", every=0.1)
                kill_group(process)
            killed = client.read_flow_run(killed_id)
            log = (tmp_path / "killed-worker.log").read_text(errors="replace")
            assert killed.state is not None and not killed.state.is_final(), f"{killed.state}\n{log[-3000:]}"
            made = _sales(tryton_server, ids)
            assert 1 <= sum(map(len, made.values())) < ORDERS, made  # killed between the first sale and the last
            assert [lock["flow"] for lock in stack.state_rows("run_locks") if lock["flow"] == "orders"] == ["orders"]

            # What the operator does on the dead run's page: it is Crashed, and its deployment slot freed (left
            # alone, Prefect frees the slot when the run's deployment concurrency lease expires: 344 s once measured).
            client.set_flow_run_state(killed_id, Crashed(message="its worker was killed"), force=True)
            rerun_id, _ = trigger_deployment(env, deployment)
            rerun_log, _ = run_command(worker, env, timeout=300)
            try:
                rerun = wait_final(client, rerun_id, timeout=60)
            except AssertionError as error:
                raise AssertionError(f"{error}\n{rerun_log[-4000:]}") from None
            assert_completed(rerun)

        assert "its lease is taken over" in rerun_log, rerun_log[-4000:]  # not waited out for its 2-minute TTL
        sales = _sales(tryton_server, ids)
        assert all(len(states) == 1 for states in sales.values()), sales  # one sale per shop order, none twice
        assert {state for states in sales.values() for state in states} <= {"confirmed", "processing"}, sales
        journal = stack.state_rows("order_journal")
        assert sorted(row["shop_order_id"] for row in journal) == sorted(ids)
        assert {row["state"] for row in journal} == {"created"}, journal
        assert stack.shop_stock() == ERP_QUANTITY - ORDERS  # the shop follows the ERP after the re-run
        assert stack.state_rows("run_locks") == []  # the dead run's lease and claims are gone with the re-run
        print(f"\nkilled worker: {sum(map(len, made.values()))} of {ORDERS} sales made before the kill; re-run ok")
    finally:
        proxy_server.stop()
