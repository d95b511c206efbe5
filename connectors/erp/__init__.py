"""ERP connectors: one module per ERP behind the ``ErpConnector`` protocol of ``connectors.erp.base``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from erpsync.connectors.erp.base import ErpConnector
    from erpsync.core.config import ErpSettings


def make_erp(settings: ErpSettings, **options: Any) -> ErpConnector:
    """The connector for the configured ERP (imported lazily: each ERP pulls only its own dependencies)."""
    if settings.type == "tryton":
        from erpsync.connectors.erp.tryton import TrytonConnector

        return TrytonConnector.from_settings(settings, **options)
    if settings.type == "smartbill":
        from erpsync.connectors.erp.smartbill import SmartBillConnector

        return SmartBillConnector.from_settings(settings, **options)
    if settings.type == "oblio":
        from erpsync.connectors.erp.oblio import OblioConnector

        return OblioConnector.from_settings(settings, **options)
    if settings.type == "files":
        from erpsync.connectors.erp.files import FilesConnector

        return FilesConnector.from_settings(settings, **options)
    raise ValueError(f"unknown ERP type {settings.type!r}")  # the config schema makes this unreachable
