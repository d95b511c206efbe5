"""The connection plumbing every part of ``StateStore`` shares: one short transaction per public method."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from erpsync.core.state.engine import READ_ONLY, is_memory_sqlite


class StateBase:
    """An engine, and the read and write transactions the store's methods run in."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._dialect = engine.dialect.name
        # One shared in-memory SQLite connection cannot hold two transactions at once: serialise them here.
        memory = self._dialect == "sqlite" and is_memory_sqlite(engine.url)
        self._mutex: AbstractContextManager[Any] = threading.RLock() if memory else nullcontext()

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self._mutex, self.engine.begin() as connection:
            yield connection

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self._mutex, self.engine.connect() as connection:
            connection.execution_options(**{READ_ONLY: True})
            with connection.begin():
                yield connection

    def _insert(self, table: Table) -> sqlite.Insert | postgresql.Insert:
        return postgresql.insert(table) if self._dialect == "postgresql" else sqlite.insert(table)
