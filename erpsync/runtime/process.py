"""What a process keeps across its runs: one state store per URL, and the settings each store was last opened
with (the open-failures report of a run reads them after the run's clients are closed)."""

from __future__ import annotations

import threading

from erpsync.core.config import Settings, load_config
from erpsync.core.state import StateStore

_stores: dict[str, StateStore] = {}
_stores_lock = threading.Lock()
_recent_settings: dict[str, Settings] = {}  # store name -> the settings its last runtime was opened with


def state_store(url: str) -> StateStore:
    """The process's state store for ``url``, migrated to the current schema on first use."""
    with _stores_lock:
        store = _stores.get(url)
        if store is None:
            store = _stores[url] = StateStore.open(url)
        return store


def remember_settings(store: str, settings: Settings) -> None:
    """Note the settings a runtime of ``store`` was opened with."""
    _recent_settings[store] = settings


def settings_for(store: str) -> Settings:
    """The settings the last runtime of ``store`` in this process was opened with, else the configuration file."""
    return _recent_settings.get(store) or load_config()
