"""LWA access tokens shared by every process; parked-account state

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-08 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "lwa_tokens",
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("access_token", sa.String(length=4096), nullable=True),
        sa.Column("expires_at", sa.Float(), nullable=True),
        sa.Column("refresh_at", sa.Float(), nullable=True),
        sa.Column("refreshing_until", sa.Float(), nullable=True),
        sa.Column("rejected_code", sa.String(length=64), nullable=False),
        sa.Column("rejected_message", sa.String(length=2000), nullable=False),
        sa.Column("rejected_status", sa.Integer(), nullable=True),
        sa.Column("rejected_credentials", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("retry_at", sa.Float(), nullable=True),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("account_id"),
    )


def downgrade() -> None:
    op.drop_table("lwa_tokens")
