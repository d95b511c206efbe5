"""``erpsync check``'s lines for ``[alerts]``: the notification blocks and automations on the Prefect API exist and
match the configuration (one line each)."""

from __future__ import annotations

from erpsync.app.probe import ProbeResult
from erpsync.core.config import Settings
from erpsync.core.redact import redact


def alert_probes(settings: Settings) -> list[ProbeResult]:
    """One result per block and automation of ``[alerts]``; none without the section."""
    if settings.alerts is None:
        return []
    from erpsync.runtime.alerts import verify_alerts
    from erpsync.runtime.ratelimit import prefect_api

    if prefect_api() is None:
        return [
            ProbeResult(
                "alerts",
                False,
                "no Prefect API configured (PREFECT_API_URL): the alerts live on the server the deployments use; "
                "set it, then `erpsync alerts apply`",
            )
        ]
    try:
        return [ProbeResult(c.target, c.ok, redact(c.detail)) for c in verify_alerts(settings)]
    except Exception as error:  # the API does not answer, a secret cannot be read: one line, never a traceback
        return [ProbeResult("alerts", False, redact(f"{type(error).__name__}: {error}"))]
