"""Engine fixtures of the state-store tests: every test runs on SQLite (a temp file) and on PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from erpsync.core.state import StateStore
from tests.pg import PostgresUnavailable, create_test_database, drop_test_database

ENGINES = ["sqlite", "postgresql"]


def _create_pg_database() -> str:
    try:
        return create_test_database()
    except PostgresUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """One PostgreSQL database for the session; tests keep apart by using their own store name."""
    url = _create_pg_database()
    yield url
    drop_test_database(url)


@pytest.fixture(params=ENGINES)
def engine_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def state_url(engine_name: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> str:
    """A migrated-on-open database: a new SQLite file, or the session's PostgreSQL database."""
    if engine_name == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('state') / 'state.db'}"
    return str(request.getfixturevalue("pg_database"))


@pytest.fixture
def fresh_url(engine_name: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An empty database that nothing has migrated yet."""
    if engine_name == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('fresh') / 'sub' / 'state.db'}"
        return
    url = _create_pg_database()
    yield url
    drop_test_database(url)


@pytest.fixture
def state(state_url: str) -> Iterator[StateStore]:
    store = StateStore.open(state_url)
    yield store
    store.close()


@pytest.fixture
def store() -> str:
    """A store name of its own, so that tests sharing the PostgreSQL database never see each other's rows."""
    return f"shop-{uuid.uuid4().hex[:10]}"
