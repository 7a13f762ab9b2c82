"""inventory sync: Amazon stock, storefront targets, change cursors

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STOCK_DUE = "storefront_quantity IS NULL OR storefront_quantity != target"


def upgrade() -> None:
    op.create_table(
        "amazon_stock",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("marketplace_id", sa.String(length=20), nullable=False),
        sa.Column("amazon_sku", sa.String(length=50), nullable=False),
        sa.Column("fulfillable", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("reserved", sa.Integer(), nullable=False),
        sa.Column("inbound", sa.Integer(), nullable=False),
        sa.Column("known", sa.Boolean(), nullable=False),
        sa.Column("amazon_updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("changed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("seen_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("account_id", "marketplace_id", "amazon_sku", name="uq_amazon_stock_sku"),
    )
    op.create_table(
        "inventory_cursors",
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("marketplace_id", sa.String(length=20), nullable=False),
        sa.Column("changes_until", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("swept_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("mapping", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "marketplace_id"),
    )
    op.create_table(
        "storefront_stock",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel_id", sa.String(length=64), nullable=False),
        sa.Column("storefront_sku", sa.String(length=255), nullable=False),
        sa.Column("amazon_sku", sa.String(length=50), nullable=False),
        sa.Column("amazon_quantity", sa.Integer(), nullable=False),
        sa.Column("in_flight", sa.Integer(), nullable=False),
        sa.Column("target", sa.Integer(), nullable=False),
        sa.Column("target_version", sa.Integer(), nullable=False),
        sa.Column("target_changed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("amazon_changed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("storefront_quantity", sa.Integer(), nullable=True),
        sa.Column("pushed_quantity", sa.Integer(), nullable=True),
        sa.Column("pushed_version", sa.Integer(), nullable=False),
        sa.Column("pushed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("storefront_ref", sa.String(length=200), nullable=False),
        sa.Column("storefront_parent", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_detail", sa.String(length=500), nullable=False),
        sa.Column("retry_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("channel_id", "storefront_sku", name="uq_storefront_stock_sku"),
    )
    with op.batch_alter_table("storefront_stock", schema=None) as batch_op:
        batch_op.create_index("ix_storefront_stock_amazon", ["channel_id", "amazon_sku"], unique=False)
        batch_op.create_index(
            "ix_storefront_stock_due",
            ["channel_id", "target_changed_at"],
            unique=False,
            sqlite_where=sa.text(STOCK_DUE),
            postgresql_where=sa.text(STOCK_DUE),
        )


def downgrade() -> None:
    with op.batch_alter_table("storefront_stock", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_storefront_stock_due", sqlite_where=sa.text(STOCK_DUE), postgresql_where=sa.text(STOCK_DUE)
        )
        batch_op.drop_index("ix_storefront_stock_amazon")

    op.drop_table("storefront_stock")
    op.drop_table("inventory_cursors")
    op.drop_table("amazon_stock")
