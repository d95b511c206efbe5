"""MerchantPro REST API v2: the typed client, the JSON mappers and the webhook signature check."""

from connectors.merchantpro.client import MerchantProClient, Tax, WriteResult
from connectors.merchantpro.mapping import InventoryUnit, StockWrite
from connectors.merchantpro.webhooks import SIGNATURE_HEADER, sign, verify_signature

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
