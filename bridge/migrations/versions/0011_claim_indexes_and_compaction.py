"""claim indexes and compaction

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 19:00:00

Claiming takes the head of a partial index (due ready jobs by run_at, id; running jobs by lease
expiry) instead of scanning (status, run_at) for an `OR` of both; compaction finds finished jobs
by a third partial index; orders remember when their audit trail was compacted; a job handed
back to wait for its account's rate budget remembers the token reserved for it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reserved", sa.String(length=200), nullable=True))
        batch_op.drop_index("ix_jobs_ready")
        for name, columns, status in (
            ("ix_jobs_due", ["run_at", "id"], "ready"),
            ("ix_jobs_expiring", ["lease_until"], "running"),
            ("ix_jobs_finished", ["updated_at"], "done"),
        ):
            where = sa.text(f"status = '{status}'")
            batch_op.create_index(name, columns, unique=False, sqlite_where=where, postgresql_where=where)
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("audit_compacted_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_column("audit_compacted_at")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_finished")
        batch_op.drop_index("ix_jobs_expiring")
        batch_op.drop_index("ix_jobs_due")
        batch_op.create_index("ix_jobs_ready", ["status", "run_at"], unique=False)
        batch_op.drop_column("reserved")
