"""What every part of the state store shares: its error, JSON text for JSON columns, ids, time, chunking."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import uuid
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

IN_CHUNK = 500  # keys per IN (...) list


class StateError(Exception):
    """The state store refused an operation or could not reach its database."""


def json_default(value: object) -> Any:
    """``json.dumps`` default: Decimal (as an exact string), datetime/date/time, pydantic models, and friends."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _lenient_default(value: object) -> Any:
    try:
        return json_default(value)
    except TypeError:
        return repr(value)


def dumps(value: object, *, lenient: bool = False) -> str:
    """Serialise a value to compact JSON text with ``json_default`` (``lenient``: repr what it cannot)."""
    return json.dumps(value, default=_lenient_default if lenient else json_default, ensure_ascii=False)


def loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def require_str(name: str, value: object) -> str:
    # Ids are strings ("95750870.3"): a float or int here is the bug that corrupts order ids.
    if not isinstance(value, str) or not value:
        raise TypeError(f"{name} must be a non-empty str, got {type(value).__name__} {value!r}")
    return value


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
