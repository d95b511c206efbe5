"""The state store's schema: one SQLAlchemy 2 declarative model per table, and the tables the store queries.

Alembic (``core/migrations/``) creates exactly this schema; ``tests/state`` checks that the migrated database
equals these models, so a change here needs its hand-written revision (``docs/state.md``).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, ClassVar, cast

from sqlalchemy import (
    Boolean,
    DateTime,
    Dialect,
    Index,
    Integer,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware datetime stored in UTC and returned in UTC on every engine.

    SQLite keeps no offset, so values are converted to UTC before they are written and marked UTC on read.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the state store; use a timezone-aware UTC datetime")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    """Declarative base of the state tables."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {dt.datetime: UTCDateTime(), str: String()}


class LinkRow(Base):
    __tablename__ = "links"
    __table_args__ = (
        UniqueConstraint("store", "entity", "shop_id"),
        UniqueConstraint("store", "entity", "erp_id"),
        Index(None, "store", "entity", "sku"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    store: Mapped[str]
    entity: Mapped[str]
    shop_id: Mapped[str]
    erp_id: Mapped[str]
    sku: Mapped[str | None]
    extra: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]


class CursorRow(Base):
    __tablename__ = "cursors"
    __table_args__ = (PrimaryKeyConstraint("store", "name"),)

    store: Mapped[str]
    name: Mapped[str]
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[dt.datetime]


class PushedRow(Base):
    __tablename__ = "pushed"
    __table_args__ = (PrimaryKeyConstraint("store", "entity", "key"),)

    store: Mapped[str]
    entity: Mapped[str]
    key: Mapped[str]
    hash: Mapped[str | None]
    quantity: Mapped[Decimal | None] = mapped_column(Numeric(18, 4))
    pushed_at: Mapped[dt.datetime]


class JournalRow(Base):
    __tablename__ = "order_journal"
    __table_args__ = (UniqueConstraint("store", "shop_order_id"), Index(None, "store", "state"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    store: Mapped[str]
    shop_order_id: Mapped[str]
    erp_order_id: Mapped[str | None]
    state: Mapped[str]
    digest: Mapped[str | None]
    shop_status: Mapped[str | None]
    erp_status: Mapped[str | None]
    attempts: Mapped[int] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]


class OrderEventRow(Base):
    """What happened to an order after its import, one row per event: its baseline (the content as booked),
    edits, cancellations and returns. ``seq`` numbers an order's events; a pending row is written before the
    ERP is called (write-ahead), so a retry resumes it with the same ``reference`` and never makes a second."""

    __tablename__ = "order_events"
    __table_args__ = (UniqueConstraint("store", "shop_order_id", "seq"), Index(None, "store", "updated_at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    store: Mapped[str]
    shop_order_id: Mapped[str]
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str]
    state: Mapped[str]
    reference: Mapped[str | None]
    lines: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[str | None] = mapped_column(Text)
    erp_id: Mapped[str | None]
    detail: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]


class FailureRow(Base):
    __tablename__ = "failures"
    __table_args__ = (UniqueConstraint("store", "entity", "key"), Index(None, "store", "resolved"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    store: Mapped[str]
    entity: Mapped[str]
    key: Mapped[str]
    error: Mapped[str] = mapped_column(Text)
    payload: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer)
    first_seen: Mapped[dt.datetime]
    last_seen: Mapped[dt.datetime]
    resolved: Mapped[bool] = mapped_column(Boolean)
    resolved_at: Mapped[dt.datetime | None]
    transient: Mapped[bool | None] = mapped_column(Boolean)  # the reason kept is a transient one
    last_error: Mapped[str | None] = mapped_column(Text)  # a later transient error, when a lasting reason is kept
    closed_how: Mapped[str | None]  # went through | resolved | dismissed
    closed_by: Mapped[str | None]  # the person (user@host) who resolved or dismissed it
    close_reason: Mapped[str | None] = mapped_column(Text)


class SnapshotRow(Base):
    __tablename__ = "snapshots"
    __table_args__ = (Index(None, "store", "kind", "accepted_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    store: Mapped[str]
    kind: Mapped[str]
    accepted_at: Mapped[dt.datetime]
    row_count: Mapped[int] = mapped_column(Integer)
    metrics: Mapped[str] = mapped_column(Text)


class RunLockRow(Base):
    __tablename__ = "run_locks"
    __table_args__ = (PrimaryKeyConstraint("store", "flow"),)

    store: Mapped[str]
    flow: Mapped[str]
    holder: Mapped[str]
    acquired_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]


class FileJournalRow(Base):
    """The file ERP's journal: every file taken from the inbox (by content digest: read once) and every file
    written to the outbox (by name: written once), with its outcome."""

    __tablename__ = "file_journal"
    __table_args__ = (UniqueConstraint("direction", "kind", "key"), Index(None, "direction", "kind", "state"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    direction: Mapped[str]  # "in" (inbox) or "out" (outbox)
    kind: Mapped[str]  # "stock", "order" ...
    key: Mapped[str]  # in: the content's sha256; out: the file's name
    name: Mapped[str]
    digest: Mapped[str | None]
    state: Mapped[str]  # in: accepted / rejected; out: writing / written
    rows: Mapped[int] = mapped_column(Integer)
    detail: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]


class CustomerAccountRow(Base):
    """A shop customer account and the ERP party it is linked to (``customers`` flow): its matching key
    (``vat:<CUI>`` / ``email:<address>``, the same key the order import links), the digest of what was last
    applied, and whether the link is closed (the account was deleted or anonymised in the shop)."""

    __tablename__ = "customer_accounts"
    __table_args__ = (PrimaryKeyConstraint("store", "shop_id"), Index(None, "store", "customer_key"))

    store: Mapped[str]
    shop_id: Mapped[str]
    customer_key: Mapped[str | None]
    erp_id: Mapped[str | None]
    digest: Mapped[str | None]
    closed_at: Mapped[dt.datetime | None]
    updated_at: Mapped[dt.datetime]


class MovementRow(Base):
    """One stock quantity erpsync wrote to a shop: the SKU, the absolute quantity (and the one before, when
    known), why (``cause``) and the ERP document behind it (``erp_ref``), the run that wrote it."""

    __tablename__ = "stock_movements"
    __table_args__ = (Index(None, "store", "sku", "at"), Index(None, "at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    store: Mapped[str]
    sku: Mapped[str]
    quantity: Mapped[Decimal] = mapped_column(Numeric(18, 4))
    previous: Mapped[Decimal | None] = mapped_column(Numeric(18, 4))
    cause: Mapped[str]
    erp_ref: Mapped[str | None] = mapped_column(Text)
    run_id: Mapped[str | None]
    at: Mapped[dt.datetime]


LINKS = cast(Table, LinkRow.__table__)
CURSORS = cast(Table, CursorRow.__table__)
PUSHED = cast(Table, PushedRow.__table__)
JOURNAL = cast(Table, JournalRow.__table__)
FAILURES = cast(Table, FailureRow.__table__)
ORDER_EVENTS = cast(Table, OrderEventRow.__table__)
SNAPSHOTS = cast(Table, SnapshotRow.__table__)
RUN_LOCKS = cast(Table, RunLockRow.__table__)
FILE_JOURNAL = cast(Table, FileJournalRow.__table__)
CUSTOMER_ACCOUNTS = cast(Table, CustomerAccountRow.__table__)
MOVEMENTS = cast(Table, MovementRow.__table__)
