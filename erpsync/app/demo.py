"""`make demo`: the real Tryton and two simulated MerchantPro shops, synced end to end.

Steps: start the ERP (the real Tryton 8.2, its seeded database cached in .cache/tryton) and two shops sharing it
(each with its own warehouse and SKU scheme), write a configuration, `erpsync check`, then products → orders →
stock → (a sale confirmed in Tryton reaching the shop through the store watcher, its delay printed) → reconcile
for both shops, printing each run's summary and a table at the end. The runs go to Prefect's
database in .prefect/, so `prefect server start` shows them (and their artifacts) afterwards.

Everything is written under the folder the demo is started from: ``./.erpsync/demo`` (configuration, state
database, Tryton's files), never into the installed package. SIGTERM, SIGHUP and Ctrl-C stop what it started
(Tryton, the simulated shops and Prefect's temporary server, through its exit handlers).
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

from erpsync.core.summary import RunState, RunSummary

DEMO_FOLDER = Path(".erpsync") / "demo"
STORES = {
    "bucuresti": {"warehouses": ["WH"], "sku_prefix": "", "orders": {"reference_prefix": "B-"}},
    "cluj": {"warehouses": ["WH2"], "sku_prefix": "CJ-", "price_list": "Cluj", "orders": {"reference_prefix": "C-"}},
}
CUSTOMERS = (
    {
        "customer_email": "ana.popescu@example.ro",
        "billing_type": "individual",
        "billing_name": "Ana Popescu",
        "billing_address": "Str. Lalelelor 4",
        "billing_city": "București",
        "billing_state": "București",
        "billing_postal_code": "010101",
        "billing_phone": "0722000111",
    },
    {
        "customer_email": "achizitii@firma-demo.ro",
        "billing_type": "company",
        "billing_name": "Ion Ionescu",
        "billing_company": "Firma Demo SRL",
        "billing_fiscal_code": "RO18547290",
        "billing_reg_no": "J12/345/2020",
        "billing_address": "Bd. Eroilor 10",
        "billing_city": "Cluj-Napoca",
        "billing_state": "Cluj",
        "billing_postal_code": "400129",
        "billing_phone": "0264000222",
    },
)


def _say(step: str, started: float) -> None:
    print(f"[{time.monotonic() - started:6.1f} s] {step}", flush=True)


def _run(flow: str, store: str, started: float, results: list[RunSummary], **params: Any) -> RunSummary | None:
    from erpsync.app.flowrun import run_named
    from erpsync.flows.registry import UnknownFlow

    try:
        (summary,) = run_named(flow, [store], params)
    except UnknownFlow as error:
        _say(f"  {flow:<9} {store:<10} not available: {error}", started)
        return None
    results.append(summary)
    _say(f"  {summary.line()}" + (f" — {summary.message}" if summary.state is RunState.FAILED else ""), started)
    return summary


def _place_orders(shop: Any, store: str, count: int) -> list[str]:
    """Orders in the simulated shop for products the product sync created there (two buyers, one a company)."""
    sim = shop.sim
    units = [
        unit
        for product in sim.products.values()
        for unit in (product.get("variants") or [product])
        if unit.get("sku") and Decimal(str(unit.get("stock") or 0)) > 2
    ]
    placed = []
    for index in range(min(count, len(units))):
        unit = units[(index * 7) % len(units)]
        buyer = CUSTOMERS[index % len(CUSTOMERS)]
        payload = {
            **buyer,
            "payment_status": "awaiting" if index % 2 else "paid",
            "payment_method_code": "cash_delivery" if index % 2 else "wire",
            "shipping_status": "awaiting",
            "shipping_as_billing": True,
            "shipping_amount": 15,
            "line_items": [{"product_sku": unit["sku"], "quantity": 1 + index % 2}],
        }
        order = sim.add_order(payload)
        placed.append(str(order["id"]))
    return placed


def _inject_drift(shop: Any, n: int) -> list[str]:
    """Change the shop's stock of a few basic products behind erpsync's back (reconcile must correct them)."""
    drifted = [p["sku"] for p in shop.sim.products.values() if p.get("type") == "basic" and p.get("sku")][:n]
    for sku in drifted:
        shop.sim.set_stock_out_of_band(sku, 999)
    return drifted


def _table(results: list[RunSummary]) -> str:
    header = ("flow", "store", "state", "created", "updated", "unchanged", "failed", "shop r/w", "ERP r/w", "s")
    rows = [
        (
            r.flow,
            r.store,
            r.state.value,
            str(r.created),
            str(r.updated),
            str(r.unchanged),
            str(r.failed),
            f"{r.shop_reads}/{r.shop_writes}",
            f"{r.erp_reads}/{r.erp_writes}",
            f"{r.seconds:.1f}",
        )
        for r in results
    ]
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows, strict=False)]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
    body = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join([line, "  ".join("-" * w for w in widths), *body])


def demo_workdir(cwd: Path | None = None) -> Path:
    """Where the demo writes: ``.erpsync/demo`` under the folder it is started from (read when it starts)."""
    return (cwd or Path.cwd()).resolve() / DEMO_FOLDER


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def ui_lines(home: str, config: Path, *, keep: bool) -> list[str]:
    """How to open the Prefect UI on the demo's runs, and (while the demo keeps its servers) serve its stores."""
    lines = [
        "See the same runs, their task runs and artifacts in the Prefect UI (the same database, in PREFECT_HOME):",
        f"  PREFECT_HOME={home} .venv/bin/prefect server start   # then open http://127.0.0.1:4200/runs",
    ]
    if keep:
        lines += [
            "Or, while this demo keeps its servers, serve its two stores (deployments orders-bucuresti, stock-cluj, "
            "... on their schedules) with the UI, in another shell (instead of the server above: it starts one):",
            f"  PREFECT_HOME={home} .venv/bin/erpsync serve --config {_shown(config)}   # UI: http://127.0.0.1:4200",
        ]
    return lines


