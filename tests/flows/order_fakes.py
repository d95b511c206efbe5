"""An in-memory ERP for the order flow's tests: sales by reference, parties, statuses, channels, injectable
refusals and a slow create (to expose races). Capabilities are chosen per test (e.g. SmartBill-like: no look-up
of orders by reference, only a local registry)."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from erpsync.connectors.erp.base import Capabilities, NotSupported
from erpsync.connectors.errors import RetriableError, record_error
from erpsync.connectors.http import Counters
from erpsync.core.models import Customer, ErpOrderStatus, Order, Page

ORDER_CAPABILITIES = Capabilities(
    customers_find=True,
    customers_create=True,
    orders_create=True,
    orders_read=True,
    orders_read_status=True,
    orders_cancel=True,
)
SMARTBILL_LIKE = Capabilities(orders_create=True, orders_cancel=True, invoices=True)


@dataclass
class Sale:
    erp_id: str
    reference: str | None
    order: Order
    customer_id: str | None
    state: str = "processing"
    channel: str | None = "erpsync"
    invoice: str | None = None
    shipped: bool = False
    delivered: bool = False
    awb: str | None = None
    modified_at: datetime = field(default_factory=lambda: datetime.now(UTC))


class FakeErp:
    """Implements the ``ErpConnector`` order surface in memory (thread-safe; every call counted)."""

    system = "fake"

    def __init__(
        self,
        capabilities: Capabilities = ORDER_CAPABILITIES,
        *,
        known_skus: set[str] | None = None,
        create_delay: float = 0.0,
    ) -> None:
        self.capabilities = capabilities
        self.counters = Counters()
        self.known_skus = known_skus
        self.create_delay = create_delay
        self.sales: dict[str, Sale] = {}
        self.parties: dict[str, Customer] = {}
        self.registry: dict[str, str] = {}  # SmartBill-like local memory of what was issued
        self.refuse: dict[str, str] = {}  # reference -> refusal message (RecordError) while present
        self.transient: dict[str, int] = {}  # reference -> how many more creates fail with a RetriableError
        self.cancel_refused: set[str] = set()
        self.create_calls: list[str] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def _read(self) -> None:
        self.counters.count("read")

    def _write(self) -> None:
        self.counters.count("write")

    def check(self) -> str:
        return "fake ERP"

    def close(self) -> None:
        pass

    # -- customers ---------------------------------------------------------------------------------------
    def find_customer(self, customer: Customer) -> Customer | None:
        self._read()
        for erp_id, party in self.parties.items():
            if (customer.is_company and customer.vat_code and party.vat_code == customer.vat_code) or (
                customer.email and party.email == customer.email
            ):
                return party.model_copy(update={"erp_id": erp_id})
        return None

    def create_customer(self, customer: Customer) -> Customer:
        self._write()
        with self._lock:
            erp_id = f"P{next(self._ids)}"
            self.parties[erp_id] = customer.model_copy(update={"erp_id": erp_id})
        return self.parties[erp_id]

    # -- orders ------------------------------------------------------------------------------------------
    def _by_reference(self, reference: str) -> Sale | None:
        return next((s for s in self.sales.values() if s.reference == reference), None)

    def find_order(self, reference: str) -> str | None:
        if not self.capabilities.orders_read:
            return self.registry.get(reference)  # no call: a local registry, like SmartBill's
        self._read()
        sale = self._by_reference(reference)
        return sale.erp_id if sale else None

    def create_order(self, order: Order, customer: Customer) -> str:
        reference = order.shop_id or ""
        self.create_calls.append(reference)
        self._write()
        if reference in self.refuse:
            raise record_error(self.system, reference, self.refuse[reference])
        if self.transient.get(reference):
            self.transient[reference] -= 1
            raise RetriableError(self.system, f"{reference}: the ERP did not answer")
        unknown = [line.sku for line in order.lines if self.known_skus is not None and line.sku not in self.known_skus]
        if unknown:
            raise record_error(self.system, reference, f"unknown SKU {', '.join(map(repr, unknown))}")
        existing = self._by_reference(reference) if self.capabilities.orders_read else None
        if existing is None and reference in self.registry:
            existing = self.sales[self.registry[reference]]
        if existing is not None:
            return existing.erp_id
        time.sleep(self.create_delay)  # check-then-create, like a real ERP's: racy without a claim
        with self._lock:
            erp_id = str(next(self._ids))
            self.sales[erp_id] = Sale(erp_id, reference, order, customer.erp_id)
            self.registry[reference] = erp_id
        return erp_id

    def cancel_order(self, erp_id: str) -> None:
        self._write()
        if erp_id in self.cancel_refused:
            raise record_error(self.system, erp_id, f"sale {erp_id} is processing: cannot be cancelled")
        self.sales[erp_id].state = "cancelled"
        self.sales[erp_id].modified_at = datetime.now(UTC)

    def order_statuses(self, erp_ids: Sequence[str]) -> list[ErpOrderStatus]:
        self._read()
        out = []
        for erp_id in erp_ids:
            sale = self.sales.get(erp_id)
            if sale is None:
                out.append(ErpOrderStatus(erp_id=erp_id, state="missing"))
                continue
            out.append(
                ErpOrderStatus(
                    erp_id=erp_id,
                    reference=sale.reference,
                    state=sale.state,
                    invoiced=sale.invoice is not None,
                    invoice_number=sale.invoice,
                    shipped=sale.shipped,
                    delivered=sale.delivered,
                    cancelled=sale.state == "cancelled",
                    awb=sale.awb,
                )
            )
        return out

    def iter_orders(self, *, changed_since: datetime | None = None) -> Iterator[Page[Order]]:
        self._read()
        page = Page[Order]()
        for sale in list(self.sales.values()):
            if changed_since is None or sale.modified_at >= changed_since:
                page.items.append(
                    sale.order.model_copy(
                        update={
                            "erp_id": sale.erp_id,
                            "channel": sale.channel,
                            "shop_id": sale.reference if sale.channel == "erpsync" else None,
                            "modified_at": sale.modified_at,
                        }
                    )
                )
        yield page

    def add_channel_order(self, order: Order, channel: str) -> str:
        """An order entered in the ERP from another channel (phone, marketplace ...)."""
        with self._lock:
            erp_id = str(next(self._ids))
            self.sales[erp_id] = Sale(erp_id, None, order, None, state="confirmed", channel=channel)
        return erp_id

    def sales_for(self, reference: str) -> list[Sale]:
        return [s for s in self.sales.values() if s.reference == reference]

    def __getattr__(self, name: str) -> Any:
        if name.startswith(("iter_", "create_", "update_")):

            def unsupported(*_args: Any, **_kwargs: Any) -> Any:
                raise NotSupported(self.system, f"the fake ERP has no {name}")

            return unsupported
        raise AttributeError(name)
