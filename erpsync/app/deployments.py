"""Deployments of every flow for every configured store: served in-process or written to ``prefect.yaml``.

Each is named ``<flow>-<store>`` (``orders-bucuresti``), so the UI's Deployments list says both; its schedule
carries a readable slug (``every-2-minutes``) and its description the cron in words. The ``store`` parameter is
fixed: a served deployment's form offers only its own store, and a run given another store is refused
(``erpsync.runtime.run_context``).

Scheduled: orders, stock, products, reconcile, receipts, watch, customers, purchases, prune (cron per store,
``[stores.schedules]``, in the store's time zone). Unscheduled, run by hand from the UI with a form:
resync-order, retry-failures. Every deployment runs one at a time (deployment concurrency limit 1, queued) on
top of the run lease in the state database.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from erpsync.core.config import Settings, StoreSettings
from erpsync.flows.registry import FLOWS, load_flow
from erpsync.runtime.run_context import store_tags

SCHEDULED = ("orders", "stock", "products", "reconcile", "receipts", "watch", "customers", "purchases", "prune")
MANUAL = ("resync-order", "retry-failures")
DEFAULT_WORK_POOL = "erpsync"


@dataclass(frozen=True)
class DeploymentSpec:
    """One deployment: a flow for one store."""

    key: str
    store: str
    cron: str
    timezone: str
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def entrypoint(self) -> str:
        """A module entrypoint (``erpsync.flows.stock:stock_sync``): a worker needs no project folder on its path."""
        module, function = FLOWS[self.key]
        return f"{module}:{function}"

    @property
    def name(self) -> str:
        """``orders-bucuresti``: the flow and the store, as the UI's Deployments list shows it."""
        return deployment_name(self.key, self.store)

    @property
    def tags(self) -> list[str]:
        return store_tags(self.key, self.store)

    @property
    def schedule_slug(self) -> str | None:
        """The schedule's readable slug (``every-2-minutes``, ``daily-at-02-30``); None without a schedule."""
        return re.sub(r"[^a-z0-9]+", "-", cron_words(self.cron).lower()).strip("-") if self.cron else None

    @property
    def description(self) -> str:
        words = cron_words(self.cron)
        when = f"{words} (cron '{self.cron}', {self.timezone})" if self.cron else "by hand only"
        if words.startswith("cron "):
            when = f"cron '{self.cron}' ({self.timezone})"
        return f"erpsync {self.key} for store {self.store}: {when}"


def deployment_name(key: str, store: str) -> str:
    """The deployment of flow ``key`` for ``store``: ``orders-bucuresti``."""
    return f"{key}-{store}"


def _every(n: str, unit: str) -> str:
    return f"every {unit}" if n == "1" else f"every {n} {unit}s"


def cron_words(cron: str) -> str:
    """The usual cron shapes in words ("every 2 minutes", "daily at 02:30"); other expressions as they are."""
    fields = cron.split()
    if len(fields) != 5:
        return cron
    minute, hour, day, month, weekday = fields
    if (day, month, weekday) != ("*", "*", "*"):
        return f"cron {cron}"
    if hour == "*" and minute == "*":
        return "every minute"
    if hour == "*" and (m := re.fullmatch(r"\*/(\d+)", minute)):
        return _every(m.group(1), "minute")
    if hour == "*" and minute.isdigit():
        return f"hourly at minute {int(minute)}"
    if minute.isdigit() and (m := re.fullmatch(r"\*/(\d+)", hour)):
        return f"{_every(m.group(1), 'hour')} at minute {int(minute)}"
    if minute.isdigit() and hour.isdigit():
        return f"daily at {int(hour):02d}:{int(minute):02d}"
    return f"cron {cron}"


def store_specs(store: StoreSettings) -> list[DeploymentSpec]:
    """The deployments of one store."""
    specs = [
        DeploymentSpec(key, store.name, getattr(store.schedules, key), store.timezone, {"store": store.name})
        for key in SCHEDULED
    ]
    specs += [DeploymentSpec(key, store.name, "", store.timezone, {"store": store.name}) for key in MANUAL]
    return specs


