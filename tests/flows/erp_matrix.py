"""One "ERP under test" for the flow-level tests that run on every ERP (``test_every_erp*.py``): the real Tryton
of the session, the SmartBill simulator and the Oblio simulator, each behind the SAME adapter, so a scenario is
written once and reads the same whatever the ERP.

An ``ErpUnderTest`` hides how its ERP is seeded and inspected: a product with stock (``stocked``), stock changed
in the ERP (``set_stock``), a placed shop order (``order``), the ERP documents one shop order produced
(``documents``: Tryton sales, SmartBill invoices, Oblio invoices, found by the order's ERP reference), the
connector's ``capabilities`` (read from the connector the flows build), and the person's part of an order held
"in doubt" (``settle_by_hand``). Every stack is built the same way: simulated MerchantPro shops on loopback, the
ERP (optionally behind a ``FaultProxy``), a fresh SQLite state and an ``erpsync.toml`` ERPSYNC_CONFIG points at;
one or two stores, each with its own warehouse and order reference prefix.

The matrix: a scenario that an ERP's capabilities rule out asserts what the flow does instead and calls
``not_applicable(request, "<capability>")``; ``tests/flows/conftest.py`` collects every result of those modules
and writes ``.pytest_cache/erp-matrix.md`` (scenario x ERP -> passed / n/a: capability) at the end of the session.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

import pytest

import erpsync.runtime.store_runtime as runtime_module
from erpsync.app.flowrun import run_flow
from erpsync.connectors.erp.base import Capabilities
from erpsync.connectors.erp.tryton.mapping import vat_identifier
from erpsync.connectors.http import reset_shared_limiters
from erpsync.core.order_totals import TOLERANCE
from erpsync.core.state import StateStore
from erpsync.core.summary import RunState, RunSummary
from erpsync.dev.stack import SimShop, start_shop, tryton_erp, write_config
from erpsync.dev.tryton import JsonRpcSession, TrytonServer
from erpsync.runtime.store_runtime import open_runtime, overrides
from erpsync.testing.fault_proxy import FaultProxy
from erpsync.testing.faults import Fault, Faults
from erpsync.testing.server import RunningServer, serve_in_thread
from erpsync.testing.smartbill import SmartBillSimulator
from tests.flows import smartbill_stack as sb
from tests.tryton_fixture import create_stocked_product, unique_code

ERPS = ["tryton", "smartbill", "oblio"]
PERSON = {**sb.BUYER}
COMPANY = {
    "customer_email": "achizitii@firma.ro",
    "billing_type": "company",
    "billing_name": "Ion Ionescu",
    "billing_company": "Firma Demo SRL",
    "billing_fiscal_code": "RO18547290",
    "billing_reg_no": "J12/345/2020",
    "billing_address": "Bd. Eroilor 10",
    "billing_city": "Cluj-Napoca",
    "billing_postal_code": "400129",
    "billing_country_code": "RO",
    "shipping_as_billing": True,
}
MATRIX_KEY = "erp_matrix"  # the user property a test sets to record "not applicable: <capability>"


def not_applicable(request: pytest.FixtureRequest, capability: str) -> None:
    """Record that this scenario does not apply to this ERP, because ``capability`` is off (after the test has
    asserted what the flow does instead)."""
    request.node.user_properties.append((MATRIX_KEY, f"n/a: {capability} is off"))


def buyer(kind: str = "person") -> dict[str, Any]:
    """A buyer of its own (a fresh e-mail; a company with a fresh VAT code is not needed by any ERP here)."""
    tag = uuid.uuid4().hex[:8]
    base = COMPANY if kind == "company" else PERSON
    return {**base, "customer_email": f"{kind}-{tag}@example.ro"}


def shop_order_id() -> str:
    """A shop order id no other test on the session's Tryton uses."""
    return str(10_000_000 + uuid.uuid4().int % 89_999_999)


@dataclass(frozen=True)
class Buyer:
    """The buyer an ERP document names: its name, VAT code (a company's) and the ERP's customer record, when the
    ERP keeps customers (Tryton's party id; "" where the client travels in the invoice)."""

    name: str
    vat_code: str
    customer_id: str = ""


@dataclass(frozen=True)
class StoreSpec:
    warehouse: str
    prefix: str = ""


