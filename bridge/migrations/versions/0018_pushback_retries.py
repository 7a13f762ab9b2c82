"""push-back retries and storefront credentials

Revision ID: 0018
Revises: 0011
Create Date: 2026-12-05 07:30:00

A push remembers that an attempt may have reached the storefront (`pushes.sent_at`), so any later
run looks before pushing again, whatever its attempt count; a job counts the claims it lost to a
dead worker (`jobs.lost_leases`); a channel whose storefront refused our credentials is parked in
`storefront_credentials`. Waiting push jobs get the push-back policy's attempts (48 hours).
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0018"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: `bridge.retry_policy.PUSH.max_attempts` when this revision was written (a migration does not
#: import application code, which changes after it).
PUSH_MAX_ATTEMPTS = 134


def upgrade() -> None:
    with op.batch_alter_table("pushes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sent_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lost_leases", sa.Integer(), nullable=False, server_default="0"))
    op.create_table(
        "storefront_credentials",
        sa.Column("channel_id", sa.String(length=100), nullable=False),
        sa.Column("rejected_code", sa.String(length=64), nullable=False),
        sa.Column("rejected_message", sa.String(length=2000), nullable=False),
        sa.Column("recheck_at", sa.Float(), nullable=True),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("channel_id"),
    )
    jobs = sa.table("jobs", sa.column("kind"), sa.column("status"), sa.column("max_attempts"))
    op.execute(
        jobs.update()
        .where(
            jobs.c.kind == "push",
            jobs.c.status.in_(("ready", "running")),
            jobs.c.max_attempts < PUSH_MAX_ATTEMPTS,
        )
        .values(max_attempts=PUSH_MAX_ATTEMPTS)
    )


def downgrade() -> None:
    op.drop_table("storefront_credentials")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("lost_leases")
    with op.batch_alter_table("pushes", schema=None) as batch_op:
        batch_op.drop_column("sent_at")
