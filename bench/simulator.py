"""Benchmark of the MerchantPro simulator at scale: ``python -m bench simulator [--products N] [--pages P]``.

Seeds N products (default 100,000) and reads P list pages of 100 spread over the catalogue, in-process (ASGI)
and over loopback (uvicorn): seconds to seed, median and worst page, peak memory. The benches and e2e tests use
this simulator as the shop, so its own cost must stay negligible beside the shop's real pace (4 requests/s).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Sequence

import httpx

from bench._shop import peak_rss_mb
from erpsync.testing.merchantpro import MerchantProSimulator
from erpsync.testing.server import serve_in_thread

KEY, SECRET = "bench-key", "bench-secret"


def _starts(products: int, pages: int) -> list[int]:
    step = max(1, (products - 100) // max(1, pages - 1))
    return [min(products - 100, i * step) for i in range(pages)]


def _in_process(sim: MerchantProSimulator, starts: list[int]) -> list[float]:
    async def run() -> list[float]:
        transport = httpx.ASGITransport(app=sim)
        async with httpx.AsyncClient(transport=transport, base_url="http://shop.bench", auth=(KEY, SECRET)) as client:
            timings = []
            for start in starts:
                began = time.perf_counter()
                reply = await client.get("/api/v2/products", params={"start": start, "limit": 100, "fields": "id,sku"})
                timings.append(time.perf_counter() - began)
                assert reply.status_code == 200 and len(reply.json()["data"]) == 100
            return timings

    return asyncio.run(run())


def _loopback(sim: MerchantProSimulator, starts: list[int]) -> list[float]:
    timings = []
    with serve_in_thread(sim) as server, httpx.Client(auth=(KEY, SECRET), timeout=10) as client:
        for start in starts:
            began = time.perf_counter()
            reply = client.get(f"{server.url}/api/v2/products", params={"start": start, "limit": 100, "fields": "id"})
            timings.append(time.perf_counter() - began)
            assert reply.status_code == 200 and len(reply.json()["data"]) == 100
    return timings


def main(argv: Sequence[str] = ()) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench simulator")
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--pages", type=int, default=21)
    args = parser.parse_args(list(argv))
    sim = MerchantProSimulator(api_key=KEY, api_secret=SECRET)
    began = time.perf_counter()
    sim.seed_catalogue(args.products)
    seeded = time.perf_counter() - began
    print(f"simulator: seeded {args.products} products in {seeded:.2f} s")
    starts = _starts(args.products, args.pages)
    for label, timings in (("in-process", _in_process(sim, starts)), ("loopback", _loopback(sim, starts))):
        print(
            f"  {label:<10} {len(timings)} pages of 100: median {statistics.median(timings) * 1000:.1f} ms, "
            f"worst {max(timings) * 1000:.1f} ms"
        )
    print(f"  peak RSS {peak_rss_mb():.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
