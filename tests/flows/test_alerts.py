"""[alerts] on the session's Prefect test server: ``apply_alerts`` creates the blocks and automations the section
asks for, ``verify_alerts`` (``erpsync check``) sees them match and sees a drift, and the e-mail block delivers to
a local SMTP sink (aiosmtpd, started by the test) — sent by the block, then by the automation itself on the
"records held" event."""

from __future__ import annotations

import email
import email.policy
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from erpsync.core.config import Settings, settings_from_dict
from erpsync.runtime.alerts import (
    EVENT_HELD,
    apply_alerts,
    automation_name,
    block_names,
    emit_records_held,
    verify_alerts,
)

pytestmark = pytest.mark.prefect


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope)
        return "250 OK"

    def wait(self, count: int, seconds: float) -> list[Any]:
        deadline = time.monotonic() + seconds
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.1)
        return self.messages


@pytest.fixture(autouse=True)
def _no_alerts_left(prefect_harness: None) -> Iterator[None]:
    """Each test starts and ends with no alert automation on the server (one test's mail never reaches another)."""
    from prefect.client.orchestration import get_client

    def clear() -> None:
        with get_client(sync_client=True) as client:
            for automation in client.read_automations():
                if " alert: " in automation.name:
                    client.delete_automation(automation.id)

    clear()
    yield
    clear()


def _text(envelope: Any) -> str:
    """The subject and the plain-text body of a received e-mail, decoded."""
    message = email.message_from_bytes(envelope.content, policy=email.policy.default)
    body = message.get_body(preferencelist=("plain", "html"))
    return f"{message['Subject']}\n{body.get_content() if body is not None else ''}"


@pytest.fixture
def smtp_sink() -> Iterator[tuple[int, _Inbox]]:
    """A local SMTP server that keeps what it receives (no TLS, no login)."""
    from aiosmtpd.controller import Controller

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, inbox
    finally:
        controller.stop()


def _settings(smtp_port: int, prefix: str = "alerttest", **alerts: Any) -> Settings:
    section: dict[str, Any] = {
        "email": {"to": ["ops@example.ro"], "sender": "erpsync@example.ro", "host": "127.0.0.1"},
        "webhook": {"url": "literal:http://127.0.0.1:9/hooks/erpsync"},
        **alerts,
    }
    section["email"] = {"port": smtp_port, "security": "none", **section["email"]}
    return settings_from_dict(
        {
            "erp": {"type": "tryton", "database": "x", "password": "literal:p"},
            "prefect": {"concurrency_limit_prefix": prefix},
            "alerts": section,
            "stores": [
                {"name": "main", "url": "https://www.example.ro", "api_key": "literal:k", "api_secret": "literal:s"}
            ],
        }
    )


def test_apply_creates_what_the_section_asks_and_check_sees_drift(prefect_harness: None) -> None:
    from prefect.client.orchestration import get_client

    settings = _settings(2525)
    applied = apply_alerts(settings)
    assert len(applied) == 5, applied  # 2 blocks + 3 automations
    assert all(check.ok for check in verify_alerts(settings)), verify_alerts(settings)
    with get_client(sync_client=True) as client:
        held = client.read_automations_by_name(automation_name(settings, "records_held"))
        assert len(held) == 1 and held[0].enabled
        assert held[0].trigger.expect == {EVENT_HELD}
        assert held[0].trigger.within.total_seconds() == 3600
        assert len(held[0].actions) == 2  # e-mail and webhook

    drifted = _settings(2525, held_every_minutes=5)  # the config changed, the server did not
    checks = {c.target: c for c in verify_alerts(drifted)}
    assert not checks["alert records_held"].ok and "differs" in checks["alert records_held"].detail
    assert checks["alert run_failed"].ok and checks["alerts email block"].ok

    other_port = _settings(2526)  # the e-mail block's (secret) URL differs
    assert not {c.target: c for c in verify_alerts(other_port)}["alerts email block"].ok

    only_failed = _settings(2525, on=["run_failed"], webhook=None)
    lines = apply_alerts(only_failed)
    assert any("removed" in line for line in lines), lines
    assert [c.target for c in verify_alerts(only_failed)] == ["alerts email block", "alert run_failed"]
    assert all(c.ok for c in verify_alerts(only_failed))
    with get_client(sync_client=True) as client:
        assert client.read_automations_by_name(automation_name(settings, "guard_refused")) == []


