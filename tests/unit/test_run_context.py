"""Self-describing runs: deployment names, readable schedules, run names, the store a run is fixed to, and the
parameter forms (descriptions from the flows' docstrings, the entity list); pure logic, no Prefect server."""

from __future__ import annotations

import typing
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from erpsync.app.deployments import DeploymentSpec, cron_words, deployment_name
from erpsync.runtime.run_context import format_run_name, mismatch_message, store_tags, tagged_stores


def test_deployment_names_say_flow_and_store() -> None:
    spec = DeploymentSpec("orders", "bucuresti", "*/2 * * * *", "Europe/Bucharest", {"store": "bucuresti"})
    assert spec.name == deployment_name("orders", "bucuresti") == "orders-bucuresti"
    assert spec.tags == store_tags("orders", "bucuresti") == ["erpsync", "store:bucuresti", "flow:orders"]
    assert spec.schedule_slug == "every-2-minutes"
    assert spec.description == (
        "erpsync orders for store bucuresti: every 2 minutes (cron '*/2 * * * *', Europe/Bucharest)"
    )
    manual = DeploymentSpec("resync-order", "cluj", "", "Europe/Bucharest")
    assert (manual.name, manual.schedule_slug) == ("resync-order-cluj", None)
    assert manual.description.endswith("by hand only")


@pytest.mark.parametrize(
    ("cron", "words"),
    [
        ("*/2 * * * *", "every 2 minutes"),
        ("*/1 * * * *", "every minute"),
        ("30 2 * * *", "daily at 02:30"),
        ("0 * * * *", "hourly at minute 0"),
        ("5 */6 * * *", "every 6 hours at minute 5"),
        ("0 9 * * 1-5", "cron 0 9 * * 1-5"),
    ],
)
def test_cron_in_words(cron: str, words: str) -> None:
    assert cron_words(cron) == words


def test_the_unusual_cron_is_shown_as_it_is() -> None:
    spec = DeploymentSpec("stock", "main", "0 9 * * 1-5", "UTC")
    assert spec.description == "erpsync stock for store main: cron '0 9 * * 1-5' (UTC)"


def test_run_name_is_flow_store_utc_time() -> None:
    at = datetime(2026, 12, 5, 13, 12, 3, tzinfo=timezone(timedelta(hours=2)))
    assert format_run_name("orders", "bucuresti", at) == "orders-bucuresti-20261205-111203"
    assert format_run_name("stock-sync", "cluj", at.astimezone(UTC)) == "stock-sync-cluj-20261205-111203"


def test_a_run_of_another_store_is_refused_with_the_way_out() -> None:
    assert tagged_stores(["erpsync", "store:bucuresti", "flow:stock"]) == {"bucuresti"}
    assert mismatch_message("bucuresti", {"bucuresti"}, "stock") is None
    assert mismatch_message("cluj", set(), "stock") is None  # a run without store tags: nothing to compare
    message = mismatch_message("cluj", {"bucuresti"}, "stock")
    assert message is not None
    assert "belongs to store bucuresti" in message
    assert "store='cluj'" in message
    assert "stock-cluj" in message  # the deployment to run instead


def test_the_entity_list_covers_every_failure_kind() -> None:
    from erpsync.flows import manual
    from erpsync.runtime.order_after import ORDER_EDIT, ORDER_PAYMENT
    from erpsync.tasks.customers import ACCOUNTS
    from erpsync.tasks.order_backsync import ERP_ORDER, ORDER_STATUS
    from erpsync.tasks.orders import ORDER
    from erpsync.tasks.products import PRODUCT
    from erpsync.tasks.purchases import INCOMING, PROMISE
    from erpsync.tasks.stock import RECEIPTS, SHOP_ROWS, STOCK

    kinds = {ORDER, ERP_ORDER, ORDER_STATUS, ORDER_EDIT, ORDER_PAYMENT, STOCK, RECEIPTS, SHOP_ROWS, PRODUCT}
    kinds |= {ACCOUNTS, PROMISE, INCOMING}
    assert set(typing.get_args(manual.FailureEntity)) == kinds


def test_every_flow_form_describes_its_parameters() -> None:
    from erpsync.flows.registry import FLOWS, load_flow

    for key in FLOWS:
        schema = load_flow(key).parameters.model_dump()
        assert "store" in schema["properties"], key
        for name, field in schema["properties"].items():
            assert field.get("description"), f"{key}: parameter {name} has no description"
    entity = load_flow("retry-failures").parameters.model_dump()["properties"]["entity"]
    choices = next(option["enum"] for option in entity["anyOf"] if "enum" in option)
    assert "order" in choices and "stock" in choices


TWO_STORES = """\
[erp]
type = "tryton"
database = "erpsync"
password = "literal:unused"
{stores}"""
STORE = """
[[stores]]
name = "{name}"
url = "https://{name}.example.ro"
api_key = "literal:k"
api_secret = "literal:s"
[stores.orders]
reference_prefix = "{prefix}"
"""


def test_served_deployments_fix_the_store_in_their_form(tmp_path: Path) -> None:
    from erpsync.app.deployments import runner_deployments
    from erpsync.core.config import load_config

    stores = STORE.format(name="bucuresti", prefix="B-") + STORE.format(name="cluj", prefix="C-")
    path = tmp_path / "erpsync.toml"
    path.write_text(TWO_STORES.format(stores=stores), encoding="utf-8")
    settings = load_config(path)
    deployments = runner_deployments(settings)
    names = {d.name for d in deployments}
    assert {"orders-bucuresti", "stock-cluj", "retry-failures-cluj"} <= names
    for deployment in deployments:
        store = deployment.parameters["store"]
        field = deployment._parameter_openapi_schema.properties["store"]
        assert (field["enum"], field["readOnly"]) == ([store], True)
        assert deployment.name.endswith(f"-{store}")
        slugs = [s.slug for s in deployment.schedules or []]
        assert all(slugs), deployment.name


def test_prefect_yaml_names_and_slugs(tmp_path: Path) -> None:
    import yaml

    from erpsync.app.deployments import prefect_yaml
    from erpsync.core.config import load_config

    path = tmp_path / "erpsync.toml"
    path.write_text(TWO_STORES.format(stores=STORE.format(name="bucuresti", prefix="B-")), encoding="utf-8")
    document = yaml.safe_load(prefect_yaml(load_config(path)))
    by_name = {d["name"]: d for d in document["deployments"]}
    assert by_name["orders-bucuresti"]["schedules"] == [
        {"cron": "*/2 * * * *", "timezone": "Europe/Bucharest", "slug": "every-2-minutes"}
    ]
    assert by_name["reconcile-bucuresti"]["schedules"][0]["slug"] == "daily-at-02-30"
    assert by_name["resync-order-bucuresti"]["schedules"] == []
