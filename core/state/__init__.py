"""The state store: links, cursors, pushed state, order journal, failures, snapshots and run locks.

One SQLAlchemy 2 schema, migrated to head by Alembic whenever a store is opened; SQLite by default,
PostgreSQL by URL. Every public method runs in its own short transaction and returns frozen dataclasses,
never ORM objects. Uniqueness (links, journal, failures) is enforced by the database: writes are
``INSERT ... ON CONFLICT`` followed by a read, never a look-up-then-insert.

The package, cut by seam: ``schema`` (the tables), ``engine`` (URLs, engines, Alembic), ``base`` (transactions),
one part of ``StateStore`` per table family (``links``, ``progress``: cursors and pushed state, ``journal``,
``failures``, ``runs``: snapshots and run locks), joined in ``store``. Import from here.
"""

from __future__ import annotations

from erpsync.core.state.accounts import CustomerAccount
from erpsync.core.state.common import StateError, dumps, json_default
from erpsync.core.state.engine import (
    DEFAULT_STATE_URL,
    MIGRATIONS_DIR,
    alembic_config,
    create_state_engine,
    default_state_url,
    migrate,
    safe_url,
)
from erpsync.core.state.events import EVENT_KINDS, EVENT_STATES, OrderEvent
from erpsync.core.state.failures import Failure
from erpsync.core.state.files import FileEntry
from erpsync.core.state.journal import JOURNAL_FIELDS, JOURNAL_STATES, JournalEntry
from erpsync.core.state.links import Link, LinkConflict
from erpsync.core.state.movements import CAUSES, Movement, NewMovement
from erpsync.core.state.progress import Pushed
from erpsync.core.state.runs import Snapshot
from erpsync.core.state.schema import (
    CURSORS,
    CUSTOMER_ACCOUNTS,
    FAILURES,
    FILE_JOURNAL,
    JOURNAL,
    LINKS,
    MOVEMENTS,
    ORDER_EVENTS,
    PUSHED,
    RUN_LOCKS,
    SNAPSHOTS,
    Base,
)
from erpsync.core.state.store import StateStore

__all__ = [
    "CAUSES",
    "CURSORS",
    "CUSTOMER_ACCOUNTS",
    "DEFAULT_STATE_URL",
    "EVENT_KINDS",
    "EVENT_STATES",
    "FAILURES",
    "FILE_JOURNAL",
    "JOURNAL",
    "JOURNAL_FIELDS",
    "JOURNAL_STATES",
    "LINKS",
    "MIGRATIONS_DIR",
    "MOVEMENTS",
    "ORDER_EVENTS",
    "PUSHED",
    "RUN_LOCKS",
    "SNAPSHOTS",
    "Base",
    "CustomerAccount",
    "Failure",
    "FileEntry",
    "JournalEntry",
    "Link",
    "LinkConflict",
    "Movement",
    "NewMovement",
    "OrderEvent",
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
