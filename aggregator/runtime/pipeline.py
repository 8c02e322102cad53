"""One poll of one feed, and one fetch of one article page, top-down as DESIGN.md draws the flow.

Fetch → decide → parse → apply. Every outcome, failures included, becomes one ``PollResult`` that
the store writes in one transaction (batched with other polls' by the ``PollWriter``); nothing
here writes anything else, so a poll cancelled before its write leaves no trace but a lease.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from aggregator.errors import ExtractError, FetchError, LeaseLost, ParseError, StorageError
from aggregator.extract.lazy import LazyRules
from aggregator.feeds.lazy import parse_feed, parse_safely
from aggregator.fetch import BasicAuth, HostLimiter, HttpClient, Response, RobotsCache, url_problem
from aggregator.runtime.writer import PollWriter
from aggregator.schedule import (
    Decision,
    Observation,
    PollPolicy,
    next_poll,
    should_poll_unconditionally,
)
from storage.records import (
    ARTICLE_ATTEMPTS,
    STATUS_ERROR,
    STATUS_GONE,
    STATUS_NOT_MODIFIED,
    STATUS_OK,
    Article,
    ArticleResult,
    Capture,
    Entry,
    FeedConfig,
    FeedState,
    PendingArticle,
    PollResult,
    PollSummary,
)
from storage.seam import StorageType

if TYPE_CHECKING:
    from aggregator.extract.rules import SiteRules
    from aggregator.feeds import ParsedFeed

log = logging.getLogger(__name__)

FEED_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, application/json;q=0.9, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)
PAGE_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.5"
# The response headers kept with a raw capture: what explains the body and its freshness.
KEPT_HEADERS = frozenset(
    {"content-type", "etag", "last-modified", "cache-control", "expires", "date", "retry-after",
     "content-language", "link"}
)
# Article retries back off from 15 minutes up to a day, ARTICLE_ATTEMPTS fetches in all (about
# four days); then the item keeps its feed content for good. The item itself is never lost.
# (The cap lives in storage: an interrupted fetch counts towards it when the page is re-claimed.)
ARTICLE_RETRY_BASE = 900.0
ARTICLE_RETRY_CAP = 86400.0


@dataclass(frozen=True, slots=True)
class Context:
    """What a poll needs, passed in: nothing here reads a global or the clock by itself."""

    store: StorageType
    writer: PollWriter  # poll outcomes go through it: group commit
    http: HttpClient
    limiter: HostLimiter
    robots: RobotsCache | None
    rules: SiteRules | LazyRules
    owner: str
    clock: Callable[[], datetime]
    rng: random.Random
    parse: Callable[[bytes, str, dict[str, str], datetime], ParsedFeed] = parse_feed
    parse_pool: Executor | None = None  # None: the loop's threads (tests); processes use more cores


@dataclass(frozen=True, slots=True)
class PollOutcome:
    feed: FeedState
    result: PollResult
    summary: PollSummary


async def poll_feed(ctx: Context, feed: FeedState, config: FeedConfig) -> PollOutcome:
    """Poll one claimed feed and write the outcome; the lease is released by that write.

    Nothing but cancellation and an unreachable database raises out of here: an exception nobody
    foresaw (a bug, a missing module, an odd input) is this feed's failed poll, with back-off,
    not a lease left to expire and the feed re-claimed as if nothing happened (issue 10).
    """
    now = ctx.clock()
    policy = policy_for(config)
    try:
        result = await _poll(ctx, feed, config, policy, now)
    except Exception as exc:
        result = _failed(ctx, feed, policy, now, NO_RESPONSE, unexpected("poll", exc, feed.url))
    return await _apply(ctx, feed, policy, now, result)


async def _poll(
    ctx: Context, feed: FeedState, config: FeedConfig, policy: PollPolicy, now: datetime
) -> PollResult:
    """Fetch → decide → parse, every outcome a ``PollResult``, failures included."""
    unconditional = should_poll_unconditionally(now, feed, policy)
    try:
        response = await _get_feed(ctx, feed, config, unconditional)
    except FetchError as exc:
        return _failed(ctx, feed, policy, now, NO_RESPONSE, str(exc))
    except Exception as exc:
        return _failed(ctx, feed, policy, now, NO_RESPONSE, unexpected("fetch", exc, feed.url))
    rate = feed.items_per_day
    if response.status == 304:
        return _decide(ctx, feed, policy, now, response, None, rate)
    if response.status >= 300:
        error = f"fetch: HTTP {response.status} for {feed.url}"
        return _failed(ctx, feed, policy, now, _observed(response), error, response)
    try:
        parsed = await _parse(ctx, response, now)
    except ParseError as exc:
        return _failed(ctx, feed, policy, now, _observed(response), str(exc), response)
    except Exception as exc:
        error = unexpected("parse", exc, feed.url)
        return _failed(ctx, feed, policy, now, _observed(response), error, response)
    result = _decide(ctx, feed, policy, now, response, parsed, rate)
    return replace(result, unconditional=unconditional, fetch_articles=config.fetch_articles,
                   warning=parsed.warning)  # fmt: skip


async def _parse(ctx: Context, response: Response, now: datetime) -> ParsedFeed:
    headers = dict(response.headers)
    return await asyncio.get_running_loop().run_in_executor(  # HTML sanitized there too
        ctx.parse_pool, parse_safely, ctx.parse, response.body, response.final_url, headers, now
    )


def unexpected(stage: str, exc: BaseException, url: str) -> str:
    """The one line for an exception nobody foresaw; its traceback goes to the debug log (-vv)."""
    log.debug("%s: unexpected error for %s", stage, url, exc_info=exc)
    lines = str(exc).strip().splitlines()
    detail = f": {lines[0][:300]}" if lines else ""
    return f"{stage}: unexpected {type(exc).__name__}{detail} for {url}"


def policy_for(config: FeedConfig) -> PollPolicy:
    return PollPolicy(
        interval=config.interval,
        min_interval=config.min_interval,
        max_interval=config.max_interval,
    )


async def _get_feed(
    ctx: Context, feed: FeedState, config: FeedConfig, unconditional: bool
) -> Response:
    # credentials belong to the configured URL's origin, wherever the feed has moved since
    auth = BasicAuth(config.url, *config.auth) if config.auth else None
    async with ctx.limiter.slot(feed.url):
        return await ctx.http.get(
            feed.url,
            etag=None if unconditional else feed.etag,
            last_modified=None if unconditional else feed.last_modified,
            accept=FEED_ACCEPT,
            auth=auth,
        )


def _decide(
    ctx: Context,
    feed: FeedState,
    policy: PollPolicy,
    now: datetime,
    response: Response,
    parsed: ParsedFeed | None,
    rate: float | None,
) -> PollResult:
    """Turn a 200 or a 304 into the result to write: entries, validators, next poll."""
    entries = () if parsed is None else parsed.entries
    observed = _observed(response, parsed.ttl if parsed else None, len(entries), rate)
    decision = next_poll(now, feed, observed, policy, ctx.rng)
    status = STATUS_OK if parsed is not None else STATUS_NOT_MODIFIED
    # A 304 carries no body: keep the validators we sent unless the server gave new ones.
    return _result(
        ctx, feed, now, decision, status, response,
        etag=response.header("etag") or (None if parsed else feed.etag),
        last_modified=response.header("last-modified") or (None if parsed else feed.last_modified),
        title=parsed.title if parsed else None,
        entries=entries,
        capture=capture_of("feed", response, now) if entries else None,
    )  # fmt: skip


def _result(
    ctx: Context,
    feed: FeedState,
    now: datetime,
    decision: Decision,
    status: str,
    response: Response | None,
    error: str | None = None,
    *,
    etag: str | None = None,
    last_modified: str | None = None,
    title: str | None = None,
    entries: tuple[Entry, ...] = (),
    capture: Capture | None = None,
) -> PollResult:
    """Built in one go: ``dataclasses.replace`` on it cost 5 us a poll, twice."""
    return PollResult(
        feed_id=feed.id,
        lease_owner=ctx.owner,
        polled_at=now,
        status=STATUS_GONE if decision.gone else status,
        next_check=decision.next_check,
        next_reason=decision.reason,
        interval=decision.interval,
        error_count=decision.error_count,
        http_status=response.status if response else None,
        error=error,
        etag=etag,
        last_modified=last_modified,
        title=title,
        entries=entries,
        capture=capture,
        gone=decision.gone,
        redirect_url=decision.redirect_url,
        redirect_count=decision.redirect_count,
        url=decision.new_url,
    )


def _failed(
    ctx: Context,
    feed: FeedState,
    policy: PollPolicy,
    now: datetime,
    observation: Observation,
    error: str,
    response: Response | None = None,
) -> PollResult:
    """A failed poll is recorded like any other: error, back-off, and the validators kept."""
    decision = next_poll(now, feed, replace(observation, error=True), policy, ctx.rng)
    return _result(ctx, feed, now, decision, STATUS_ERROR, response, error, etag=feed.etag,
                   last_modified=feed.last_modified)  # fmt: skip


async def _apply(
    ctx: Context, feed: FeedState, policy: PollPolicy, now: datetime, result: PollResult
) -> PollOutcome:
    """Write the result. One the database refuses (a value it cannot hold) becomes this feed's
    failed poll, so that the feed backs off instead of being re-claimed at every lease expiry;
    if even that cannot be written, the database is out of reach and the error is raised."""
    try:
        summary = await ctx.writer.write(result)
    except LeaseLost:
        raise
    except StorageError as exc:
        if result.status == STATUS_ERROR and not result.entries:
            raise
        error = f"storage: could not store the poll of {feed.url}: {str(exc)[:300]}"
        result = replace(_failed(ctx, feed, policy, now, NO_RESPONSE, error),
                         http_status=result.http_status)  # fmt: skip
        summary = await ctx.writer.write(result)
    if result.warning:  # a cap hit or a problem survived: the feed was read, not all of it
        log.warning("parse: %s for %s", result.warning, feed.url)
    return PollOutcome(feed, result, summary)


def _observed(response: Response, ttl: float | None = None, new_items: int = 0,
              rate: float | None = None) -> Observation:  # fmt: skip
    redirect = response.permanent_redirect if response.status < 300 else None
    return Observation(
        http_status=response.status,
        error=response.status >= 400,
        new_items=new_items,
        items_per_day=rate,
        ttl=ttl,
        headers=dict(response.headers),
        permanent_redirect_to=redirect,
    )


# No response at all (network, deadline, size cap, SSRF guard): the policy backs off.
NO_RESPONSE = Observation(http_status=None, error=True)


def capture_of(kind: str, response: Response, now: datetime) -> Capture:
    return Capture(
        kind=kind,
        url=response.url,
        final_url=response.final_url,
        status=response.status,
        headers=tuple((k, v) for k, v in response.headers if k in KEPT_HEADERS),
        fetched_at=now,
        body=response.body,
    )


async def archive_article(ctx: Context, pending: PendingArticle) -> ArticleResult:
    """Fetch, clean and store one item's page; returns what was stored.

    An outcome the database refuses is stored as this page's failure instead, counted and backed
    off like any other; if even that fails, the database is out of reach: the error is raised and
    the claim's lease brings the page back later.
    """
    result = await fetch_article(ctx, pending)
    store = ctx.store
    try:
        await asyncio.to_thread(store.apply_article, pending.item_id, result, ctx.clock())
    except StorageError as exc:
        if result.article is None and result.capture is None:
            raise
        error = f"storage: could not store the article of {pending.url}: {str(exc)[:300]}"
        result = article_failure(pending, ctx.clock(), error)
        await asyncio.to_thread(store.apply_article, pending.item_id, result, ctx.clock())
    return result


async def fetch_article(ctx: Context, pending: PendingArticle) -> ArticleResult:
    """Fetch and clean one item's page. Failures come back as values: the item keeps its feed
    content and the page is tried again later, backing off, ``ARTICLE_ATTEMPTS`` times in all.
    That holds for any exception, foreseen or not (issue 10): only cancellation raises."""
    now = ctx.clock()
    try:
        return await _fetch_article(ctx, pending, now)
    except Exception as exc:
        return article_failure(pending, now, unexpected("fetch", exc, pending.url))


def article_failure(
    pending: PendingArticle, now: datetime, error: str, capture: Capture | None = None
) -> ArticleResult:
    """A failed attempt: retried after a back-off, unless it was the last one allowed."""
    backoff = min(ARTICLE_RETRY_CAP, ARTICLE_RETRY_BASE * 2**pending.attempts)
    last = pending.attempts + 1 >= ARTICLE_ATTEMPTS
    retry = None if last else now + timedelta(seconds=backoff)
    return ArticleResult(capture=capture, error=error, next_try=retry)


async def _fetch_article(ctx: Context, pending: PendingArticle, now: datetime) -> ArticleResult:
    url = pending.url
    if (problem := url_problem(url)) is not None:  # as the HTTP client would refuse it
        return article_failure(pending, now, f"fetch: invalid URL {url}: {problem}")
    delay = None
    if ctx.robots is not None:
        if (refusal := await ctx.robots.refusal(url)) is not None:
            return article_failure(pending, now, f"fetch: {refusal}")
        delay = await ctx.robots.crawl_delay(url)
    try:
        async with ctx.limiter.slot(url, delay=delay):
            response = await ctx.http.get(url, accept=PAGE_ACCEPT)
    except FetchError as exc:
        return article_failure(pending, now, str(exc))
    if response.status != 200:
        return article_failure(pending, now, f"fetch: HTTP {response.status} for {url}")
    capture = capture_of("page", response, now)
    try:
        article = await asyncio.to_thread(_extract, response, ctx.rules)
    except ExtractError as exc:
        return article_failure(pending, now, str(exc), capture)
    except Exception as exc:  # the page is kept: a fixed extractor can re-run on it
        return article_failure(pending, now, unexpected("extract", exc, url), capture)
    return ArticleResult(article=article, capture=capture)


def _extract(response: Response, rules: SiteRules | LazyRules) -> Article:
    content_type = response.header("content-type") or ""
    if content_type and "html" not in content_type.lower():
        kind = content_type.split(";")[0]
        raise ExtractError(f"not an HTML page ({kind}) at {response.final_url}")
    from aggregator.extract.article import extract  # loaded on the first page (trafilatura)
    from aggregator.extract.charset import decode_html  # and charset_normalizer

    if isinstance(rules, LazyRules):
        rules = rules.get()  # the first page compiles them, here in its thread
    return extract(decode_html(response.body, content_type), response.final_url, rules)
