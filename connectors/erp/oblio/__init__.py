"""Oblio as an ERP (``docs/oblio.md``).

- ``client.py``: the OAuth2 client-credentials token (renewed before expiry and once on a 401), the pace per
  credential (never more than 3 calls in a second), the 10-minute lock, ``classify_oblio``;
- ``mapping.py``: pure JSON <-> canonical records (products, stock per management, the document body);
- ``returns.py``: storno and return bodies, the ``AfterSale`` of a credit;
- ``registry.py``: which document each order produced (memory or state-store links);
- ``connector.py``: ``OblioConnector``, the ``ErpConnector`` of ``connectors/erp/base.py``, assembled from
  ``common.py`` (shared state, reply readers), ``checks.py`` (check, preflight, nomenclatures), ``stock.py``
  (products and stock in pages of 250), ``documents.py`` (orders as invoices or proformas), ``after_sale.py``
  (storno, returns), ``statuses.py`` (what documents say back), ``unsupported.py`` (what Oblio cannot do);
- ``webhook.py``: ``verify_oblio_webhook`` for Oblio's stock webhooks.
"""

from __future__ import annotations

from erpsync.connectors.erp.oblio.client import (
    DEFAULT_URL,
    LOCK_SECONDS,
    SYSTEM,
    OblioClient,
    classify_oblio,
    oblio_limiter,
)
from erpsync.connectors.erp.oblio.connector import CAPABILITIES, OblioConnector
from erpsync.connectors.erp.oblio.mapping import DocId, document_body, document_total
from erpsync.connectors.erp.oblio.registry import MemoryOblioRegistry, OblioRegistry, StateOblioRegistry

__all__ = [
    "CAPABILITIES",
    "DEFAULT_URL",
    "LOCK_SECONDS",
    "SYSTEM",
    "DocId",
    "MemoryOblioRegistry",
    "OblioClient",
    "OblioConnector",
    "OblioRegistry",
    "StateOblioRegistry",
    "classify_oblio",
    "document_body",
    "document_total",
    "oblio_limiter",
]
