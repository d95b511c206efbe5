"""The state store: links, cursors, pushed state, order journal, failures, snapshots and run locks.

One SQLAlchemy 2 schema, migrated to head by Alembic whenever a store is opened; SQLite by default,
PostgreSQL by URL. Every public method runs in its own short transaction and returns frozen dataclasses,
never ORM objects. Uniqueness (links, journal, failures) is enforced by the database: writes are
``INSERT ... ON CONFLICT`` followed by a read, never a look-up-then-insert.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, cast

from pydantic import BaseModel
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
    create_engine,
    delete,
    event,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Connection, Engine, Row, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.pool import StaticPool

if TYPE_CHECKING:
    from alembic.config import Config

DEFAULT_STATE_URL = "sqlite:///.erpsync/state.db"
MIGRATIONS_DIR = Path(__file__).with_name("migrations")
JOURNAL_STATES = frozenset({"pending", "created", "failed", "skipped", "cancelled"})
JOURNAL_FIELDS = frozenset({"erp_order_id", "state", "digest", "shop_status", "erp_status", "attempts", "last_error"})

SQLITE_BUSY_TIMEOUT_S = 60.0
PUSHED_CHUNK = 5_000  # rows per write transaction: short enough to let other SQLite writers in between
IN_CHUNK = 500  # keys per IN (...) list
_READ_ONLY = "erpsync_read_only"  # execution option: open a SQLite read transaction with a plain BEGIN


def default_state_url() -> str:
    """The embedded default: a SQLite file under ``.erpsync/`` in the working folder."""
    return DEFAULT_STATE_URL


class StateError(Exception):
    """The state store refused an operation or could not reach its database."""


class LinkConflict(StateError):
    """A shop id or ERP id is already linked to a different partner."""

    def __init__(self, message: str, existing: Sequence[Link]) -> None:
        super().__init__(message)
        self.existing = tuple(existing)


# ---------------------------------------------------------------------------------------------------------
# Schema
# ---------------------------------------------------------------------------------------------------------

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


LINKS = cast(Table, LinkRow.__table__)
CURSORS = cast(Table, CursorRow.__table__)
PUSHED = cast(Table, PushedRow.__table__)
JOURNAL = cast(Table, JournalRow.__table__)
FAILURES = cast(Table, FailureRow.__table__)
SNAPSHOTS = cast(Table, SnapshotRow.__table__)
RUN_LOCKS = cast(Table, RunLockRow.__table__)


# ---------------------------------------------------------------------------------------------------------
# Records returned to callers
# ---------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Link:
    id: int
    store: str
    entity: str
    shop_id: str
    erp_id: str
    sku: str | None
    extra: dict[str, Any] | None
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclasses.dataclass(frozen=True, slots=True)
class Pushed:
    key: str
    hash: str | None
    quantity: Decimal | None
    pushed_at: dt.datetime


@dataclasses.dataclass(frozen=True, slots=True)
class JournalEntry:
    id: int
    store: str
    shop_order_id: str
    erp_order_id: str | None
    state: str
    digest: str | None
    shop_status: str | None
    erp_status: str | None
    attempts: int
    last_error: str | None
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclasses.dataclass(frozen=True, slots=True)
class Failure:
    id: int
    store: str
    entity: str
    key: str
    error: str
    payload: Any
    attempts: int
    first_seen: dt.datetime
    last_seen: dt.datetime
    resolved: bool
    resolved_at: dt.datetime | None


@dataclasses.dataclass(frozen=True, slots=True)
class Snapshot:
    id: int
    store: str
    kind: str
    accepted_at: dt.datetime
    row_count: int
    metrics: dict[str, Any]


def _link(row: Row[Any]) -> Link:
    return Link(
        id=row.id,
        store=row.store,
        entity=row.entity,
        shop_id=row.shop_id,
        erp_id=row.erp_id,
        sku=row.sku,
        extra=_loads(row.extra),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _journal(row: Row[Any]) -> JournalEntry:
    return JournalEntry(**{f.name: getattr(row, f.name) for f in dataclasses.fields(JournalEntry)})


def _failure(row: Row[Any]) -> Failure:
    values = {f.name: getattr(row, f.name) for f in dataclasses.fields(Failure)}
    values["payload"] = _loads(row.payload)
    values["resolved"] = bool(row.resolved)
    return Failure(**values)


def _snapshot(row: Row[Any]) -> Snapshot:
    return Snapshot(
        id=row.id,
        store=row.store,
        kind=row.kind,
        accepted_at=row.accepted_at,
        row_count=row.row_count,
        metrics=_loads(row.metrics) or {},
    )


# ---------------------------------------------------------------------------------------------------------
# JSON
# ---------------------------------------------------------------------------------------------------------


def json_default(value: object) -> Any:
    """``json.dumps`` default: Decimal (as an exact string), datetime/date/time, pydantic models, and friends."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _lenient_default(value: object) -> Any:
    try:
        return json_default(value)
    except TypeError:
        return repr(value)


