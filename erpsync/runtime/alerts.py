"""Alerts: the events erpsync emits for Prefect automations, and the automations + notification blocks of
``[alerts]`` (created by ``erpsync alerts apply`` / ``erpsync serve``, verified by ``erpsync check``).

The three alerts and what they fire on (docs/operations.md, "Alerts"):

- ``run_failed``: Prefect's own ``prefect.flow-run.Failed`` / ``Crashed`` events of runs tagged ``erpsync``; a
  partially failed run is a Failed state (``runtime.states``), so it fires too.
- ``records_held``: the event ``erpsync.records.held`` this module emits, for the store's resource
  ``erpsync.store.<store>``, from every run that ends with records held for a person. Prefect's event triggers
  match a label exactly or by its prefix only, and "N held for a person" is in the middle of a state message, so
  the state-change events cannot select these runs; an event of our own can, and a reactive trigger with a
  window (``held_every_minutes``) per store sends one notification per window while records stay held, instead
  of one per run.
- ``guard_refused``: the event ``erpsync.reconcile.refused``, emitted when the guard refuses the ERP snapshot
  (the reconcile run then ends Failed, which ``run_failed`` reports as well); its own event keeps it independent
  of the wording of the state message.

The e-mail block is Prefect's core ``SlackWebhook`` holding an Apprise ``mailto://`` URL: Prefect ships no SMTP
notification block (``prefect-email`` has credentials and a task, nothing an automation can notify through),
and a Slack webhook block given a URL that is not Slack's hands it to Apprise, which sends mailto:// by SMTP. The
URL (with the SMTP password) is the block's secret field. The webhook block is the core
``CustomWebhookNotificationBlock``, its URL kept in the block's secret values.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode, urlsplit
from uuid import UUID

from erpsync.core.config import AlertSettings, ConfigError, EmailAlertSettings, Settings
from erpsync.core.redact import redact, register_secret

if TYPE_CHECKING:
    from prefect.events.schemas.automations import AutomationCore

log = logging.getLogger("erpsync.alerts")

EVENT_HELD = "erpsync.records.held"
EVENT_GUARD = "erpsync.reconcile.refused"
STORE_RESOURCE = "erpsync.store."
RUN_TAG = "erpsync"  # every erpsync run carries it (runtime.run_context.store_tags)

TITLES = {
    "run_failed": "a run failed",
    "records_held": "records held for a person",
    "guard_refused": "reconciliation refused by the guard",
}
_MODES = {"none": "insecure", "starttls": "starttls", "ssl": "ssl"}


# ----------------------------------------------------------------------------------------------- the events


def store_resource(store: str) -> dict[str, str]:
    """The Prefect event resource of a store."""
    return {"prefect.resource.id": f"{STORE_RESOURCE}{store}", "prefect.resource.name": store}


def emit_alert_event(event: str, store: str, payload: dict[str, Any]) -> None:
    """Emit ``event`` for ``store`` (payload redacted); never fails the run that emits it."""
    try:
        from prefect.events import emit_event

        clean = {k: redact(v) if isinstance(v, str) else v for k, v in payload.items()}
        emit_event(event=event, resource=store_resource(store), payload={"store": store, **clean})
    except Exception as error:  # an alert, not the run's work
        log.warning("could not emit the event %s for store %s: %s", event, store, redact(str(error)))


def emit_records_held(store: str, held: int, note: str) -> None:
    """The "records held" event: ``held`` records of ``store`` wait for a person (``note`` says what to do)."""
    emit_alert_event(EVENT_HELD, store, {"held": held, "note": note})


def emit_guard_refused(store: str, message: str) -> None:
    """The "reconciliation refused by the guard" event, with the refusal's message."""
    emit_alert_event(EVENT_GUARD, store, {"message": message})


# ------------------------------------------------------------------------------------- blocks and automations


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-") or "erpsync"


def block_names(settings: Settings) -> dict[str, str]:
    """The notification blocks ``[alerts]`` asks for: channel ("email", "webhook") -> block name."""
    alerts = _alerts(settings)
    prefix = _slug(settings.prefect.concurrency_limit_prefix)
    names = {}
    if alerts.email is not None:
        names["email"] = f"{prefix}-alerts-email"
    if alerts.webhook is not None:
        names["webhook"] = f"{prefix}-alerts-webhook"
    return names


def automation_name(settings: Settings, kind: str) -> str:
    """``erpsync alert: a run failed``: the name of one alert's automation (the [prefect] prefix first)."""
    return f"{settings.prefect.concurrency_limit_prefix} alert: {TITLES[kind]}"


def _alerts(settings: Settings) -> AlertSettings:
    if settings.alerts is None:
        raise ConfigError(f"{settings.source}: alerts: no [alerts] section: there are no alerts to set up")
    return settings.alerts


