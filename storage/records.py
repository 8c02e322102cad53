"""The records that cross the aggregator → storage boundary: plain, frozen values, stdlib only.

They live in ``storage`` because ``storage`` must never import ``aggregator``; the service builds
them from HTTP responses and parsed feeds, the store writes and reads them. All datetimes are
timezone-aware. A datetime that came from a source keeps the source's own UTC offset (the store
keeps it too); datetimes the service makes itself are UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

# A feed poll ended in one of these.
STATUS_OK = "ok"
STATUS_NOT_MODIFIED = "not_modified"
STATUS_ERROR = "error"
STATUS_GONE = "gone"

# Where an item's article stands.
ARTICLE_PENDING = "pending"  # to fetch (again, after ``article_next_try``)
ARTICLE_OK = "ok"
ARTICLE_FAILED = "failed"  # gave up for now; ``article_next_try`` says when to retry
ARTICLE_OFF = "off"  # the feed does not fetch articles
# Fetches of one page in all, failures and interrupted fetches counted alike; then the item
# keeps its feed content for good.
ARTICLE_ATTEMPTS = 10


@dataclass(frozen=True, slots=True)
class FeedConfig:
    """What the configuration says about one feed; synced into the feeds table at start."""

    url: str
    title: str | None = None
    tags: tuple[str, ...] = ()
    interval: float = 900.0  # seconds: the starting (and preferred) interval
    min_interval: float = 300.0
    max_interval: float = 86400.0
    fetch_articles: bool = True
    retention_days: float | None = None  # None: keep forever
    retention_count: int | None = None
    # (user, password) from the configured URL, sent as Basic auth; never stored, never shown
    auth: tuple[str, str] | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class FeedState:
    """One row of the feeds table: the feed's schedule, validators and last outcome."""

    id: int
    url: str
    title: str | None
    tags: tuple[str, ...]
    interval: float  # the current (adaptive) interval, seconds
    next_check: datetime
    next_reason: str
    error_count: int = 0
    etag: str | None = None
    last_modified: str | None = None
    last_polled: datetime | None = None
    last_status: str | None = None  # one of STATUS_*
    last_http_status: int | None = None
    last_error: str | None = None
    last_new_items: int = 0
    last_unconditional: datetime | None = None
    gone: bool = False
    redirect_url: str | None = None  # a permanent redirect seen, not yet trusted
    redirect_count: int = 0  # how many polls in a row saw ``redirect_url``
    link_keys: bool = False  # guids found broken: entries are keyed by link
    item_count: int = 0  # filled by listings only
    active: bool = True  # still in the configuration
    config_url: str | None = None  # the URL as configured; ``url`` moves on permanent redirects
    items_per_day: float | None = None  # new items a day over the last weeks, as of the last poll


@dataclass(frozen=True, slots=True)
class Enclosure:
    """A media file an entry carries (RSS ``enclosure``, Media RSS, Atom ``rel=enclosure``,
    JSON Feed ``attachments``): for a podcast, the episode itself."""

    url: str
    type: str | None = None  # MIME type as the feed gave it
    length: int | None = None  # bytes, as the feed claims them
    duration: int | None = None  # seconds (itunes:duration, media duration)


@dataclass(frozen=True, slots=True)
class Entry:
    """One entry of a parsed feed, wire format gone."""

    key: str  # identity within the feed: see ``storage.identity.document_keys``
    guid: str | None
    url: str | None
    title: str | None
    summary: str | None = None
    content_html: str | None = None
    authors: tuple[str, ...] = ()
    published: datetime | None = None
    updated: datetime | None = None
    enclosures: tuple[Enclosure, ...] = ()


@dataclass(frozen=True, slots=True)
class Article:
    """An article page cleaned into text and metadata. Field names are the export's."""

    title: str | None
    text: str  # one paragraph per block, blocks separated by a blank line
    html: str  # sanitized
    authors: tuple[str, ...] = ()
    published: datetime | None = None
    modified: datetime | None = None
    language: str | None = None
    canonical_url: str | None = None
    image: str | None = None
    dateline: str | None = None
    # field name -> where it came from: "site_rule", "structured_data", "meta", "generic", "feed"
    sources: tuple[tuple[str, str], ...] = ()
    extractor: str = ""  # name/version of the extractor that made it
    # The page states only a calendar day (no time): the day, and ``published`` stays None
    # rather than inventing midnight UTC (issue 17).
    published_date: date | None = None


@dataclass(frozen=True, slots=True)
class Capture:
    """A raw HTTP response body kept for provenance and re-extraction."""

    kind: str  # "feed" or "page"
    url: str  # what was asked for
    final_url: str  # after redirects
    status: int
    headers: tuple[tuple[str, str], ...]  # the ones that matter (content-type, etag, ...)
    fetched_at: datetime
    body: bytes


@dataclass(frozen=True, slots=True)
class ArticleResult:
    """The outcome of fetching and extracting one entry's page."""

    article: Article | None = None
    capture: Capture | None = None
    error: str | None = None  # set when the page could not be fetched or extracted
    next_try: datetime | None = None  # when to retry after an error


@dataclass(frozen=True, slots=True)
class PollResult:
    """Everything one poll of one feed writes, in one transaction."""

    feed_id: int
    lease_owner: str
    polled_at: datetime
    status: str  # one of STATUS_*
    next_check: datetime
    next_reason: str
    interval: float
    error_count: int
    http_status: int | None = None
    error: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    title: str | None = None  # the feed's own title, if it gave one
    entries: tuple[Entry, ...] = ()
    # Entry.key -> the article fetched for that entry (only for entries new to the archive)
    fetch_articles: bool = True  # False: new items are stored with article status "off"
    capture: Capture | None = None  # the feed response; kept only when it brought something new
    unconditional: bool = False  # this poll sent no validators
    gone: bool = False
    redirect_url: str | None = None
    redirect_count: int = 0
    url: str | None = None  # a new URL for the feed (a permanent redirect that repeated)
    warning: str | None = None  # read, but not all of it (a cap hit, entries dropped): says why
    link_keys: bool | None = None  # None: leave as is


@dataclass(frozen=True, slots=True)
class PollSummary:
    """What ``apply_poll`` did."""

    new_items: int = 0
    new_sightings: int = 0  # entries that matched an item another feed already carried
    revisions: int = 0
    duplicates_folded: int = 0


@dataclass(frozen=True, slots=True)
class PendingArticle:
    """An item whose article page is still to be fetched."""

    item_id: int
    url: str
    feed_id: int
    feed_url: str
    attempts: int


@dataclass(frozen=True, slots=True)
class ExportFilter:
    feed_url: str | None = None
    since: datetime | None = None  # items first seen or changed at or after
    until: datetime | None = None  # ... and before
    feed_ids: tuple[int, ...] | None = None  # only items these feeds carried (a tag's feeds)
