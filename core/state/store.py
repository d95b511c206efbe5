"""``StateStore``: the one public class of the state store, its parts joined (one per table family)."""

from __future__ import annotations

from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from erpsync.core.state.accounts import AccountsMixin
from erpsync.core.state.common import StateError
from erpsync.core.state.engine import create_state_engine, describe_error, migrate, safe_url
from erpsync.core.state.events import EventsMixin
from erpsync.core.state.failures import FailuresMixin
from erpsync.core.state.files import FileJournalMixin
from erpsync.core.state.journal import JournalMixin
from erpsync.core.state.links import LinksMixin
from erpsync.core.state.movements import MovementsMixin
from erpsync.core.state.progress import ProgressMixin
from erpsync.core.state.runs import RunsMixin


class StateStore(
    LinksMixin,
    ProgressMixin,
    JournalMixin,
    EventsMixin,
    FailuresMixin,
    RunsMixin,
    FileJournalMixin,
    AccountsMixin,
    MovementsMixin,
):
    """Links, cursors, pushed state, order journal and events, failures, snapshots, run locks, the file ERP's
    journal, customer accounts and the stock movement trail of every store."""

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
            raise StateError(
                f"cannot open the state database {safe_url(parsed)}: {describe_error(exc, parsed)}"
            ) from None
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