class _Stopped(SystemExit):
    """SIGTERM or SIGHUP: leave through the ``finally`` blocks and the exit handlers that stop the servers."""


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGTERM and SIGHUP end the demo as Ctrl-C does: everything it started is stopped (nothing left orphaned)."""

    def stop(signum: int, _frame: object) -> None:
        raise _Stopped(128 + signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_demo(*, keep: bool = False, workdir: Path | None = None, out: Callable[[str], None] = print) -> int:
    """Run the demo; returns the exit code (0 when every run completed or partially failed as expected)."""
    with stop_on_signals():
        return _run_demo(keep=keep, workdir=workdir or demo_workdir(), out=out)


def _run_demo(*, keep: bool, workdir: Path, out: Callable[[str], None]) -> int:
    from erpsync.app.probe import probe_all
    from erpsync.dev.stack import start_shop, tryton_erp, write_config
    from erpsync.dev.tryton import start_tryton
    from erpsync.runtime.store_runtime import overrides

    started = time.monotonic()
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    _say("starting the ERP: the real Tryton 8.2 (its seeded database is built once, then cached)", started)
    tryton = start_tryton(workdir / "tryton")
    shops = {}
    try:
        _say(f"Tryton ready at {tryton.url} ({tryton.start_seconds:.1f} s); starting two simulated shops", started)
        for name in STORES:
            shops[name] = start_shop(name)
        config = write_config(
            workdir / "erpsync.toml",
            erp=tryton_erp(tryton),
            shops=list(shops.values()),
            state_url=f"sqlite:///{workdir / 'state.db'}",
            stores=STORES,
        )
        os.environ["ERPSYNC_CONFIG"] = str(config)
        overrides.unpaced = True  # the simulators do not limit the rate; a real shop is paced at 4 requests/s
        _say(f"configuration written to {_shown(config)}; erpsync check:", started)
        from erpsync.core.config import load_config

        settings = load_config(config)
        checks = probe_all(settings)
        for check in checks:
            _say(f"  {'ok  ' if check.ok else 'FAIL'} {check.target}: {check.detail}", started)
        if not all(c.ok for c in checks):
            return 1

        results: list[RunSummary] = []
        _say("products: ERP → shop (created, variants grouped), then a re-run that changes nothing", started)
        for name in STORES:
            _run("products", name, started, results)
        for name in STORES:
            _run("products", name, started, results)
        _say("stock: available = on hand − reserved − buffer per store's warehouse; only changes are written", started)
        for name in STORES:
            _run("stock", name, started, results)
        _say("orders: placing orders in both shops (one buyer is a company), importing them into Tryton", started)
        for name, shop in shops.items():
            placed = _place_orders(shop, name, 3)
            _say(f"  {name}: placed orders {', '.join(placed)}", started)
            _run("orders", name, started, results)
        _say("customers: the shops' accounts become linked Tryton parties (the orders' buyers reused)", started)
        for name in STORES:
            _run("customers", name, started, results)
        _say("stock again: the imported orders now reserve stock in Tryton; nothing else changed", started)
        for name in STORES:
            _run("stock", name, started, results)
        _say("real time: the store watcher of bucuresti runs while a sale is confirmed in Tryton", started)
        from erpsync.app.demo_watch import sale_reaches_the_shop

        watched = sale_reaches_the_shop(tryton, shops["bucuresti"], "bucuresti", lambda line: _say(line, started))
        if watched is not None:
            results.append(watched)
        drifted = _inject_drift(shops["bucuresti"], 3)
        _say(f"reconcile: drift injected in bucuresti ({', '.join(drifted)} set to 999); guarded correction", started)
        for name in STORES:
            _run("reconcile", name, started, results)
        from erpsync.app.history import history_rows

        _say(f"stock-history {drifted[0]} --store bucuresti (the movement trail, newest first):", started)
        for row in history_rows(settings, drifted[0], "bucuresti", None, 5):
            _say(f"  {row['at'][:19]} {row['cause']:<14} -> {row['quantity']:<6} {row['erp_ref'] or ''}", started)

        out("")
        out(_table(results))
        out("")
        failed = [r for r in results if r.state is RunState.FAILED]
        home = os.environ.get("PREFECT_HOME", str(Path.cwd().resolve() / ".prefect"))
        out(f"demo finished in {time.monotonic() - started:.0f} s: {len(results)} runs, {len(failed)} failed.")
        for line in ui_lines(home, config, keep=keep):
            out(line)
        if keep:
            out(
                f"Servers kept running (Tryton {tryton.url}; shops "
                f"{', '.join(s.url for s in shops.values())}); Ctrl-C or SIGTERM (pid {os.getpid()}) stops them all."
            )
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
        return 1 if failed else 0
    finally:
        for shop in shops.values():
            shop.stop()
        tryton.stop()


if __name__ == "__main__":
    sys.exit(run_demo())
