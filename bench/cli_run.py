"""Benchmark of a CLI run with nothing to do: ``python -m bench cli_run [--runs N]``.

``erpsync run stock --store main`` as a user starts it (a new process each time), against a SmartBill simulator and
a MerchantPro simulator on loopback (in this process) whose stock already agree, three ways:

- with a Prefect server already running and ``PREFECT_API_URL`` set (a profile does the same);
- with the local server ``erpsync serve`` leaves its marker for (``PREFECT_HOME/erpsync-server.json``), no
  ``PREFECT_API_URL``: the command finds it (``erpsync.app.prefect_api``);
- with no server at all: Prefect's temporary in-process API (today's fallback; the command says so).

Prints the median and worst wall time of each and the line the command printed about its Prefect API; checks
the first two at <= 3 s median (issue 18) and that each run completed with 0 shop writes.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

LIMIT_SECONDS = 3.0


def _once(env: dict[str, str], cwd: Path) -> tuple[float, str, str]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "erpsync.app.cli", "run", "stock", "--store", "main"],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"erpsync run failed ({done.returncode}): {done.stdout[-500:]} {done.stderr[-1500:]}")
    said = next((line for line in done.stderr.splitlines() if line.startswith("Prefect:")), "(nothing said)")
    return wall, said, done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""


def _flow_runs(api_url: str) -> int:
    """Flow runs the server holds (what its UI lists)."""
    import httpx

    return int(httpx.post(f"{api_url}/flow_runs/count", json={}, timeout=10).json())


def main(argv: Sequence[str] = ()) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench cli_run")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(list(argv))

    from erpsync.app.prefect_api import remove_marker, write_marker
    from erpsync.app.prefect_server import start_prefect_server
    from erpsync.dev.stack import smartbill_erp, start_shop, write_config
    from erpsync.testing.server import serve_in_thread
    from erpsync.testing.smartbill import SmartBillSimulator

    sim = SmartBillSimulator(cif="RO12345678", users={"o@example.ro": "tok"}, warehouses={"Depozit": {"A": 5}})
    erp_server = serve_in_thread(sim)
    shop = start_shop("main")
    shop.sim.add_product({"name": "Produs A", "sku": "A", "price_gross": 121, "tax_id": 5, "stock": 5})
    failed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-cli-run-") as tmp:
        root = Path(tmp)
        config = write_config(
            root / "erpsync.toml",
            erp=smartbill_erp(erp_server.url, username="o@example.ro", token="tok", cif="RO12345678"),
            shops=[shop],
            state_url=f"sqlite:///{root / 'state.db'}",
            stores={"main": {"warehouses": ["Depozit"]}},
        )
        base = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        base.update(ERPSYNC_CONFIG=str(config), PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1")
        base["PREFECT_HOME"] = str(root / "home")
        server = start_prefect_server(root / "server-home", ui=False)
        print(f"\n== erpsync run stock (nothing to do), {args.runs} runs each (server up in {server.start_seconds} s)")
        try:
            ways = {
                "PREFECT_API_URL set": {**base, "PREFECT_API_URL": server.api_url},
                "erpsync serve's server (marker)": base,
            }
            write_marker(server.api_url, root / "home")
            for label, env in ways.items():
                _once(env, root)  # the first run of each way may still have work (first stock push)
                before = _flow_runs(server.api_url)
                results = [_once(env, root) for _ in range(args.runs)]
                landed = _flow_runs(server.api_url) - before
                if landed != args.runs:
                    failed.append(f"{label}: {landed} of {args.runs} runs reached the server")
                times = [wall for wall, _, _ in results]
                median = statistics.median(times)
                print(
                    f"  {label:<34} median {median:.2f} s, worst {max(times):.2f} s, {landed} runs on the server "
                    f"— {results[-1][1]}"
                )
                print(f"  {'':<34} {results[-1][2]}")
                if median > LIMIT_SECONDS:
                    failed.append(f"{label}: median {median:.2f} s > {LIMIT_SECONDS} s")
                if "/0w" not in results[-1][2].split("shop", 1)[-1].split(",")[0]:
                    failed.append(f"{label}: the run wrote to the shop: {results[-1][2]}")
            remove_marker(root / "home")
        finally:
            server.stop()
        wall, said, _ = _once(base, root)
        print(f"  {'no server (temporary API)':<34} {wall:.2f} s — {said}")
    shop.stop()
    erp_server.stop()
    print("  checks: " + ("all passed" if not failed else "; ".join(failed)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
