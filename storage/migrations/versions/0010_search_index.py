"""the full-text search index

Revision ID: 0010
Revises: 0008
Create Date: 2026-12-07

Why: issue 16, search. SQLite: an FTS5 table over title, summary and article text (unicode61
with diacritics removed), rowid = item id, ranked by bm25 with the title weighing most, and a
trigger that deletes an item's row with the item (FTS5 tables take no foreign key). A future
migration that rebuilds ``items`` in batch mode drops that trigger: it must create it again.
PostgreSQL: ``search_docs`` (one weighted tsvector per item, its text search configuration)
under a GIN index, deleted with its item by the foreign key. The rows are written by
``storage/searchindex.py`` in the item's own transaction. An archive that already holds items
gets a ``search_pending`` row: ``aggregator search --reindex`` indexes them in batches; the
migration itself stays quick whatever the archive's size.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

FTS = (
    "CREATE VIRTUAL TABLE item_search USING fts5(title, summary, body, "
    "tokenize = 'unicode61 remove_diacritics 2')"
)
RANK = "INSERT INTO item_search (item_search, rank) VALUES ('rank', 'bm25(10.0, 3.0, 1.0)')"
TRIGGER = (
    "CREATE TRIGGER items_search_delete AFTER DELETE ON items "
    "BEGIN DELETE FROM item_search WHERE rowid = old.id; END"
)
PG_DOCS = (
    "CREATE TABLE search_docs ("
    "item_id INTEGER NOT NULL PRIMARY KEY REFERENCES items (id) ON DELETE CASCADE, "
    "config TEXT NOT NULL, doc TSVECTOR NOT NULL)"
)
PG_GIN = "CREATE INDEX ix_search_docs_doc ON search_docs USING gin (doc)"


def upgrade() -> None:
    op.create_table(
        "search_pending",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("done_id", sa.Integer(), nullable=False),
        sa.Column("end_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_search_pending")),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_DOCS)
        op.execute(PG_GIN)
    else:
        op.execute(FTS)
        op.execute(RANK)
        op.execute(TRIGGER)
    op.execute(
        "INSERT INTO search_pending (id, done_id, end_id) "
        "SELECT 1, 0, max(id) FROM items HAVING count(*) > 0"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TABLE search_docs")
    else:
        op.execute("DROP TRIGGER items_search_delete")
        op.execute("DROP TABLE item_search")
    op.drop_table("search_pending")
