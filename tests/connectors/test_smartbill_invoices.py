"""SmartBill invoice ids and the issued registries, without HTTP (the state-store registry on a fake link store;
against the real state store it is tested through the connector in ``test_smartbill.py``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from erpsync.connectors.erp.smartbill.invoices import (
    INVOICE_ENTITY,
    InvoiceId,
    IssuedRegistry,
    MemoryIssuedRegistry,
    StateIssuedRegistry,
)


@pytest.mark.parametrize(
    ("erp_id", "parsed"),
    [("WEB-0042", ("WEB", "0042")), ("WEB-B-7", ("WEB-B", "7")), ("WEB0042", None), ("WEB-", None), ("-1", None)],
)
def test_invoice_ids(erp_id: str, parsed: tuple[str, str] | None) -> None:
    if parsed is None:
        with pytest.raises(ValueError, match="SERIES-NUMBER"):
            InvoiceId.parse(erp_id)
    else:
        assert InvoiceId.parse(erp_id) == InvoiceId(*parsed)
        assert str(InvoiceId.parse(erp_id)) == erp_id


def test_the_memory_registry_remembers_once_and_refuses_a_second_invoice() -> None:
    registry: IssuedRegistry = MemoryIssuedRegistry({"1000": "WEB-0001"})
    assert registry.get("1000") == "WEB-0001"
    assert registry.get("1001") is None
    registry.put("1001", "WEB-0002")
    registry.put("1001", "WEB-0002")  # the same again is harmless
    with pytest.raises(ValueError, match="'1001' is already invoiced as 'WEB-0002', not 'WEB-0003'"):
        registry.put("1001", "WEB-0003")
    assert registry.get("1001") == "WEB-0002"
    assert isinstance(registry, MemoryIssuedRegistry) and len(registry) == 2


@dataclass
class FakeLink:
    erp_id: str
    shop_id: str = ""
    extra: dict[str, Any] | None = None


@dataclass
class FakeLinks:
    links: dict[tuple[str, str, str], str] = field(default_factory=dict)

    def link(
        self,
        store: str,
        entity: str,
        *,
        shop_id: str,
        erp_id: str,
        sku: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> object:
        self.links[(store, entity, shop_id)] = erp_id
        return FakeLink(erp_id)

    def find_link(
        self,
        store: str,
        entity: str,
        *,
        shop_id: str | None = None,
        erp_id: str | None = None,
        sku: str | None = None,
    ) -> FakeLink | None:
        found = self.links.get((store, entity, shop_id or ""))
        return None if found is None else FakeLink(found, shop_id or "")

    def unlink(self, store: str, entity: str, *, shop_id: str | None = None, erp_id: str | None = None) -> bool:
        return self.links.pop((store, entity, shop_id or ""), None) is not None


def test_the_state_registry_is_links_of_entity_smartbill_invoice_per_store() -> None:
    links = FakeLinks()
    shop1 = StateIssuedRegistry(links, "shop1")
    shop1.put("95750870.3", "WEB-0001")
    assert links.links == {("shop1", "smartbill_invoice", "95750870.3"): "WEB-0001"}
    assert INVOICE_ENTITY == "smartbill_invoice"
    assert shop1.get("95750870.3") == "WEB-0001"
    assert StateIssuedRegistry(links, "shop2").get("95750870.3") is None
    assert StateIssuedRegistry(links, "shop1", entity="other").get("95750870.3") is None