def mailto_url(email: EmailAlertSettings) -> str:
    """The Apprise ``mailto://`` URL of ``[alerts.email]`` (with the password: a secret, registered as one)."""
    auth = ""
    if email.username:
        auth = quote(email.username, safe="")
        if email.password is not None:
            auth += ":" + quote(email.password.get(), safe="")
        auth += "@"
    query = urlencode(
        {"smtp": email.host, "from": email.sender, "to": ",".join(email.to), "mode": _MODES[email.security]}
    )
    scheme = "mailto" if email.security == "none" else "mailtos"
    url = f"{scheme}://{auth}{email.host}:{email.port}/?{query}"
    register_secret(url)
    return url


def webhook_url(settings: Settings) -> str:
    """The webhook URL of ``[alerts.webhook]``, checked (a ConfigError naming the key when it is not http(s))."""
    alerts = _alerts(settings)
    assert alerts.webhook is not None
    url = alerts.webhook.url.get()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{settings.source}: alerts.webhook.url: must be an http(s) URL")
    return url


def _blocks(settings: Settings) -> dict[str, Any]:
    """The notification block each channel needs, as it should be saved."""
    from prefect.blocks.notifications import CustomWebhookNotificationBlock, SlackWebhook
    from prefect.types import SecretDict
    from pydantic import SecretStr

    alerts = _alerts(settings)
    names = block_names(settings)
    blocks: dict[str, Any] = {}
    if alerts.email is not None:
        blocks["email"] = SlackWebhook(url=SecretStr(mailto_url(alerts.email)), notify_type="failure")
    if alerts.webhook is not None:
        blocks["webhook"] = CustomWebhookNotificationBlock(
            name=names["webhook"],
            url="{{url}}",
            json_data={"subject": "{{subject}}", "body": "{{body}}"},
            secrets=SecretDict({"url": webhook_url(settings)}),
            headers=None,
            cookies=None,
        )
    return blocks


_SUBJECTS = {
    "run_failed": "erpsync: {{ flow_run.name }} {{ flow_run.state.name }}",
    "records_held": "erpsync: records held for a person in store {{ event.payload.store }}",
    "guard_refused": "erpsync: reconciliation of store {{ event.payload.store }} refused by the guard",
}
_BODIES = {
    "run_failed": (
        "The run {{ flow_run.name }} of {{ flow.name }} ended {{ flow_run.state.name }}:\n"
        "{{ flow_run.state.message }}\n\n{{ flow_run|ui_url }}"
    ),
    "records_held": (
        "Store {{ event.payload.store }}: {{ event.payload.note }}\n"
        "Held records are not retried by the runs: retry, resolve or dismiss them (docs/operations.md, "
        '"Failed records").'
    ),
    "guard_refused": "Store {{ event.payload.store }}: {{ event.payload.message }}",
}


def _trigger(alerts: AlertSettings, kind: str) -> Any:
    from prefect.events.schemas.automations import EventTrigger, Posture

    if kind == "run_failed":
        return EventTrigger(
            expect={"prefect.flow-run.Failed", "prefect.flow-run.Crashed"},
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related={"prefect.resource.role": "tag", "prefect.resource.id": f"prefect.tag.{RUN_TAG}"},
            for_each={"prefect.resource.id"},
            posture=Posture.Reactive,
            threshold=1,
            within=timedelta(0),
        )
    held = kind == "records_held"
    return EventTrigger(
        expect={EVENT_HELD if held else EVENT_GUARD},
        match={"prefect.resource.id": f"{STORE_RESOURCE}*"},
        for_each={"prefect.resource.id"},
        posture=Posture.Reactive,
        threshold=1,
        within=timedelta(minutes=alerts.held_every_minutes) if held else timedelta(0),
    )


def planned_automations(settings: Settings, block_ids: dict[str, UUID]) -> list[AutomationCore]:
    """The automations ``[alerts]`` asks for, each notifying through every block in ``block_ids``."""
    from prefect.events.actions import SendNotification
    from prefect.events.schemas.automations import AutomationCore

    alerts = _alerts(settings)
    return [
        AutomationCore(
            name=automation_name(settings, kind),
            description=f"erpsync [alerts]: {TITLES[kind]} (set up by `erpsync alerts apply`; docs/operations.md)",
            enabled=True,
            trigger=_trigger(alerts, kind),
            actions=[
                SendNotification(block_document_id=block_id, subject=_SUBJECTS[kind], body=_BODIES[kind])
                for block_id in block_ids.values()
            ],
        )
        for kind in alerts.on
    ]


