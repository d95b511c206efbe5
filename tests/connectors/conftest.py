"""Fixtures of the connector tests: the real Tryton server (until tests/conftest.py imports them for everyone)."""

from __future__ import annotations

from tests.tryton_fixture import tryton_server, tryton_session

__all__ = ["tryton_server", "tryton_session"]
