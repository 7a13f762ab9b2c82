"""fulfillment units: the storefront fulfillment orders an Amazon order covers

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-10 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "fulfillment_units",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.String(length=100), nullable=False),
        sa.Column("location_id", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("lines", sa.JSON(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("order_id", "unit_id", name="uq_fulfillment_units_order_unit"),
    )
    with op.batch_alter_table("fulfillment_units", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_fulfillment_units_order_id"), ["order_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("fulfillment_units", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fulfillment_units_order_id"))
    op.drop_table("fulfillment_units")
