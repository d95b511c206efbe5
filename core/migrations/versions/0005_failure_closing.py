"""Failures: who closed a failure, how and why (resolved, dismissed, went through), and a lasting reason kept
when a later attempt fails only transiently.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05

Hand-written and additive: keep it in step with ``FailureRow`` in core/state/schema.py (tests/state checks it).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (
    ("transient", sa.Boolean),
    ("last_error", sa.Text),
    ("closed_how", sa.String),
    ("closed_by", sa.String),
    ("close_reason", sa.Text),
)


def upgrade() -> None:
    with op.batch_alter_table("failures") as batch:
        for name, kind in COLUMNS:
            batch.add_column(sa.Column(name, kind(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("failures") as batch:
        for name, _kind in reversed(COLUMNS):
            batch.drop_column(name)
