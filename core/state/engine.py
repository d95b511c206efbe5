"""Engines and migrations of the state store: URLs, SQLite/PostgreSQL set-up, Alembic to head."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.pool import StaticPool

from erpsync.core.state.common import StateError

if TYPE_CHECKING:
    from alembic.config import Config

DEFAULT_STATE_URL = "sqlite:///.erpsync/state.db"
MIGRATIONS_DIR = Path(__file__).parents[1] / "migrations"  # core/migrations, beside this package
SQLITE_BUSY_TIMEOUT_S = 60.0
# The newest migration (core/migrations/versions): a store already there opens without importing Alembic (a test
# checks this against Alembic's own head, so a new migration without this line fails the suite).
HEAD_REVISION = "0005"
READ_ONLY = "erpsync_read_only"  # execution option: open a SQLite read transaction with a plain BEGIN


def default_state_url() -> str:
    """The embedded default: a SQLite file under ``.erpsync/`` in the working folder."""
    return DEFAULT_STATE_URL


def safe_url(url: str | URL) -> str:
    """The URL as text with its password masked, fit for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable database URL>"


def is_memory_sqlite(url: URL) -> bool:
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

    memory = is_memory_sqlite(parsed)
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
        read_only = connection.get_execution_options().get(READ_ONLY, False)
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


def at_head(engine: Engine) -> bool:
    """Whether the schema is already at ``HEAD_REVISION`` (one read; False when there is no schema yet)."""
    try:
        with engine.connect().execution_options(**{READ_ONLY: True}) as connection:
            versions = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    except DBAPIError:  # no version table yet: a new database
        return False
    return versions == [HEAD_REVISION]


def migrate(engine: Engine) -> None:
    """Upgrade the schema to the head revision (a no-op when it is already there)."""
    if at_head(engine):
        return  # every run opens the store: Alembic's import and script scan cost ~0.3 s a process
    from alembic import command

    with _MIGRATE_LOCK, engine.begin() as connection:
        command.upgrade(alembic_config(connection), "head")


def describe_error(exc: BaseException, url: URL) -> str:
    cause = getattr(exc, "orig", None) or exc
    text = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
    if url.password:
        text = text.replace(str(url.password), "***")
    return f"{type(cause).__name__}: {text}"
