"""A whole local stack: simulated MerchantPro shops on loopback, the real Tryton, a state file and a config.

Tests and `make demo` use it so that every flow runs exactly as in production: from a configuration file
(named by ERPSYNC_CONFIG), over real HTTP, against a real ERP.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from erpsync.core.config import Settings, load_config
from erpsync.dev.tryton import TrytonServer
from erpsync.testing.merchantpro import MerchantProSimulator
from erpsync.testing.server import RunningServer, serve_in_thread


@dataclass
class SimShop:
    """One simulated MerchantPro shop served on a loopback port."""

    name: str
    sim: MerchantProSimulator
    server: RunningServer
    api_key: str
    api_secret: str

    @property
    def url(self) -> str:
        return self.server.url

    def stop(self) -> None:
        self.server.stop()


def start_shop(name: str, *, api_key: str | None = None, api_secret: str | None = None, **sim_options: Any) -> SimShop:
    """Start a simulated shop (no pacing unless ``rate_per_second`` is given)."""
    key = api_key or f"{name}-key"
    secret = api_secret or f"{name}-secret-0123"
    sim = MerchantProSimulator(api_key=key, api_secret=secret, base_url=None, **sim_options)
    server = serve_in_thread(sim)
    sim.base_url = server.url
    return SimShop(name=name, sim=sim, server=server, api_key=key, api_secret=secret)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{json.dumps(str(k))} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {value!r} as TOML")


def _table(header: str, values: Mapping[str, Any]) -> list[str]:
    lines = [header]
    subtables = []
    for key, value in values.items():
        if isinstance(value, Mapping) and key in ("products", "stock", "orders", "reconcile", "customers", "purchases"):
            subtables.append((key, value))
        else:
            lines.append(f"{key} = {_toml_value(value)}")
    for key, value in subtables:
        lines.append(f"[stores.{key}]")
        lines.extend(f"{k} = {_toml_value(v)}" for k, v in value.items())
    return lines


def write_config(
    path: Path,
    *,
    erp: Mapping[str, Any],
    shops: list[SimShop],
    state_url: str,
    stores: Mapping[str, Mapping[str, Any]] | None = None,
) -> Path:
    """Write an erpsync.toml for these shops (``stores`` adds or overrides keys per store name)."""
    lines = [*_table("[state]", {"url": state_url}), "", *_table("[erp]", erp), ""]
    for shop in shops:
        values: dict[str, Any] = {
            "name": shop.name,
            "url": shop.url,
            "api_key": f"literal:{shop.api_key}",
            "api_secret": f"literal:{shop.api_secret}",
            "requests_per_second": 50,
        }
        values.update((stores or {}).get(shop.name, {}))
        lines += [*_table("[[stores]]", values), ""]
    path.write_text("\n".join(lines))
    return path


def tryton_erp(server: TrytonServer) -> dict[str, Any]:
    """The [erp] section for the dev Tryton server."""
    return {
        "type": "tryton",
        "url": server.url,
        "database": server.database,
        "username": server.username,
        "password": f"literal:{server.password}",
    }


def smartbill_erp(base_url: str, *, username: str, token: str, cif: str) -> dict[str, Any]:
    """The [erp] section for a SmartBill simulator served at ``base_url`` (invoice series WEB)."""
    return {
        "type": "smartbill",
        "url": f"{base_url}/SBORO/api",
        "username": username,
        "token": f"literal:{token}",
        "cif": cif,
        "invoice_series": "WEB",
    }


@dataclass
class Stack:
    """A configured stack: the config file (ERPSYNC_CONFIG points at it), its settings and the shops."""

    config_path: Path
    shops: dict[str, SimShop]
    tryton: TrytonServer | None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def settings(self) -> Settings:
        return load_config(self.config_path)

    def shop(self, name: str = "main") -> SimShop:
        return self.shops[name]
