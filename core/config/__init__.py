"""The configuration file (TOML) as typed, validated settings, with secrets held by reference.

``load_config()`` finds the file (``--config``, else ``$ERPSYNC_CONFIG``, else ``./erpsync.toml``), parses
it and validates it against the settings models. Every problem is a ``ConfigError`` whose text is one line naming
the file, the key and the problem. Secret fields take ``env:NAME`` (read at load time), ``prefect-secret:NAME``
(read on first use, by the resolver ``erpsync.runtime.prefect_secrets`` registers) or a literal value; a
``Secret`` never shows its value in ``repr``, ``str`` or a dump, and every value it resolves is registered with
``core.redact``.

The parts: ``errors`` (ConfigError, SecretError), ``secrets`` (secret references and the resolver registry),
``fields`` (value types and their constraints), ``models`` (the settings models), ``loading`` (file, TOML,
error wording).
"""

from __future__ import annotations

from erpsync.core.config.alerts import (
    ALERT_KINDS,
    AlertSettings,
    EmailAlertSettings,
    WebhookAlertSettings,
)
from erpsync.core.config.errors import ConfigError, SecretError
from erpsync.core.config.fields import PRODUCT_FIELDS, SHIPPING_STATUSES, percent_key
from erpsync.core.config.files import FilesSettings, OrderFileSettings, StatusFileSettings, StockFileSettings
from erpsync.core.config.loading import (
    DEFAULT_CONFIG_FILE,
    ENV_CONFIG,
    load_config,
    resolve_config_path,
    settings_from_dict,
)
from erpsync.core.config.models import (
    DEFAULT_STATE_URL,
    ERP_TYPES,
    CustomerSettings,
    ErpSettings,
    OblioSettings,
    OrderSettings,
    PrefectSettings,
    ProductSettings,
    PurchaseSettings,
    ReconcileSettings,
    ScheduleSettings,
    Settings,
    SmartBillSettings,
    StateSettings,
    StockSettings,
    StoreSettings,
    TrytonSettings,
)
from erpsync.core.config.secrets import (
    DatabaseUrl,
    Secret,
    SecretResolver,
    register_secret_resolver,
    secret_resolver,
)

__all__ = [
    "ALERT_KINDS",
    "DEFAULT_CONFIG_FILE",
    "DEFAULT_STATE_URL",
    "ENV_CONFIG",
    "ERP_TYPES",
    "PRODUCT_FIELDS",
    "SHIPPING_STATUSES",
    "AlertSettings",
    "ConfigError",
    "CustomerSettings",
    "DatabaseUrl",
    "EmailAlertSettings",
    "ErpSettings",
    "FilesSettings",
    "OblioSettings",
    "OrderFileSettings",
    "OrderSettings",
    "PrefectSettings",
    "ProductSettings",
    "PurchaseSettings",
    "ReconcileSettings",
    "ScheduleSettings",
    "Secret",
    "SecretError",
    "SecretResolver",
    "Settings",
    "SmartBillSettings",
    "StateSettings",
    "StatusFileSettings",
    "StockFileSettings",
    "StockSettings",
    "StoreSettings",
    "TrytonSettings",
    "WebhookAlertSettings",
    "load_config",
    "percent_key",
    "register_secret_resolver",
    "resolve_config_path",
    "secret_resolver",
    "settings_from_dict",
]
