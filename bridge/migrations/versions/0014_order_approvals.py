"""order approvals

Revision ID: 0014
Revises: 0011
Create Date: 2026-12-05 07:30:00

Orders remember which merchant-policy rules held them for approval and which an operator
approved (`{"held": [...], "approved": [...]}`), so an approved order is not held again by the
same rule when it is planned again.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("approvals", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_column("approvals")
