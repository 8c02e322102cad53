"""the page's own canonical URL, beside the normalized key of deduplication

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07

Why: ``items.canonical_url`` is the normalized key that folds duplicates (lower-case host, no
tracking parameters, ...); the export showed it as if it were the page's canonical URL, which a
reader then could not open as the page declared it (issue 13). The key stays where it is (its
index, every query of identity); the page's own URL, absolute and as written, gets a column.
Existing rows whose page was read (``fetched_at`` set) get a copy of what is there (the key):
their page's own form was not kept, and a re-extraction (``aggregator reextract``) writes it from
the archived page. Items whose page was never read have none, as new ones.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("items") as batch:
        batch.add_column(sa.Column("page_canonical_url", sa.Text(), nullable=True))
    op.execute("UPDATE items SET page_canonical_url = canonical_url WHERE fetched_at IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table("items") as batch:
        batch.drop_column("page_canonical_url")
