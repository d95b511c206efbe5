"""Tryton's JSON-RPC over the one HTTP layer: the typed-value codec, the error classifier, a logged-in session.

Tryton answers JSON-RPC errors inside HTTP 200 bodies (``{"id": 1, "error": [name, args]}``); HTTP statuses
only speak for the transport: 401 (bad login, or an expired session), 429 (too many failed logins), 403 (the
method is not exposed over RPC), 404 (no such database). ``classify_tryton`` turns both kinds into the error
tree of ``connectors.errors`` (a refusal keeps the reply's ``[name, args]``: ``tryton_reply``). ``TrytonRpc`` logs
in, keeps the session header and the user's context, and logs in again once when the server says the session
expired. The connector and the dev server's ``JsonRpcSession`` (``erpsync.dev.tryton``) both talk through it.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import httpx

from erpsync.connectors.errors import (
    AuthError,
    BadRequestError,
    ConnectorError,
    FatalError,
    RetriableError,
    record_error,
)
from erpsync.connectors.http import Counters, HttpClient, Kind, RetryPolicy, classify
from erpsync.core.redact import register_secret

SYSTEM = "tryton"
LOGIN = "common.db.login"
_REPLY = "tryton_reply"

# Tryton's AccessError texts about rights (English server messages); "modify the field ... in record" and
# "delete the record" are refusals about one record's state and stay record errors.
_ACCESS_TEXT = re.compile(
    r"You are not allowed to (?:access|execute|read records|create records|write to records|delete records"
    r"|search on|modify the field \"[^\"]*\" of \")",
)


# --------------------------------------------------------------------------- codec


def encode(value: Any) -> Any:
    """Python values -> Tryton's JSON (Decimal, date, datetime, time, timedelta, bytes as ``__class__`` objects).

    Aware datetimes are sent as naive UTC, as Tryton stores them.
    """
    if isinstance(value, dict):
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [encode(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, int | float | str):
        return value
    if isinstance(value, Decimal):
        return {"__class__": "Decimal", "decimal": str(value)}
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return {
            "__class__": "datetime",
            "year": value.year,
            "month": value.month,
            "day": value.day,
            "hour": value.hour,
            "minute": value.minute,
            "second": value.second,
            "microsecond": value.microsecond,
        }
    if isinstance(value, dt.date):
        return {"__class__": "date", "year": value.year, "month": value.month, "day": value.day}
    if isinstance(value, dt.time):
        return {
            "__class__": "time",
            "hour": value.hour,
            "minute": value.minute,
            "second": value.second,
            "microsecond": value.microsecond,
        }
    if isinstance(value, dt.timedelta):
        return {"__class__": "timedelta", "seconds": value.total_seconds()}
    if isinstance(value, bytes):
        return {"__class__": "bytes", "base64": base64.b64encode(value).decode()}
    raise TypeError(f"cannot encode {type(value).__name__} for Tryton")


def _decode_object(obj: dict[str, Any]) -> Any:
    kind = obj.get("__class__")
    if kind is None:
        return obj
    if kind == "Decimal":
        return Decimal(obj["decimal"])
    if kind == "date":
        return dt.date(obj["year"], obj["month"], obj["day"])
    if kind == "datetime":
        return dt.datetime(
            obj["year"],
            obj["month"],
            obj["day"],
            obj.get("hour", 0),
            obj.get("minute", 0),
            obj.get("second", 0),
            obj.get("microsecond", 0),
        )
    if kind == "time":
        return dt.time(obj.get("hour", 0), obj.get("minute", 0), obj.get("second", 0), obj.get("microsecond", 0))
    if kind == "timedelta":
        return dt.timedelta(seconds=obj["seconds"])
    if kind == "bytes":
        return base64.b64decode(obj["base64"])
    return obj


def decode(text: str | bytes, *, parse_float: Callable[[str], Any] = Decimal) -> Any:
    """Tryton's JSON -> Python values; JSON floats become ``Decimal`` (quantities are floats in Tryton)."""
    return json.loads(text, object_hook=_decode_object, parse_float=parse_float)


def to_utc(value: dt.datetime | None) -> dt.datetime | None:
    """A naive UTC timestamp from Tryton -> an aware UTC datetime."""
    if value is None:
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


