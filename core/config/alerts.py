"""[alerts]: the Prefect automations and notification blocks that tell a person when something needs them.

Three alerts (``on``): a run failed (also a partially failed one: a Failed state), records held for a person,
a stock reconciliation refused by the guard. Each goes to the e-mail address(es) of ``[alerts.email]`` (SMTP)
and/or the URL of ``[alerts.webhook]``. ``erpsync alerts apply`` (and ``erpsync serve``) create them in Prefect;
``erpsync check`` verifies them. See docs/operations.md, "Alerts".
"""

from __future__ import annotations

from typing import Annotated, Literal, get_args
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from erpsync.core.config.errors import Wording, invalid
from erpsync.core.config.fields import OptionalSecret, OptionalText, distinct
from erpsync.core.config.secrets import Secret

AlertKind = Literal["run_failed", "records_held", "guard_refused"]
ALERT_KINDS: tuple[AlertKind, ...] = get_args(AlertKind)

_EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
_HOST = r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,252}[A-Za-z0-9])?$"

Email = Annotated[str, Field(pattern=_EMAIL), Wording("must be an e-mail address such as 'ops@example.ro'")]
Emails = Annotated[list[Email], Field(min_length=1), AfterValidator(distinct), Wording(noun="e-mail address")]
AlertKinds = Annotated[list[AlertKind], AfterValidator(distinct), Wording(noun="alert")]


def _http_secret(secret: Secret) -> Secret:
    """A secret URL known at load time (``env:``, a literal) must be http(s); the value is never shown."""
    if secret.resolved and urlsplit(secret.get()).scheme not in ("http", "https"):
        raise invalid("must be an http(s) URL (the value is not shown: it is a secret)")
    return secret


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class EmailAlertSettings(_Section):
    """[alerts.email]: the alerts as e-mails, sent through an SMTP server."""

    to: Emails
    sender: Email
    host: Annotated[str, Field(pattern=_HOST), Wording("must be a host name or IP address such as 'smtp.example.ro'")]
    port: int = Field(default=587, ge=1, le=65535)
    # "starttls" (port 587), "ssl" (SMTPS, port 465) or "none" (a relay on the local network only).
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: OptionalText = ""
    password: OptionalSecret = None

    @model_validator(mode="after")
    def _password_with_username(self) -> EmailAlertSettings:
        if self.password is not None and not self.username:
            raise invalid("a password needs a username (set username, or leave password out)", "password")
        return self


class WebhookAlertSettings(_Section):
    """[alerts.webhook]: the alerts POSTed as JSON ``{"subject": ..., "body": ...}`` to a URL."""

    # A secret reference: webhook URLs often carry their token (Slack, Teams, ...).
    url: Annotated[Secret, AfterValidator(_http_secret)]


class AlertSettings(_Section):
    """[alerts]: which alerts to send, and where."""

    on: AlertKinds = Field(default_factory=lambda: list(ALERT_KINDS))
    # "records held" repeats at most this often per store while records stay held (every run reports them).
    held_every_minutes: int = Field(default=60, ge=1, le=10080)
    email: EmailAlertSettings | None = None
    webhook: WebhookAlertSettings | None = None

    @model_validator(mode="after")
    def _somewhere_to_send(self) -> AlertSettings:
        if self.email is None and self.webhook is None:
            raise invalid("needs [alerts.email] or [alerts.webhook] (or both): where the alerts go")
        return self
