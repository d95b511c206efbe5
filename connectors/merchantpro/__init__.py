"""MerchantPro REST API v2: the typed client, the JSON mappers, the write bodies and the webhook signature check."""

from erpsync.connectors.merchantpro.client import MerchantProClient, Tax, WriteResult
from erpsync.connectors.merchantpro.mapping import InventoryUnit
from erpsync.connectors.merchantpro.webhooks import SIGNATURE_HEADER, sign, verify_signature
from erpsync.connectors.merchantpro.writes import StockWrite

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
