"""The declared schema (SQLAlchemy Core tables and column types); it holds no queries.

The Alembic chain in ``storage/migrations`` must produce exactly these tables: a test compares
them. Two column types carry rules every write must obey, so they live in the types, not in
each query: text loses NUL characters (PostgreSQL rejects them), datetimes are stored as naive
UTC (both databases compare them the same way) and come back timezone-aware UTC. The bulk
inserts of a poll apply the same functions without the types (``bulk.insert_rows``):
a TypeDecorator call per value was an eighth of a new feed's write.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from storage.errors import StorageError


def strip_nul(value: Any) -> Any:
    """Remove NUL from every string inside ``value`` (PostgreSQL text and json refuse it)."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, list | tuple):
        return [strip_nul(v) for v in value]
    if isinstance(value, dict):
        return {strip_nul(k): strip_nul(v) for k, v in value.items()}
    return value


def utc_naive(value: datetime) -> datetime:
    """How a datetime is stored: naive UTC; a naive one is refused, not guessed."""
    if value.tzinfo is None:
        raise StorageError(f"naive datetime {value!r} given to the store")
    return value.astimezone(UTC).replace(tzinfo=None)


def sqlite_time(value: datetime) -> str:
    """A datetime as SQLite stores it: naive UTC in SQLAlchemy's DATETIME text format."""
    return utc_naive(value).isoformat(" ", "microseconds")


def sqlite_when(value: str) -> datetime:
    """What ``UTCDateTime`` makes of SQLite's text (SQLAlchemy reads it with fromisoformat):
    for reads below SQLAlchemy."""
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def clean_text(value: str | None) -> str | None:
    if value is None or "\x00" not in value:
        return value
    return value.replace("\x00", "")


