"""Benchmark of Oblio's pacing: ``python -m bench oblio [--skus 2000] [--orders 200] [--buyers B]``.

A stock sync of 2,000 SKUs then an import of 200 orders (each invoiced, then its stock sub-flow) through the real
flows, ``[erp] type = "oblio"`` at the configuration's default ``requests_per_second``, against
``erpsync.testing.oblio`` on loopback at Oblio's real limit (more than 3 calls of a token within 1 s lock it for
10 minutes). See ``bench/_erp_pace.py`` for the figures and the checks.
"""

from __future__ import annotations

import sys
from decimal import Decimal
from typing import Any

from bench._erp_pace import CIF, WAREHOUSE, ErpSide, positive, run_bench

EMAIL, SECRET = "office@example.ro", "oblio-secret-0001"


def make_erp(skus: list[str], stock: int) -> ErpSide:
    from erpsync.testing.oblio import OblioSimulator, SimItem
    from erpsync.testing.server import serve_in_thread

    sim = OblioSimulator(cif=CIF, users={EMAIL: SECRET}, rate_limit=3, rate_window=1.0, lock_seconds=600.0)
    sim.add_management(WAREHOUSE)
    for sku in skus:
        item = SimItem(name=f"Produs {sku}", code=sku, price=Decimal("121.00"), vat=Decimal(21))
        item.stock[WAREHOUSE] = Decimal(stock)
        sim.add_product(item)
    server = serve_in_thread(sim)

    def stats() -> dict[str, Any]:
        s = sim.stats
        return {
            "calls": s.calls,
            "by_route": dict(s.by_route),
            "call_times": list(s.call_times),
            "rate_limited": s.rate_limited,
            "locks": s.locks,
            "tokens": s.tokens_issued,
        }

    def invoices_of(reference: str) -> int:
        mention = f"Comanda online {reference}"
        return sum(1 for d in sim.invoices() if d.mentions == mention and d.storno_of is None and positive(d.products))

    section = {
        "type": "oblio",
        "url": f"{server.url}/api",
        "email": EMAIL,
        "secret": f"literal:{SECRET}",
        "cif": CIF,
        "invoice_series": "FCT",
    }
    return ErpSide("Oblio", section, sim, 3, 1.0, server.stop, stats, invoices_of)


def main(argv: list[str]) -> int:
    return run_bench("oblio", __doc__.split("\n\n")[0], argv, make_erp)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
