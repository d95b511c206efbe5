"""``erpsync alerts apply|test``: create the Prefect automations and notification blocks of ``[alerts]``, or send a
test notification through each (docs/operations.md, "Alerts")."""

from __future__ import annotations

import typer

from erpsync.app.console import EXIT_CONFIG, EXIT_FAILED, ConfigOption, fail, prepare_runtime_environment
from erpsync.app.console import settings_or_exit as _settings_or_exit
from erpsync.core.config import ConfigError, Settings


def _settings_with_api(config: ConfigOption) -> Settings:
    prepare_runtime_environment()
    settings = _settings_or_exit(config)
    if settings.alerts is None:
        fail(f"{settings.source}: alerts: no [alerts] section: nothing to set up", EXIT_CONFIG)
    from erpsync.runtime.ratelimit import prefect_api

    if prefect_api() is None:
        fail(
            "PREFECT_API_URL is not set (environment or active profile): set it to the server the deployments "
            "use (`erpsync serve` sets the alerts up on its own server)",
            EXIT_CONFIG,
        )
    return settings


def register_alerts_commands(app: typer.Typer) -> None:
    """Add ``erpsync alerts apply`` and ``erpsync alerts test`` to ``app``."""
    alerts = typer.Typer(
        help="The Prefect automations and notification blocks of [alerts].", no_args_is_help=True, add_completion=False
    )
    app.add_typer(alerts, name="alerts")

    @alerts.command("apply")
    def apply(config: ConfigOption = None) -> None:
        """Create (or update) the notification blocks and automations [alerts] asks for on the Prefect API."""
        settings = _settings_with_api(config)
        from erpsync.runtime.alerts import apply_alerts

        try:
            lines = apply_alerts(settings)
        except ConfigError as error:
            fail(str(error), EXIT_CONFIG)
        for line in lines:
            typer.echo(line)

    @alerts.command("test")
    def test(config: ConfigOption = None) -> None:
        """Send one test notification through each notification block of [alerts] (run `apply` first)."""
        settings = _settings_with_api(config)
        from erpsync.core.redact import redact
        from erpsync.runtime.alerts import send_test

        try:
            lines = send_test(settings)
        except ConfigError as error:
            fail(str(error), EXIT_CONFIG)
        except Exception as error:  # the block is missing, or the SMTP server / URL refused it
            fail(redact(f"test notification failed: {type(error).__name__}: {error}"), EXIT_FAILED)
        for line in lines:
            typer.echo(line)
