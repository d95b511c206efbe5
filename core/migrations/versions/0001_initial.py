"""Initial state schema: links, cursors, pushed, order_journal, failures, snapshots, run_locks.

Revision ID: 0001
Revises:
Create Date: 2025-11-28

Hand-written: keep every DDL statement here in step with the models in core/state/schema.py
(tests/state checks that the migrated schema matches them).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "links",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("store", sa.String(), nullable=False),
        sa.Column("entity", sa.String(), nullable=False),
        sa.Column("shop_id", sa.String(), nullable=False),
        sa.Column("erp_id", sa.String(), nullable=False),
        sa.Column("sku", sa.String(), nullable=True),
        sa.Column("extra", sa.Text(), nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_links"),
        sa.UniqueConstraint("store", "entity", "shop_id", name="uq_links_store_entity_shop_id"),
        sa.UniqueConstraint("store", "entity", "erp_id", name="uq_links_store_entity_erp_id"),
    )
    op.create_index("ix_links_store_entity_sku", "links", ["store", "entity", "sku"])

    op.create_table(
        "cursors",
        sa.Column("store", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("store", "name", name="pk_cursors"),
    )

    op.create_table(
        "pushed",
        sa.Column("store", sa.String(), nullable=False),
        sa.Column("entity", sa.String(), nullable=False),
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("hash", sa.String(), nullable=True),
        sa.Column("quantity", sa.Numeric(18, 4), nullable=True),
        _ts("pushed_at"),
        sa.PrimaryKeyConstraint("store", "entity", "key", name="pk_pushed"),
    )

    op.create_table(
        "order_journal",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("store", sa.String(), nullable=False),
        sa.Column("shop_order_id", sa.String(), nullable=False),
        sa.Column("erp_order_id", sa.String(), nullable=True),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("digest", sa.String(), nullable=True),
        sa.Column("shop_status", sa.String(), nullable=True),
        sa.Column("erp_status", sa.String(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_order_journal"),
        sa.UniqueConstraint("store", "shop_order_id", name="uq_order_journal_store_shop_order_id"),
    )
    op.create_index("ix_order_journal_store_state", "order_journal", ["store", "state"])

    op.create_table(
        "failures",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("store", sa.String(), nullable=False),
        sa.Column("entity", sa.String(), nullable=False),
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _ts("first_seen"),
        _ts("last_seen"),
        sa.Column("resolved", sa.Boolean(), nullable=False),
        _ts("resolved_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_failures"),
        sa.UniqueConstraint("store", "entity", "key", name="uq_failures_store_entity_key"),
    )
    op.create_index("ix_failures_store_resolved", "failures", ["store", "resolved"])

    op.create_table(
        "snapshots",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("store", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        _ts("accepted_at"),
        sa.Column("row_count", sa.Integer(), nullable=False),
        sa.Column("metrics", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_snapshots"),
    )
    op.create_index("ix_snapshots_store_kind_accepted_at", "snapshots", ["store", "kind", "accepted_at"])

    op.create_table(
        "run_locks",
        sa.Column("store", sa.String(), nullable=False),
        sa.Column("flow", sa.String(), nullable=False),
        sa.Column("holder", sa.String(), nullable=False),
        _ts("acquired_at"),
        _ts("expires_at"),
        sa.PrimaryKeyConstraint("store", "flow", name="pk_run_locks"),
    )


def downgrade() -> None:
    op.drop_table("run_locks")
    op.drop_index("ix_snapshots_store_kind_accepted_at", table_name="snapshots")
    op.drop_table("snapshots")
    op.drop_index("ix_failures_store_resolved", table_name="failures")
    op.drop_table("failures")
    op.drop_index("ix_order_journal_store_state", table_name="order_journal")
    op.drop_table("order_journal")
    op.drop_table("pushed")
    op.drop_table("cursors")
    op.drop_index("ix_links_store_entity_sku", table_name="links")
    op.drop_table("links")
