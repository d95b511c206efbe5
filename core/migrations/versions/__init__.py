"""Alembic revisions of the state store, hand-written, applied in order by ``core.state.migrate``."""
