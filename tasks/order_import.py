"""Tasks of the shop -> ERP order stream that import shop orders into the ERP exactly once (the reads are in
``tasks/orders.py``).

Exactly once rests on three things (``docs/orders.md``):

1. the order journal, one row per (store, shop order id), written **before** the ERP is called
   (``attempts`` + 1) and again once the ERP id is known; an entry that was sent (``attempts > 0``) without an
   ERP id is *in doubt* and is looked up in the ERP by its reference (the store's ``reference_prefix`` + the shop
   order id: ``core.order_rules.erp_reference``) before anything else;
   an ERP that cannot look orders up (capability ``orders_read`` off) holds it for a person, unless its create is
   idempotent (``orders_create_idempotent``: Oblio's ``idempotencyKey``) and the order was not cancelled meanwhile,
   when it is simply sent again;
2. a per-order claim (a lease in the state database, ``order:<id>``) taken around the ERP work, so two runs
   that overlap — with or without the run lease — never work on one order at the same time; the journal is
   read again once the claim is held;
3. the ERP's own idempotency on the reference (``create_order`` returns an existing sale).

Per-order isolation (``error_scope``): a refused order (unknown SKU, missing VAT mapping, a country or currency
the ERP lacks, customer data it rejects) goes to ``failures`` (entity ``order``) and the batch goes on; it is
retried by id on the next runs until ``max_attempts``, then held. Transient trouble (the ERP or the shop did
not answer) does not use up attempts, and five in a row stop the batch: the rest waits for the next run.
``FatalError`` (credentials, configuration every order needs) fails the run; the orders booked before it are
already in the journal.

Test hook: with ``ERPSYNC_TEST_EXIT_AFTER_ERP_CREATE=1`` in the environment the process exits at once
(``os._exit(70)``) right after the ERP created an order and before the journal records it — the crash that
exactly-once must survive. Tests only; never set it anywhere else.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from erpsync.connectors.erp.base import MissingInErp, NotSupported, OrderBatchReader
from erpsync.connectors.errors import BadRequestError, FatalError, RecordError, RetriableError
from erpsync.core.customers import key_of
from erpsync.core.models import Customer, Order
from erpsync.core.order_rules import (
    CANCELLED,
    IN_DOUBT_REASON,
    TRANSIENT_PREFIX,
    Action,
    ResumeStep,
    decide_import,
    erp_reference,
    holds_at_once,
    order_digest,
    order_problems,
    order_stamp,
    resume_step,
    to_erp_order,
)
from erpsync.core.state import JournalEntry, LinkConflict
from erpsync.runtime.customer_links import CUSTOMER, link_customer
from erpsync.runtime.failures import describe, record_failure
from erpsync.runtime.leases import holder_id, take_lock
from erpsync.runtime.logs import run_logger
from erpsync.runtime.order_after import AfterOutcome, after_import, record_baseline, settle_payment
from erpsync.runtime.store_runtime import StoreRuntime
from erpsync.tasks.orders import ORDER

log = logging.getLogger("erpsync.orders")
CLAIM_TTL_SECONDS = 300.0
TRANSIENT_BREAKER = 5
CRASH_HOOK_ENV = "ERPSYNC_TEST_EXIT_AFTER_ERP_CREATE"
CRASH_EXIT_CODE = 70


def _logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    return run_logger(log)


@dataclass
class ImportOutcome:
    """What an import batch did, order by order."""

    created: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)  # orders undone in the ERP as a whole
    after: list[dict[str, str]] = field(default_factory=list)  # cancels, returns and edits booked (artifact rows)
    edits_held: list[str] = field(default_factory=list)  # edits the ERP order could not take: a person decides
    unchanged: int = 0
    skipped: int = 0
    held: list[str] = field(default_factory=list)
    busy: list[str] = field(default_factory=list)  # another run holds the order's claim
    failed: list[str] = field(default_factory=list)
    not_reached: list[str] = field(default_factory=list)  # left for the next run (the breaker opened)
    pinned: list[datetime | None] = field(default_factory=list)  # stamps the shop cursor must not pass
    skus: set[str] = field(default_factory=set)  # ERP SKUs of the orders created
    problems: list[dict[str, str]] = field(default_factory=list)  # rows for the run's failures artifact

    def merge(self, other: ImportOutcome) -> ImportOutcome:
        self.created += other.created
        self.cancelled += other.cancelled
        self.after += other.after
        self.edits_held += other.edits_held
        self.unchanged += other.unchanged
        self.skipped += other.skipped
        self.held += other.held
        self.busy += other.busy
        self.failed += other.failed
        self.not_reached += other.not_reached
        self.pinned += other.pinned
        self.skus |= other.skus
        self.problems += other.problems
        return self

    @property
    def breaker_open(self) -> bool:
        return bool(self.not_reached)


class Scope(StrEnum):
    """What an error raised while importing one order concerns (``error_scope``)."""

    ORDER = "order"  # this order alone: it goes to failures (retried, then held), the batch goes on
    TRANSIENT = "transient"  # nobody answered: the order waits (no attempt used up); five in a row stop the batch
    RUN = "run"  # every order would fail the same way (credentials, the shipping product ...): the run fails


def error_scope(error: BaseException) -> Scope:
    """Per-order isolation: which errors fail one order and which fail the run.

    The connectors classify the ERP's refusals (``connectors/erp/base.py``): what concerns one order — an
    unknown or inactive SKU, a country or currency the ERP lacks (Tryton: ``MissingInErp``), customer data
    it rejects — is a ``RecordError``; what concerns every order — credentials, a missing shipping product,
    warehouse or price list, an unsupported call — is a ``FatalError``; an ERP that does not answer is a
    ``RetriableError``. A ``LinkConflict`` (the state's links disagree about this order) is the order's own.
    Anything else is a bug: it fails the run.
    """
    if isinstance(error, RetriableError):
        return Scope.TRANSIENT
    if isinstance(error, RecordError | LinkConflict):
        return Scope.ORDER
    return Scope.RUN


class _Transient(Exception):
    """An order's ERP or shop call failed transiently (the order stays for the next run)."""

    def __init__(self, error: RetriableError) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass
class _Importer:
    """Imports one batch of shop orders for one store (one instance per task run)."""

    runtime: StoreRuntime
    failure_attempts: dict[str, int]
    forced: bool
    pin: bool
    holder: str = field(default_factory=holder_id)
    out: ImportOutcome = field(default_factory=ImportOutcome)
    _vat: set[str] | None = field(default=None, init=False, repr=False)
    # Orders created in the ERP and waiting for the batch's confirmation (an ``OrderBatchReader``), under their
    # claims: (order, ERP id, the order as the ERP got it).
    _waiting: list[tuple[Order, str, Order]] = field(default_factory=list, init=False, repr=False)
    _batched: bool = field(default=False, init=False, repr=False)

    @property
    def name(self) -> str:
        return self.runtime.name

    def _vat_rates(self) -> set[str]:
        """The VAT rates the store maps (``StoreRuntime.tax_table``: read once per run, when an order first needs
        it); a shop that cannot list its taxes leaves the Romanian rates of each order's date (core.vat)."""
        if self._vat is None:
            try:
                self._vat = set(self.runtime.tax_table().by_rate)
            except BadRequestError as error:
                _logger().warning("the shop's tax table cannot be read (%s): legal rates only", error)
                self._vat = set()
        return self._vat

    def run(self, orders: Iterable[Order]) -> ImportOutcome:
        pending = list(orders)
        with self._batch(pending):
            try:
                self._run(pending)
            finally:
                self._complete_waiting()
        return self.out

    def _batch(self, orders: Sequence[Order]) -> AbstractContextManager[None]:
        """The ERP's look-ups for the whole batch in a few calls, where the connector can (``OrderBatchReader``):
        the orders as the ERP gets them, their buyers with the party they are linked to (one state query)."""
        erp = self.runtime.erp
        if not isinstance(erp, OrderBatchReader) or not orders:
            return nullcontext()
        self._batched = True
        erp_orders = [self._erp_order(order) for order in orders]
        keys = {order.shop_id: key_of(order.customer) for order in orders}
        linked = self.runtime.state.erp_ids_of(self.name, CUSTOMER, [k for k in keys.values() if k is not None])
        customers = [o.customer.model_copy(update={"erp_id": linked.get(keys[o.shop_id] or "")}) for o in orders]
        return erp.order_batch(erp_orders, customers)

    def _complete_waiting(self) -> None:
        """Confirm the batch's new ERP orders together, then record each one booked (or why it was refused) and
        release its claim. Until then each is 'sent' in the journal: a crash leaves it in doubt, and the next run
        finds it by its reference and completes it (``_work``)."""
        waiting, self._waiting = self._waiting, []
        if not waiting:
            return
        erp = self.runtime.erp
        assert isinstance(erp, OrderBatchReader)
        try:
            try:
                results = erp.confirm_batch()
            except RetriableError as error:  # in doubt: looked up and completed by the next run
                for order, _, _ in waiting:
                    self._failed(order, error, transient=True)
                return
            for order, erp_id, erp_order in waiting:
                refused = results.get(erp_id)
                try:
                    if refused is None:
                        self._booked(order, erp_id, erp_order)
                    else:
                        self._failed(order, self._reason(order, refused))
                except RetriableError as error:  # the payment's shop or ERP call: the order is booked
                    _logger().warning("order %s: %s", order.shop_id, describe(error))
        finally:
            for order, _, _ in waiting:
                self.runtime.state.unlock(self.name, f"{ORDER}:{order.shop_id}", self.holder)

    def _run(self, pending: list[Order]) -> None:
        transient_in_a_row = 0
        for index, order in enumerate(pending):
            if transient_in_a_row >= TRANSIENT_BREAKER:
                rest = pending[index:]
                self.out.not_reached += [o.shop_id or "?" for o in rest]
                self._pin(*rest)
                _logger().warning(
                    "%d transient failures in a row: %d orders wait for the next run", TRANSIENT_BREAKER, len(rest)
                )
                break
            try:
                self._one(order)
                transient_in_a_row = 0
            except _Transient:
                transient_in_a_row += 1

    def triage(self, orders: Iterable[Order]) -> list[Order]:
        """Settle the orders that need no ERP call (counted in ``out``); return those that may need one."""
        work = []
        for order in orders:
            decision = self._decide(order, self.runtime.state.journal_get(self.name, order.shop_id or ""))
            if decision.action in (Action.UNCHANGED, Action.SEEN, Action.SKIP, Action.HOLD):
                self._settle(order, decision)
            else:
                work.append(order)
        return work

    # -- one order --------------------------------------------------------------------------------------

    def _decide(self, order: Order, entry: JournalEntry | None) -> Any:
        settings = self.runtime.store.orders
        return decide_import(
            order,
            order_digest(order),
            entry,
            self.failure_attempts.get(order.shop_id or "", 0),
            skip_statuses=settings.skip_statuses,
            max_attempts=settings.max_attempts,
            forced=self.forced,
        )

    def _one(self, order: Order) -> None:
        assert order.shop_id is not None
        state, sid = self.runtime.state, order.shop_id
        decision = self._decide(order, state.journal_get(self.name, sid))
        if decision.action in (Action.UNCHANGED, Action.SEEN, Action.SKIP, Action.HOLD):
            self._settle(order, decision)
            return
        # Work that may reach the ERP: under the order's claim, on a journal entry read again under it.
        if not take_lock(state, self.name, f"{ORDER}:{sid}", self.holder, CLAIM_TTL_SECONDS):
            self.out.busy.append(sid)
            self._pin(order)
            return
        try:
            entry = state.journal_get(self.name, sid)
            decision = self._decide(order, entry)
            if decision.action in (Action.UNCHANGED, Action.SEEN, Action.SKIP, Action.HOLD):
                self._settle(order, decision)
            else:
                self._work(order, decision.action, entry)
        except (RecordError, LinkConflict) as error:  # Scope.ORDER
            self._failed(order, self._reason(order, error))
        except RetriableError as error:  # Scope.TRANSIENT
            self._failed(order, error, transient=True)
            raise _Transient(error) from None
        except FatalError as error:  # Scope.RUN: every order would fail the same way
            self._stopped(order, error)
            raise
        finally:
            if not any(waiting.shop_id == sid for waiting, _, _ in self._waiting):  # else released once confirmed
                state.unlock(self.name, f"{ORDER}:{sid}", self.holder)

    def _settle(self, order: Order, decision: Any) -> None:
        """Orders that need no ERP call."""
        sid = order.shop_id or ""
        action = decision.action
        if action is Action.SEEN:
            self.runtime.state.journal_update(
                self.name, sid, digest=order_digest(order), shop_status=order.shipping_status.value
            )
        if action in (Action.UNCHANGED, Action.SEEN):
            self.out.unchanged += 1
        elif action is Action.SKIP:
            self.out.skipped += 1
        else:
            self.out.held.append(sid)

    def _work(self, order: Order, action: Action, entry: JournalEntry | None) -> None:
        """ERP work on an order whose journal ``entry`` was read under its claim (nothing else writes it now)."""
        sid = order.shop_id or ""
        if action is Action.AFTER:
            assert entry is not None and entry.erp_order_id
            self._after(order, entry.erp_order_id)
            return
        problems = order_problems(order, vat_rates=self._vat_rates(), sku_prefix=self.runtime.store.sku_prefix)
        if problems:
            self._failed(order, "; ".join(problems))
            return
        if action is Action.RESUME:
            found = self._find(erp_reference(self.runtime.store.orders.reference_prefix, sid))
            step = resume_step(
                found is not None,
                shop_cancelled=order.shipping_status.value == CANCELLED,
                authoritative=self.runtime.erp.capabilities.orders_read,
                forced=self.forced,
                idempotent=self.runtime.erp.capabilities.orders_create_idempotent,
            )
            if step is ResumeStep.HOLD:
                self._hold(order, IN_DOUBT_REASON)
                return
            if step is ResumeStep.MARK_CANCELLED:
                self.runtime.state.journal_update(
                    self.name,
                    sid,
                    state="cancelled",
                    digest=order_digest(order),
                    shop_status=CANCELLED,
                    last_error=None,
                )
                self._resolved(sid)
                self.out.cancelled.append(sid)
                return
            if step is ResumeStep.AFTER_FOUND:
                assert found is not None
                if self._batched:  # its batch may have stopped before confirming it: create_order completes it
                    found = self.runtime.erp.create_order(self._erp_order(order), self._customer(order))
                self._record_created(order, found)
                self._after(order, found)
                return
        self._create(order, entry)

    def _find(self, reference: str) -> str | None:
        try:
            return self.runtime.erp.find_order(reference)
        except NotSupported:
            return None

    def _erp_order(self, order: Order) -> Order:
        settings = self.runtime.store.orders
        return to_erp_order(
            order,
            sku_prefix=self.runtime.store.sku_prefix,
            payment_methods=settings.payment_methods,
            reference_prefix=settings.reference_prefix,
        )

    def _create(self, order: Order, entry: JournalEntry | None) -> None:
        state, sid = self.runtime.state, order.shop_id or ""
        erp_order = self._erp_order(order)
        customer = self._customer(order)
        if entry is None:
            entry = state.journal_claim(self.name, sid, order_digest(order))
        before = entry.attempts
        # Write-ahead: from here on the order may exist in the ERP; a crash leaves it "sent, outcome unknown".
        state.journal_update(
            self.name,
            sid,
            attempts=before + 1,
            state="pending",
            digest=order_digest(order),
            shop_status=order.shipping_status.value,
        )
        try:
            erp_id = self.runtime.erp.create_order(erp_order, customer)
        except RetriableError as error:
            if error.not_sent:  # provably never reached the ERP
                state.journal_update(self.name, sid, attempts=before)
            raise
        if os.environ.get(CRASH_HOOK_ENV) == "1":
            os._exit(CRASH_EXIT_CODE)
        if self._batched:  # confirmed with the batch (_complete_waiting), recorded then
            self._waiting.append((order, erp_id, erp_order))
            return
        self._booked(order, erp_id, erp_order)

    def _booked(self, order: Order, erp_id: str, erp_order: Order) -> None:
        """The ERP holds the order, complete: journal, link, its payment, its SKUs for the stock sync."""
        sid = order.shop_id or ""
        self._record_created(order, erp_id)
        self.out.created.append(sid)
        paid = AfterOutcome()
        try:
            settle_payment(self.runtime, order, erp_id, paid)
        except RetriableError as error:  # the order is booked; its payment waits for the order's next change
            _logger().warning("order %s: its payment was not booked now: %s", sid, describe(error))
        self.out.after += paid.events
        self.out.skus.update(line.sku for line in erp_order.lines if line.kind == "product")

    def _record_created(self, order: Order, erp_id: str) -> None:
        sid = order.shop_id or ""
        self.runtime.state.journal_update(
            self.name,
            sid,
            state="created",
            erp_order_id=erp_id,
            last_error=None,
            digest=order_digest(order),
            shop_status=order.shipping_status.value,
        )
        self.runtime.state.link(self.name, ORDER, shop_id=sid, erp_id=erp_id)
        if not any(e.kind == "baseline" for e in self.runtime.state.order_events(self.name, sid)):
            record_baseline(self.runtime, order)
        self._resolved(sid)

    def _after(self, order: Order, erp_id: str) -> None:
        """An imported order changed in the shop: cancel, return or edit it in the ERP (``runtime.order_after``)."""
        sid = order.shop_id or ""
        done = after_import(self.runtime, order, erp_id, self._customer)
        self._resolved(sid)
        if done.cancelled:
            self.out.cancelled.append(sid)
        self.out.after += done.events
        self.out.edits_held += done.edits_held
        self.out.skus |= done.skus

    def _customer(self, order: Order) -> Customer:
        """The buyer as the ERP knows it: the same linking as the customers flow (``runtime.customer_links``)."""
        return link_customer(self.runtime.erp, self.runtime.state, self.name, order.customer).customer

    # -- outcomes ---------------------------------------------------------------------------------------

    def _pin(self, *orders: Order) -> None:
        if self.pin:
            self.out.pinned.extend(order_stamp(o) for o in orders)

    def _resolved(self, sid: str) -> None:
        if sid in self.failure_attempts:
            self.runtime.state.resolve_failure(self.name, ORDER, sid)

    def _journal_error(self, sid: str, reason: str, *, failed: bool) -> None:
        """Note the error on the order's journal entry; an order already in the ERP stays ``created``."""
        entry = self.runtime.state.journal_get(self.name, sid)
        if entry is None:
            return
        fields: dict[str, Any] = {"last_error": reason[:2000]}
        if failed and not entry.erp_order_id:
            fields["state"] = "failed"
        self.runtime.state.journal_update(self.name, sid, **fields)

    def _reason(self, order: Order, error: BaseException) -> str:
        """The failure's reason; a record missing in the ERP also says how to retry once it is created."""
        reason = describe(error)
        if isinstance(error, MissingInErp):
            reason += f", then `erpsync failures retry --store {self.name} {order.shop_id}`"
        return reason

    def _stopped(self, order: Order, error: FatalError) -> None:
        """A run-level error: the orders booked before it are in the journal already (each one is recorded as
        soon as the ERP returns its id); this one and the rest wait for a run after the fix."""
        _logger().error(
            "order %s stopped the run (%s); %d order(s) of this batch were booked and recorded before it",
            order.shop_id,
            describe(error),
            len(self.out.created),
        )

    def _hold(self, order: Order, reason: str) -> None:
        """Held for a person: recorded (with the order), never retried automatically, the cursor goes on."""
        sid = order.shop_id or ""
        self._journal_error(sid, reason, failed=True)
        record_failure(self.runtime.state, self.name, ORDER, sid, reason, order.model_dump(mode="json"))
        self.out.held.append(sid)
        self.out.problems.append({"order": sid, "reason": reason})
        _logger().warning("order %s held for a person: %s", sid, reason)

    def _failed(self, order: Order, error: BaseException | str, *, transient: bool = False) -> None:
        sid = order.shop_id or ""
        reason = (TRANSIENT_PREFIX if transient else "") + describe(error)
        if not transient and holds_at_once(reason):  # a total mismatch: a person looks, no retry can change it
            self._hold(order, reason)
            return
        state = self.runtime.state
        self._journal_error(sid, reason, failed=not transient)
        record_failure(state, self.name, ORDER, sid, reason, order.model_dump(mode="json"))
        self.out.failed.append(sid)
        self._pin(order)
        self.out.problems.append({"order": sid, "reason": reason})
        _logger().warning("order %s: %s", sid, reason)


def import_batch(
    runtime: StoreRuntime,
    orders: Sequence[Order],
    failure_attempts: dict[str, int],
    *,
    forced: bool = False,
    pin: bool = True,
) -> ImportOutcome:
    """Import shop orders into the ERP exactly once (plain function: the task below wraps it).

    ``failure_attempts``: the open order failures, shop id -> attempts that count (``open_order_failures``);
    ``forced``: a person's re-send (lifts holds); ``pin``: whether failed orders hold the shop cursor back.
    """
    return _Importer(runtime, failure_attempts, forced, pin).run(orders)


@dataclass
class Triage:
    """The orders of a read that may need the ERP, and what was settled without it."""

    work: list[Order]
    settled: ImportOutcome


def triage_orders_now(
    runtime: StoreRuntime,
    orders: Sequence[Order],
    failure_attempts: dict[str, int],
    *,
    forced: bool = False,
) -> Triage:
    """Journal look-ups only: unchanged, skipped and held orders are settled here, the rest goes to batches."""
    importer = _Importer(runtime, failure_attempts, forced, pin=False)
    work = importer.triage(orders)
    return Triage(work, importer.out)


@task(name="orders-triage", cache_policy=NO_CACHE)
def triage_orders(
    runtime: StoreRuntime,
    orders: list[Order],
    failure_attempts: dict[str, int],
    forced: bool = False,
) -> Triage:
    """Sort the orders read: those that may need the ERP, and those settled without it (no ERP call)."""
    result = triage_orders_now(runtime, orders, failure_attempts, forced=forced)
    _logger().info(
        "%d orders read: %d may need the ERP, %d unchanged, %d skipped, %d held",
        len(orders),
        len(result.work),
        result.settled.unchanged,
        result.settled.skipped,
        len(result.settled.held),
    )
    return result


@task(name="orders-import", cache_policy=NO_CACHE)
def import_orders(
    runtime: StoreRuntime,
    orders: list[Order],
    failure_attempts: dict[str, int],
    forced: bool = False,
    pin: bool = True,
) -> ImportOutcome:
    """Import one batch of shop orders into the ERP (journal, claim, look-up, create)."""
    outcome = import_batch(runtime, orders, failure_attempts, forced=forced, pin=pin)
    _logger().info(
        "batch of %d: %d created, %d changed after import (cancels, returns, edits), %d unchanged, %d skipped, "
        "%d held, %d failed",
        len(orders),
        len(outcome.created),
        len(outcome.after),
        outcome.unchanged,
        outcome.skipped,
        len(outcome.held),
        len(outcome.failed),
    )
    return outcome
