"""reconciliation

Revision ID: 0012
Revises: 0018
Create Date: 2026-12-05 07:20:00

Per-channel reconciliation cursors (how far the storefront's changed orders have been read, and
the lease of the pass running now); every delivery says where it came from (`webhook` or
`reconcile`); orders remember Amazon's latest estimated ship date (stuck-order alerts).
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0012"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "reconcile_cursors",
        sa.Column("channel_id", sa.String(length=64), nullable=False),
        sa.Column("synced_until", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("running_until", sa.Float(), nullable=True),
        sa.Column("holder", sa.String(length=64), nullable=False),
        sa.Column("last_summary", sa.JSON(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("channel_id"),
    )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        # Existing rows all came from webhooks; the server default fills them in.
        batch_op.add_column(
            sa.Column("source", sa.String(length=16), nullable=False, server_default="webhook")
        )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("amazon_ship_by", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_column("amazon_ship_by")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_column("source")
    op.drop_table("reconcile_cursors")
