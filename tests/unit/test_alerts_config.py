"""[alerts] in the configuration: defaults, one-line errors naming the key, the SMTP password only by reference and
never shown, the Apprise mailto:// URL the e-mail block is given."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import apprise
import pytest

from erpsync.core.config import ConfigError, Settings, load_config
from erpsync.runtime.alerts import automation_name, block_names, mailto_url

BASE = """\
[erp]
type = "tryton"
database = "erpsync"
password = "literal:p"

[[stores]]
name = "main"
url = "https://www.example.ro"
api_key = "literal:k"
api_secret = "literal:s"
"""
EMAIL = """
[alerts.email]
to = ["ops@example.ro", "boss@example.ro"]
sender = "erpsync@example.ro"
host = "smtp.example.ro"
username = "erpsync@example.ro"
password = "env:ALERT_SMTP_PASSWORD"
"""
PASSWORD = "smtp-VALUE/with:odd@chars"


def _load(tmp_path: Path, text: str) -> Settings:
    path = tmp_path / "erpsync.toml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


@pytest.fixture(autouse=True)
def _password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALERT_SMTP_PASSWORD", PASSWORD)


def test_no_section_no_alerts(tmp_path: Path) -> None:
    assert _load(tmp_path, BASE).alerts is None


def test_defaults_and_names(tmp_path: Path) -> None:
    settings = _load(tmp_path, BASE + EMAIL)
    alerts = settings.alerts
    assert alerts is not None and alerts.email is not None and alerts.webhook is None
    assert alerts.on == ["run_failed", "records_held", "guard_refused"] and alerts.held_every_minutes == 60
    assert (alerts.email.port, alerts.email.security) == (587, "starttls")
    assert block_names(settings) == {"email": "erpsync-alerts-email"}
    assert automation_name(settings, "guard_refused") == "erpsync alert: reconciliation refused by the guard"
    assert PASSWORD not in repr(settings) and PASSWORD not in settings.model_dump_json()


def test_mailto_url_carries_the_smtp_settings(tmp_path: Path) -> None:
    settings = _load(tmp_path, BASE + EMAIL)
    assert settings.alerts is not None and settings.alerts.email is not None
    url = urlsplit(mailto_url(settings.alerts.email))
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert (url.scheme, url.hostname, url.port) == ("mailtos", "smtp.example.ro", 587)
    assert unquote(url.password or "") == PASSWORD and unquote(url.username or "") == "erpsync@example.ro"
    assert query == {
        "smtp": "smtp.example.ro",
        "from": "erpsync@example.ro",
        "to": "ops@example.ro,boss@example.ro",
        "mode": "starttls",
    }
    plugin = apprise.Apprise.instantiate(mailto_url(settings.alerts.email))  # what the block will send with
    assert (plugin.user, plugin.password, plugin.smtp_host, plugin.port) == (
        "erpsync@example.ro",
        PASSWORD,
        "smtp.example.ro",
        587,
    )


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("[alerts]\nheld_every_minutes = 30\n", "alerts: needs [alerts.email] or [alerts.webhook] (or both)"),
        (EMAIL.replace('host = "smtp.example.ro"', "host = 25"), "alerts.email.host: must be a host name"),
        (EMAIL + "port = 0\n", "alerts.email.port: must be an integer between 1 and 65535 (got 0)"),
        (EMAIL + 'security = "tls"\n', "alerts.email.security: must be one of 'starttls', 'ssl', 'none'"),
        (EMAIL.replace('"boss@example.ro"', '"boss"'), "alerts.email.to[1]: must be an e-mail address"),
        (EMAIL.replace('username = "erpsync@example.ro"\n', ""), "alerts.email.password: a password needs a username"),
        ('[alerts]\non = ["run_failed", "disk_full"]\n' + EMAIL, "alerts.on[1]: unknown alert 'disk_full'"),
        ("[alerts]\nretries = 3\n" + EMAIL, "alerts.retries: unknown key"),
        ('[alerts.webhook]\nurl = "env:NOT_SET_ANYWHERE_42"\n', "alerts.webhook.url: "),
        ('[alerts.webhook]\nurl = "literal:ftp://x.example.ro/hook"\n', "alerts.webhook.url: must be an http(s) URL"),
        (EMAIL.replace("env:ALERT_SMTP_PASSWORD", "env:NOT_SET_ANYWHERE_42"), "alerts.email.password: "),
    ],
)
def test_bad_values_give_one_line_naming_the_key(tmp_path: Path, extra: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, BASE + extra)
    message = str(caught.value)
    assert "\n" not in message and PASSWORD not in message
    assert f"erpsync.toml: {expected}" in message, message