class CleanText(TypeDecorator[str]):
    """Text without NUL characters."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return clean_text(value)


class CleanJSON(TypeDecorator[Any]):
    """JSON whose strings carry no NUL characters."""

    impl = JSON
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return strip_nul(value)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime stored as naive UTC; naive input is refused, not guessed."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else utc_naive(value)

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        """On SQLite, the text DATETIME would write, in one call: the composed chain
        (``process_bind_param``, then DATETIME's format with a dict per value) cost twice as
        much, a few thousand times in every pass (each poll's feed state; issue 14)."""
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        def process(value: datetime | None) -> str | None:
            return None if value is None else sqlite_time(value)

        return process

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)

feeds = Table(
    "feeds",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("url", CleanText, nullable=False, unique=True),
    Column("title", CleanText),
    Column("tags", CleanJSON, nullable=False),
    # configuration (synced from the YAML file)
    Column("base_interval", Float, nullable=False),
    Column("min_interval", Float, nullable=False),
    Column("max_interval", Float, nullable=False),
    Column("fetch_articles", Boolean, nullable=False),
    Column("retention_days", Float),
    Column("retention_count", Integer),
    Column("active", Boolean, nullable=False),
    # schedule and state
    Column("interval", Float, nullable=False),
    Column("next_check", UTCDateTime, nullable=False),
    Column("next_reason", CleanText, nullable=False),
    Column("error_count", Integer, nullable=False),
    Column("etag", CleanText),
    Column("last_modified", CleanText),
    Column("last_polled", UTCDateTime),
    Column("last_status", CleanText),
    Column("last_http_status", Integer),
    Column("last_error", CleanText),
    Column("last_new_items", Integer, nullable=False),
    Column("last_unconditional", UTCDateTime),
    # the poll time of the last document fetched: sightings seen then are "in the document"
    Column("last_document_at", UTCDateTime),
    Column("gone", Boolean, nullable=False),
    Column("redirect_url", CleanText),
    Column("redirect_count", Integer, nullable=False),
    Column("link_keys", Boolean, nullable=False),
    Column("lease_owner", CleanText),
    Column("lease_until", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    # the URL as the configuration names it; ``url`` follows permanent redirects (migration 0003)
    Column("config_url", CleanText),
    # new items per day as of the last poll (migration 0004): the next poll's adaptive interval
    Column("items_per_day", Float),
    Index(None, "next_check"),
    Index("ix_feeds_config_url", "config_url", unique=True),
)

# The last polls of each feed (``feeds show``): bounded, the oldest pruned as new ones come.
polls = Table(
    "polls",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("feed_id", Integer, ForeignKey("feeds.id", ondelete="CASCADE"), nullable=False),
    Column("polled_at", UTCDateTime, nullable=False),
    Column("status", CleanText, nullable=False),
    Column("http_status", Integer),
    Column("new_items", Integer, nullable=False),
    Column("error", CleanText),
    Column("next_check", UTCDateTime, nullable=False),
    Column("next_reason", CleanText, nullable=False),
    Column("warning", CleanText),  # read in part: a cap hit, entries dropped (migration 0007)
    Index(None, "feed_id", "id"),
)

items = Table(
    "items",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("uid", CleanText, nullable=False, unique=True),
    Column("feed_id", Integer, ForeignKey("feeds.id", ondelete="CASCADE"), nullable=False),
    Column("guid", CleanText),
    Column("url", CleanText),
    Column("canonical_url", CleanText),  # the normalized key of deduplication
    Column("page_canonical_url", CleanText),  # as the page declares it (absolute): shown
    Column("fingerprint", CleanText),
    Column("title", CleanText),
    Column("summary", CleanText),
    Column("content_html", CleanText),
    Column("authors", CleanJSON, nullable=False),
    Column("published", UTCDateTime),
    Column("published_offset", Integer),  # minutes east of UTC, as the source wrote it
    Column("updated", UTCDateTime),
    Column("updated_offset", Integer),
    Column("first_seen", UTCDateTime, nullable=False),
    Column("last_seen", UTCDateTime, nullable=False),
    Column("changed_at", UTCDateTime, nullable=False),  # the export's incremental cursor
    Column("content_hash", CleanText, nullable=False),
    Column("article", CleanJSON),  # export-shaped Article, or null
    Column("article_status", CleanText, nullable=False),
    Column("article_error", CleanText),
    Column("article_attempts", Integer, nullable=False),
    Column("article_next_try", UTCDateTime),
    Column("fetched_at", UTCDateTime),  # provenance: when the page was fetched
    Column("final_url", CleanText),
    Column("extractor", CleanText),
    Column("enclosures", CleanJSON),  # [{url, type, length, duration}], or null for none
    Index(None, "canonical_url"),
    Index(None, "fingerprint"),
    Index(None, "changed_at"),
    Index(None, "article_status", "article_next_try"),
)

sightings = Table(
    "sightings",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("item_id", Integer, ForeignKey("items.id", ondelete="CASCADE"), nullable=False),
    Column("feed_id", Integer, ForeignKey("feeds.id", ondelete="CASCADE"), nullable=False),
    Column("key", CleanText, nullable=False),
    Column("guid", CleanText),
    Column("link", CleanText),
    Column("first_seen", UTCDateTime, nullable=False),
    Column("last_seen", UTCDateTime, nullable=False),
    UniqueConstraint("feed_id", "key"),
    Index(None, "feed_id", "link"),
    Index(None, "feed_id", "first_seen"),  # the item rate of every poll; retention by count
    Index(None, "item_id"),
)

revisions = Table(
    "revisions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("item_id", Integer, ForeignKey("items.id", ondelete="CASCADE"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("recorded_at", UTCDateTime, nullable=False),
    Column("title", CleanText),
    Column("summary", CleanText),
    Column("text", CleanText),
    Column("content_hash", CleanText, nullable=False),
    Column("diff", CleanText),  # unified diff (no context) of the text against seq - 1
    Column("enclosures", CleanJSON),  # as the item's, at this version
    UniqueConstraint("item_id", "seq"),
)

blobs = Table(
    "blobs",
    metadata,
    Column("sha256", Text, primary_key=True),  # of the raw body
    Column("codec", Text, nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("raw_size", Integer, nullable=False),
    Column("stored_size", Integer, nullable=False),
)

captures = Table(
    "captures",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("kind", CleanText, nullable=False),
    Column("url", CleanText, nullable=False),
    Column("final_url", CleanText, nullable=False),
    Column("status", Integer, nullable=False),
    Column("headers", CleanJSON, nullable=False),
    Column("fetched_at", UTCDateTime, nullable=False),
    Column("blob_sha256", Text, ForeignKey("blobs.sha256"), nullable=False),
    Column("item_id", Integer, ForeignKey("items.id", ondelete="CASCADE")),
    Column("feed_id", Integer, ForeignKey("feeds.id", ondelete="CASCADE")),
    UniqueConstraint("kind", "url", "fetched_at", "blob_sha256"),
    Index(None, "item_id"),
    Index(None, "feed_id"),
)

# Who fetches an item's article page now (``articles.claim``), so that the claim of a holder
# known dead is freed at once (``storage.holders``); the row goes when the outcome is stored.
article_leases = Table(
    "article_leases",
    metadata,
    Column("item_id", Integer, ForeignKey("items.id", ondelete="CASCADE"), primary_key=True,
           autoincrement=False),
    Column("owner", CleanText, nullable=False),
    Index(None, "owner"),
)


# Items written before the search index existed (migration 0010), to index by id: ``done_id``
# is how far ``aggregator search --reindex`` got. One row while there is a backlog, else none.
# The index itself (an FTS5 table on SQLite, ``search_docs`` with a tsvector on PostgreSQL) is
# not declared here: it differs by database (``storage/searchindex.py``, ``SEARCH_INDEX``).
search_pending = Table(
    "search_pending",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("done_id", Integer, nullable=False),
    Column("end_id", Integer, nullable=False),
)


def compared(name: str | None, type_: str, _parent: Any = None) -> bool:
    """Whether Alembic compares this object with ``metadata`` (its ``include_name``): not the
    search index's tables (FTS5 and its shadow tables, ``search_docs``), which migration 0010
    makes in each database's own DDL."""
    return not (type_ == "table" and name is not None
                and (name == "search_docs" or name.startswith("item_search")))  # fmt: skip
