"""What every part of ``OblioConnector`` shares: the attributes it is built with (``OblioBase``), the company's
calendar day, and reading Oblio's replies to a document POST."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from erpsync.connectors.erp.oblio.client import SYSTEM, OblioClient
from erpsync.connectors.erp.oblio.mapping import DocId
from erpsync.connectors.erp.oblio.registry import OblioRegistry
from erpsync.connectors.errors import record_error

BUCHAREST = ZoneInfo("Europe/Bucharest")
PAGE = 250  # Oblio's nomenclature page (offset in multiples of 250)


class OblioBase:
    """The state of an ``OblioConnector`` that its parts (checks, stock, documents, after-sale, statuses) use."""

    client: OblioClient
    cif: str
    invoice_series: str
    document: str
    measuring_unit: str
    order_warehouse: str | None
    shipping_name: str
    registry: OblioRegistry
    _now: Callable[[], datetime]
    _managements: list[str] | None
    _vat: list[Decimal] | None

    def _get(self, path: str, **params: Any) -> Any:
        return self.client.request("GET", path, params={"cif": self.cif, **params})

    def _today(self) -> str:
        return self._now().astimezone(BUCHAREST).date().isoformat()


def doc_id(reply: Any, series: str, *, proforma: bool, reference: str) -> DocId:
    """The document Oblio says it issued (``data{seriesName, number}``); a reply without a number is a
    ``RecordError``."""
    number = str(reply.get("number") or "") if isinstance(reply, dict) else ""
    if not number:
        raise record_error(SYSTEM, reference, f"Oblio answered without a document number: {reply!r}"[:300])
    return DocId(str(reply.get("seriesName") or series), number, proforma)


def link(reply: Any) -> str | None:
    value = reply.get("link") if isinstance(reply, dict) else None
    return value.strip() if isinstance(value, str) and value.strip() else None


def parse_date(value: Any) -> date | None:
    try:
        return date.fromisoformat(str(value)[:10]) if value else None
    except ValueError:
        return None
