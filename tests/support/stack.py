"""The test stack fixture's builder (the stack itself lives in erpsync/dev/stack.py, shared with the demo)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from erpsync.dev.stack import SimShop, Stack, start_shop, tryton_erp, write_config
from erpsync.dev.tryton import TrytonServer

__all__ = ["SimShop", "Stack", "build_stack", "start_shop", "tryton_erp", "write_config"]


def build_stack(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    tryton: TrytonServer,
    *,
    shop_names: tuple[str, ...] = ("main",),
    stores: Mapping[str, Mapping[str, Any]] | None = None,
    shop_options: Mapping[str, Any] | None = None,
) -> Iterator[Stack]:
    """Start shops, write the config (state in a fresh SQLite file), point ERPSYNC_CONFIG at it; stop on exit."""
    shops = {name: start_shop(name, **(shop_options or {})) for name in shop_names}
    try:
        path = write_config(
            tmp_path / "erpsync.toml",
            erp=tryton_erp(tryton),
            shops=list(shops.values()),
            state_url=f"sqlite:///{tmp_path / 'state.db'}",
            stores=stores,
        )
        monkeypatch.setenv("ERPSYNC_CONFIG", str(path))
        yield Stack(config_path=path, shops=shops, tryton=tryton)
    finally:
        for shop in shops.values():
            shop.stop()