def dumps(value: object, *, lenient: bool = False) -> str:
    """Serialise a value to compact JSON text with ``json_default`` (``lenient``: repr what it cannot)."""
    return json.dumps(value, default=_lenient_default if lenient else json_default, ensure_ascii=False)


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _require_str(name: str, value: object) -> str:
    # Ids are strings ("95750870.3"): a float or int here is the bug that corrupts order ids.
    if not isinstance(value, str) or not value:
        raise TypeError(f"{name} must be a non-empty str, got {type(value).__name__} {value!r}")
    return value


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# ---------------------------------------------------------------------------------------------------------
# Engines and migrations
# ---------------------------------------------------------------------------------------------------------


def safe_url(url: str | URL) -> str:
    """The URL as text with its password masked, fit for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable database URL>"


def _is_memory_sqlite(url: URL) -> bool:
    database = url.database or ""
    return database in ("", ":memory:") or (database.startswith("file:") and "mode=memory" in database)


def create_state_engine(url: str | URL) -> Engine:
    """An engine configured for the state store (SQLite: WAL, busy timeout, BEGIN IMMEDIATE for writes)."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        return create_engine(parsed, pool_pre_ping=True)
    if backend != "sqlite":
        raise StateError(f"unsupported state database {safe_url(parsed)}: use sqlite or postgresql")

    memory = _is_memory_sqlite(parsed)
    if memory:
        engine = create_engine(parsed, poolclass=StaticPool, connect_args={"check_same_thread": False})
    else:
        database = parsed.database or ""
        if not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_S})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from pysqlite so that the "begin" hook below decides how to BEGIN.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
            if not memory:
                cursor.execute("PRAGMA journal_mode = WAL")
                cursor.execute("PRAGMA synchronous = NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # IMMEDIATE takes the write lock up front, so concurrent writers queue on the busy timeout instead of
        # failing with "database is locked" when a read transaction tries to upgrade to a write.
        read_only = connection.get_execution_options().get(_READ_ONLY, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


def alembic_config(connection: Connection | None = None, url: str | None = None) -> Config:
    """An Alembic config built in code: migrations from the package folder, on a connection or a URL."""
    from alembic.config import Config  # Alembic costs ~0.5 s to import: only when migrating

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["connection"] = connection
    return config


# Alembic keeps the running migration in a module-global proxy (alembic.context): one at a time per process.
# Across processes, SQLite's BEGIN IMMEDIATE and a PostgreSQL advisory lock (env.py) serialise them.
_MIGRATE_LOCK = threading.Lock()


def migrate(engine: Engine) -> None:
    """Upgrade the schema to the head revision (a no-op when it is already there)."""
    from alembic import command

    with _MIGRATE_LOCK, engine.begin() as connection:
        command.upgrade(alembic_config(connection), "head")


def _describe(exc: BaseException, url: URL) -> str:
    cause = getattr(exc, "orig", None) or exc
    text = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
    if url.password:
        text = text.replace(str(url.password), "***")
    return f"{type(cause).__name__}: {text}"


# ---------------------------------------------------------------------------------------------------------
# The store
# ---------------------------------------------------------------------------------------------------------


class StateStore:
    """Links, cursors, pushed state, order journal, failures, snapshots and run locks of every store."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._dialect = engine.dialect.name
        # One shared in-memory SQLite connection cannot hold two transactions at once: serialise them here.
        memory = self._dialect == "sqlite" and _is_memory_sqlite(engine.url)
        self._mutex: AbstractContextManager[Any] = threading.RLock() if memory else nullcontext()

    @classmethod
    def open(cls, url: str) -> StateStore:
        """Create the engine, migrate the schema to head and return the store."""
        try:
            parsed = make_url(url)
        except ArgumentError:
            raise StateError(f"invalid state database URL {safe_url(url)}") from None
        engine: Engine | None = None
        try:
            engine = create_state_engine(parsed)
            migrate(engine)
        except (SQLAlchemyError, OSError) as exc:
            if engine is not None:
                engine.dispose()
            raise StateError(f"cannot open the state database {safe_url(parsed)}: {_describe(exc, parsed)}") from None
        return cls(engine)

    def close(self) -> None:
        """Release every pooled connection."""
        self.engine.dispose()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"StateStore({safe_url(self.engine.url)!r})"

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self._mutex, self.engine.begin() as connection:
            yield connection

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self._mutex, self.engine.connect() as connection:
            connection.execution_options(**{_READ_ONLY: True})
            with connection.begin():
                yield connection

    def _insert(self, table: Table) -> sqlite.Insert | postgresql.Insert:
        return postgresql.insert(table) if self._dialect == "postgresql" else sqlite.insert(table)

    # -- links ----------------------------------------------------------------------------------------------

    def link(
        self,
        store: str,
        entity: str,
        *,
        shop_id: str,
        erp_id: str,
        sku: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> Link:
        """Link a shop id to an ERP id (idempotent); raise ``LinkConflict`` if either has another partner.

        When the pair already exists, a given ``sku`` or ``extra`` that differs from the stored one replaces it.
        """
        _require_str("shop_id", shop_id)
        _require_str("erp_id", erp_id)
        extra_text = None if extra is None else dumps(extra)
        scope = (LINKS.c.store == store, LINKS.c.entity == entity)
        for _ in range(5):
            now = _utcnow()
            with self._write() as conn:
                conn.execute(
                    self._insert(LINKS)
                    .values(
                        store=store,
                        entity=entity,
                        shop_id=shop_id,
                        erp_id=erp_id,
                        sku=sku,
                        extra=extra_text,
                        created_at=now,
                        updated_at=now,
                    )
                    .on_conflict_do_nothing()
                )
                rows = conn.execute(
                    select(LINKS)
                    .where(*scope, or_(LINKS.c.shop_id == shop_id, LINKS.c.erp_id == erp_id))
                    .order_by(LINKS.c.id)
                ).all()
                exact = next((r for r in rows if r.shop_id == shop_id and r.erp_id == erp_id), None)
                if exact is not None:
                    changes: dict[str, Any] = {}
                    if sku is not None and exact.sku != sku:
                        changes["sku"] = sku
                    if extra is not None and exact.extra != extra_text:
                        changes["extra"] = extra_text
                    if not changes:
                        return _link(exact)
                    conn.execute(update(LINKS).where(LINKS.c.id == exact.id).values(**changes, updated_at=now))
                    return _link(conn.execute(select(LINKS).where(LINKS.c.id == exact.id)).one())
                if rows:
                    raise self._conflict(entity, store, shop_id, erp_id, [_link(r) for r in rows])
            # Neither id is linked although the insert was refused: a concurrent unlink won; try again.
        raise StateError(f"could not link {entity} shop_id {shop_id!r} to erp_id {erp_id!r}: retries exhausted")

    def link_many(
        self, store: str, entity: str, pairs: Iterable[tuple[str, str, str | None]]
    ) -> dict[tuple[str, str], LinkConflict]:
        """Link many ``(shop_id, erp_id, sku)`` pairs, in chunks; returns the conflicts by (shop_id, erp_id).

        Bulk form of ``link`` (same rules, minus ``extra``): pairs already linked keep their row (a different
        ``sku`` replaces the stored one); new pairs are inserted together; a pair whose shop id or ERP id has
        another partner is not linked and comes back as a ``LinkConflict``.
        """
        wanted: dict[tuple[str, str], str | None] = {}
        for shop_id, erp_id, sku in pairs:
            wanted[(_require_str("shop_id", shop_id), _require_str("erp_id", erp_id))] = sku
        conflicts: dict[tuple[str, str], LinkConflict] = {}
        raced: list[tuple[str, str, str | None]] = []
        scope = (LINKS.c.store == store, LINKS.c.entity == entity)
        for chunk in _chunks(list(wanted.items()), IN_CHUNK):
            shop_ids = [shop_id for (shop_id, _), _sku in chunk]
            erp_ids = [erp_id for (_, erp_id), _sku in chunk]
            now = _utcnow()
            with self._write() as conn:
                conn.execute(
                    self._insert(LINKS).on_conflict_do_nothing(),
                    [
                        {
                            "store": store,
                            "entity": entity,
                            "shop_id": shop_id,
                            "erp_id": erp_id,
                            "sku": sku,
                            "extra": None,
                            "created_at": now,
                            "updated_at": now,
                        }
                        for (shop_id, erp_id), sku in chunk
                    ],
                )
                rows = conn.execute(
                    select(LINKS).where(*scope, or_(LINKS.c.shop_id.in_(shop_ids), LINKS.c.erp_id.in_(erp_ids)))
                ).all()
                by_pair = {(r.shop_id, r.erp_id): r for r in rows}
                for (shop_id, erp_id), sku in chunk:
                    exact = by_pair.get((shop_id, erp_id))
                    if exact is None:
                        others = [_link(r) for r in rows if r.shop_id == shop_id or r.erp_id == erp_id]
                        if others:
                            conflicts[(shop_id, erp_id)] = self._conflict(entity, store, shop_id, erp_id, others)
                        else:  # refused, yet neither id is linked: a concurrent unlink won; see link()
                            raced.append((shop_id, erp_id, sku))
                    elif sku is not None and exact.sku != sku:
                        conn.execute(update(LINKS).where(LINKS.c.id == exact.id).values(sku=sku, updated_at=now))
        for shop_id, erp_id, sku in raced:
            try:
                self.link(store, entity, shop_id=shop_id, erp_id=erp_id, sku=sku)
            except LinkConflict as conflict:
                conflicts[(shop_id, erp_id)] = conflict
        return conflicts

    @staticmethod
    def _conflict(entity: str, store: str, shop_id: str, erp_id: str, existing: list[Link]) -> LinkConflict:
        parts = []
        for other in existing:
            if other.shop_id == shop_id:
                parts.append(f"shop_id {shop_id!r} is already linked to erp_id {other.erp_id!r}")
            if other.erp_id == erp_id:
                parts.append(f"erp_id {erp_id!r} is already linked to shop_id {other.shop_id!r}")
        message = f"cannot link {entity} shop_id {shop_id!r} to erp_id {erp_id!r} in store {store!r}: " + "; ".join(
            parts
        )
        return LinkConflict(message, existing)

    def find_link(
        self,
        store: str,
        entity: str,
        *,
        shop_id: str | None = None,
        erp_id: str | None = None,
        sku: str | None = None,
    ) -> Link | None:
        """The link matching every given id (the oldest one when a SKU is shared), or None."""
        conditions = [LINKS.c.store == store, LINKS.c.entity == entity]
        for column, value in (("shop_id", shop_id), ("erp_id", erp_id), ("sku", sku)):
            if value is not None:
                conditions.append(LINKS.c[column] == value)
        if len(conditions) == 2:
            raise ValueError("find_link needs shop_id, erp_id or sku")
        with self._read() as conn:
            row = conn.execute(select(LINKS).where(*conditions).order_by(LINKS.c.id).limit(1)).first()
        return None if row is None else _link(row)

    def links(self, store: str, entity: str) -> list[Link]:
        """Every link of one entity in one store, oldest first."""
        with self._read() as conn:
            rows = conn.execute(
                select(LINKS).where(LINKS.c.store == store, LINKS.c.entity == entity).order_by(LINKS.c.id)
            ).all()
        return [_link(r) for r in rows]

    def unlink(self, store: str, entity: str, *, shop_id: str | None = None, erp_id: str | None = None) -> bool:
        """Remove the link matching the given id(s); True if one was removed."""
        conditions = [LINKS.c.store == store, LINKS.c.entity == entity]
        if shop_id is not None:
            conditions.append(LINKS.c.shop_id == shop_id)
        if erp_id is not None:
            conditions.append(LINKS.c.erp_id == erp_id)
        if len(conditions) == 2:
            raise ValueError("unlink needs shop_id or erp_id")
        with self._write() as conn:
            return conn.execute(delete(LINKS).where(*conditions)).rowcount > 0

    # -- cursors --------------------------------------------------------------------------------------------

    def get_cursor(self, store: str, name: str) -> str | None:
        """The stored value of a cursor, or None."""
        with self._read() as conn:
            return conn.execute(
                select(CURSORS.c.value).where(CURSORS.c.store == store, CURSORS.c.name == name)
            ).scalar_one_or_none()

    def set_cursor(self, store: str, name: str, value: str) -> None:
        """Store a cursor value (callers store ISO-8601 UTC)."""
        if not isinstance(value, str):
            raise TypeError(f"cursor value must be a str, got {type(value).__name__}")
        stmt = self._insert(CURSORS).values(store=store, name=name, value=value, updated_at=_utcnow())
        stmt = stmt.on_conflict_do_update(
            index_elements=[CURSORS.c.store, CURSORS.c.name],
            set_={"value": stmt.excluded.value, "updated_at": stmt.excluded.updated_at},
        )
        with self._write() as conn:
            conn.execute(stmt)

    # -- pushed state ---------------------------------------------------------------------------------------

    def get_pushed(self, store: str, entity: str, keys: Iterable[str] | None = None) -> dict[str, Pushed]:
        """What was last pushed, by key: every key of the entity, or only the given ones."""
        columns = (PUSHED.c.key, PUSHED.c.hash, PUSHED.c.quantity, PUSHED.c.pushed_at)
        base = select(*columns).where(PUSHED.c.store == store, PUSHED.c.entity == entity)
        wanted = None if keys is None else sorted(set(keys))
        rows: list[Row[Any]] = []
        with self._read() as conn:
            if wanted is None or len(wanted) > 20 * IN_CHUNK:
                rows = list(conn.execute(base))  # one scan beats hundreds of IN lists
            else:
                for chunk in _chunks(wanted, IN_CHUNK):
                    rows.extend(conn.execute(base.where(PUSHED.c.key.in_(chunk))))
        only = None if wanted is None else set(wanted)
        return {r.key: Pushed(r.key, r.hash, r.quantity, r.pushed_at) for r in rows if only is None or r.key in only}

    def set_pushed(self, store: str, entity: str, rows: Iterable[tuple[str, str | None, Decimal | None]]) -> int:
        """Upsert (key, hash, quantity) rows in chunks, stamped now; the last row of a repeated key wins."""
        latest: dict[str, tuple[str | None, Decimal | None]] = {}
        for key, digest, quantity in rows:
            latest[_require_str("key", key)] = (digest, quantity)
        if not latest:
            return 0
        now = _utcnow()
        stmt = self._insert(PUSHED)
        stmt = stmt.on_conflict_do_update(
            index_elements=[PUSHED.c.store, PUSHED.c.entity, PUSHED.c.key],
            set_={
                "hash": stmt.excluded.hash,
                "quantity": stmt.excluded.quantity,
                "pushed_at": stmt.excluded.pushed_at,
            },
        )
        # Sorted keys: concurrent upserts on PostgreSQL then lock rows in the same order (no deadlock).
        params = [
            {"store": store, "entity": entity, "key": k, "hash": h, "quantity": q, "pushed_at": now}
            for k, (h, q) in sorted(latest.items())
        ]
        for chunk in _chunks(params, PUSHED_CHUNK):
            with self._write() as conn:
                conn.execute(stmt, list(chunk))
        return len(params)

    def delete_pushed(self, store: str, entity: str, keys: Iterable[str]) -> int:
        """Forget the pushed state of the given keys; the number of rows removed."""
        removed = 0
        for chunk in _chunks(sorted(set(keys)), IN_CHUNK):
            with self._write() as conn:
                removed += conn.execute(
                    delete(PUSHED).where(PUSHED.c.store == store, PUSHED.c.entity == entity, PUSHED.c.key.in_(chunk))
                ).rowcount
        return removed

    # -- order journal --------------------------------------------------------------------------------------

    def _journal_row(self, conn: Connection, store: str, shop_order_id: str) -> Row[Any] | None:
        return conn.execute(
            select(JOURNAL).where(JOURNAL.c.store == store, JOURNAL.c.shop_order_id == shop_order_id)
        ).first()

    def journal_get(self, store: str, shop_order_id: str) -> JournalEntry | None:
        """The journal entry of a shop order, or None."""
        with self._read() as conn:
            row = self._journal_row(conn, store, _require_str("shop_order_id", shop_order_id))
        return None if row is None else _journal(row)

    def journal_claim(self, store: str, shop_order_id: str, digest: str | None) -> JournalEntry:
        """Insert a pending entry for the order unless one exists; return the entry that is there."""
        _require_str("shop_order_id", shop_order_id)
        now = _utcnow()
        with self._write() as conn:
            conn.execute(
                self._insert(JOURNAL)
                .values(
                    store=store,
                    shop_order_id=shop_order_id,
                    state="pending",
                    digest=digest,
                    attempts=0,
                    created_at=now,
                    updated_at=now,
                )
                .on_conflict_do_nothing(index_elements=[JOURNAL.c.store, JOURNAL.c.shop_order_id])
            )
            row = self._journal_row(conn, store, shop_order_id)
        if row is None:  # only if deleted between the two statements, which nothing in erpsync does
            raise StateError(f"journal entry for order {shop_order_id!r} vanished while claiming it")
        return _journal(row)

    def journal_update(self, store: str, shop_order_id: str, **fields: Any) -> JournalEntry:
        """Change fields of an existing entry (erp_order_id, state, digest, statuses, attempts, last_error)."""
        _require_str("shop_order_id", shop_order_id)
        unknown = set(fields) - JOURNAL_FIELDS
        if unknown:
            raise ValueError(f"unknown journal field(s): {', '.join(sorted(unknown))}")
        if "state" in fields and fields["state"] not in JOURNAL_STATES:
            raise ValueError(f"journal state must be one of {sorted(JOURNAL_STATES)}, got {fields['state']!r}")
        if "attempts" in fields and (not isinstance(fields["attempts"], int) or fields["attempts"] < 0):
            raise ValueError(f"attempts must be a non-negative int, got {fields['attempts']!r}")
        with self._write() as conn:
            result = conn.execute(
                update(JOURNAL)
                .where(JOURNAL.c.store == store, JOURNAL.c.shop_order_id == shop_order_id)
                .values(**fields, updated_at=_utcnow())
            )
            if result.rowcount == 0:
                raise StateError(f"no journal entry for order {shop_order_id!r} in store {store!r}")
            row = self._journal_row(conn, store, shop_order_id)
        assert row is not None
        return _journal(row)

    def journal_entries(self, store: str, states: Iterable[str] | None = None) -> list[JournalEntry]:
        """The journal of a store (optionally only some states), oldest first."""
        query = select(JOURNAL).where(JOURNAL.c.store == store).order_by(JOURNAL.c.id)
        if states is not None:
            query = query.where(JOURNAL.c.state.in_(list(states)))
        with self._read() as conn:
            return [_journal(r) for r in conn.execute(query)]

    # -- failures -------------------------------------------------------------------------------------------

    def _failure_row(self, conn: Connection, store: str, entity: str, key: str) -> Row[Any] | None:
        return conn.execute(
            select(FAILURES).where(FAILURES.c.store == store, FAILURES.c.entity == entity, FAILURES.c.key == key)
        ).first()

    def record_failure(self, store: str, entity: str, key: str, error: str, payload: object | None = None) -> Failure:
        """Record a per-record failure; again for the same key: attempts + 1, last_seen now, reopened."""
        _require_str("key", key)
        now = _utcnow()
        stmt = self._insert(FAILURES).values(
            store=store,
            entity=entity,
            key=key,
            error=error,
            payload=dumps(payload, lenient=True),
            attempts=1,
            first_seen=now,
            last_seen=now,
            resolved=False,
            resolved_at=None,
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[FAILURES.c.store, FAILURES.c.entity, FAILURES.c.key],
            set_={
                "error": stmt.excluded.error,
                "payload": stmt.excluded.payload,
                "attempts": FAILURES.c.attempts + 1,
                "last_seen": stmt.excluded.last_seen,
                "resolved": False,
                "resolved_at": None,
            },
        )
        with self._write() as conn:
            conn.execute(stmt)
            row = self._failure_row(conn, store, entity, key)
        assert row is not None
        return _failure(row)

    def resolve_failure(self, store: str, entity: str, key: str) -> bool:
        """Mark an open failure resolved; True if there was one."""
        with self._write() as conn:
            result = conn.execute(
                update(FAILURES)
                .where(
                    FAILURES.c.store == store,
                    FAILURES.c.entity == entity,
                    FAILURES.c.key == key,
                    FAILURES.c.resolved.is_(False),
                )
                .values(resolved=True, resolved_at=_utcnow())
            )
            return result.rowcount > 0

    def open_failures(self, store: str | None = None, entity: str | None = None) -> list[Failure]:
        """Unresolved failures, optionally of one store and/or entity, oldest first."""
        query = select(FAILURES).where(FAILURES.c.resolved.is_(False))
        if store is not None:
            query = query.where(FAILURES.c.store == store)
        if entity is not None:
            query = query.where(FAILURES.c.entity == entity)
        with self._read() as conn:
            return [_failure(r) for r in conn.execute(query.order_by(FAILURES.c.first_seen, FAILURES.c.id))]

    def failure(self, store: str, entity: str, key: str) -> Failure | None:
        """The failure recorded for a key (open or resolved), or None."""
        with self._read() as conn:
            row = self._failure_row(conn, store, entity, key)
        return None if row is None else _failure(row)

    # -- snapshots ------------------------------------------------------------------------------------------

    def last_snapshot(self, store: str, kind: str) -> Snapshot | None:
        """The most recently accepted snapshot of a kind, or None."""
        with self._read() as conn:
            row = conn.execute(
                select(SNAPSHOTS)
                .where(SNAPSHOTS.c.store == store, SNAPSHOTS.c.kind == kind)
                .order_by(SNAPSHOTS.c.accepted_at.desc(), SNAPSHOTS.c.id.desc())
                .limit(1)
            ).first()
        return None if row is None else _snapshot(row)

    def save_snapshot(self, store: str, kind: str, row_count: int, metrics: dict[str, Any]) -> Snapshot:
        """Record an accepted snapshot (its row count and metrics), accepted now."""
        with self._write() as conn:
            row = conn.execute(
                SNAPSHOTS.insert()
                .values(store=store, kind=kind, accepted_at=_utcnow(), row_count=row_count, metrics=dumps(metrics))
                .returning(*SNAPSHOTS.c)
            ).one()
        return _snapshot(row)

    # -- run locks ------------------------------------------------------------------------------------------

    def try_lock(self, store: str, flow: str, holder: str, ttl_seconds: float) -> bool:
        """Take the (store, flow) lock if it is free, expired or already ours (then extend it)."""
        if ttl_seconds <= 0:
            raise ValueError("ttl_seconds must be positive")
        now = _utcnow()
        expires = now + dt.timedelta(seconds=ttl_seconds)
        stmt = self._insert(RUN_LOCKS).values(
            store=store, flow=flow, holder=holder, acquired_at=now, expires_at=expires
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[RUN_LOCKS.c.store, RUN_LOCKS.c.flow],
            set_={"holder": holder, "acquired_at": now, "expires_at": expires},
            where=or_(RUN_LOCKS.c.expires_at <= now, RUN_LOCKS.c.holder == holder),
        )
        with self._write() as conn:
            conn.execute(stmt)
            current = conn.execute(
                select(RUN_LOCKS.c.holder).where(RUN_LOCKS.c.store == store, RUN_LOCKS.c.flow == flow)
            ).scalar_one_or_none()
        return current == holder

    def unlock(self, store: str, flow: str, holder: str) -> None:
        """Release the lock if this holder has it (someone else's lock is left alone)."""
        with self._write() as conn:
            conn.execute(
                delete(RUN_LOCKS).where(
                    RUN_LOCKS.c.store == store, RUN_LOCKS.c.flow == flow, RUN_LOCKS.c.holder == holder
                )
            )


__all__ = [
    "DEFAULT_STATE_URL",
    "JOURNAL_STATES",
    "Base",
    "Failure",
    "JournalEntry",
    "Link",
    "LinkConflict",
    "Pushed",
    "Snapshot",
    "StateError",
    "StateStore",
    "alembic_config",
    "create_state_engine",
    "default_state_url",
    "dumps",
    "json_default",
    "migrate",
    "safe_url",
]
