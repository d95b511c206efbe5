"""Oblio behind the ``ErpUnderTest`` adapter of ``erp_matrix``: the Oblio simulator on loopback with the set-up of
``oblio_stack`` (its company, token, series FCT, goods at 121 RON with VAT 21 % included), two managements
(``Depozit``, ``Magazin``) for the two-shop scenario; documents per shop order found by their mentions
(``Comanda online <reference>``), as the connector writes them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from erpsync.core.state import StateStore
from erpsync.testing.oblio import OblioSimulator, SimDoc
from erpsync.testing.server import RunningServer, serve_in_thread
from tests.flows.erp_matrix import Buyer
from tests.flows.oblio_stack import CIF, EMAIL, SECRET, SERIES, VAT_21, WAREHOUSE, good, negative

MANAGEMENTS = (WAREHOUSE, "Magazin")


@dataclass
class OblioSeeder:
    sim: OblioSimulator
    server: RunningServer
    name: str = "oblio"
    warehouses: tuple[str, ...] = MANAGEMENTS
    shop_product: dict[str, Any] = field(default_factory=lambda: {"price_gross": 121, "tax_id": VAT_21})
    shipping_tax: float | None = 21  # Oblio's simulator has no 19 % rate
    fault_timeout: float = 1.5

    def erp_section(self, url: str | None, timeout: float | None) -> dict[str, Any]:
        section: dict[str, Any] = {
            "type": "oblio",
            "url": f"{url or self.server.url}/api",
            "email": EMAIL,
            "secret": f"literal:{SECRET}",
            "cif": CIF,
            "invoice_series": SERIES,
            "requests_per_second": 3,
        }
        if timeout is not None:
            section["timeout_seconds"] = timeout
        return section

    def target(self) -> str:
        return self.server.url

    def proxied_path(self) -> str:
        return "/api/docs/invoice"

    def stocked(self, sku: str, stock: Mapping[str, int]) -> None:
        """A good at 121 RON with VAT 21 % included (the shop's basic product price)."""
        self.sim.add_product(good(sku, {w: stock.get(w, 0) for w in self.warehouses}, name=self.product_name(sku)))

    def product_name(self, sku: str) -> str:
        return f"Produs {sku}"

    def set_stock(self, sku: str, warehouse: str, quantity: int) -> None:
        self.sim.products[sku].stock[warehouse] = Decimal(quantity)

    def _invoices(self, reference: str) -> list[SimDoc]:
        """The invoices (neither stornos nor returns) whose mentions carry this order reference."""
        mention = f"Comanda online {reference}"
        return [d for d in self.sim.invoices() if d.mentions == mention and d.storno_of is None and not negative(d)]

    def documents(self, reference: str) -> list[Decimal]:
        return [d.total for d in self._invoices(reference)]

    def buyers(self, reference: str) -> list[Buyer]:
        return [
            Buyer(str(d.client.get("name") or ""), str(d.client.get("cif") or "")) for d in self._invoices(reference)
        ]

    def link(self, state: StateStore, store: str, reference: str) -> bool:
        from erpsync.connectors.erp.oblio import StateOblioRegistry

        found = self._invoices(reference)
        if found:
            StateOblioRegistry(state, store).put(reference, found[0].key)
        return bool(found)

    def stop(self) -> None:
        self.server.stop()


def make_oblio_seeder() -> OblioSeeder:
    # rate_limit: the pacing is not under test here (tests/connectors cover it); a lock would stall a test 600 s
    sim = OblioSimulator(cif=CIF, users={EMAIL: SECRET}, rate_limit=20)
    for management in MANAGEMENTS:
        sim.add_management(management)
    return OblioSeeder(sim, serve_in_thread(sim))
