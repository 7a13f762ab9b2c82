"""event counters shared by every process (metrics)

Revision ID: 0010
Revises: 0007
Create Date: 2026-12-10 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "metric_counters",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("labels", sa.String(length=400), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("name", "labels"),
    )


def downgrade() -> None:
    op.drop_table("metric_counters")
