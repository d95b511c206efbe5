"""Benchmark of SmartBill's pacing: ``python -m bench smartbill [--skus 2000] [--orders 200] [--buyers B]``.

A stock sync of 2,000 SKUs then an import of 200 orders (each invoiced, then its stock sub-flow) through the real
flows, ``[erp] type = "smartbill"``, against ``erpsync.testing.smartbill`` on loopback at SmartBill's real limit
(30 calls per 10 s per token, 10-minute lock-out). See ``bench/_erp_pace.py`` for the figures and the checks.
"""

from __future__ import annotations

import sys
from typing import Any

from bench._erp_pace import CIF, WAREHOUSE, ErpSide, positive, run_bench

USER, TOKEN = "office@example.ro", "sb-token-0001"


def make_erp(skus: list[str], stock: int) -> ErpSide:
    from erpsync.dev.stack import smartbill_erp
    from erpsync.testing.server import serve_in_thread
    from erpsync.testing.smartbill import SmartBillSimulator

    sim = SmartBillSimulator(
        cif=CIF,
        users={USER: TOKEN},
        warehouses={WAREHOUSE: dict.fromkeys(skus, stock)},
        series=("WEB",),
        rate_limit=30,
        rate_window=10.0,
        lockout_seconds=600.0,
    )
    server = serve_in_thread(sim)

    def stats() -> dict[str, Any]:
        s = sim.stats
        return {
            "calls": s.calls,
            "by_route": dict(s.by_route),
            "call_times": list(s.call_times),
            "rate_limited": s.rate_limited,
            "locks": s.lockouts,
        }

    def invoices_of(reference: str) -> int:
        mention = f"Comanda online {reference}"
        return sum(
            1
            for i in list(sim.invoices.values())
            if i.mentions == mention and i.storno_of is None and positive(i.products)
        )

    section = smartbill_erp(server.url, username=USER, token=TOKEN, cif=CIF)
    return ErpSide("SmartBill", section, sim, 30, 10.0, server.stop, stats, invoices_of)


def main(argv: list[str]) -> int:
    return run_bench("smartbill", __doc__.split("\n\n")[0], argv, make_erp)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
