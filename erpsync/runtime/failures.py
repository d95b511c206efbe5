"""Per-record isolation: rows and writes that failed go to the failures table; the rest of the batch goes on."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from erpsync.connectors.errors import ConnectorError, RetriableError
from erpsync.core.models import RowError
from erpsync.core.order_rules import TRANSIENT_PREFIX
from erpsync.core.redact import redact
from erpsync.core.state import StateStore


def describe(error: BaseException | str) -> str:
    """A one-line, redacted reason for the failures table."""
    if isinstance(error, str):
        text = error
    elif isinstance(error, ConnectorError):
        text = str(error)
    else:
        text = f"{type(error).__name__}: {error}"
    return redact(" ".join(text.split()))


def is_transient(error: BaseException | str) -> bool:
    """Whether a failure says nothing about the record itself (the other system did not answer)."""
    if isinstance(error, str):
        return error.startswith(TRANSIENT_PREFIX)
    return isinstance(error, RetriableError)


def record_row_errors(state: StateStore, store: str, entity: str, errors: Iterable[RowError]) -> int:
    """Record rows that could not be read or mapped; returns how many."""
    count = 0
    for error in errors:
        state.record_failure(store, entity, error.key, describe(error.error), error.payload, transient=False)
        count += 1
    return count


def record_failure(
    state: StateStore, store: str, entity: str, key: str, error: BaseException | str, payload: Any = None
) -> None:
    """Record one failed record with its reason (a transient error never replaces a lasting reason)."""
    state.record_failure(store, entity, key, describe(error), payload, transient=is_transient(error))


def resolve_failures(state: StateStore, store: str, entity: str, keys: Iterable[str]) -> int:
    """Mark as resolved the open failures of records that have now gone through; returns how many."""
    open_keys = {f.key for f in state.open_failures(store, entity)}
    return sum(1 for key in keys if key in open_keys and state.resolve_failure(store, entity, key))
