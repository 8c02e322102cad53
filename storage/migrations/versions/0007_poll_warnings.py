"""a poll's warning kept in the feed's poll history

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07

Why: a feed read only in part (cut at the entry cap, entries dropped as duplicates, a malformed
document recovered) said so nowhere (issue 10, "caps are visible"). The warning now goes with
its poll into ``polls`` and ``aggregator feeds show`` prints it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("polls", sa.Column("warning", sa.Text(), nullable=True))  # no table rebuild


def downgrade() -> None:
    with op.batch_alter_table("polls") as batch:
        batch.drop_column("warning")
