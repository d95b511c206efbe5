"""What the flow tests read back from a run (its artifacts) and how they age run leases."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import update

from erpsync.core.state import RUN_LOCKS, StateStore


def artifact(key: str) -> Any:
    """The latest artifact with this key, or None."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
    return max(found, key=lambda a: a.created.timestamp() if a.created else 0.0) if found else None


def expire_leases(state: StateStore) -> None:
    """As if the leases' time to live had passed (a killed process never releases its own)."""
    with state.engine.begin() as conn:
        conn.execute(update(RUN_LOCKS).values(expires_at=datetime(2000, 1, 1, tzinfo=UTC)))
