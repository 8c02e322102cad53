"""index sightings by feed and first_seen

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25

Why: every poll asks for the feed's recent item rate (min and count of first_seen over the
feed's sightings) and retention by count orders a feed's sightings by first_seen; without this
index both scan every sighting of the feed, which grows without bound on a long-lived feed.
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(op.f("ix_sightings_feed_id_first_seen"), "sightings", ["feed_id", "first_seen"])


def downgrade() -> None:
    op.drop_index(op.f("ix_sightings_feed_id_first_seen"), table_name="sightings")
