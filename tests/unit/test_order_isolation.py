"""Per-order isolation: which errors fail one order and which fail the run (issue 11, part 2).

The classification (``tasks.order_import.error_scope``), the Tryton session's missing configuration records
(``MissingInErp`` for an order, ``FatalError`` otherwise), and the importer over an in-memory ERP that refuses
some orders: a per-order refusal fails that order alone (its reason says what to create and how to retry),
a run-level error stops the batch with the orders booked before it recorded in the journal.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from erpsync.connectors.erp.base import MissingInErp, NotSupported, missing_in_erp
from erpsync.connectors.erp.tryton.session import TrytonSession
from erpsync.connectors.errors import (
    AuthError,
    BadRequestError,
    FatalError,
    RateLimitedError,
    RecordError,
    RetriableError,
    record_error,
)
from erpsync.core.config import Settings
from erpsync.core.models import Customer, Order, OrderLine, ShippingStatus
from erpsync.core.state import LinkConflict, StateStore
from erpsync.runtime.store_runtime import StoreRuntime
from erpsync.tasks.order_import import Scope, error_scope, import_batch
from erpsync.testing.memory_erp import MemoryErp, MemoryErpData

# --------------------------------------------------------------------------- the classification


@pytest.mark.parametrize(
    ("error", "scope"),
    [
        (record_error("tryton", "A-1", "unknown SKU 'X' in Tryton"), Scope.ORDER),
        (missing_in_erp("tryton", "A-1", "country", "MD", "create it"), Scope.ORDER),
        (missing_in_erp("tryton", "A-1", "currency", "USD", "create it"), Scope.ORDER),
        (record_error("tryton", "ana@example.ro", "The VAT code is not valid"), Scope.ORDER),  # customer data
        (LinkConflict("order 1 is linked to another ERP id", []), Scope.ORDER),
        (RetriableError("tryton", "server error (HTTP 502)"), Scope.TRANSIENT),
        (RateLimitedError("smartbill", "429"), Scope.TRANSIENT),
        (AuthError("tryton", "login refused"), Scope.RUN),
        (FatalError("tryton", "the shipping product 'SHIPPING' is not in Tryton"), Scope.RUN),
        (BadRequestError("tryton", "method not exposed"), Scope.RUN),
        (NotSupported("smartbill", "creating customers is not supported"), Scope.RUN),
        (KeyError("bug"), Scope.RUN),
    ],
)
def test_error_scope(error: BaseException, scope: Scope) -> None:
    assert error_scope(error) is scope


def test_missing_in_erp_is_a_record_error_that_names_the_record_and_the_fix() -> None:
    error = missing_in_erp("tryton", "B-7", "country", "MD", "create it under Party > Configuration > Countries")
    assert isinstance(error, RecordError) and not isinstance(error, FatalError)
    assert (error.key, error.what, error.code) == ("B-7", "country", "MD")
    assert str(error) == (
        "tryton: B-7: country 'MD' is not in Tryton: create it under Party > Configuration > Countries"
    )


class FakeRpc:
    """Answers ``search`` from a table of codes; counts the calls."""

    def __init__(self, present: dict[str, int]) -> None:
        self.present = present
        self.calls = 0

    def model(self, model: str, method: str, *params: Any, **_kw: Any) -> Any:
        self.calls += 1
        domain = params[0]
        code = domain[0][2]
        return [self.present[code]] if code in self.present else []


def test_a_configuration_record_missing_for_one_order_is_that_orders_error() -> None:
    rpc = FakeRpc({"RO": 75})
    session = TrytonSession(rpc, page_size=10)  # type: ignore[arg-type]
    domain = [("code", "=", "MD")]
    with pytest.raises(MissingInErp) as caught:
        session.id_of("country.country", "MD", domain, "country", key="ana@example.ro")
    assert "country 'MD' is not in Tryton: create it under Party > Configuration > Countries" in str(caught.value)
    assert "(or load the country module's data)" in str(caught.value)
    with pytest.raises(MissingInErp, match="currency 'USD' is not in Tryton: create it under Currency"):
        session.id_of("currency.currency", "USD", [("code", "=", "USD")], "currency", key="S-1")
    # Without a record to blame (a lookup every record needs) it stays a run-level error.
    with pytest.raises(FatalError, match="country 'MD' not found in Tryton"):
        session.id_of("country.country", "MD", domain, "country")
    # A missing record is asked for again (a person may create it); a found one is cached.
    rpc.present["MD"] = 99
    assert session.id_of("country.country", "MD", domain, "country", key="x") == 99
    calls = rpc.calls
    assert session.id_of("country.country", "MD", domain, "country", key="x") == 99
    assert rpc.calls == calls


# --------------------------------------------------------------------------- the importer


class RefusingErp(MemoryErp):
    """The in-memory ERP, with errors raised for chosen order references (before anything is booked)."""

    def __init__(self, errors: dict[str, Exception]) -> None:
        super().__init__(MemoryErpData(known_skus=None))
        self.errors = errors

    def create_order(self, order: Order, customer: Customer) -> str:
        error = self.errors.get(order.reference or "")
        if error is not None:
            raise error
        return super().create_order(order, customer)


def _runtime(tmp_path: Path, erp: MemoryErp) -> StoreRuntime:
    settings = Settings.model_validate(
        {
            "state": {"url": f"sqlite:///{tmp_path / 'state.db'}"},
            "erp": {"type": "tryton", "database": "x", "password": "literal:pw"},
            "stores": [
                {
                    "name": "main",
                    "url": "https://shop.example.ro",
                    "api_key": "k",
                    "api_secret": "literal:s",
                    "products": {"vat_taxes": {"19": 1}},
                }
            ],
        }
    )
    state = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
    return StoreRuntime(settings, settings.stores[0], state, shop=None, erp=erp)  # type: ignore[arg-type]


def _order(shop_id: str) -> Order:
    return Order.model_validate(
        {
            "shop_id": shop_id,
            "customer": Customer(email=f"buyer-{shop_id}@example.ro", name="Ana"),
            "lines": [
                OrderLine(sku="SKU-1", quantity=Decimal(1), unit_price_gross=Decimal("23.80"), vat_rate=Decimal("19"))
            ],
            "shipping_status": ShippingStatus("awaiting"),
        }
    )


def test_an_order_billed_to_a_missing_country_fails_alone_and_says_how_to_retry(tmp_path: Path) -> None:
    erp = RefusingErp({"2": missing_in_erp("tryton", "2", "country", "MD", "create it under Countries")})
    runtime = _runtime(tmp_path, erp)
    outcome = import_batch(runtime, [_order("1"), _order("2"), _order("3")], {})
    assert outcome.created == ["1", "3"] and outcome.failed == ["2"]
    [failure] = runtime.state.open_failures("main", "order")
    assert failure.key == "2" and failure.attempts == 1
    assert failure.error == (
        "tryton: 2: country 'MD' is not in Tryton: create it under Countries, "
        "then `erpsync failures retry --store main 2`"
    )
    entry = runtime.state.journal_get("main", "2")
    assert entry is not None and entry.state == "failed" and entry.erp_order_id is None


def test_a_run_level_error_stops_the_batch_after_recording_the_orders_booked_before_it(tmp_path: Path) -> None:
    erp = RefusingErp({"2": FatalError("tryton", "the shipping product 'SHIPPING' is not in Tryton")})
    runtime = _runtime(tmp_path, erp)
    with pytest.raises(FatalError, match="shipping product"):
        import_batch(runtime, [_order("1"), _order("2"), _order("3")], {})
    booked = runtime.state.journal_get("main", "1")
    assert booked is not None and booked.state == "created" and booked.erp_order_id
    assert runtime.state.find_link("main", "order", shop_id="1") is not None
    assert runtime.state.journal_get("main", "3") is None  # never reached: the next run takes it
    assert erp.data.create_calls == ["1"]
    # The next run (shipping product created) books the rest; the first one is not sent again.
    erp.errors.clear()
    outcome = import_batch(runtime, [_order("1"), _order("2"), _order("3")], {})
    assert sorted(outcome.created) == ["2", "3"] and outcome.unchanged == 1
    assert sorted(erp.data.create_calls) == ["1", "2", "3"]
