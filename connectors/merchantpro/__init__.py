"""MerchantPro REST API v2: the typed client, the JSON mappers and the webhook signature check."""

from erpsync.connectors.merchantpro.client import MerchantProClient, Tax, WriteResult
from erpsync.connectors.merchantpro.mapping import InventoryUnit, StockWrite
from erpsync.connectors.merchantpro.webhooks import SIGNATURE_HEADER, sign, verify_signature

__all__ = [
    "SIGNATURE_HEADER",
    "InventoryUnit",
    "MerchantProClient",
    "StockWrite",
    "Tax",
    "WriteResult",
    "sign",
    "verify_signature",
]
