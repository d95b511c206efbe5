"""The file ERP's journal: files taken from the inbox (read once) and written to the outbox (written once).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05

Hand-written: keep it in step with ``FileJournalRow`` in core/state/schema.py (tests/state checks it).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "file_journal",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("direction", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("digest", sa.String(), nullable=True),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_file_journal"),
        sa.UniqueConstraint("direction", "kind", "key", name="uq_file_journal_direction_kind_key"),
    )
    op.create_index("ix_file_journal_direction_kind_state", "file_journal", ["direction", "kind", "state"])


def downgrade() -> None:
    op.drop_index("ix_file_journal_direction_kind_state", table_name="file_journal")
    op.drop_table("file_journal")
