"""Throw-away PostgreSQL databases for tests: ``create_test_database()`` and ``drop_test_database(url)``.

The server comes from ``ERPSYNC_TEST_PG_URL`` (default: the local trust-auth server). It is always there in
CI and on the dev machines, so an unreachable server is an error, never a skip.
"""

from __future__ import annotations

import os
import uuid

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import SQLAlchemyError

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
TEST_DB_PREFIX = "erpsync_test_"


class PostgresUnavailable(RuntimeError):
    """The test PostgreSQL server could not be reached."""


def server_url() -> URL:
    """The URL of the test server's maintenance database (from ``ERPSYNC_TEST_PG_URL``)."""
    return make_url(os.environ.get("ERPSYNC_TEST_PG_URL") or DEFAULT_PG_URL)


def _admin(sql: str) -> None:
    url = server_url()
    engine = create_engine(url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as conn:
            conn.execute(text(sql))
    except SQLAlchemyError as exc:
        shown = url.render_as_string(hide_password=True)
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        raise PostgresUnavailable(
            f"PostgreSQL for the tests is not usable at {shown} ({reason}). Start it "
            "(pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start) "
            "or point ERPSYNC_TEST_PG_URL at a server."
        ) from None
    finally:
        engine.dispose()


def create_test_database() -> str:
    """Create an empty database ``erpsync_test_<random>`` and return its URL (password included)."""
    name = f"{TEST_DB_PREFIX}{uuid.uuid4().hex[:12]}"
    _admin(f'CREATE DATABASE "{name}"')
    return server_url().set(database=name).render_as_string(hide_password=False)


def drop_test_database(url: str) -> None:
    """Drop a database made by ``create_test_database``, closing its remaining connections."""
    name = make_url(url).database or ""
    if not name.startswith(TEST_DB_PREFIX):
        raise ValueError(f"refusing to drop {name!r}: not a test database")
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
