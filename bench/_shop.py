"""The shop side of the stock benchmarks: the MerchantPro simulator served on loopback (``serve_in_thread``)
in a child process, so that its catalogue and CPU do not count in erpsync's memory and time. A pipe carries
the few commands a benchmark needs: the units it holds, out-of-band stock edits (drift), its request counters.
Also what every benchmark shares: Prefect's environment, the task runs of a flow run, the peak RSS.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

KEY = "bench-key"
SECRET = "bench-secret-0123"


@dataclass(frozen=True)
class Unit:
    sku: str
    product_id: str
    variant_id: str | None
    stock: float
    tracked: bool = True  # inventory_enabled: the seeded catalogue turns it off on ~5 % of products


def one_per_product(units: list[Unit], count: int, *, offset: int = 0, tracked_only: bool = False) -> list[Unit]:
    """``count`` units spread over the catalogue, at most one per product (so each costs one PATCH), from
    ``offset`` on; ``tracked_only``: only units whose inventory is tracked."""
    step = max(1, len(units) // max(1, count))
    chosen: list[Unit] = []
    products: set[str] = set()
    for unit in units[offset::step] + units:
        if (unit.tracked or not tracked_only) and unit.product_id not in products:
            chosen.append(unit)
            products.add(unit.product_id)
        if len(chosen) == count:
            break
    return chosen


def _serve(conn: Connection, basics: int, multis: int, variants: int, rate: float | None) -> None:
    from erpsync.testing.merchantpro import MerchantProSimulator
    from erpsync.testing.server import serve_in_thread

    sim = MerchantProSimulator(api_key=KEY, api_secret=SECRET, rate_per_second=rate, base_url=None, lockout_after=0)
    if multis:
        sim.seed_catalogue(multis, multi_variant_share=1.0, variants=(variants, variants), seed=1, sku_prefix="MV-")
    if basics:
        sim.seed_catalogue(basics, multi_variant_share=0.0, seed=2, sku_prefix="SKU-")
    server = serve_in_thread(sim)
    sim.base_url = server.url
    conn.send(server.url)
    while True:
        command, argument = conn.recv()
        if command == "units":
            units = []
            for product in sim.products.values():
                for unit in product.get("variants") or [product]:
                    variant = str(unit["id"]) if product.get("variants") else None
                    tracked = unit.get("inventory_enabled", "on") != "off"
                    units.append((unit["sku"], str(product["id"]), variant, float(unit.get("stock") or 0), tracked))
            conn.send(units)
        elif command == "drift":
            for sku, stock in argument:
                sim.set_stock_out_of_band(sku, stock)
            conn.send(len(argument))
        elif command == "stats":
            stats = sim.stats
            conn.send(
                {
                    "reads": stats.reads,
                    "writes": stats.writes,
                    "rate_limited": stats.rate_limited,
                    "applied_writes": stats.applied_writes,
                }
            )
        elif command == "reset":
            sim.stats.reset()
            conn.send(True)
        elif command == "stop":
            server.stop()
            conn.send(True)
            return


class ShopProcess:
    """A simulated shop of ``basics`` basic products and ``multis`` products of ``variants`` variants each."""

    def __init__(self, *, basics: int, multis: int = 0, variants: int = 2, rate: float | None = None) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child, basics, multis, variants, rate), daemon=True)
        started = time.monotonic()
        self.process.start()
        self.url: str = self._conn.recv()
        self.start_seconds = time.monotonic() - started

    def _ask(self, command: str, argument: Any = None) -> Any:
        self._conn.send((command, argument))
        return self._conn.recv()

    def units(self) -> list[Unit]:
        """Every stock-carrying unit of the shop, as it is now."""
        return [Unit(*row) for row in self._ask("units")]

    def drift(self, changes: list[tuple[str, float]]) -> int:
        """Change stock behind the API's back (as a person in the shop's admin would)."""
        return int(self._ask("drift", changes))

    def stats(self) -> dict[str, int]:
        """Requests the shop has served since the last reset."""
        return dict(self._ask("stats"))

    def reset(self) -> None:
        self._ask("reset")

    def stop(self) -> None:
        if self.process.is_alive():
            try:
                self._ask("stop")
            finally:
                self.process.join(timeout=10)
                if self.process.is_alive():
                    self.process.kill()

    def __enter__(self) -> ShopProcess:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def peak_rss_mb() -> float:
    """This process's peak resident memory so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def prefect_environment() -> None:
    """What the CLI sets before Prefect is imported: project-local home, no telemetry, a generous start-up."""
    import os
    from pathlib import Path

    os.environ.setdefault("PREFECT_HOME", str(Path(__file__).resolve().parents[1] / ".prefect"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")


def write_bench_config(path: Any, url: str, state_url: str, store: dict[str, Any]) -> Any:
    """An erpsync.toml for one store ``main`` on this shop (the ERP section is a placeholder, swapped)."""
    from types import SimpleNamespace

    from erpsync.dev.stack import write_config

    shop: Any = SimpleNamespace(name="main", url=url, api_key=KEY, api_secret=SECRET)
    erp = {"type": "tryton", "url": "http://127.0.0.1:9", "database": "unused", "password": "literal:unused"}
    return write_config(path, erp=erp, shops=[shop], state_url=state_url, stores={"main": store})


def task_runs(flow_run_id: Any, settle: float = 1.0, timeout: float = 20.0) -> list[Any]:
    """The task runs of one flow run, once the server has recorded them all.

    Prefect 3 records task runs from events, after the flow has returned: read at once, the list can miss
    the last batches (CI saw 6 of 9). The list is taken when every run is in a final state and neither the
    count nor the states changed for `settle` seconds.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    flow_filter = FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
    deadline = time.monotonic() + timeout
    seen: tuple[Any, ...] = ()
    since = time.monotonic()
    with get_client(sync_client=True) as client:
        while True:
            runs = list(client.read_task_runs(flow_run_filter=flow_filter))
            key = tuple(sorted((str(run.id), str(run.state_type)) for run in runs))
            if key != seen:
                seen, since = key, time.monotonic()
            final = all(run.state is not None and run.state.is_final() for run in runs)
            if (final and time.monotonic() - since >= settle) or time.monotonic() > deadline:
                return runs
            time.sleep(0.2)


def flow_run_seconds(flow_run_id: Any) -> float:
    """The flow run's duration as Prefect recorded it (start to end of the run, in the engine)."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        run = client.read_flow_run(flow_run_id)
    if run.start_time is None or run.end_time is None:
        return float("nan")
    return round((run.end_time - run.start_time).total_seconds(), 2)


def task_seconds(runs: list[Any]) -> dict[str, float]:
    """Seconds per task name (runs of the same task summed)."""
    out: dict[str, float] = {}
    for run in runs:
        name = run.name.rsplit("-", 1)[0]
        out[name] = round(out.get(name, 0.0) + float(run.total_run_time.total_seconds()), 3)
    return out


Scenario = Callable[..., dict[str, Any]]
Report = Callable[[str, dict[str, Any], float | None], list[str]]


def run_paced_and_unpaced(
    name: str,
    description: str,
    argv: Sequence[str],
    scenario: Scenario,
    report: Report,
    *,
    change_flag: str,
    order: tuple[str, str] = ("unpaced", "paced"),
    paced_title: str = "paced at {rate:g} requests/s",
) -> int:
    """The command line of a stock-like benchmark: the scenario unpaced at scale and paced at a small size.

    ``scenario(skus, change, rate=, workdir=)`` runs under one Prefect test harness; ``report(title, result,
    rate)`` prints it and returns the failed checks. Exit code 1 when any check failed.
    """
    parser = argparse.ArgumentParser(prog=f"python -m bench {name}", description=description)
    parser.add_argument("--skus", type=int, default=100_000)
    parser.add_argument(f"--{change_flag}", type=float, default=0.01)
    parser.add_argument("--paced-skus", type=int, default=2_000)
    parser.add_argument("--rate", type=float, default=4.0)
    parser.add_argument("--only", choices=("unpaced", "paced"), default=None)
    args = parser.parse_args(list(argv))
    change = getattr(args, change_flag)
    prefect_environment()
    from prefect.testing.utilities import prefect_test_harness

    failed: list[str] = []
    with prefect_test_harness(server_startup_timeout=90):
        for kind in order:
            if args.only not in (None, kind):
                continue
            with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp:
                if kind == "paced":
                    result = scenario(args.paced_skus, change, rate=args.rate, workdir=Path(tmp))
                    failed += report(paced_title.format(rate=args.rate), result, args.rate)
                else:
                    result = scenario(args.skus, change, rate=None, workdir=Path(tmp))
                    failed += report("simulator without pacing", result, None)
    return 1 if failed else 0