# --------------------------------------------------------------------------- classification


def like_prefix(text: str) -> str:
    """A ``like`` pattern for the values that start with ``text`` (its ``%``, ``_`` and ``\\`` taken literally)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _rpc_error(response: httpx.Response) -> Any:
    """The ``error`` member of a JSON-RPC reply, or None when the call succeeded."""
    try:
        body = json.loads(response.content)
    except ValueError:
        raise RetriableError(
            SYSTEM,
            f"reply is not valid JSON ({len(response.content)} bytes; truncated?)",
            status=response.status_code,
        ) from None
    if not isinstance(body, dict):
        return None
    if "result" in body and not body.get("error"):
        return None
    # Exceptions without arguments (TimeOutException) arrive as "error": [] with no result.
    return body.get("error") if "error" in body else None


def _describe(error: Any) -> tuple[str, str]:
    """``(name, message)`` of a Tryton error array."""
    if isinstance(error, list | tuple) and error:
        name = str(error[0])
        args = error[1] if len(error) > 1 else None
        if name == "UserError" and isinstance(args, list | tuple) and args:
            parts = [str(a) for a in args[:2] if a]
            return name, " - ".join(parts)
        if name == "UserWarning" and isinstance(args, list | tuple) and len(args) >= 2:
            return name, f"warning {args[0]}: {args[1]}"
        if name == "LoginException" and isinstance(args, list | tuple) and len(args) >= 2:
            return name, f"login needs {args[0]}: {args[1]}"
        if name in {"UserError", "UserWarning", "LoginException", "ConcurrencyException"}:
            return name, str(args)[:500]
        # Not a Tryton exception: (str(exception), traceback); keep the text, drop the traceback.
        return "ServerError", name[:500]
    return "TimeOut", "the server gave up on the call (timeout or an exception without text)"


def classify_tryton(response: httpx.Response, *, system: str, record_key: str | None = None) -> ConnectorError | None:
    """Tryton's replies -> the error tree.

    ==========================================  ===========================================================
    HTTP 401                                    AuthError (bad login; an expired session: the session logs
                                                in again once)
    HTTP 429                                    AuthError: Tryton only rate-limits failed logins
    HTTP 403                                    BadRequestError: the method is not exposed over RPC
    HTTP 404                                    FatalError: the database does not exist
    other HTTP errors, redirects                as ``connectors.http.classify`` (5xx retriable ...)
    200, invalid JSON                           RetriableError (a truncated reply)
    200, UserError about access rights          AuthError
    200, UserError / UserWarning / concurrency  RecordError for a write about one record (``record_key``),
                                                else BadRequestError
    200, LoginException                         AuthError (the login needs another factor)
    200, "error": [] (server time-out)          RetriableError
    200, any other server exception             FatalError
    ==========================================  ===========================================================
    """
    status = response.status_code
    request = response.request
    common: dict[str, Any] = {
        "status": status,
        "method": request.method,
        "path": request.url.raw_path.decode(errors="replace"),
    }
    if status == 401:
        return AuthError(system, "login refused or session expired (HTTP 401)", error_name="401", **common)
    if status == 429:
        return AuthError(system, "too many failed logins: Tryton refuses logins for a while", **common)
    if status == 403:
        return BadRequestError(system, "method not exposed over Tryton's RPC (HTTP 403)", **common)
    if status == 404:
        return FatalError(system, "no such database on the Tryton server (HTTP 404)", **common)
    if status >= 300:
        return classify(response, system=system, record_key=None)
    try:
        error = _rpc_error(response)
    except RetriableError as exc:
        return RetriableError(system, exc.message, **common)
    if error is None:
        return None
    name, message = _describe(error)
    common["error_name"] = name
    refused = _refusal(name, message, system, record_key, common)
    vars(refused)[_REPLY] = error  # kept when pickled: ConnectorError.__reduce__ carries __dict__
    return refused


def _refusal(name: str, message: str, system: str, record_key: str | None, common: dict[str, Any]) -> ConnectorError:
    if name == "TimeOut":
        return RetriableError(system, message, **common)
    if name == "LoginException":
        return AuthError(system, message, **common)
    if name == "UserError" and _ACCESS_TEXT.search(message):
        return AuthError(system, f"access refused: {message}", **common)
    if name in {"UserError", "UserWarning", "ConcurrencyException"}:
        if record_key is not None:
            return record_error(system, record_key, message, **common)
        return BadRequestError(system, message, **common)
    return FatalError(system, f"server error: {message}", **common)


def tryton_reply(error: BaseException) -> Any:
    """The ``error`` member of the JSON-RPC reply an error was made from: ``[name, args]``, e.g.
    ``["UserWarning", [warning_name, message, description]]``; None for HTTP and transport errors."""
    return vars(error).get(_REPLY)


# --------------------------------------------------------------------------- the session


class TrytonRpc:
    """A JSON-RPC session on one Tryton database, over ``HttpClient`` (which retries reads, never writes).

    ``parse_float`` decodes the replies' JSON floats: ``Decimal`` for the connector, ``float`` for the dev
    server's test session.
    """

    def __init__(
        self,
        url: str,
        database: str,
        username: str,
        password: str,
        *,
        language: str = "en",
        timeout_seconds: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        counters: Counters | None = None,
        retry: RetryPolicy | None = None,
        parse_float: Callable[[str], Any] = Decimal,
    ) -> None:
        register_secret(password)
        self.database = database
        self.username = username
        self.language = language
        self._password = password
        self.path = f"/{database}/rpc/"
        self.http = HttpClient(
            SYSTEM,
            url.rstrip("/"),
            connect_timeout=min(10.0, timeout_seconds),
            read_timeout=timeout_seconds,
            transport=transport,
            classifier=classify_tryton,
            counters=counters,
            retry=retry,
        )
        self.counters = self.http.counters
        self._headers: dict[str, str] | None = None
        self.user_id: int | None = None
        self.context: dict[str, Any] = {}
        self.logins = 0
        self._parse_float = parse_float

    def close(self) -> None:
        """Close the HTTP client (the server forgets idle sessions by itself)."""
        self.http.close()

    def _post(
        self, method: str, params: list[Any], *, kind: Kind, record_key: str | None, headers: Mapping[str, str] | None
    ) -> Any:
        body = {"id": 1, "method": method, "params": encode(params)}
        response = self.http.request(
            "POST",
            self.path,
            json_body=body,
            headers=headers,
            kind=kind,
            record_key=record_key,
            expect_json=False,
        )
        return decode(response.content, parse_float=self._parse_float).get("result")

    def login(self) -> None:
        """Log in (``common.db.login``) and load the user's preferences as the context of every call."""
        self._headers = None
        reply = self._post(
            LOGIN,
            [self.username, {"password": self._password}, self.language],
            kind="read",
            record_key=None,
            headers=None,
        )
        if not isinstance(reply, list) or len(reply) < 2:
            raise FatalError(SYSTEM, f"unexpected login reply from Tryton: {str(reply)[:100]}")
        self.user_id, session = int(reply[0]), str(reply[1])
        token = base64.b64encode(f"{self.username}:{self.user_id}:{session}".encode()).decode()
        register_secret(session, also=(token,))
        self._headers = {"Authorization": f"Session {token}"}
        self.logins += 1
        context = self._post(
            "model.res.user.get_preferences", [True, {}], kind="read", record_key=None, headers=self._headers
        )
        self.context = dict(context) if isinstance(context, dict) else {}

    def call(self, method: str, *params: Any, kind: Kind = "read", record_key: str | None = None) -> Any:
        """Call ``method`` with ``params`` (the caller appends the context); log in first, and again once on 401."""
        if self._headers is None:
            self.login()
        try:
            return self._post(method, list(params), kind=kind, record_key=record_key, headers=self._headers)
        except AuthError as error:
            if error.status != 401:
                raise
            # An expired session is refused before the method runs, so even a write may be sent again.
            self.login()
            return self._post(method, list(params), kind=kind, record_key=record_key, headers=self._headers)

    def model(
        self,
        model: str,
        method: str,
        *params: Any,
        kind: Kind = "read",
        record_key: str | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> Any:
        """``model.<model>.<method>(*params, context)`` with the user's context (plus ``context``)."""
        if self._headers is None:
            self.login()
        ctx = {**self.context, **(context or {})}
        return self.call(f"model.{model}.{method}", *params, ctx, kind=kind, record_key=record_key)