class Seeder(Protocol):
    """What differs between the ERPs: how to seed, change and read them."""

    name: str
    warehouses: tuple[str, ...]  # the store warehouses: the first is "main"'s
    shop_product: dict[str, Any]  # the shop's fields for a product at the ERP's price and VAT
    shipping_tax: float | None  # the shop's shipping VAT, when the ERP needs another than the simulator's
    fault_timeout: float  # the ERP client's timeout under faults (an injected "timeout" stalls a bit longer)

    def erp_section(self, url: str | None, timeout: float | None) -> dict[str, Any]: ...
    def target(self) -> str: ...
    def proxied_path(self) -> str: ...
    def stocked(self, sku: str, stock: Mapping[str, int]) -> None:
        """A new product at the ERP's price of ``shop_product``, with this stock per warehouse."""

    def product_name(self, sku: str) -> str: ...
    def set_stock(self, sku: str, warehouse: str, quantity: int) -> None: ...
    def documents(self, reference: str) -> list[Decimal]: ...
    def buyers(self, reference: str) -> list[Buyer]: ...
    def link(self, state: StateStore, store: str, reference: str) -> bool: ...
    def stop(self) -> None: ...


# --------------------------------------------------------------------------------------------- the adapter


@dataclass
class ErpUnderTest:
    """One ERP with its shops and state, configured through an ``erpsync.toml`` (see the module docstring)."""

    seeder: Seeder
    shops: dict[str, SimShop]
    stores: dict[str, StoreSpec]
    state_url: str
    proxy: FaultProxy | None = None
    stock_calls: list[tuple[str, set[str]]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.seeder.name

    @property
    def capabilities(self) -> Capabilities:
        """The connector's capabilities, as the flows see them (built from the configuration)."""
        store = next(iter(self.stores))
        enabled = self.proxy.enabled if self.proxy else False
        if self.proxy:
            self.proxy.enabled = False
        try:
            with open_runtime(store) as runtime:
                return runtime.erp.capabilities
        finally:
            if self.proxy:
                self.proxy.enabled = enabled

    @property
    def state(self) -> StateStore:
        return runtime_module.state_store(self.state_url)

    def sim(self, store: str = "main") -> Any:
        return self.shops[store].sim

    def warehouse(self, store: str = "main") -> str:
        return self.stores[store].warehouse

    def stocked(
        self, stock: Mapping[str, int] | int, *, shop_stock: Mapping[str, float | None] | float | None = 0
    ) -> str:
        """A new SKU in the ERP with this stock (per warehouse, or in "main"'s warehouse) and, as a basic product
        at the ERP's price and VAT, in every shop (with ``shop_stock``; None: the shop has no stock figure);
        returns the SKU."""
        sku = unique_code("MX")
        levels = stock if isinstance(stock, Mapping) else {self.warehouse(): stock}
        self.seeder.stocked(sku, levels)
        for store, shop in self.shops.items():
            wanted = shop_stock.get(store) if isinstance(shop_stock, Mapping) else shop_stock
            extra = {} if wanted is None else {"stock": wanted}
            shop.sim.add_product({"name": f"Produs {sku}", "sku": sku, **self.seeder.shop_product, **extra})
        return sku

    def catalogue_product(self) -> str:
        """A new product in the ERP only (5 in stock, at the price of ``seeder.shop_product``); its SKU."""
        sku = unique_code("MXP")
        self.seeder.stocked(sku, {self.warehouse(): 5})
        return sku

    def set_stock(self, sku: str, quantity: int, store: str = "main") -> None:
        """Change the ERP's on-hand quantity of a SKU in a store's warehouse (what a receipt or a count does)."""
        self.seeder.set_stock(sku, self.warehouse(store), quantity)

    def order(self, lines: Mapping[str, int], who: Mapping[str, Any], store: str = "main", **fields: Any) -> str:
        """A placed shop order (awaiting shipment, paid by wire, shipping 15); its shop order id."""
        payload = {
            **who,
            "id": fields.pop("id", None) or shop_order_id(),
            "payment_status": "paid",
            "payment_method_code": "wire",
            "shipping_status": "awaiting",
            "shipping_amount": 15,
            "line_items": [{"product_sku": sku, "quantity": qty} for sku, qty in lines.items()],
            **fields,
        }
        sim = self.sim(store)
        order_id = str(sim.add_order(payload, adjust_stock=False)["id"])
        if self.seeder.shipping_tax is not None:  # the shop's setting, read-only in its API
            sim.orders[order_id] = {**sim.orders[order_id], "shipping_tax_percent": self.seeder.shipping_tax}
        return order_id

    def shop_total(self, order_id: str, store: str = "main") -> Decimal:
        return Decimal(str(self.sim(store).orders[order_id]["total_amount"]))

    def one_document_at_the_shops_total(self, order_id: str, store: str = "main") -> bool:
        """Exactly one ERP document for the order, totalling the shop's total within the tolerance every connector
        checks it with (``core.order_totals.TOLERANCE``, 0.01: Tryton rounds each line, e.g. 74.51 for 74.50)."""
        documents = self.documents(order_id, store)
        return len(documents) == 1 and abs(documents[0] - self.shop_total(order_id, store)) <= TOLERANCE

    def reference(self, order_id: str, store: str = "main") -> str:
        return self.stores[store].prefix + order_id

    def documents(self, order_id: str, store: str = "main") -> list[Decimal]:
        """The totals of the ERP documents made for this shop order (one per document)."""
        return self.seeder.documents(self.reference(order_id, store))

    def buyers(self, order_id: str, store: str = "main") -> list[Buyer]:
        """The buyer of each ERP document made for this shop order."""
        return self.seeder.buyers(self.reference(order_id, store))

    def shop_stock(self, sku: str, store: str = "main") -> Any:
        for product in self.sim(store).products.values():
            if product.get("sku") == sku:
                return product.get("stock")
        raise KeyError(sku)

    def run(self, flow: str, store: str = "main", **params: Any) -> RunSummary:
        """Run a flow of a store in this process (never FAILED unless the caller expects it: check the state)."""
        from erpsync.flows.registry import load_flow

        return run_flow(load_flow(flow), flow, store, params)

    def settle_by_hand(self, order_id: str, store: str = "main") -> RunSummary:
        """What a person does with an order held in doubt (docs/smartbill.md, "the in-doubt window"): look for
        its document in the ERP; when there is one, link it; then re-send the order by hand (``resync-order``
        with ``force``), which takes the linked document or creates the missing one."""
        reference = self.reference(order_id, store)
        assert len(self.seeder.documents(reference)) <= 1, f"{reference}: two documents before the person looked"
        self.seeder.link(self.state, store, reference)
        return self.run("resync-order", store, order_id=order_id, force=True)


# --------------------------------------------------------------------------------------------- the ERPs


@dataclass
class TrytonSeeder:
    server: TrytonServer
    session: JsonRpcSession
    name: str = "tryton"
    warehouses: tuple[str, ...] = ("WH", "WH2")
    shop_product: dict[str, Any] = field(default_factory=lambda: {"price_gross": 29.75, "tax_id": 1})  # 25 + 19 %
    shipping_tax: float | None = None
    fault_timeout: float = 3.0  # a sale's create and confirm take a while on a busy machine
    products: dict[str, int] = field(default_factory=dict)

    def erp_section(self, url: str | None, timeout: float | None) -> dict[str, Any]:
        section = tryton_erp(self.server)
        if url is not None:
            section["url"] = url
        if timeout is not None:
            section["timeout_seconds"] = timeout
        return section

    def target(self) -> str:
        return self.server.url

    def proxied_path(self) -> str:
        return ""  # every call is a POST to /<database>/rpc/

    def stocked(self, sku: str, stock: Mapping[str, int]) -> None:
        self.products[sku] = create_stocked_product(self.session, self.server.manifest, sku, dict(stock))

    def product_name(self, sku: str) -> str:
        return f"Produs test {sku}"

    def set_stock(self, sku: str, warehouse: str, quantity: int) -> None:
        """An inventory of the warehouse's storage zone that counts ``quantity`` (Tryton books the difference)."""
        ctx, zone = self.session.context, self.server.manifest["warehouses"][warehouse]["storage"]
        inventory = self.session.call(
            "model.stock.inventory.create",
            [{"location": zone, "lines": [["create", [{"product": self.products[sku], "quantity": float(quantity)}]]]}],
            ctx,
        )[0]
        self.session.call("model.stock.inventory.confirm", [inventory], ctx)

    def documents(self, reference: str) -> list[Decimal]:
        rows = self.session.call(
            "model.sale.sale.search_read",
            [("reference", "=", reference)],
            0,
            None,
            None,
            ["total_amount", "state"],
            self.session.context,
        )
        return [Decimal(str(row["total_amount"])) for row in rows]

    def buyers(self, reference: str) -> list[Buyer]:
        ctx = self.session.context
        sales = self.session.call(
            "model.sale.sale.search_read", [("reference", "=", reference)], 0, None, None, ["party"], ctx
        )
        parties = self.session.call(
            "model.party.party.read", [s["party"] for s in sales], ["name", "identifiers.type", "identifiers.code"], ctx
        )
        # the VAT code only: a company also carries its trade register number (ro_onrc) as an identifier
        return [Buyer(p["name"], vat_identifier(p) or "", str(p["id"])) for p in parties]

    def link(self, state: StateStore, store: str, reference: str) -> bool:
        return False  # Tryton is looked up by reference (orders_read): nothing is ever held in doubt

    def stop(self) -> None:
        pass


@dataclass
class SmartBillSeeder:
    sim: SmartBillSimulator
    server: RunningServer
    name: str = "smartbill"
    warehouses: tuple[str, ...] = (sb.WAREHOUSE, "Magazin")
    shop_product: dict[str, Any] = field(default_factory=lambda: {"price_gross": 121, "tax_id": sb.VAT_21})
    shipping_tax: float | None = 21  # SmartBill no longer has the simulated shop's default 19 %
    fault_timeout: float = 1.5

    def erp_section(self, url: str | None, timeout: float | None) -> dict[str, Any]:
        section: dict[str, Any] = {
            "type": "smartbill",
            "url": f"{url or self.server.url}/SBORO/api",
            "username": sb.USER,
            "token": f"literal:{sb.TOKEN}",
            "cif": sb.CIF,
            "invoice_series": "WEB",
        }
        if timeout is not None:
            section["timeout_seconds"] = timeout
        return section

    def target(self) -> str:
        return self.server.url

    def proxied_path(self) -> str:
        return "/SBORO/api/invoice"

    def stocked(self, sku: str, stock: Mapping[str, int]) -> None:
        for warehouse in self.warehouses:
            self.sim.add_warehouse(warehouse, {sku: stock.get(warehouse, 0)})

    def product_name(self, sku: str) -> str:
        return f"Produs {sku}"

    def set_stock(self, sku: str, warehouse: str, quantity: int) -> None:
        self.sim.warehouses[warehouse][sku].quantity = Decimal(quantity)

    def documents(self, reference: str) -> list[Decimal]:
        mention = f"Comanda online {reference}"
        return [
            i.total
            for i in self.sim.invoices.values()
            if i.mentions == mention and i.storno_of is None and not sb.negative(i)
        ]

    def buyers(self, reference: str) -> list[Buyer]:
        mention = f"Comanda online {reference}"
        return [
            Buyer(str(i.client.get("name") or ""), str(i.client.get("vatCode") or ""))
            for i in self.sim.invoices.values()
            if i.mentions == mention and i.storno_of is None and not sb.negative(i)
        ]

    def link(self, state: StateStore, store: str, reference: str) -> bool:
        from erpsync.connectors.erp.smartbill import StateIssuedRegistry

        mention = f"Comanda online {reference}"
        found = [i.key for i in self.sim.invoices.values() if i.mentions == mention and i.storno_of is None]
        if found:
            StateIssuedRegistry(state, store).put(reference, found[0])
        return bool(found)

    def stop(self) -> None:
        self.server.stop()


def smartbill_seeder() -> SmartBillSeeder:
    sim = SmartBillSimulator(
        cif=sb.CIF, users={sb.USER: sb.TOKEN}, warehouses={w: {} for w in SmartBillSeeder.warehouses}, series=("WEB",)
    )
    return SmartBillSeeder(sim, serve_in_thread(sim))


def oblio_seeder() -> Seeder:
    from tests.flows.erp_matrix_oblio import make_oblio_seeder

    return make_oblio_seeder()


# --------------------------------------------------------------------------------------------- the builder


def stack_factory(
    kind: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Callable[..., ErpUnderTest]]:
    """A factory of ``ErpUnderTest`` of one kind; everything it started is stopped after the test.

    ``make(stores=1 or 2, faults=None, orders=None)``: one store "main", or two ("bucuresti" on the ERP's first
    warehouse with reference prefix ``B-``, "cluj" on its second with ``C-``); ``faults``: the ERP is reached
    through a ``FaultProxy`` playing this plan (switched off: ``erp.proxy.enabled = True`` starts it), with the
    client's timeout at ``seeder.fault_timeout`` and an injected "timeout" stalling 0.3 s longer; ``orders``:
    extra ``[stores.orders]`` keys. The order flows' stock sub-flow is replaced by a recorder.
    """
    started: list[Any] = []
    reset_shared_limiters()

    def make(
        *,
        stores: int = 1,
        faults: Faults | None = None,
        orders: Mapping[str, Any] | None = None,
    ) -> ErpUnderTest:
        seeder: Seeder
        if kind == "tryton":
            server: TrytonServer = request.getfixturevalue("tryton_server")
            session_cm = server.session()
            seeder = TrytonSeeder(server, session_cm.__enter__())
            started.append(lambda: session_cm.__exit__(None, None, None))
        elif kind == "smartbill":
            seeder = smartbill_seeder()
        else:
            seeder = oblio_seeder()
        started.append(seeder.stop)
        names = ["main"] if stores == 1 else ["bucuresti", "cluj"]
        specs = {
            name: StoreSpec(seeder.warehouses[i], "" if stores == 1 else f"{name[0].upper()}-")
            for i, name in enumerate(names)
        }
        shops = {name: start_shop(name) for name in names}
        started.extend(shop.stop for shop in shops.values())
        url, timeout, proxy = None, None, None
        if faults is not None:
            timeout = seeder.fault_timeout
            proxy = FaultProxy(seeder.target(), replace(faults, hang_seconds=timeout + 0.3))
            proxy.enabled = False
            proxy_server = serve_in_thread(proxy)
            started.append(proxy_server.stop)
            url = proxy_server.url
        state_url = f"sqlite:///{tmp_path / 'state.db'}"
        store_keys = {
            name: {
                "warehouses": [spec.warehouse],
                "orders": {"reference_prefix": spec.prefix, **(orders or {})},
            }
            for name, spec in specs.items()
        }
        path = write_config(
            tmp_path / "erpsync.toml",
            erp=seeder.erp_section(url, timeout),
            shops=list(shops.values()),
            state_url=state_url,
            stores=store_keys,
        )
        monkeypatch.setenv("ERPSYNC_CONFIG", str(path))
        monkeypatch.setattr(overrides, "unpaced", True)
        erp = ErpUnderTest(seeder, shops, specs, state_url, proxy)

        def refresh_stock(store: str, skus: set[str]) -> str:
            if skus:
                erp.stock_calls.append((store, set(skus)))
            return ""

        monkeypatch.setattr("erpsync.flows.orders.refresh_stock", refresh_stock)
        monkeypatch.setattr("erpsync.flows.manual.refresh_stock", refresh_stock)
        return erp

    yield make
    for stop in reversed(started):
        stop()
    reset_shared_limiters()


def faults_on_create(erp: ErpUnderTest) -> None:
    """Queue one of each fault the plan draws, so that each is played whatever the draws: a lost reply (the ERP did
    the work, the reply is cut), a 500 and a timeout (the ERP did nothing) — on the next document creates where
    the ERP has a route of its own for them (SmartBill, Oblio); for Tryton (every call goes to /<database>/rpc/)
    on the next ``sale.sale.create`` calls, plus a lost reply of the batch's ``sale.sale.confirm`` (every sale
    of the batch in doubt)."""
    assert erp.proxy is not None and erp.proxy.injector.plan is not None
    plan, path = erp.proxy.injector.plan, erp.seeder.proxied_path() or None
    marker = None if path else "model.sale.sale.create"
    for kind in ("reset_after_write", "error_500", "timeout"):
        erp.proxy.injector.queue(replace(Fault.of_kind(kind, plan), route=path, marker=marker))
    if marker:
        erp.proxy.injector.queue(replace(Fault.of_kind("reset_after_write", plan), marker="model.sale.sale.confirm"))


def completed(summary: RunSummary) -> RunSummary:
    assert summary.state is RunState.COMPLETED, summary.message
    return summary
