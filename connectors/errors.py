"""The error tree of every connector.

::

    ConnectorError                 something went wrong talking to another system (names it: ``system``)
    ├── RetriableError             worth trying again later: 429, 5xx, timeouts, resets, truncated replies
    │   └── RateLimitedError       429, with the server's Retry-After when it sent one
    ├── FatalError                 trying again will not help: fix configuration or code first
    │   ├── AuthError              401 / 403: bad or locked credentials
    │   └── BadRequestError        400 / 404 / 405 / 409 / 422 on a request that is not about one record
    └── RecordError                one record was refused (bad SKU, invalid field, unknown product ...):
                                   it goes to the failures table and the rest of the batch goes on

The HTTP layer retries ``RetriableError`` a bounded number of times; one that outlives those retries reaches
the caller (Prefect task retries may take it from there). ``FatalError`` fails fast. ``RecordError`` is caught
per record by the tasks. Messages never carry secrets: they pass through ``core.redact.redact``.
"""

from __future__ import annotations

from erpsync.core.redact import redact


class ConnectorError(Exception):
    """Base of every connector error; ``str()`` is one redacted line naming the system."""

    def __init__(
        self,
        system: str,
        message: str,
        *,
        status: int | None = None,
        method: str | None = None,
        path: str | None = None,
        error_name: str | None = None,
    ) -> None:
        self.system = system
        self.message = redact(message)
        self.status = status
        self.method = method
        self.path = redact(path) if path else path
        self.error_name = error_name
        super().__init__(self.__str__())

    address: str | None = None  # the other system's base address (scheme://host:port), set by the HTTP layer
    explained: str | None = None  # the operator's one-line version, set when the error ends a run (``explain``)

    def __str__(self) -> str:
        if self.explained:
            return self.explained
        return self.detail()

    def detail(self) -> str:
        """The technical line: system, request, status, message."""
        where = f" {self.method} {self.path}" if self.method and self.path else ""
        status = f" -> {self.status}" if self.status is not None else ""
        return f"{self.system}{where}{status}: {self.message}"

    def __reduce__(self) -> tuple[object, ...]:
        # Keep errors picklable (Prefect may serialise task exceptions) without losing fields.
        return (
            _rebuild,
            (
                type(self),
                self.system,
                self.message,
                self.status,
                self.method,
                self.path,
                self.error_name,
                dict(self.__dict__),
            ),
        )


def _rebuild(
    cls: type[ConnectorError],
    system: str,
    message: str,
    status: int | None,
    method: str | None,
    path: str | None,
    error_name: str | None,
    state: dict[str, object],
) -> ConnectorError:
    error = cls.__new__(cls)
    ConnectorError.__init__(error, system, message, status=status, method=method, path=path, error_name=error_name)
    error.__dict__.update(state)
    return error


class RetriableError(ConnectorError):
    """A transient failure: rate limited, server error, timeout, reset or truncated reply.

    ``not_sent`` is true when the request provably never reached the server (connection refused), so even a
    non-idempotent request may be repeated.
    """

    not_sent: bool = False


class RateLimitedError(RetriableError):
    """429 Too Many Requests; ``retry_after`` in seconds when the server said."""

    retry_after: float | None = None


class FatalError(ConnectorError):
    """A failure that retrying cannot fix: credentials, configuration, or a request the server refuses."""


class AuthError(FatalError):
    """401 / 403: the credentials are wrong or locked out."""


class BadRequestError(FatalError):
    """The server refused a request that is not about a single record (e.g. an unknown filter)."""


class RecordError(ConnectorError):
    """One record was refused; ``key`` names it (SKU, order id ...) so it can go to the failures table."""

    key: str | None = None


def record_error(
    system: str,
    key: str,
    message: str,
    *,
    status: int | None = None,
    method: str | None = None,
    path: str | None = None,
    error_name: str | None = None,
) -> RecordError:
    """Build a ``RecordError`` for the record named ``key`` (its message starts with the key)."""
    error = RecordError(system, f"{key}: {message}", status=status, method=method, path=path, error_name=error_name)
    error.key = key
    return error


class RunStopped(Exception):
    """An expected stop of a run whose message already says why and what to do (e.g. the reconciliation's
    snapshot guard): logged without a traceback, shown as its message."""


SYSTEM_NAMES = {
    "tryton": "Tryton",
    "merchantpro": "MerchantPro",
    "smartbill": "SmartBill",
    "oblio": "Oblio",
    "files": "the files ERP",
    "sftp": "the SFTP server",
}
CHECK = "`erpsync check`"


def explain(error: BaseException) -> str:
    """One line for the operator: which system, at which address, what happened, what to do next; the technical
    detail last, in brackets ("Tryton at http://127.0.0.1:8000 refused the connection: is it running? ...")."""
    if isinstance(error, RunStopped):
        return redact(" ".join(str(error).split()))
    if not isinstance(error, ConnectorError):
        return redact(" ".join(f"{type(error).__name__}: {error}".split()))
    name = SYSTEM_NAMES.get(error.system.lower(), error.system)
    who = f"{name} at {error.address}" if error.address else name
    if isinstance(error, RateLimitedError):
        what = f"kept refusing with 429 (rate limited): wait, or lower `requests_per_second`; {CHECK}"
    elif isinstance(error, RetriableError) and error.not_sent:
        what = f"refused the connection: is it running, and is the address right? {CHECK}"
    elif isinstance(error, RetriableError) and "timed out" in error.message:
        what = f"did not answer in time: is it overloaded or out of reach? The next run tries again; {CHECK}"
    elif isinstance(error, RetriableError):
        what = f"failed for now (after retries): the next run tries again; if it lasts, look at {name}'s logs"
    elif isinstance(error, AuthError):
        what = f"refused the credentials: correct the key, secret or password in the configuration; {CHECK}"
    elif isinstance(error, BadRequestError):
        what = f"refused a request: the configuration (address, database, set-up) may not fit it; {CHECK}"
    elif isinstance(error, RecordError):
        what = "refused a record: see the failures (`erpsync failures list`)"
    else:
        what = f"cannot do what this run needs: {error.message}; {CHECK}"
    return redact(f"{who} {what} [{error.detail()}]")
