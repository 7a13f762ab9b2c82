"""order parts: one storefront order, several Amazon orders

Revision ID: 0017
Revises: 0018
Create Date: 2026-12-05 07:30:00

An order beyond Amazon's limits (100 items, 250 units) is split, under `split_large_orders`,
into several MCF orders `<id>-1`, `<id>-2`, ...; each part's Amazon id and status is a row here.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0017"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "order_parts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("part", sa.Integer(), nullable=False),
        sa.Column("seller_fulfillment_order_id", sa.String(length=40), nullable=False),
        sa.Column("amazon_status", sa.String(length=32), nullable=True),
        sa.Column("amazon_status_updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("order_id", "part", name="uq_order_parts_order_part"),
        sa.UniqueConstraint("seller_fulfillment_order_id", name="uq_order_parts_sfo_id"),
    )
    with op.batch_alter_table("order_parts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_order_parts_order_id"), ["order_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("order_parts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_order_parts_order_id"))
    op.drop_table("order_parts")
