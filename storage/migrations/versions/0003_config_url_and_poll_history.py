"""config URL of a moved feed, and a bounded poll history

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25

Why: a permanent redirect changes a feed's ``url``; the configuration still names the old URL, so
the sync at start must match on the URL as configured (``config_url``), or a restart would add the
old URL as a new feed and retire the moved one. ``polls`` keeps each feed's last results so that
``aggregator feeds show`` can explain them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN and a unique index: no table rebuild (a rebuild of feeds on SQLite
    # would drop the table its items refer to).
    op.add_column("feeds", sa.Column("config_url", sa.Text(), nullable=True))
    op.execute("UPDATE feeds SET config_url = url")
    op.create_index("ix_feeds_config_url", "feeds", ["config_url"], unique=True)
    op.create_table(
        "polls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("feed_id", sa.Integer(), nullable=False),
        sa.Column("polled_at", sa.DateTime(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("new_items", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("next_check", sa.DateTime(), nullable=False),
        sa.Column("next_reason", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["feed_id"], ["feeds.id"], name=op.f("fk_polls_feed_id_feeds"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_polls")),
    )
    op.create_index(op.f("ix_polls_feed_id_id"), "polls", ["feed_id", "id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_polls_feed_id_id"), table_name="polls")
    op.drop_table("polls")
    op.drop_index("ix_feeds_config_url", table_name="feeds")
    with op.batch_alter_table("feeds") as batch:
        batch.drop_column("config_url")
