"""initial schema

Revision ID: 0001
Revises: -
Create Date: 2026-11-25

Why: the first schema (issues 2 and 5): feeds carry their own schedule and lease; one item per
story with its sightings (one per feed that carried it) and capped revisions; raw captures are
kept zstd-compressed in blobs deduplicated by sha256. Revisions are append-only: never edit a
released one, add the next.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "blobs",
        sa.Column("sha256", sa.Text(), nullable=False),
        sa.Column("codec", sa.Text(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("raw_size", sa.Integer(), nullable=False),
        sa.Column("stored_size", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_blobs")),
    )
    op.create_table(
        "feeds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("base_interval", sa.Float(), nullable=False),
        sa.Column("min_interval", sa.Float(), nullable=False),
        sa.Column("max_interval", sa.Float(), nullable=False),
        sa.Column("fetch_articles", sa.Boolean(), nullable=False),
        sa.Column("retention_days", sa.Float(), nullable=True),
        sa.Column("retention_count", sa.Integer(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("interval", sa.Float(), nullable=False),
        sa.Column("next_check", sa.DateTime(), nullable=False),
        sa.Column("next_reason", sa.Text(), nullable=False),
        sa.Column("error_count", sa.Integer(), nullable=False),
        sa.Column("etag", sa.Text(), nullable=True),
        sa.Column("last_modified", sa.Text(), nullable=True),
        sa.Column("last_polled", sa.DateTime(), nullable=True),
        sa.Column("last_status", sa.Text(), nullable=True),
        sa.Column("last_http_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_new_items", sa.Integer(), nullable=False),
        sa.Column("last_unconditional", sa.DateTime(), nullable=True),
        sa.Column("last_document_at", sa.DateTime(), nullable=True),
        sa.Column("gone", sa.Boolean(), nullable=False),
        sa.Column("redirect_url", sa.Text(), nullable=True),
        sa.Column("redirect_count", sa.Integer(), nullable=False),
        sa.Column("link_keys", sa.Boolean(), nullable=False),
        sa.Column("lease_owner", sa.Text(), nullable=True),
        sa.Column("lease_until", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feeds")),
        sa.UniqueConstraint("url", name=op.f("uq_feeds_url")),
    )
    op.create_index(op.f("ix_feeds_next_check"), "feeds", ["next_check"])

    op.create_table(
        "items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uid", sa.Text(), nullable=False),
        sa.Column("feed_id", sa.Integer(), nullable=False),
        sa.Column("guid", sa.Text(), nullable=True),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("canonical_url", sa.Text(), nullable=True),
        sa.Column("fingerprint", sa.Text(), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("content_html", sa.Text(), nullable=True),
        sa.Column("authors", sa.JSON(), nullable=False),
        sa.Column("published", sa.DateTime(), nullable=True),
        sa.Column("published_offset", sa.Integer(), nullable=True),
        sa.Column("updated", sa.DateTime(), nullable=True),
        sa.Column("updated_offset", sa.Integer(), nullable=True),
        sa.Column("first_seen", sa.DateTime(), nullable=False),
        sa.Column("last_seen", sa.DateTime(), nullable=False),
        sa.Column("changed_at", sa.DateTime(), nullable=False),
        sa.Column("content_hash", sa.Text(), nullable=False),
        sa.Column("article", sa.JSON(), nullable=True),
        sa.Column("article_status", sa.Text(), nullable=False),
        sa.Column("article_error", sa.Text(), nullable=True),
        sa.Column("article_attempts", sa.Integer(), nullable=False),
        sa.Column("article_next_try", sa.DateTime(), nullable=True),
        sa.Column("fetched_at", sa.DateTime(), nullable=True),
        sa.Column("final_url", sa.Text(), nullable=True),
        sa.Column("extractor", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["feed_id"], ["feeds.id"], name=op.f("fk_items_feed_id_feeds"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_items")),
        sa.UniqueConstraint("uid", name=op.f("uq_items_uid")),
    )
    op.create_index(
        op.f("ix_items_article_status_article_next_try"),
        "items",
        ["article_status", "article_next_try"],
    )
    op.create_index(op.f("ix_items_canonical_url"), "items", ["canonical_url"])
    op.create_index(op.f("ix_items_changed_at"), "items", ["changed_at"])
    op.create_index(op.f("ix_items_fingerprint"), "items", ["fingerprint"])

    op.create_table(
        "captures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("final_url", sa.Text(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column("fetched_at", sa.DateTime(), nullable=False),
        sa.Column("blob_sha256", sa.Text(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=True),
        sa.Column("feed_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["blob_sha256"], ["blobs.sha256"], name=op.f("fk_captures_blob_sha256_blobs")
        ),
        sa.ForeignKeyConstraint(
            ["feed_id"], ["feeds.id"], name=op.f("fk_captures_feed_id_feeds"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["item_id"], ["items.id"], name=op.f("fk_captures_item_id_items"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_captures")),
        sa.UniqueConstraint(
            "kind",
            "url",
            "fetched_at",
            "blob_sha256",
            name=op.f("uq_captures_kind_url_fetched_at_blob_sha256"),
        ),
    )
    op.create_index(op.f("ix_captures_feed_id"), "captures", ["feed_id"])
    op.create_index(op.f("ix_captures_item_id"), "captures", ["item_id"])

    op.create_table(
        "revisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("content_hash", sa.Text(), nullable=False),
        sa.Column("diff", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["item_id"], ["items.id"], name=op.f("fk_revisions_item_id_items"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_revisions")),
        sa.UniqueConstraint("item_id", "seq", name=op.f("uq_revisions_item_id_seq")),
    )
    op.create_table(
        "sightings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("feed_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("guid", sa.Text(), nullable=True),
        sa.Column("link", sa.Text(), nullable=True),
        sa.Column("first_seen", sa.DateTime(), nullable=False),
        sa.Column("last_seen", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["feed_id"], ["feeds.id"], name=op.f("fk_sightings_feed_id_feeds"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["item_id"], ["items.id"], name=op.f("fk_sightings_item_id_items"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sightings")),
        sa.UniqueConstraint("feed_id", "key", name=op.f("uq_sightings_feed_id_key")),
    )
    op.create_index(op.f("ix_sightings_feed_id_link"), "sightings", ["feed_id", "link"])
    op.create_index(op.f("ix_sightings_item_id"), "sightings", ["item_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_sightings_item_id"), table_name="sightings")
    op.drop_index(op.f("ix_sightings_feed_id_link"), table_name="sightings")

    op.drop_table("sightings")
    op.drop_table("revisions")
    op.drop_index(op.f("ix_captures_item_id"), table_name="captures")
    op.drop_index(op.f("ix_captures_feed_id"), table_name="captures")

    op.drop_table("captures")
    op.drop_index(op.f("ix_items_fingerprint"), table_name="items")
    op.drop_index(op.f("ix_items_changed_at"), table_name="items")
    op.drop_index(op.f("ix_items_canonical_url"), table_name="items")
    op.drop_index(op.f("ix_items_article_status_article_next_try"), table_name="items")

    op.drop_table("items")
    op.drop_index(op.f("ix_feeds_next_check"), table_name="feeds")

    op.drop_table("feeds")
    op.drop_table("blobs")