def test_an_alert_reaches_the_smtp_sink(prefect_harness: None, smtp_sink: tuple[int, _Inbox]) -> None:
    from prefect.blocks.notifications import SlackWebhook

    port, inbox = smtp_sink
    settings = _settings(port, webhook=None)
    apply_alerts(settings)
    block = SlackWebhook.load(block_names(settings)["email"])
    with block.raise_on_failure():
        block.notify("2 held for a person", subject="erpsync test")
    [mail] = inbox.wait(1, 10)
    assert mail.mail_from == "erpsync@example.ro" and mail.rcpt_tos == ["ops@example.ro"]
    assert _text(mail).startswith("erpsync test\n") and "2 held for a person" in _text(mail)

    # The automation itself: the runtime's "records held" event -> Prefect's trigger -> the e-mail.
    started = time.monotonic()
    emit_records_held("main", 2, "2 held for a person: `erpsync failures list --store main`")
    messages = inbox.wait(2, 30)
    assert len(messages) == 2, f"no e-mail from the automation within {time.monotonic() - started:.0f} s"
    held = _text(messages[1])
    assert held.startswith("erpsync: records held for a person in store main\n")
    assert "2 held for a person: `erpsync failures list --store main`" in held, held


def test_a_partially_failed_run_mails_the_run_failed_alert(
    prefect_harness: None, smtp_sink: tuple[int, _Inbox]
) -> None:
    from prefect import flow, tags
    from prefect.states import Failed

    from erpsync.runtime.states import PARTIAL_PREFIX

    port, inbox = smtp_sink
    apply_alerts(_settings(port, webhook=None, on=["run_failed"]))

    @flow(name="alerts-partial")
    def partial() -> Any:
        return Failed(message=f"{PARTIAL_PREFIX}: 1 record(s) failed, the rest went through")

    @flow(name="alerts-untagged")
    def untagged() -> Any:
        return Failed(message="not an erpsync run")

    untagged(return_state=True)  # no `erpsync` tag: no alert
    with tags("erpsync"):
        state = partial(return_state=True)
    [mail] = inbox.wait(1, 30)
    assert state.is_failed()
    text = _text(mail)
    assert text.startswith("erpsync: ") and " Failed\n" in text and "alerts-partial" in text, text
    assert "Partially failed: 1 record(s) failed" in text and "not an erpsync run" not in text
    assert len(inbox.wait(2, 2)) == 1  # the untagged run sent nothing


