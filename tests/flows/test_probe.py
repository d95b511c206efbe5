"""`erpsync check` probes: every system of a real stack answers; a mistyped price list is named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from erpsync.app.probe import probe_all
from erpsync.core.config import load_config
from erpsync.dev.stack import start_shop, tryton_erp, write_config


def test_check_probes_state_erp_shops_and_price_lists(tmp_path: Path, tryton_server: Any) -> None:
    shops = [start_shop("good"), start_shop("typo")]
    try:
        config = write_config(
            tmp_path / "erpsync.toml",
            erp=tryton_erp(tryton_server),
            shops=shops,
            state_url=f"sqlite:///{tmp_path / 'state.db'}",
            stores={
                "good": {"price_list": "Cluj", "orders": {"reference_prefix": "G-"}},
                "typo": {"price_list": "Clujj", "orders": {"reference_prefix": "T-"}},
            },
        )
        results = {r.target: r for r in probe_all(load_config(config))}
    finally:
        for shop in shops:
            shop.stop()
    assert set(results) >= {
        "state",
        "erp (tryton)",
        "store good",
        "store typo",
        "store good price list",
        "store typo price list",
    }
    assert all(results[t].ok for t in ("state", "erp (tryton)", "store good", "store typo", "store good price list"))
    assert not results["store typo price list"].ok
    assert "Clujj" in results["store typo price list"].detail
    # The ERP's preflight lines: all there in the seeded Tryton but the mistyped price list.
    assert all(results[t].ok for t in ("erp shipping product", "erp currency", "erp countries", "erp warehouses")), (
        results
    )
    assert (
        not results["erp price lists"].ok
        and "'Clujj' (store typo) is not in Tryton" in results["erp price lists"].detail
    )


def test_a_shop_with_wrong_credentials_fails_its_probe_only(tmp_path: Path, tryton_server: Any) -> None:
    shop = start_shop("main")
    try:
        shop.api_secret = "not-the-secret"
        config = write_config(
            tmp_path / "erpsync.toml",
            erp=tryton_erp(tryton_server),
            shops=[shop],
            state_url=f"sqlite:///{tmp_path / 'state.db'}",
        )
        results = {r.target: r for r in probe_all(load_config(config))}
    finally:
        shop.stop()
    assert results["erp (tryton)"].ok and results["state"].ok
    assert not results["store main"].ok and "AuthError" in results["store main"].detail
    assert "not-the-secret" not in results["store main"].detail


def test_a_wrong_erp_password_is_one_auth_error_naming_tryton(tmp_path: Path, tryton_server: Any) -> None:
    shop = start_shop("main")
    try:
        erp = {**tryton_erp(tryton_server), "password": "literal:wrong-password-123"}
        config = write_config(
            tmp_path / "erpsync.toml", erp=erp, shops=[shop], state_url=f"sqlite:///{tmp_path / 'state.db'}"
        )
        results = {r.target: r for r in probe_all(load_config(config))}
    finally:
        shop.stop()
    assert not results["erp (tryton)"].ok
    assert "tryton" in results["erp (tryton)"].detail and "wrong-password-123" not in results["erp (tryton)"].detail
    assert results["store main"].ok
