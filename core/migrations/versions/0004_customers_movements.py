"""Customer accounts (shop account -> ERP party, with the link's state) and the stock movement trail.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05

Hand-written and additive: keep it in step with ``CustomerAccountRow`` and ``MovementRow`` in
core/state/schema.py (tests/state checks it).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "customer_accounts",
        sa.Column("store", sa.String(), nullable=False),
        sa.Column("shop_id", sa.String(), nullable=False),
        sa.Column("customer_key", sa.String(), nullable=True),
        sa.Column("erp_id", sa.String(), nullable=True),
        sa.Column("digest", sa.String(), nullable=True),
        _ts("closed_at", nullable=True),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("store", "shop_id", name="pk_customer_accounts"),
    )
    op.create_index("ix_customer_accounts_store_customer_key", "customer_accounts", ["store", "customer_key"])
    op.create_table(
        "stock_movements",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("store", sa.String(), nullable=False),
        sa.Column("sku", sa.String(), nullable=False),
        sa.Column("quantity", sa.Numeric(18, 4), nullable=False),
        sa.Column("previous", sa.Numeric(18, 4), nullable=True),
        sa.Column("cause", sa.String(), nullable=False),
        sa.Column("erp_ref", sa.Text(), nullable=True),
        sa.Column("run_id", sa.String(), nullable=True),
        _ts("at"),
        sa.PrimaryKeyConstraint("id", name="pk_stock_movements"),
    )
    op.create_index("ix_stock_movements_store_sku_at", "stock_movements", ["store", "sku", "at"])
    op.create_index("ix_stock_movements_at", "stock_movements", ["at"])


def downgrade() -> None:
    op.drop_index("ix_stock_movements_at", table_name="stock_movements")
    op.drop_index("ix_stock_movements_store_sku_at", table_name="stock_movements")
    op.drop_table("stock_movements")
    op.drop_index("ix_customer_accounts_store_customer_key", table_name="customer_accounts")
    op.drop_table("customer_accounts")
