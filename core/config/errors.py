"""Configuration errors, and the helpers every part of ``core.config`` words its problems with."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from pydantic_core import PydanticCustomError


class ConfigError(Exception):
    """A problem with the configuration; ``str()`` is one line naming file, key and problem."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.splitlines()))


class SecretError(ConfigError):
    """A secret reference could not be resolved (the message names the reference, never a value)."""


@dataclass(frozen=True)
class Wording:
    """How error messages describe a field: metadata in ``Annotated[...]`` that pydantic ignores.

    ``requirement`` ("must be ...") is shown, with the bad value, for any pydantic error on the value itself
    (number fields without one get it worded from their bounds); ``noun`` names one item of an array field
    ("must list at least 1 warehouse", "unknown product field 'colour'").
    """

    requirement: str = ""
    noun: str = ""


def invalid(problem: str, *subloc: str | int) -> PydanticCustomError:
    """A validation error with our own wording; ``subloc`` extends the key it is reported at."""
    return PydanticCustomError("erpsync", "{problem}", {"problem": problem, "subloc": subloc})


def show(value: object) -> str:
    """A short, TOML-flavoured rendering of a bad value for an error message."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = value if len(value) <= 60 else value[:57] + "..."
        return repr(text)
    if isinstance(value, int | float | Decimal):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__