def test_check_lines(prefect_harness: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from erpsync.app.probe_alerts import alert_probes

    settings = _settings(2527, prefix="checktest", on=["guard_refused"])
    before = alert_probes(settings)  # nothing set up under this prefix yet
    assert [(p.target, p.ok) for p in before] == [
        ("alerts email block", False),
        ("alerts webhook block", False),
        ("alert guard_refused", False),
    ]
    assert "erpsync alerts apply" in before[0].detail and "erpsync alerts apply" in before[2].detail
    apply_alerts(settings)
    lines = alert_probes(settings)
    assert [p.target for p in lines] == ["alerts email block", "alerts webhook block", "alert guard_refused"]
    assert all(p.ok for p in lines), lines
    monkeypatch.setattr("erpsync.runtime.ratelimit.prefect_api", lambda: None)
    [no_api] = alert_probes(settings)
    assert not no_api.ok and "PREFECT_API_URL" in no_api.detail


def test_a_reconciliation_refused_by_the_guard_mails_its_alert(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_harness: None, smtp_sink: tuple[int, _Inbox]
) -> None:
    from erpsync.flows.reconcile import reconcile
    from tests.flows.stock_fixtures import STORE, add_basic, build_fake_stack

    port, inbox = smtp_sink
    apply_alerts(_settings(port, prefix="guardtest", webhook=None, on=["guard_refused"]))
    for fake in build_fake_stack(tmp_path, monkeypatch):
        for i in range(20):
            fake.erp.data.set(f"G{i:02d}", "WH", 10 + i, 0)
            add_basic(fake.shop, f"G{i:02d}", 10 + i)
        assert reconcile(store=STORE, return_state=True).is_completed()  # the baseline: nothing refused, no mail
        fake.erp.data.stock.clear()  # the ERP suddenly answers nothing: the guard refuses
        refused = reconcile(store=STORE, return_state=True)
        assert refused.is_failed() and "refused by the guard" in str(refused.result(raise_on_failure=False))
    [mail] = inbox.wait(1, 30)
    text = _text(mail)
    assert f"reconciliation of store {STORE} refused by the guard" in text
    assert "row_count_in_band" in text and "accept_snapshot=true" in text, text
    assert len(inbox.wait(2, 2)) == 1


def test_a_run_with_held_records_mails_the_held_alert_once_per_window(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_harness: None, smtp_sink: tuple[int, _Inbox]
) -> None:
    from erpsync.flows.reconcile import reconcile
    from tests.flows.stock_fixtures import STORE, add_basic, build_fake_stack

    port, inbox = smtp_sink
    apply_alerts(_settings(port, prefix="heldtest", webhook=None, on=["records_held"]))
    since = datetime.now(UTC)
    for fake in build_fake_stack(tmp_path, monkeypatch):
        fake.erp.data.set("H01", "WH", 5, 0)
        add_basic(fake.shop, "H01", 5)
        fake.state().record_failure(STORE, "order_edit", "10234", "edited in the shop after the ERP confirmed it")
        first = reconcile(store=STORE, return_state=True)
        assert "1 held for a person" in (first.message or ""), first.message
        [mail] = inbox.wait(1, 30)
        second = reconcile(store=STORE, return_state=True)  # still held: within the hour, no second e-mail
        assert "1 held for a person" in (second.message or "")
    assert len(_held_events(since)) == 2  # both runs emitted the event; the window kept the second one quiet
    text = _text(mail)
    assert text.startswith(f"erpsync: records held for a person in store {STORE}\n")
    assert f"1 held for a person: `erpsync failures list --store {STORE}`" in text, text
    assert len(inbox.wait(2, 3)) == 1


def _held_events(since: datetime) -> list[Any]:
    """The "records held" events the server has stored since ``since`` (waits up to 10 s for two)."""
    from prefect.client.orchestration import get_client
    from prefect.events.filters import EventFilter, EventNameFilter, EventOccurredFilter

    wanted = EventFilter(occurred=EventOccurredFilter(since=since), event=EventNameFilter(name=[EVENT_HELD]))
    deadline = time.monotonic() + 10
    with get_client(sync_client=True) as client:
        while True:
            events = client.read_events(filter=wanted, limit=50).events
            if len(events) >= 2 or time.monotonic() > deadline:
                return events
            time.sleep(0.2)


def test_the_alerts_commands(tmp_path: Path, prefect_harness: None, smtp_sink: tuple[int, _Inbox]) -> None:
    from typer.testing import CliRunner

    from erpsync.app.cli import app

    port, inbox = smtp_sink
    base = (
        '[erp]\ntype = "tryton"\ndatabase = "x"\npassword = "literal:p"\n\n'
        '[prefect]\nconcurrency_limit_prefix = "clitest"\n\n'
        '[[stores]]\nname = "main"\nurl = "https://www.example.ro"\napi_key = "literal:k"\napi_secret = "literal:s"\n'
    )
    config = tmp_path / "erpsync.toml"
    config.write_text(base, encoding="utf-8")
    runner = CliRunner()
    none = runner.invoke(app, ["alerts", "apply", "--config", str(config)])
    assert none.exit_code == 2 and "alerts: no [alerts] section" in none.output, none.output

    config.write_text(
        base + f'\n[alerts]\non = ["records_held"]\n\n[alerts.email]\nto = ["ops@example.ro"]\n'
        f'sender = "erpsync@example.ro"\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\n',
        encoding="utf-8",
    )
    applied = runner.invoke(app, ["alerts", "apply", "--config", str(config)])
    assert applied.exit_code == 0, applied.output
    assert applied.output.splitlines() == [
        "block 'clitest-alerts-email' (SlackWebhook)",
        "automation 'clitest alert: records held for a person'",
    ]
    tested = runner.invoke(app, ["alerts", "test", "--config", str(config)])
    assert tested.exit_code == 0 and "clitest-alerts-email" in tested.output, tested.output
    [mail] = inbox.wait(1, 10)
    assert _text(mail).startswith("erpsync: test alert\n") and "records held for a person" in _text(mail)


def test_erpsync_check_prints_one_line_per_alert(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_harness: None
) -> None:
    from typer.testing import CliRunner

    from erpsync.app.cli import app
    from tests.flows.stock_fixtures import build_fake_stack

    section = (
        '\n[alerts]\non = ["run_failed", "guard_refused"]\n\n[alerts.webhook]\n'
        'url = "literal:http://127.0.0.1:9/hooks/check"\n'
    )
    for fake in build_fake_stack(tmp_path, monkeypatch):
        monkeypatch.setattr("erpsync.connectors.erp.make_erp", _memory_erp(fake.erp))
        config = fake.config_path
        text = config.read_text(encoding="utf-8")
        config.write_text(text.replace("[[stores]]", section.lstrip() + "\n[[stores]]", 1), encoding="utf-8")
        runner = CliRunner()
        before = runner.invoke(app, ["check", "--config", str(config)])
        assert before.exit_code == 1, before.output
        assert "FAIL alert run_failed" in before.output and "erpsync alerts apply" in before.output
        assert runner.invoke(app, ["alerts", "apply", "--config", str(config)]).exit_code == 0
        after = runner.invoke(app, ["check", "--config", str(config)])
    assert after.exit_code == 0, after.output
    lines = [line for line in after.output.splitlines() if "alert" in line]
    assert [line.split()[:3] for line in lines] == [
        ["ok", "alerts", "webhook"],
        ["ok", "alert", "run_failed"],
        ["ok", "alert", "guard_refused"],
    ], after.output
    assert "127.0.0.1:9/hooks" not in after.output  # the webhook URL is a secret


def _memory_erp(erp: Any) -> Any:
    """A ``make_erp`` that opens a session of the in-memory ERP (what ``erpsync check`` probes)."""
    return lambda _settings, **_options: erp.session()
