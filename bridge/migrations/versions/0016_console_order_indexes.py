"""console order indexes

Revision ID: 0016
Revises: 0014
Create Date: 2026-12-05 07:30:00

The console's order list stays fast at 100,000 orders: a search by the shop's order id or name
reads an index instead of the table, a channel and state filter reads one composite index, and
the orders that need attention by themselves are a small partial index.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ATTENTION = "state = 'needs_attention' OR attention_reason != ''"


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index("ix_orders_external_id", ["external_id"], unique=False)
        batch_op.create_index("ix_orders_display_id", ["display_id"], unique=False)
        batch_op.create_index("ix_orders_channel_state", ["channel_id", "state"], unique=False)
        where = sa.text(ATTENTION)
        batch_op.create_index(
            "ix_orders_attention", ["id"], unique=False, sqlite_where=where, postgresql_where=where
        )


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_attention")
        batch_op.drop_index("ix_orders_channel_state")
        batch_op.drop_index("ix_orders_display_id")
        batch_op.drop_index("ix_orders_external_id")
