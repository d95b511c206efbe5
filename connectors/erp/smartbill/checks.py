"""``erpsync check`` on SmartBill (``preflight``): one line per probe, the fix when it fails. Three calls:

- ``GET /tax``: the credentials (a 401 / an authentication ``errorText``), then the CIF (an ``errorText`` about
  rights on that CIF), then the VAT rates the stores use (``[stores.products] vat_taxes``);
- ``GET /series?type=f`` (``p`` for estimates): the document series exists;
- ``GET /stocks`` (today): every configured warehouse exists, names compared exactly (SmartBill's are
  case-sensitive; a near miss is named).

When the credentials or the CIF are refused, the other probes are not run (each says so): they would fail the
same way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any, Protocol

from erpsync.connectors.erp.base import Needs, Probe
from erpsync.connectors.erp.smartbill.mapping import stock_entries
from erpsync.connectors.errors import AuthError, ConnectorError, RateLimitedError

CREDENTIALS = "erp credentials"
CIF = "erp CIF"
SERIES = "erp invoice series"
VAT = "erp VAT rates"
WAREHOUSE = "erp warehouse"


class _Connector(Protocol):
    cif: str
    invoice_series: str
    document: str

    def _request(self, method: str, path: str, **kwargs: Any) -> Any: ...

    def _today(self) -> str: ...

    def taxes(self, *, fresh: bool = ...) -> dict[Decimal, str]: ...


def probes(connector: _Connector, needs: Sequence[Needs]) -> list[Probe]:
    """The probes of one SmartBill company for these stores' needs; never raises for a missing record."""
    cif = connector.cif
    try:
        rates = connector.taxes(fresh=True)
    except ConnectorError as error:
        return _refused(connector, needs, error)
    out = [
        Probe(CREDENTIALS, True, "accepted"),
        Probe(CIF, True, f"{cif} reachable with these credentials"),
        _series(connector),
        _vat(rates, needs, cif),
    ]
    return out + _warehouses(connector, needs)


def _refused(connector: _Connector, needs: Sequence[Needs], error: ConnectorError) -> list[Probe]:
    text = f"{type(error).__name__}: {error}"
    if isinstance(error, RateLimitedError):
        first = Probe(
            CREDENTIALS,
            False,
            f"{text}: the token is locked by SmartBill's rate limit (30 calls / 10 s); wait for the lock-out to end "
            f"and stop other programs using this token",
        )
        return [first, *_not_probed(needs, "rate limited")]
    if isinstance(error, AuthError) and error.status != 401 and "drept" in str(error).lower():
        return [
            Probe(CREDENTIALS, True, "accepted"),
            Probe(
                CIF,
                False,
                f"{text}: this user has no rights on CIF {connector.cif}; set [erp] cif to the company's VAT code as "
                f"SmartBill shows it (Configurare > Firma), or give the user access to it",
            ),
            *_not_probed(needs, "CIF refused", skip_cif=True),
        ]
    if isinstance(error, AuthError):
        return [
            Probe(
                CREDENTIALS,
                False,
                f"{text}: set [erp] username to the SmartBill login e-mail and [erp] token to the API token from "
                f"SmartBill > Contul meu > Integrari (the API needs a paid plan)",
            ),
            *_not_probed(needs, "credentials refused"),
        ]
    return [Probe(CREDENTIALS, False, f"{text}: SmartBill could not be reached; check [erp] url and the network")]


def _not_probed(needs: Sequence[Needs], why: str, *, skip_cif: bool = False) -> list[Probe]:
    targets = ([] if skip_cif else [CIF]) + [SERIES, VAT]
    targets += [f"{WAREHOUSE} {w!r}" for w in _wanted_warehouses(needs)]
    return [Probe(target, False, f"not probed: {why}") for target in targets]


def _guarded(target: str, probe: Callable[[], Probe]) -> Probe:
    try:
        return probe()
    except ConnectorError as error:
        return Probe(target, False, f"{type(error).__name__}: {error}")


def _series(connector: _Connector) -> Probe:
    estimate = connector.document == "estimate"
    kind, what = ("p", "estimate") if estimate else ("f", "invoice")

    def probe() -> Probe:
        reply = connector._request("GET", "series", params={"cif": connector.cif, "type": kind})
        rows = reply.get("list") if isinstance(reply, dict) else None
        names = [str(r.get("name")) for r in rows or [] if isinstance(r, dict) and r.get("name")]
        series = connector.invoice_series
        if series in names:
            return Probe(SERIES, True, f"{series!r} present ({what}s)")
        return Probe(
            SERIES,
            False,
            f"{series!r} is not an {what} series of CIF {connector.cif} (known: "
            f"{', '.join(map(repr, names)) or 'none'}): create it in SmartBill under Configurare > Serii, or set "
            f"[erp] invoice_series; every {what} fails without it",
        )

    return _guarded(SERIES, probe)


def _vat(rates: dict[Decimal, str], needs: Sequence[Needs], cif: str) -> Probe:
    wanted = sorted({Decimal(r).normalize() for n in needs for r in n.vat_rates}, key=Decimal)
    missing = [r for r in wanted if r not in rates]
    if not rates or missing:
        what = ", ".join(f"{r}%" for r in missing) if missing else "any VAT rate"
        return Probe(
            VAT,
            False,
            f"SmartBill has no tax for {what} (CIF {cif}): add it under Configurare > Cote TVA; an order line at a "
            f"missing rate fails",
        )
    return Probe(VAT, True, ", ".join(f"{r}%" for r in sorted(rates)))


def _wanted_warehouses(needs: Sequence[Needs]) -> list[str]:
    return list(dict.fromkeys(w for n in needs for w in n.warehouses))


def _warehouses(connector: _Connector, needs: Sequence[Needs]) -> list[Probe]:
    wanted = _wanted_warehouses(needs)
    if not wanted:
        return []
    try:
        reply = connector._request("GET", "stocks", params={"cif": connector.cif, "date": connector._today()})
        entries = stock_entries(reply)
    except ConnectorError as error:
        return [Probe(f"{WAREHOUSE} {w!r}", False, f"{type(error).__name__}: {error}") for w in wanted]
    known = [
        str(e["warehouse"].get("warehouseName"))
        for e in entries
        if isinstance(e, dict) and isinstance(e.get("warehouse"), dict)
    ]
    out = []
    for name in wanted:
        target = f"{WAREHOUSE} {name!r}"
        if name in known:
            out.append(Probe(target, True, "present in /stocks"))
            continue
        near = [k for k in known if k.casefold() == name.casefold()]
        hint = f"did you mean {near[0]!r}? names are case-sensitive; " if near else ""
        out.append(
            Probe(
                target,
                False,
                f"{hint}no SmartBill warehouse (gestiune) {name!r} (known: {', '.join(map(repr, known)) or 'none'}): "
                f"set the store's warehouses to SmartBill's names exactly, or create it under Configurare > Gestiuni "
                f"(a warehouse without any stock row may not be listed by SmartBill)",
            )
        )
    return out
