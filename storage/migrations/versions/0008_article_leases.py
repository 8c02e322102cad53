"""who holds an article page's claim

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07

Why: a claimed page was held back until its lease ran out (5 minutes), even when the process
that claimed it had died at once. Knowing the holder lets the next claim free it immediately
(``storage.holders``). A table of its own: the hot insert of new items stays as it is.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "article_leases",
        sa.Column("item_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("owner", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["item_id"], ["items.id"],
                                name=op.f("fk_article_leases_item_id_items"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("item_id", name=op.f("pk_article_leases")),
    )
    op.create_index(op.f("ix_article_leases_owner"), "article_leases", ["owner"])


def downgrade() -> None:
    op.drop_index(op.f("ix_article_leases_owner"), table_name="article_leases")
    op.drop_table("article_leases")
