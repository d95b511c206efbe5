"""Alembic migrations of the state store (see docs/state.md)."""
