"""enclosures kept on items and their revisions

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07

Why: podcast and media feeds carry their content in enclosures (RSS ``enclosure``, Media RSS,
Atom ``rel=enclosure``, JSON Feed ``attachments``); they were dropped (issue 10). A JSON list
of ``{url, type, length, duration}`` per item, and per revision so that a changed enclosure is
kept in the item's history. Null for none, which is what rows stored before this read as.

And every feed's ``link_keys`` flag is cleared: it was also set when a guid repeated within one
document, which keyed a podcast's every episode by the show's home page. A feed whose guids do
change from poll to poll sets it again at its next poll (its entries are relinked by link).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("items", "revisions"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("enclosures", sa.JSON(), nullable=True))
    op.execute(sa.text("UPDATE feeds SET link_keys = :no").bindparams(no=False))


def downgrade() -> None:
    for table in ("revisions", "items"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("enclosures")
