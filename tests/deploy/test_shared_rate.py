"""Two worker processes, one shop, one budget: 400 stock writes from two separate OS processes through erpsync's
shop client, against a real ``prefect server start`` on PostgreSQL and the simulated shop's timestamped call log.

With the shop's Prefect rate limit in place, no 1-second window of the shop's log holds more requests than the
store's rate and the shop answers no 429. Without it (the limit not created: each process paces alone) the same
load exceeds the rate — proof that the first assertion can fail. One process finds the Prefect API in its
environment, the other in its active Prefect profile; each says which at start.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from erpsync.app.prefect_server import PrefectServer
from erpsync.core.config import load_config
from erpsync.dev.stack import start_shop, write_config
from erpsync.runtime.ratelimit import ensure_rate_limits
from tests.deploy.conftest import ROOT, kill_group, operator_env

RATE = 40.0  # the store's configured requests/s (the real shop's 4/s would make 400 writes take 100 s)
WRITES = 400
WORKERS = 2
UNUSED_ERP = {"type": "tryton", "url": "http://127.0.0.1:9", "database": "x", "username": "u", "password": "literal:p"}


def _profile_home(home: Path, api_url: str) -> Path:
    """A PREFECT_HOME whose active profile names the API (and PREFECT_API_URL is not in the environment)."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "profiles.toml").write_text(
        f'active = "erpsync-test"\n\n[profiles.erpsync-test]\nPREFECT_API_URL = "{api_url}"\n'
    )
    return home


def _run_workers(tmp_path: Path, server: PrefectServer, *, shared: bool) -> dict[str, Any]:
    store = "rated" if shared else "unrated"  # the unrated store's limit is never created
    tmp_path.mkdir(parents=True, exist_ok=True)
    shop = start_shop(store, rate_per_second=RATE)
    try:
        shop.sim.seed_catalogue(WRITES, multi_variant_share=0.0, seed=16)
        ids = sorted(shop.sim.products)[:WRITES]
        config = write_config(
            tmp_path / f"{store}.toml",
            erp=UNUSED_ERP,
            shops=[shop],
            state_url=f"sqlite:///{tmp_path / 'state.db'}",
            stores={store: {"requests_per_second": RATE, "max_retries": 3}},
        )
        if shared:
            from prefect.settings import PREFECT_API_URL, temporary_settings

            with temporary_settings(updates={PREFECT_API_URL: server.api_url}):  # Prefect may be imported already
                ensure_rate_limits(load_config(config))
        go = tmp_path / f"{store}-go"
        processes = []
        for number in range(WORKERS):
            share = tmp_path / f"{store}-ids-{number}.json"
            share.write_text(json.dumps([str(i) for i in ids[number::WORKERS]]))
            if number == 0:  # the API from the environment
                env = operator_env(tmp_path / f"home-{store}-{number}", api_url=server.api_url)
            else:  # the API from the active profile only
                home = _profile_home(tmp_path / f"home-{store}-{number}", server.api_url)
                env = operator_env(home, api_url=None)
            command = [sys.executable, "-m", "tests.deploy.rate_worker", str(config), store, str(share), str(go)]
            processes.append(
                subprocess.Popen(
                    command,
                    env=env,
                    cwd=ROOT,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    start_new_session=True,
                )
            )
        outputs = []
        try:
            deadline = time.monotonic() + 90
            while not all(Path(f"{tmp_path}/{store}-ids-{n}.json.ready").exists() for n in range(WORKERS)):
                assert all(p.poll() is None for p in processes), "a worker exited before it was ready"
                assert time.monotonic() < deadline, "the workers were not ready within 90 s"
                time.sleep(0.05)
            go.touch()  # both start writing at once
            for process in processes:
                out, err = process.communicate(timeout=150)
                assert process.returncode == 0, f"worker exited {process.returncode}:\n{err[-3000:]}"
                outputs.append((json.loads(out.strip().splitlines()[-1]), err))
        finally:
            for process in processes:
                kill_group(process)
        stats = shop.sim.stats
        return {
            "workers": outputs,
            "busiest": stats.busiest_window(1.0),
            "rate_limited": stats.rate_limited,
            "patches": stats.count("PATCH /products/{id}"),
            "applied": stats.applied_writes,
        }
    finally:
        shop.stop()


def _print(label: str, result: dict[str, Any]) -> None:
    figures = [w for w, _ in result["workers"]]
    each = "; ".join(
        f"{w['assigned']} writes ({w['writes']} sent) in {w['seconds']} s via {w['limiter']} (denied {w['denied']})"
        for w in figures
    )
    print(
        f"\n{label}: busiest 1-s window {result['busiest']} requests (rate {RATE:g}/s), 429s {result['rate_limited']}, "
        f"PATCHes {result['patches']}, per worker {each}"
    )


@pytest.mark.timeout(300)
def test_two_workers_share_the_shops_rate(tmp_path: Path, prefect_server: PrefectServer) -> None:
    shared = _run_workers(tmp_path / "shared", prefect_server, shared=True)
    _print("shared Prefect limit", shared)
    (env_out, env_err), (profile_out, profile_err) = shared["workers"]
    assert "API from the environment (PREFECT_API_URL)" in env_err, env_err[-2000:]
    assert "API from the active Prefect profile 'erpsync-test'" in profile_err, profile_err[-2000:]
    assert env_out["limiter"] == profile_out["limiter"] == "PrefectRateLimiter"
    assert env_out["failed"] == profile_out["failed"] == 0
    assert shared["applied"] == WRITES
    assert shared["rate_limited"] == 0
    assert shared["busiest"] <= RATE

    unshared = _run_workers(tmp_path / "unshared", prefect_server, shared=False)
    _print("no shared limit (each process paces alone)", unshared)
    assert all("has no rate limit 'erpsync-shop-unrated'" in err for _, err in unshared["workers"])
    # The same load without the shared limit exceeds the shop's rate: the check above can fail.
    assert unshared["busiest"] > RATE
    assert unshared["rate_limited"] > 0