def _fingerprint(automation: Any) -> dict[str, Any]:
    """What must match between a planned automation and the one on the server (ids and defaults aside)."""
    trigger = automation.trigger
    return {
        "enabled": automation.enabled,
        "expect": sorted(trigger.expect),
        "match": trigger.match.model_dump(),
        "match_related": trigger.match_related.model_dump()
        if not isinstance(trigger.match_related, list)
        else [m.model_dump() for m in trigger.match_related],
        "for_each": sorted(trigger.for_each),
        "posture": str(trigger.posture),
        "threshold": trigger.threshold,
        "within": trigger.within.total_seconds(),
        "actions": sorted(
            (str(getattr(a, "block_document_id", "")), getattr(a, "subject", ""), getattr(a, "body", ""))
            for a in automation.actions
        ),
    }


def apply_alerts(settings: Settings) -> list[str]:
    """Create or update the blocks and automations of ``[alerts]`` on the current Prefect API, and remove the
    alert automations it no longer asks for; what was set up, one line each (no secret in them)."""
    from prefect.client.orchestration import get_client

    names = block_names(settings)
    blocks = _blocks(settings)
    block_ids = {channel: block.save(names[channel], overwrite=True) for channel, block in blocks.items()}
    planned = planned_automations(settings, block_ids)
    wanted = {a.name for a in planned}
    done = [f"block {names[c]!r} ({type(b).__name__})" for c, b in blocks.items()]
    with get_client(sync_client=True) as client:
        for automation in planned:
            existing = client.read_automations_by_name(automation.name)
            if existing:
                client.update_automation(existing[0].id, automation)
                for extra in existing[1:]:
                    client.delete_automation(extra.id)
            else:
                client.create_automation(automation)
            done.append(f"automation {automation.name!r}")
        for kind in TITLES:
            name = automation_name(settings, kind)
            if name not in wanted:
                for stale in client.read_automations_by_name(name):
                    client.delete_automation(stale.id)
                    done.append(f"automation {name!r} removed (not in [alerts].on)")
    return done


@dataclass(frozen=True)
class AlertCheck:
    target: str
    ok: bool
    detail: str


def verify_alerts(settings: Settings) -> list[AlertCheck]:
    """Whether the blocks and automations on the current Prefect API match ``[alerts]``: one result each."""
    from prefect.client.orchestration import get_client

    results: list[AlertCheck] = []
    names = block_names(settings)
    expected = _blocks(settings)
    block_ids: dict[str, UUID] = {}
    for channel, name in names.items():
        target = f"alerts {channel} block"
        block_type = type(expected[channel])
        try:
            saved = block_type.load(name)
        except ValueError:
            results.append(AlertCheck(target, False, f"no block {name!r}: run `erpsync alerts apply`"))
            continue
        if _block_data(saved) != _block_data(expected[channel]):
            results.append(AlertCheck(target, False, f"block {name!r} differs from [alerts]: `erpsync alerts apply`"))
            continue
        block_ids[channel] = saved._block_document_id
        results.append(AlertCheck(target, True, f"block {name!r} ({block_type.__name__}) matches [alerts]"))
    planned = planned_automations(settings, block_ids) if len(block_ids) == len(names) else []
    with get_client(sync_client=True) as client:
        for kind in _alerts(settings).on:
            name = automation_name(settings, kind)
            target = f"alert {kind}"
            found = client.read_automations_by_name(name)
            plan = next((a for a in planned if a.name == name), None)
            if not found:
                results.append(AlertCheck(target, False, f"no automation {name!r}: run `erpsync alerts apply`"))
            elif plan is None:
                results.append(AlertCheck(target, False, f"automation {name!r}: its blocks are missing or differ"))
            elif _fingerprint(found[0]) != _fingerprint(plan):
                results.append(
                    AlertCheck(target, False, f"automation {name!r} differs from [alerts]: `erpsync alerts apply`")
                )
            else:
                channels = " + ".join(names)
                results.append(AlertCheck(target, True, f"automation {name!r} enabled, notifies by {channels}"))
    return results


def _block_data(block: Any) -> dict[str, Any]:
    """A block's fields with the secrets' values (compared, never shown)."""
    data: dict[str, Any] = {}
    for field in type(block).model_fields:
        value = getattr(block, field)
        getter = getattr(value, "get_secret_value", None)
        data[field] = getter() if callable(getter) else value
    return data


def send_test(settings: Settings) -> list[str]:
    """Send one test notification through each saved block of ``[alerts]``; what was sent, one line each."""
    from prefect.blocks.notifications import CustomWebhookNotificationBlock, SlackWebhook

    kinds: dict[str, Any] = {"email": SlackWebhook, "webhook": CustomWebhookNotificationBlock}
    _blocks(settings)  # reads the configured URLs, so that they are redacted from any error that quotes them
    sent = []
    for channel, name in block_names(settings).items():
        block = kinds[channel].load(name)
        with block.raise_on_failure():
            block.notify(
                "A test of erpsync's [alerts]: this channel receives the alerts "
                f"({', '.join(TITLES[k] for k in _alerts(settings).on)}).",
                subject="erpsync: test alert",
            )
        sent.append(f"sent a test notification through the block {name!r} ({channel})")
    return sent