def deployment_specs(settings: Settings) -> list[DeploymentSpec]:
    """Every deployment of every configured store."""
    return [spec for store in settings.stores for spec in store_specs(store)]


def _concurrency_one() -> Any:
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy

    return ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.ENQUEUE)


def runner_deployments(settings: Settings) -> list[Any]:
    """Prefect RunnerDeployments (for ``serve``) of every flow and store."""
    from prefect.schedules import Cron
    from prefect.types.entrypoint import EntrypointType
    from prefect.utilities.annotations import freeze

    deployments = []
    for spec in deployment_specs(settings):
        flow_object = load_flow(spec.key)
        deployment = flow_object.to_deployment(
            name=spec.name,
            schedules=[Cron(spec.cron, timezone=spec.timezone, slug=spec.schedule_slug)] if spec.cron else None,
            parameters={**spec.parameters, "store": freeze(spec.store)},  # the form shows it read-only
            tags=spec.tags,
            description=spec.description,
            concurrency_limit=_concurrency_one(),
            entrypoint_type=EntrypointType.MODULE_PATH,
        )
        deployments.append(deployment)
    return deployments


def serve_all(settings: Settings) -> None:
    """Serve every deployment in this process until interrupted (needs a Prefect API: see docs/operations.md)."""
    from prefect import serve

    from erpsync.runtime.ratelimit import ensure_rate_limits

    ensure_rate_limits(settings)
    if settings.alerts is not None:  # [alerts]: the automations and notification blocks, beside the rate limits
        from erpsync.app.console import EXIT_CONFIG, fail
        from erpsync.core.config import ConfigError
        from erpsync.runtime.alerts import apply_alerts

        try:
            apply_alerts(settings)
        except ConfigError as error:  # an SMTP password or webhook URL that cannot be read: one line, exit 2
            fail(str(error), EXIT_CONFIG)
    serve(*runner_deployments(settings))


def _as_given_or_relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path.resolve())


def prefect_yaml(settings: Settings, *, work_pool: str = DEFAULT_WORK_POOL, project_dir: str = ".") -> str:
    """The text of a ``prefect.yaml`` with every deployment of this configuration (for ``prefect deploy --all``).

    Paths inside the project are written relative to it (the worker runs in ``project_dir``).
    """
    import yaml  # PyYAML comes with Prefect

    config = settings.path if settings.path else Path(os.environ.get("ERPSYNC_CONFIG", "erpsync.toml"))
    config_path = _as_given_or_relative(config)
    directory = project_dir
    deployments = []
    for spec in deployment_specs(settings):
        entry: dict[str, Any] = {
            "name": spec.name,
            "entrypoint": spec.entrypoint,
            "description": spec.description,
            "tags": spec.tags,
            "parameters": spec.parameters,
            "concurrency_limit": {"limit": 1, "collision_strategy": "ENQUEUE"},
            "work_pool": {
                "name": work_pool,
                "job_variables": {
                    "env": {
                        "ERPSYNC_CONFIG": config_path,
                        "PREFECT_LOGGING_EXTRA_LOGGERS": "erpsync",
                        "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
                    }
                },
            },
            "schedules": (
                [{"cron": spec.cron, "timezone": spec.timezone, "slug": spec.schedule_slug}] if spec.cron else []
            ),
        }
        deployments.append(entry)
    document = {
        "name": "erpsync",
        "prefect-version": _prefect_version(),
        "build": None,
        "push": None,
        "pull": [{"prefect.deployments.steps.set_working_directory": {"directory": directory}}],
        "deployments": deployments,
    }
    header = (
        "# Generated by `erpsync prefect-yaml` from the erpsync configuration; regenerate after changing stores.\n"
        f"# Deploy with: prefect work-pool create {work_pool} --type process && prefect deploy --all\n"
    )
    return header + yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=120)


def _prefect_version() -> str:
    from importlib.metadata import version

    return version("prefect")
