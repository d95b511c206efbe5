"""erpsync.testing.faults: the seeded plan and the injector every simulator and the fault proxy share, and the
fault proxy playing each kind in front of a real (loopback) server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest

from erpsync.connectors.asgi import SyncASGITransport
from erpsync.testing.fault_proxy import FaultProxy
from erpsync.testing.faults import FAULT_KINDS, Fault, FaultInjector, Faults
from erpsync.testing.merchantpro import MerchantProSimulator
from erpsync.testing.server import RunningServer, serve_in_thread
from erpsync.testing.smartbill import SmartBillSimulator

AUTH = ("demo-key", "demo-secret")


def test_a_plan_checks_its_shares_and_names_its_kinds() -> None:
    with pytest.raises(ValueError, match="sum to at most 1"):
        Faults(error_500=0.6, reset=0.5)
    with pytest.raises(ValueError, match="within"):
        Faults(timeout=-0.1)
    with pytest.raises(ValueError, match=">= 0"):
        Faults(latency=-1)
    assert Faults(error_429=0.1, truncated=0.2).kinds() == {"error_429", "truncated"}
    assert Faults(only_methods=frozenset({"post"})).applies_to("POST")
    assert not Faults(only_methods=frozenset({"post"})).applies_to("GET")


def test_the_injector_is_deterministic_per_seed_and_counts_by_kind() -> None:
    def kinds(seed: int) -> list[str | None]:
        injector = FaultInjector(Faults(error_500=0.2, error_429=0.2, reset=0.2, seed=seed))
        return [f.kind if (f := injector.draw()) else None for _ in range(60)]

    first = kinds(3)
    assert first == kinds(3) and first != kinds(4)
    assert {"error_500", "error_429", "reset", None} == set(first)
    injector = FaultInjector(Faults(error_500=0.5, seed=1))
    drawn = [injector.draw() for _ in range(40)]
    assert injector.requests == 40
    injected = sum(1 for f in drawn if f)
    assert 0 < injected < 40 and injector.counts == {"error_500": injected} and injector.total == injected


def test_each_kind_means_one_fault() -> None:
    plan = Faults(hang_seconds=0.25, retry_after=7)
    faults = {kind: Fault.of_kind(kind, plan) for kind in FAULT_KINDS}
    assert (faults["error_500"].status, faults["error_500"].cuts) == (500, False)
    assert (faults["error_429"].status, faults["error_429"].retry_after) == (429, 7)
    assert (faults["timeout"].status, faults["timeout"].delay) == (500, 0.25)
    assert faults["reset"].cuts and not faults["reset"].after
    assert faults["reset_after_write"].cuts and faults["reset_after_write"].after
    assert faults["truncated"].cuts
    with pytest.raises(ValueError, match="unknown fault kind"):
        Fault.of_kind("meteor", plan)


def test_queued_faults_come_first_on_their_route_and_switching_off_keeps_the_sequence() -> None:
    injector = FaultInjector(Faults(error_500=0.5, seed=9))
    reference = FaultInjector(Faults(error_500=0.5, seed=9))
    injector.queue(Fault.queued("invoice", status=503, after=True), count=2)
    assert injector.draw("GET", "stocks") == reference.draw("GET", "stocks")  # another route: the plan draws
    queued = injector.draw("POST", "invoice")
    assert queued is not None and (queued.kind, queued.status, queued.after) == ("error_503", 503, True)
    injector.enabled = False
    assert injector.draw("POST", "invoice") is None and injector.latency() == 0.0  # off: no draw, no queue taken
    injector.enabled = True
    assert injector.draw("POST", "invoice") == queued  # the second queued one is still there
    assert [injector.draw() for _ in range(20)] == [reference.draw() for _ in range(20)]  # same place in the seed
    assert injector.counts["error_503"] == 2


def test_only_methods_and_latency() -> None:
    injector = FaultInjector(Faults(error_500=1.0, latency=0.2, only_methods=frozenset({"PATCH"})))
    assert injector.draw("GET") is None and injector.latency("GET") == 0.0
    fault = injector.draw("PATCH")
    assert fault is not None and fault.kind == "error_500" and injector.latency("PATCH") == 0.2


def test_the_smartbill_simulator_plays_reply_faults_and_refuses_cuts() -> None:
    with pytest.raises(ValueError, match="cannot play fault kinds reset"):
        SmartBillSimulator(faults=Faults(reset=0.1))
    sim = SmartBillSimulator(cif="RO1", users={"u@x.ro": "t"}, faults=Faults(error_429=1.0, retry_after=12))
    with httpx.Client(base_url="http://t/SBORO/api", auth=("u@x.ro", "t"), transport=SyncASGITransport(sim)) as c:
        reply = c.get("/tax", params={"cif": "RO1"})
        assert (reply.status_code, reply.headers["Retry-After"]) == (429, "12")
        sim.set_faults(None)
        sim.inject("tax", error_text="Serviciu indisponibil.")
        assert c.get("/tax", params={"cif": "RO1"}).json()["errorText"] == "Serviciu indisponibil."
        assert c.get("/tax", params={"cif": "RO1"}).status_code == 200
    assert sim.stats.faults == {"error_429": 1, "error_text": 1}


# --------------------------------------------------------------------------- the proxy, over loopback


@pytest.fixture
def target() -> Iterator[tuple[MerchantProSimulator, RunningServer]]:
    sim = MerchantProSimulator()
    sim.add_product({"name": "Cana", "sku": "P-1", "type": "basic", "stock": 5, "price_gross": 10})
    with serve_in_thread(sim) as server:
        yield sim, server


@pytest.fixture
def proxy(target: tuple[MerchantProSimulator, RunningServer]) -> Iterator[tuple[FaultProxy, str]]:
    faults = FaultProxy(target[1].url)
    with serve_in_thread(faults) as server:
        yield faults, server.url


def test_the_proxy_forwards_and_plays_status_faults(proxy: tuple[FaultProxy, str]) -> None:
    faults, url = proxy
    with httpx.Client(base_url=url, auth=AUTH, timeout=5) as client:
        assert client.get("/api/v2/products").json()["data"][0]["sku"] == "P-1"
        faults.injector.set_plan(Faults(error_429=1.0, retry_after=3))
        limited = client.get("/api/v2/products")
        assert (limited.status_code, limited.headers["retry-after"]) == (429, "3")
        faults.injector.set_plan(Faults(timeout=1.0, hang_seconds=0.05))
        assert client.get("/api/v2/products").status_code == 500
        faults.enabled = False
        assert client.get("/api/v2/products").status_code == 200
    assert faults.counts == {"error_429": 1, "timeout": 1}


def test_the_proxy_cuts_replies_before_or_after_the_work(
    target: tuple[MerchantProSimulator, RunningServer], proxy: tuple[FaultProxy, str]
) -> None:
    sim, _server = target
    faults, url = proxy
    pid = next(iter(sim.products))
    with httpx.Client(base_url=url, auth=AUTH, timeout=5) as client:
        faults.injector.set_plan(Faults(reset=1.0))
        with pytest.raises(httpx.TransportError):
            client.patch(f"/api/v2/products/{pid}", json={"stock": 7})
        assert sim.products[pid]["stock"] == 5  # never reached the target
        faults.injector.set_plan(Faults(reset_after_write=1.0))
        with pytest.raises(httpx.TransportError):
            client.patch(f"/api/v2/products/{pid}", json={"stock": 8})
        assert sim.products[pid]["stock"] == 8  # the target did the work; the client never heard back
        faults.injector.set_plan(Faults(truncated=1.0))
        cut = client.get(f"/api/v2/products/{pid}")
        assert cut.status_code == 200 and int(cut.headers["content-length"]) == len(cut.content) > 0
        with pytest.raises(json.JSONDecodeError):
            cut.json()
        faults.injector.set_plan(None)
        assert Decimal(str(client.get(f"/api/v2/products/{pid}").json()["stock"])) == 8
    assert faults.counts == {"reset": 1, "reset_after_write": 1, "truncated": 1}
