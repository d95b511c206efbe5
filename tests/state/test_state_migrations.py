"""Migrations: to head from empty, idempotent, schema equal to the models; engine set-up and URL handling."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from erpsync.core.state import (
    MIGRATIONS_DIR,
    Base,
    StateError,
    StateStore,
    alembic_config,
    default_state_url,
)
from erpsync.core.state.engine import HEAD_REVISION, at_head

ROOT = Path(__file__).resolve().parents[2]
TABLES = {
    "links",
    "cursors",
    "pushed",
    "order_journal",
    "failures",
    "snapshots",
    "run_locks",
    "order_events",
    "file_journal",
    "customer_accounts",
    "stock_movements",
}


def _head() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def test_migrates_to_head_twice_and_schema_matches_models(fresh_url: str) -> None:
    first = StateStore.open(fresh_url)
    first.link("s", "product", shop_id="1", erp_id="E1")
    first.close()
    second = StateStore.open(fresh_url)  # second upgrade: a no-op that must keep the data
    try:
        with second.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert context.get_current_revision() == _head() == "0005"
            diff = compare_metadata(context, Base.metadata)
            tables = set(inspect(conn).get_table_names())
        assert diff == [], f"migrated schema differs from the models: {diff}"
        assert tables == TABLES | {"alembic_version"}
        assert second.find_link("s", "product", shop_id="1") is not None
    finally:
        second.close()


def test_downgrade_to_base_and_back(fresh_url: str) -> None:
    from alembic import command

    with StateStore.open(fresh_url) as state:
        with state.engine.begin() as conn:
            command.downgrade(alembic_config(conn), "base")
        with state.engine.connect() as conn:
            assert set(inspect(conn).get_table_names()) == {"alembic_version"}
    with StateStore.open(fresh_url) as state:
        assert state.get_cursor("s", "orders") is None
        with state.engine.connect() as conn:
            assert set(inspect(conn).get_table_names()) == TABLES | {"alembic_version"}


def test_head_revision_constant_is_alembics_head() -> None:
    assert _head() == HEAD_REVISION, "a new migration needs HEAD_REVISION in core/state/engine.py moved to it"


def test_a_store_at_head_opens_without_alembic_and_an_older_one_is_upgraded(fresh_url: str) -> None:
    from alembic import command

    with StateStore.open(fresh_url) as state:
        with state.engine.begin() as conn:
            command.downgrade(alembic_config(conn), "0004")
        assert not at_head(state.engine)
    with StateStore.open(fresh_url) as state:  # 0004 -> head
        assert at_head(state.engine)
        with state.engine.connect() as conn:
            assert MigrationContext.configure(conn).get_current_revision() == HEAD_REVISION
    probe = (
        "import sys; from erpsync.core.state import StateStore; "
        f"StateStore.open({fresh_url!r}).close(); print('alembic' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "False", done.stderr[-2000:]


def test_migrations_ship_as_package_data() -> None:
    assert (MIGRATIONS_DIR / "__init__.py").is_file()
    assert (MIGRATIONS_DIR / "versions" / "__init__.py").is_file()
    assert (MIGRATIONS_DIR / "script.py.mako").is_file()
    assert alembic_config().get_main_option("script_location") == str(MIGRATIONS_DIR)


def test_default_url_creates_the_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert default_state_url() == "sqlite:///.erpsync/state.db"
    with StateStore.open(default_state_url()) as state:
        state.set_cursor("s", "orders", "2025-01-01T00:00:00+00:00")
        with state.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar_one() >= 5000
    assert (tmp_path / ".erpsync" / "state.db").is_file()


def test_in_memory_sqlite_serves_threads() -> None:
    with StateStore.open("sqlite://") as state:
        barrier = threading.Barrier(8)
        errors: list[BaseException] = []
        ids: set[int] = set()

        def claim() -> None:
            barrier.wait()
            try:
                for _ in range(20):
                    ids.add(state.journal_claim("s", "95750870.3", "d").id)
                    state.record_failure("s", "order", "95750870.3", "boom")
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=claim) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert len(ids) == 1
        failure = state.failure("s", "order", "95750870.3")
        assert failure is not None and failure.attempts == 160


def test_connection_errors_hide_the_password() -> None:
    password = "Sup3rSecretPw"
    with pytest.raises(StateError) as caught:
        StateStore.open(f"postgresql+psycopg://postgres:{password}@127.0.0.1:1/nowhere?connect_timeout=3")
    message = str(caught.value)
    assert password not in message
    assert "***" in message and "127.0.0.1:1" in message
    assert caught.value.__cause__ is None


def test_unsupported_backend_is_refused_without_password() -> None:
    with pytest.raises(StateError, match="unsupported") as caught:
        StateStore.open("mysql://u:HiddenPw9@db/erp")
    assert "HiddenPw9" not in str(caught.value)


def test_sqlite_writers_queue_instead_of_failing(tmp_path: Path) -> None:
    """Read-then-write transactions from many threads: BEGIN IMMEDIATE makes them queue, none is lost."""
    with StateStore.open(f"sqlite:///{tmp_path / 'state.db'}") as state:
        state.set_cursor("s", "counter", "0")
        errors: list[BaseException] = []
        barrier = threading.Barrier(8)
        query = "SELECT value FROM cursors WHERE store = 's' AND name = 'counter'"

        def bump() -> None:
            barrier.wait()
            try:
                for _ in range(25):
                    with state.engine.begin() as conn:
                        value = int(conn.exec_driver_sql(query).scalar_one())
                        conn.exec_driver_sql(
                            "UPDATE cursors SET value = ? WHERE store = 's' AND name = 'counter'", (str(value + 1),)
                        )
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=bump) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert state.get_cursor("s", "counter") == "200"


def test_workers_starting_together_migrate_once(fresh_url: str) -> None:
    """Several processes opening an empty database at once: one migrates, the others find it done."""
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []
    opened: list[StateStore] = []

    def start() -> None:
        barrier.wait()
        try:
            opened.append(StateStore.open(fresh_url))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for state in opened:
        state.close()
    assert errors == []
    assert len(opened) == 4


_OPEN_WHEN_TOLD = """
import sys, time
from pathlib import Path
from erpsync.core.state import StateStore
url, ready, go = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
ready.touch()
while not go.exists():
    time.sleep(0.002)
StateStore.open(url).close()
"""


def test_processes_starting_together_migrate_once(fresh_url: str, tmp_path: Path) -> None:
    """Workers on several machines start at once: the database lock lets one migrate, the others wait."""
    go = tmp_path / "go"
    ready = [tmp_path / f"ready-{n}" for n in range(3)]
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", _OPEN_WHEN_TOLD, fresh_url, str(flag), str(go)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for flag in ready
    ]
    deadline = time.monotonic() + 30
    while not all(flag.exists() for flag in ready) and time.monotonic() < deadline:
        time.sleep(0.01)
    go.touch()  # every worker has imported everything: release them together
    outcomes = [(w.wait(timeout=60), w.communicate()[1]) for w in workers]
    assert [code for code, _ in outcomes] == [0, 0, 0], "\n".join(err for _, err in outcomes)
