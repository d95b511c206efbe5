"""Secrets held by reference: ``env:NAME``, ``prefect-secret:NAME``, ``literal:VALUE`` or a bare literal.

``env:`` and literal values are read when the configuration is parsed. A lazy scheme (``prefect-secret:``) is
read on the first ``get()`` by the resolver registered for it: core knows the reference syntax but not the
store behind it, so it imports no Prefect; ``erpsync.runtime.prefect_secrets`` registers the Prefect resolver
(the flows and the ``erpsync`` command do so). Every resolved value is registered with ``core.redact``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any, Literal, Self
from urllib.parse import unquote, urlsplit

from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema

from erpsync.core.config.errors import SecretError, invalid
from erpsync.core.redact import redact, register_secret

__all__ = [
    "LAZY_SCHEMES",
    "DatabaseUrl",
    "Secret",
    "SecretResolver",
    "register_secret_resolver",
    "secret_resolver",
]

SecretResolver = Callable[[str], str]
"""Reads the value of ``scheme:NAME`` given ``NAME``; any exception is reported as a ``SecretError``."""

# The schemes read on first use, each with what its messages call the place the value is kept.
LAZY_SCHEMES: dict[str, str] = {"prefect-secret": "the Prefect Secret block"}
_RESOLVERS: dict[str, SecretResolver] = {}

_REFERENCE = re.compile(r"^([a-z][a-z0-9-]*):(?!//)")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_BLOCK_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")  # Prefect block names: lowercase letters, digits, dashes
_SCHEMES_HINT = "use env:NAME, prefect-secret:NAME or literal:VALUE"


def register_secret_resolver(scheme: str, resolver: SecretResolver) -> None:
    """Let ``resolver`` read the references of a lazy ``scheme`` from now on (replacing any earlier one)."""
    if scheme not in LAZY_SCHEMES:
        raise ValueError(f"{scheme!r} is not a lazy secret reference scheme (known: {', '.join(LAZY_SCHEMES)})")
    _RESOLVERS[scheme] = resolver


def secret_resolver(scheme: str) -> SecretResolver | None:
    """The resolver registered for ``scheme``, or None."""
    return _RESOLVERS.get(scheme)


class Secret:
    """A secret held by reference (``env:NAME``, ``prefect-secret:NAME`` or a literal); ``.get()`` reads it."""

    __slots__ = ("_kind", "_name", "_origin", "_value")

    def __init__(
        self, kind: Literal["env", "prefect-secret", "literal"], name: str = "", value: str | None = None
    ) -> None:
        self._kind = kind
        self._name = name
        self._value = value
        self._origin = ""

    @classmethod
    def parse(cls, text: str) -> Self:
        """Parse a reference, resolving ``env:`` and literal values now; ``ValueError`` if it is bad."""
        match = _REFERENCE.match(text)
        scheme = match.group(1) if match else None
        rest = text[match.end() :] if match else text
        if scheme == "env":
            if not _ENV_NAME.match(rest):
                raise ValueError("env: reference needs an environment variable name, e.g. env:MP_SECRET")
            value = os.environ.get(rest)
            if value is None:
                raise ValueError(f"environment variable {rest} is not set")
            if not value:
                raise ValueError(f"environment variable {rest} is empty")
            secret = cls("env", rest)
            secret._accept(value)
            return secret
        if scheme == "prefect-secret":
            if not _BLOCK_NAME.match(rest):
                raise ValueError(
                    "prefect-secret: reference needs a Prefect block name "
                    "(lowercase letters, digits and dashes), e.g. prefect-secret:mp-main-secret"
                )
            return cls("prefect-secret", rest)  # read on first get(), by the registered resolver
        if scheme == "literal":
            text = rest
        elif scheme is not None:
            # The text before the colon is not echoed: it may be the start of a literal secret.
            raise ValueError(f"unknown secret reference scheme ({_SCHEMES_HINT})")
        if not text:
            raise ValueError("must not be empty")
        secret = cls("literal")
        secret._accept(text)
        return secret

    @property
    def reference(self) -> str:
        """Where the value comes from: ``env:NAME``, ``prefect-secret:NAME`` or ``literal``."""
        return "literal" if self._kind == "literal" else f"{self._kind}:{self._name}"

    @property
    def resolved(self) -> bool:
        """Whether the value has been read (a ``prefect-secret:`` reference is read on first ``get()``)."""
        return self._value is not None

    def get(self) -> str:
        """The secret value, resolving a lazy reference on first use (registered for redaction)."""
        if self._value is not None:
            return self._value
        where = f"{self._origin}: " if self._origin else "secret "
        if self._kind == "env":  # only after unpickling: values are not pickled
            value = os.environ.get(self._name)
            if not value:
                raise SecretError(f"{where}{self.reference}: environment variable {self._name} is not set")
        else:
            value = self._resolve_lazily(where)
        try:
            self._accept(value)
        except ValueError as exc:
            raise SecretError(f"{where}{self.reference}: {exc}") from None
        assert self._value is not None
        return self._value

    def _resolve_lazily(self, where: str) -> str:
        place = LAZY_SCHEMES[self._kind]
        resolver = _RESOLVERS.get(self._kind)
        if resolver is None:
            raise SecretError(
                f"{where}{self.reference}: no resolver for {self._kind}: references is registered in this process "
                "(erpsync.runtime.prefect_secrets.install_prefect_secret_resolver() registers it)"
            )
        try:
            value = resolver(self._name)
        except Exception as exc:
            detail = redact(str(exc).splitlines()[0] if str(exc) else "")[:200]
            raise SecretError(
                f"{where}{self.reference}: could not load {place} "
                f"({type(exc).__name__}{': ' + detail if detail else ''})"
            ) from None
        if not value:
            raise SecretError(f"{where}{self.reference}: {place} is empty")
        return value

    def _accept(self, value: str) -> None:
        self._check(value)
        self._register(value)
        self._value = value

    def _check(self, value: str) -> None:
        """Validate a resolved value (subclasses); raise ``ValueError`` without quoting the value."""

    def _register(self, value: str) -> None:
        register_secret(value)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.reference!r})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, Secret)
        if self._kind == "literal":
            return other._kind == "literal" and self._value == other._value
        return self.reference == other.reference

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.reference))

    def __getstate__(self) -> tuple[str, str, str | None, str]:
        # Only a literal's value travels in a pickle; references are resolved again where they are used.
        return (self._kind, self._name, self._value if self._kind == "literal" else None, self._origin)

    def __setstate__(self, state: tuple[str, str, str | None, str]) -> None:
        self._kind, self._name, self._value, self._origin = state  # type: ignore[assignment]

    @classmethod
    def _validate(cls, value: Any) -> Self:
        if isinstance(value, cls):
            return value
        if not isinstance(value, str):
            raise invalid(f"must be a string ({_SCHEMES_HINT})")
        try:
            return cls.parse(value)
        except ValueError as exc:
            raise invalid(str(exc)) from None

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            cls._validate,
            serialization=core_schema.plain_serializer_function_ser_schema(
                lambda secret: secret.reference, when_used="always"
            ),
        )


class DatabaseUrl(Secret):
    """A SQLAlchemy URL that may hold a password: a secret-capable string; only the password is registered."""

    def _check(self, value: str) -> None:
        if not value.startswith(("sqlite:", "sqlite+", "postgresql:", "postgresql+")):
            raise ValueError("must be a sqlite:/// or postgresql+psycopg:// URL")

    def _register(self, value: str) -> None:
        try:
            password = urlsplit(value).password
        except ValueError:
            password = None
        if password:
            # The URL carries it percent-encoded; drivers and SQLAlchemy's URL object hold it decoded.
            register_secret(password, also=(unquote(password), value))

    @staticmethod
    def _has_password(value: str) -> bool:
        try:
            return bool(urlsplit(value).password)
        except ValueError:
            return True

    @property
    def reference(self) -> str:
        """Like ``Secret.reference``, but a literal URL without a password is shown as itself."""
        if self._kind == "literal" and self._value is not None and not self._has_password(self._value):
            return self._value
        return super().reference
