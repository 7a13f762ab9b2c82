"""jobs deduplicate only against waiting jobs; orders remember what was sent to Amazon

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-08 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_jobs_active_dedupe",
            sqlite_where=sa.text("status IN ('ready', 'running')"),
            postgresql_where=sa.text("status IN ('ready', 'running')"),
        )
        batch_op.create_index(
            "uq_jobs_waiting_dedupe",
            ["dedupe_key"],
            unique=True,
            sqlite_where=sa.text("status = 'ready'"),
            postgresql_where=sa.text("status = 'ready'"),
        )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("submission", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_column("submission")
    # A ready and a running job may share a key now; the older index would refuse that.
    op.execute(
        "UPDATE jobs SET dedupe_key = NULL WHERE status = 'running' AND dedupe_key IN "
        "(SELECT dedupe_key FROM jobs WHERE status = 'ready' AND dedupe_key IS NOT NULL)"
    )
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_jobs_waiting_dedupe",
            sqlite_where=sa.text("status = 'ready'"),
            postgresql_where=sa.text("status = 'ready'"),
        )
        batch_op.create_index(
            "uq_jobs_active_dedupe",
            ["dedupe_key"],
            unique=True,
            sqlite_where=sa.text("status IN ('ready', 'running')"),
            postgresql_where=sa.text("status IN ('ready', 'running')"),
        )
