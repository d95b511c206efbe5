"""Prefect tasks of the customers stream (shop accounts -> linked ERP parties): read the accounts changed since
the cursor (one task, its pages inside), then apply them in batches (one task per batch, never per account).

Per account (``apply_accounts``): an anonymised or deleted account closes its link and leaves the party alone;
an invalid CUI fails that account alone, before anything is written; an account whose digest (contacts,
identifiers, addresses) is unchanged costs nothing; a new one is linked through ``runtime.customer_links`` (the
same linking as the order import: found by CUI / e-mail, else created); a changed one updates its party (a new
address is added, the old kept). See docs/customers.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from erpsync.connectors.erp.base import CustomerUpdater
from erpsync.connectors.errors import FatalError, RecordError, RetriableError
from erpsync.core.customers import account_digest, customer_problem, key_of
from erpsync.core.models import RowError, ShopCustomer
from erpsync.core.state import CustomerAccount, LinkConflict
from erpsync.runtime.customer_links import CUSTOMER, link_customer
from erpsync.runtime.failures import record_failure, record_row_errors, resolve_failures
from erpsync.runtime.states import retriable_only
from erpsync.runtime.store_runtime import StoreRuntime

ACCOUNTS = "customer"  # failures: shop customer accounts that could not become parties (key = shop account id)
CURSOR = "customers"
BATCH = 500
TRANSIENT_BREAKER = 5


@dataclass
class AccountsRead:
    """Shop accounts read since a moment (the overlap's repeats removed), and the rows that did not parse."""

    accounts: list[ShopCustomer]
    errors: list[RowError]
    pages: int = 0


@task(
    name="read-customers", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=10, retry_condition_fn=retriable_only
)
def read_customers(runtime: StoreRuntime, since: datetime | None) -> AccountsRead:
    """Shop customer accounts changed since ``since`` (every account when None), de-duplicated by id."""
    by_id: dict[str, ShopCustomer] = {}
    errors: list[RowError] = []
    pages = 0
    overlap = runtime.store.customers.overlap_days
    for page in runtime.shop.iter_customer_accounts(since=since, overlap_days=overlap):
        pages += 1
        errors.extend(page.errors)
        for account in page.items:
            by_id[str(account.customer.shop_id)] = account
    return AccountsRead(list(by_id.values()), errors, pages)


@dataclass
class AccountsOutcome:
    """What one batch did, account by account (shop ids)."""

    created: list[str] = field(default_factory=list)
    linked: list[str] = field(default_factory=list)  # matched to a party that existed (CUI / e-mail / link)
    updated: list[str] = field(default_factory=list)
    unchanged: int = 0
    closed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    waiting: list[ShopCustomer] = field(default_factory=list)  # transient trouble: read again next run

    def merge(self, other: AccountsOutcome) -> AccountsOutcome:
        self.created += other.created
        self.linked += other.linked
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.closed += other.closed
        self.failed.update(other.failed)
        self.waiting += other.waiting
        return self


@task(name="apply-customers", cache_policy=NO_CACHE)
def apply_accounts(runtime: StoreRuntime, batch: Sequence[ShopCustomer]) -> AccountsOutcome:
    """Link, create or update the parties of one batch of accounts; a refused account goes to failures."""
    out = AccountsOutcome()
    known = runtime.state.customer_accounts(runtime.name, [str(a.customer.shop_id) for a in batch])
    keys = [k for k in (key_of(a.customer) for a in batch) if k is not None]
    links = runtime.state.erp_ids_of(runtime.name, CUSTOMER, keys)
    saves: list[tuple[str, str | None, str | None, str | None]] = []
    pending: list[tuple[str, str, str | None]] = []
    try:
        _apply_all(runtime, batch, known, (links, pending), saves, out)
    finally:  # what was applied is remembered even when the ERP went away mid-batch
        # a conflict: the party is linked under another key (same e-mail, other CUI): it is used unlinked
        runtime.state.link_many(runtime.name, CUSTOMER, pending)
        runtime.state.save_customer_accounts(runtime.name, saves)
    done = [*out.created, *out.linked, *out.updated, *out.closed]
    resolve_failures(runtime.state, runtime.name, ACCOUNTS, done)
    return out


def _apply_all(
    runtime: StoreRuntime,
    batch: Sequence[ShopCustomer],
    known: dict[str, CustomerAccount],
    links: tuple[dict[str, str], list[tuple[str, str, str | None]]],
    saves: list[tuple[str, str | None, str | None, str | None]],
    out: AccountsOutcome,
) -> None:
    transient = 0
    for index, account in enumerate(batch):
        sid = str(account.customer.shop_id)
        try:
            saved = _apply(runtime, account, known.get(sid), links, out)
            if saved is not None:
                saves.append(saved)
        except RetriableError:
            transient += 1
            out.waiting.append(account)
            if transient >= TRANSIENT_BREAKER:  # the ERP is away: the rest waits for the next run
                out.waiting += batch[index + 1 :]
                break
        except FatalError:
            raise
        except RecordError as error:
            out.failed[sid] = str(error)
            record_failure(runtime.state, runtime.name, ACCOUNTS, sid, error, _payload(account))


def _apply(
    runtime: StoreRuntime,
    account: ShopCustomer,
    known: CustomerAccount | None,
    links: tuple[dict[str, str], list[tuple[str, str, str | None]]],
    out: AccountsOutcome,
) -> tuple[str, str | None, str | None, str | None] | None:
    """Apply one account; the ``customer_accounts`` row to save, or None when there is nothing to save."""
    state, store, erp = runtime.state, runtime.name, runtime.erp
    customer = account.customer
    sid = str(customer.shop_id)
    if account.anonymised:
        closed = state.close_customer_account(store, sid)
        if closed is not None and closed.open and closed.customer_key:
            if not state.open_accounts_with_key(store, closed.customer_key):
                state.unlink(store, CUSTOMER, shop_id=closed.customer_key)
            out.closed.append(sid)
        else:
            out.unchanged += 1
        return None
    problem = customer_problem(customer)
    if problem is not None:
        out.failed[sid] = problem
        record_failure(state, store, ACCOUNTS, sid, f"customer {sid}: {problem}", _payload(account))
        return None
    digest, key = account_digest(customer), key_of(customer)
    if known is not None and known.open and known.digest == digest and known.erp_id:
        out.unchanged += 1
        return None
    if known is not None and known.open and known.erp_id:
        # Linked before: the same party, whatever the account's e-mail or CUI now is.
        customer = customer.model_copy(update={"erp_id": known.erp_id})
        if key is not None and key != known.customer_key:
            _relink(runtime, known, key)
        updater = _updater(runtime)
        if updater is not None and updater.update_customer(customer):
            out.updated.append(sid)
        else:
            out.unchanged += 1
    else:
        linked = link_customer(erp, state, store, customer, links[0], links[1])
        if key is not None and linked.customer.erp_id:
            links[0][key] = linked.customer.erp_id  # a later account of this batch with the same key
        customer = linked.customer
        if linked.how == "created":
            out.created.append(sid)
        else:
            out.linked.append(sid)
            # A party that existed (an order created it, or a person did): give it what the account adds.
            updater = _updater(runtime)
            if customer.erp_id and updater is not None and updater.update_customer(customer):
                out.updated.append(sid)
    return (sid, key, customer.erp_id, digest)


def _updater(runtime: StoreRuntime) -> CustomerUpdater | None:
    """The ERP connector as a ``CustomerUpdater`` when it can update parties (capability ``customers_update``)."""
    erp = runtime.erp
    return erp if isinstance(erp, CustomerUpdater) and erp.capabilities.customers_update else None


def _relink(runtime: StoreRuntime, known: CustomerAccount, key: str) -> None:
    """The account's key changed (new e-mail or CUI): the new key points at the same party."""
    state, store = runtime.state, runtime.name
    old = known.customer_key
    if old and state.open_accounts_with_key(store, old) == [known.shop_id]:
        state.unlink(store, CUSTOMER, shop_id=old)
    if known.erp_id:
        with suppress(LinkConflict):  # the party is linked under another key still in use: keep that one
            state.link(store, CUSTOMER, shop_id=key, erp_id=known.erp_id)


def _payload(account: ShopCustomer) -> dict[str, Any]:
    """What a failures row keeps of an account: the fields the mapping read (no secrets live here)."""
    return account.model_dump(mode="json")


def record_read_errors(runtime: StoreRuntime, errors: Sequence[RowError]) -> None:
    """Accounts that could not be read: one failures row each."""
    record_row_errors(runtime.state, runtime.name, ACCOUNTS, errors)


def batches(accounts: Sequence[ShopCustomer], size: int = BATCH) -> list[list[ShopCustomer]]:
    """Batches of ``size`` accounts: one task run each."""
    return [list(accounts[i : i + size]) for i in range(0, len(accounts), size)]
