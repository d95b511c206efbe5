"""Order events: what happened to an order after its import (baseline, edits, cancellations, returns).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04

Hand-written: keep it in step with ``OrderEventRow`` in core/state/schema.py (tests/state checks it).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "order_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("store", sa.String(), nullable=False),
        sa.Column("shop_order_id", sa.String(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("reference", sa.String(), nullable=True),
        sa.Column("lines", sa.Text(), nullable=True),
        sa.Column("payload", sa.Text(), nullable=True),
        sa.Column("erp_id", sa.String(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_order_events"),
        sa.UniqueConstraint("store", "shop_order_id", "seq", name="uq_order_events_store_shop_order_id_seq"),
    )
    op.create_index("ix_order_events_store_updated_at", "order_events", ["store", "updated_at"])


def downgrade() -> None:
    op.drop_index("ix_order_events_store_updated_at", table_name="order_events")
    op.drop_table("order_events")
