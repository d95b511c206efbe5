"""The file journal the connector keeps: what it took from the inbox (by content: read once) and wrote to the
outbox (by name: written once). ``StateStore`` is one (its ``file_*`` methods, table ``file_journal``); the
in-memory ``MemoryFileJournal`` serves tests and the demo."""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol

IN, OUT = "in", "out"
STOCK, ORDER = "stock", "order"


class Entry(Protocol):
    @property
    def key(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def digest(self) -> str | None: ...
    @property
    def state(self) -> str: ...
    @property
    def rows(self) -> int: ...
    @property
    def detail(self) -> str | None: ...
    @property
    def updated_at(self) -> datetime: ...


class FileJournal(Protocol):
    """What the connector asks of its journal (``StateStore`` has these methods)."""

    def file_claim(
        self,
        direction: str,
        kind: str,
        key: str,
        *,
        name: str,
        state: str,
        digest: str | None = None,
        rows: int = 0,
        detail: str | None = None,
    ) -> bool: ...

    def file_update(self, direction: str, kind: str, key: str, **values: Any) -> None: ...

    def file_get(self, direction: str, kind: str, key: str) -> Entry | None: ...

    def file_latest(self, direction: str, kind: str, state: str) -> Entry | None: ...


@dataclass(frozen=True)
class MemoryEntry:
    direction: str
    kind: str
    key: str
    name: str
    digest: str | None
    state: str
    rows: int
    detail: str | None
    updated_at: datetime
    seq: int


class MemoryFileJournal:
    """A journal in this process only (tests, demos)."""

    def __init__(self) -> None:
        self.entries: dict[tuple[str, str, str], MemoryEntry] = {}
        self._lock = threading.Lock()
        self._seq = 0

    def file_claim(
        self,
        direction: str,
        kind: str,
        key: str,
        *,
        name: str,
        state: str,
        digest: str | None = None,
        rows: int = 0,
        detail: str | None = None,
    ) -> bool:
        with self._lock:
            if (direction, kind, key) in self.entries:
                return False
            self._seq += 1
            self.entries[(direction, kind, key)] = MemoryEntry(
                direction, kind, key, name, digest, state, rows, detail, datetime.now(UTC), self._seq
            )
            return True

    def file_update(self, direction: str, kind: str, key: str, **values: Any) -> None:
        with self._lock:
            entry = self.entries[(direction, kind, key)]
            self._seq += 1
            self.entries[(direction, kind, key)] = replace(entry, **values, updated_at=datetime.now(UTC), seq=self._seq)

    def file_get(self, direction: str, kind: str, key: str) -> MemoryEntry | None:
        with self._lock:
            return self.entries.get((direction, kind, key))

    def file_latest(self, direction: str, kind: str, state: str) -> MemoryEntry | None:
        with self._lock:
            found = [e for e in self.entries.values() if (e.direction, e.kind, e.state) == (direction, kind, state)]
        return max(found, key=lambda e: e.seq) if found else None
