"""SmartBill Cloud as an ERP (``docs/smartbill.md``).

- ``client.py``: the calls: Basic auth, the strict 30-calls/10 s window per credential, the 10-minute lock-out,
  ``classify_smartbill`` of ``errorText`` replies (HTTP 200 included);
- ``mapping.py``: pure JSON <-> canonical records (``/stocks`` and ``/tax`` replies in, the invoice body out);
- ``invoices.py``: ``InvoiceId`` (``"SERIES-NUMBER"``) and the registry of the invoice each order produced;
- ``connector.py``: ``SmartBillConnector``, the ``ErpConnector`` of ``connectors/erp/base.py``.
"""

from __future__ import annotations

from erpsync.connectors.erp.smartbill.client import (
    DEFAULT_URL,
    LOCKOUT_SECONDS,
    SYSTEM,
    SmartBillClient,
    classify_smartbill,
    error_text,
)
from erpsync.connectors.erp.smartbill.connector import BUCHAREST, CAPABILITIES, SmartBillConnector
from erpsync.connectors.erp.smartbill.invoices import (
    INVOICE_ENTITY,
    InvoiceId,
    IssuedRegistry,
    LinkStore,
    MemoryIssuedRegistry,
    StateIssuedRegistry,
)
from erpsync.connectors.erp.smartbill.mapping import COUNTRY_NAMES, invoice_body, invoice_client, parse_stock

__all__ = [
    "BUCHAREST",
    "CAPABILITIES",
    "COUNTRY_NAMES",
    "DEFAULT_URL",
    "INVOICE_ENTITY",
    "LOCKOUT_SECONDS",
    "SYSTEM",
    "InvoiceId",
    "IssuedRegistry",
    "LinkStore",
    "MemoryIssuedRegistry",
    "SmartBillClient",
    "SmartBillConnector",
    "StateIssuedRegistry",
    "classify_smartbill",
    "error_text",
    "invoice_body",
    "invoice_client",
    "parse_stock",
]
