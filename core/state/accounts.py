"""Customer accounts: a shop account, the key it is matched by, the ERP party it is linked to, and whether the
link is still open (``customers`` flow; the key -> party link itself is a ``links`` row of entity ``customer``,
shared with the order import)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Row

from erpsync.core.state.base import StateBase
from erpsync.core.state.common import IN_CHUNK, chunks, require_str, utcnow
from erpsync.core.state.schema import CUSTOMER_ACCOUNTS


@dataclasses.dataclass(frozen=True, slots=True)
class CustomerAccount:
    store: str
    shop_id: str
    customer_key: str | None
    erp_id: str | None
    digest: str | None
    closed_at: dt.datetime | None
    updated_at: dt.datetime

    @property
    def open(self) -> bool:
        return self.closed_at is None


def _account(row: Row[Any]) -> CustomerAccount:
    return CustomerAccount(
        row.store, row.shop_id, row.customer_key, row.erp_id, row.digest, row.closed_at, row.updated_at
    )


class AccountsMixin(StateBase):
    """Customer accounts of every store (``StateStore`` methods)."""

    def customer_accounts(self, store: str, shop_ids: Iterable[str] | None = None) -> dict[str, CustomerAccount]:
        """The accounts of a store by shop id: all of them, or the given ones."""
        base = select(CUSTOMER_ACCOUNTS).where(CUSTOMER_ACCOUNTS.c.store == store)
        rows: list[Row[Any]] = []
        with self._read() as conn:
            if shop_ids is None:
                rows = list(conn.execute(base))
            else:
                for chunk in chunks(sorted(set(shop_ids)), IN_CHUNK):
                    rows.extend(conn.execute(base.where(CUSTOMER_ACCOUNTS.c.shop_id.in_(chunk))))
        return {r.shop_id: _account(r) for r in rows}

    def save_customer_account(
        self, store: str, shop_id: str, *, customer_key: str | None, erp_id: str | None, digest: str | None
    ) -> None:
        """Record (or re-open) an account's link and the digest of what was applied to its party."""
        require_str("shop_id", shop_id)
        now = utcnow()
        stmt = self._insert(CUSTOMER_ACCOUNTS).values(
            store=store,
            shop_id=shop_id,
            customer_key=customer_key,
            erp_id=erp_id,
            digest=digest,
            closed_at=None,
            updated_at=now,
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[CUSTOMER_ACCOUNTS.c.store, CUSTOMER_ACCOUNTS.c.shop_id],
            set_={
                "customer_key": stmt.excluded.customer_key,
                "erp_id": stmt.excluded.erp_id,
                "digest": stmt.excluded.digest,
                "closed_at": None,
                "updated_at": now,
            },
        )
        with self._write() as conn:
            conn.execute(stmt)

    def save_customer_accounts(self, store: str, rows: Iterable[tuple[str, str | None, str | None, str | None]]) -> int:
        """Bulk ``save_customer_account``: ``(shop_id, customer_key, erp_id, digest)`` rows, upserted in chunks."""
        latest = {require_str("shop_id", sid): (key, erp_id, digest) for sid, key, erp_id, digest in rows}
        if not latest:
            return 0
        now = utcnow()
        stmt = self._insert(CUSTOMER_ACCOUNTS)
        stmt = stmt.on_conflict_do_update(
            index_elements=[CUSTOMER_ACCOUNTS.c.store, CUSTOMER_ACCOUNTS.c.shop_id],
            set_={
                "customer_key": stmt.excluded.customer_key,
                "erp_id": stmt.excluded.erp_id,
                "digest": stmt.excluded.digest,
                "closed_at": None,
                "updated_at": now,
            },
        )
        params = [
            {
                "store": store,
                "shop_id": sid,
                "customer_key": key,
                "erp_id": erp_id,
                "digest": digest,
                "closed_at": None,
                "updated_at": now,
            }
            for sid, (key, erp_id, digest) in sorted(latest.items())
        ]
        for chunk in chunks(params, IN_CHUNK):
            with self._write() as conn:
                conn.execute(stmt, list(chunk))
        return len(params)

    def close_customer_account(self, store: str, shop_id: str) -> CustomerAccount | None:
        """Close an account's link (deleted or anonymised in the shop); the account as it was, or None."""
        now = utcnow()
        with self._write() as conn:
            row = conn.execute(
                select(CUSTOMER_ACCOUNTS).where(
                    CUSTOMER_ACCOUNTS.c.store == store, CUSTOMER_ACCOUNTS.c.shop_id == shop_id
                )
            ).first()
            if row is None or row.closed_at is not None:
                return None if row is None else _account(row)
            conn.execute(
                update(CUSTOMER_ACCOUNTS)
                .where(CUSTOMER_ACCOUNTS.c.store == store, CUSTOMER_ACCOUNTS.c.shop_id == shop_id)
                .values(closed_at=now, updated_at=now)
            )
            return _account(row)

    def open_accounts_with_key(self, store: str, customer_key: str) -> list[str]:
        """Shop ids of the open accounts matched by this key."""
        with self._read() as conn:
            return list(
                conn.execute(
                    select(CUSTOMER_ACCOUNTS.c.shop_id).where(
                        CUSTOMER_ACCOUNTS.c.store == store,
                        CUSTOMER_ACCOUNTS.c.customer_key == customer_key,
                        CUSTOMER_ACCOUNTS.c.closed_at.is_(None),
                    )
                ).scalars()
            )
