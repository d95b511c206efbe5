"""``erpsync check`` and the preflight on Oblio, and the nomenclatures they read once per connector: the
company (``/nomenclature/companies``), the document series, the managements and the VAT rates."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from functools import partial
from typing import Any

from erpsync.connectors.erp.base import Needs, Probe
from erpsync.connectors.erp.oblio.client import SYSTEM
from erpsync.connectors.erp.oblio.common import OblioBase
from erpsync.connectors.erp.oblio.mapping import decimal
from erpsync.connectors.errors import ConnectorError, FatalError, RecordError


class Checks(OblioBase):
    """``check``, ``preflight``, ``managements``, ``vat_rates``."""

    def check(self) -> str:
        """The token and one call (``/nomenclature/companies``): ``"Oblio, CIF RO1 (Firma SRL)"``."""
        companies = self.client.request("GET", "nomenclature/companies")
        name = _company(companies, self.cif)
        if name is None:
            raise FatalError(SYSTEM, f"CIF {self.cif} is not a company of this Oblio account: set [erp] cif")
        return f"Oblio, CIF {self.cif} ({name})"

    def preflight(self, needs: Sequence[Needs]) -> list[Probe]:
        """Credentials and CIF, the invoice (or proforma) series, every store warehouse as an Oblio management,
        and the VAT rates the stores use: 4 calls (+1 for the token)."""
        probes: list[Probe] = []
        probes.append(self._probe("erp credentials and CIF", self.check))
        kind = "Proforma" if self.document == "proforma" else "Factura"

        def series() -> str:
            rows = self._get("nomenclature/series")
            names = [str(r.get("name")) for r in rows or [] if isinstance(r, dict) and r.get("type") == kind]
            if self.invoice_series not in names:
                raise RecordError(
                    SYSTEM,
                    f"{self.invoice_series!r} is not a {kind} series of CIF {self.cif} (known: "
                    f"{', '.join(map(repr, names)) or 'none'}): add it in Oblio (Setari > Serii documente) "
                    f"or set [erp] invoice_series",
                )
            return f"{self.invoice_series!r} ({kind}) present"

        probes.append(self._probe("erp invoice series", series))
        self._managements = None
        for warehouse in sorted({w for n in needs for w in n.warehouses}):
            probes.append(self._probe(f"erp warehouse {warehouse}", partial(self._management_probe, warehouse)))

        def vat() -> str:
            self._vat = None
            rates = self.vat_rates()
            wanted = sorted({Decimal(r).normalize() for n in needs for r in n.vat_rates})
            missing = [r for r in wanted if r not in rates]
            if missing:
                raise RecordError(SYSTEM, f"Oblio has no VAT rate {', '.join(f'{r}%' for r in missing)}")
            return ", ".join(f"{r}%" for r in sorted(rates))

        probes.append(self._probe("erp VAT rates", vat))
        return probes

    def _probe(self, target: str, run: Callable[[], str]) -> Probe:
        try:
            return Probe(target, True, run())
        except ConnectorError as error:
            return Probe(target, False, f"{type(error).__name__}: {error}")

    def _management_probe(self, warehouse: str) -> str:
        known = self.managements()
        if warehouse not in known:
            raise RecordError(
                SYSTEM,
                f"{warehouse!r} is not an Oblio management of CIF {self.cif} (known: "
                f"{', '.join(map(repr, known)) or 'none'}): the store's warehouses are Oblio management names",
            )
        return "an Oblio management"

    def managements(self) -> list[str]:
        """The management (warehouse) names (one call, then cached)."""
        if self._managements is None:
            rows = self._get("nomenclature/management")
            self._managements = [
                str(r["management"]) for r in rows or [] if isinstance(r, dict) and r.get("management")
            ]
        return self._managements

    def vat_rates(self) -> list[Decimal]:
        """The company's VAT percentages (one call, then cached)."""
        if self._vat is None:
            rows = self._get("nomenclature/vat_rates")
            rates = [decimal(r.get("percent")) for r in rows or [] if isinstance(r, dict)]
            self._vat = [r.normalize() for r in rates if r is not None]
        return self._vat


def _company(rows: Any, cif: str) -> str | None:
    bare = cif.upper().removeprefix("RO")
    for row in rows if isinstance(rows, list) else []:
        if isinstance(row, dict) and str(row.get("cif") or "").upper().removeprefix("RO") == bare:
            return str(row.get("company") or cif)
    return None
