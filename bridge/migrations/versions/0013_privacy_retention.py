"""privacy retention and input lengths

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 07:30:00

`orders.external_id` takes the 255 characters the generic channel's schema accepts (it was 128,
so a longer id failed the insert on PostgreSQL on every retry). Deliveries remember when their
body was replaced by the redaction marker, so the retention purge finds the bodies still to
purge by a partial index instead of comparing every old body on each run.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UNPURGED = "body_purged_at IS NULL"


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.alter_column(
            "external_id",
            existing_type=sa.String(length=128),
            type_=sa.String(length=255),
            existing_nullable=False,
        )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("body_purged_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.create_index(
            "ix_deliveries_unpurged",
            ["received_at"],
            unique=False,
            sqlite_where=sa.text(_UNPURGED),
            postgresql_where=sa.text(_UNPURGED),
        )


def downgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_unpurged")
        batch_op.drop_column("body_purged_at")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.alter_column(
            "external_id",
            existing_type=sa.String(length=255),
            type_=sa.String(length=128),
            existing_nullable=False,
        )
