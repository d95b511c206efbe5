"""Oblio as an ERP: products and stock per management in, shop orders out as invoices (or proformas) that take
stock out, stornos and returns back (``docs/oblio.md``).

Oblio has no sales-order or customer-create endpoint: the client travels inside each document, an order becomes
an invoice (``useStock``) whose id is ``"SERIES-NUMBER"`` (``"proforma:SERIES-NUMBER"`` for a proforma), keyed
by ``idempotencyKey`` = the order's reference so a repeated POST never issues a second document.

``OblioConnector`` is assembled from its parts: ``checks.py`` (check, preflight, nomenclatures), ``stock.py``
(products and stock pages), ``documents.py`` (orders as documents), ``after_sale.py`` (storno, returns),
``statuses.py`` (what the documents say back), ``unsupported.py`` (what Oblio cannot do).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import httpx

from erpsync.connectors.erp.base import Capabilities
from erpsync.connectors.erp.oblio.after_sale import AfterSaleCalls
from erpsync.connectors.erp.oblio.client import SYSTEM, OblioClient
from erpsync.connectors.erp.oblio.common import BUCHAREST, PAGE
from erpsync.connectors.erp.oblio.documents import Documents
from erpsync.connectors.erp.oblio.registry import MemoryOblioRegistry, OblioRegistry
from erpsync.connectors.erp.oblio.statuses import Statuses
from erpsync.connectors.erp.oblio.stock import Catalogue
from erpsync.connectors.erp.oblio.unsupported import Unsupported
from erpsync.connectors.http import Counters

if TYPE_CHECKING:
    from erpsync.core.config import OblioSettings

__all__ = ["BUCHAREST", "CAPABILITIES", "PAGE", "OblioConnector"]

CAPABILITIES = Capabilities(
    products_read=True,
    stock_read=True,
    orders_create=True,
    orders_create_idempotent=True,  # idempotencyKey = the reference: a re-send returns the first invoice
    orders_read_status=True,
    orders_cancel=True,
    orders_return=True,
    invoices=True,
)


class OblioConnector(Catalogue, Documents, AfterSaleCalls, Statuses, Unsupported):
    """Oblio through its REST API (``https://www.oblio.eu/api``)."""

    system = SYSTEM
    capabilities = CAPABILITIES
    product_fields = frozenset({"name", "description", "price", "vat"})

    def __init__(
        self,
        url: str,
        email: str,
        secret: str,
        cif: str,
        *,
        invoice_series: str = "FCT",
        document: str = "invoice",
        measuring_unit: str = "buc",
        order_warehouse: str | None = None,
        shipping_name: str = "Transport",
        requests_per_second: float = 3.0,
        window_margin_seconds: float = 0.02,
        max_retries: int = 2,
        timeout_seconds: float = 30,
        transport: httpx.BaseTransport | None = None,
        registry: OblioRegistry | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        if document not in ("invoice", "proforma"):
            raise ValueError(f"document must be 'invoice' or 'proforma', not {document!r}")
        self.client = OblioClient(
            url,
            email,
            secret,
            requests_per_second=requests_per_second,
            window_margin_seconds=window_margin_seconds,
            max_retries=max_retries,
            timeout_seconds=timeout_seconds,
            transport=transport,
            clock=clock,
            sleep=sleep,
        )
        self.cif = cif
        self.invoice_series = invoice_series
        self.document = document
        self.measuring_unit = measuring_unit
        self.order_warehouse = order_warehouse
        self.shipping_name = shipping_name
        self.registry = registry if registry is not None else MemoryOblioRegistry()
        self._now = now or (lambda: datetime.now(BUCHAREST))
        self.counters: Counters = self.client.counters
        self._managements = None
        self._vat = None

    @classmethod
    def from_settings(cls, settings: OblioSettings, **options: Any) -> OblioConnector:
        """The connector of an ``[erp] type = "oblio"`` section; ``options`` go to the constructor
        (``order_warehouse``, ``registry``, ``transport``...)."""
        return cls(
            str(settings.url),
            settings.email,
            settings.secret.get(),
            settings.cif,
            **{
                "invoice_series": settings.invoice_series,
                "document": settings.document,
                "measuring_unit": settings.measuring_unit,
                "requests_per_second": settings.requests_per_second,
                "timeout_seconds": settings.timeout_seconds,
                **options,
            },
        )

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> OblioConnector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
