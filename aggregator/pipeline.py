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

from aggregator.errors import ExtractError, FetchError, ParseError
from aggregator.extract import SiteRules, decode_html
from aggregator.feedhtml import parse_safely
from aggregator.feeds import ParsedFeed, parse_feed
from aggregator.http import BasicAuth, HttpClient, Response
from aggregator.policy import (
    Decision,
    Observation,
    PollPolicy,
    next_poll,
    should_poll_unconditionally,
)
from aggregator.politeness import HostLimiter, RobotsCache
from aggregator.writer import PollWriter
from storage.records import (
    STATUS_ERROR,
    STATUS_GONE,
    STATUS_NOT_MODIFIED,
    STATUS_OK,
    Article,
    ArticleResult,
    Capture,
    FeedConfig,
    FeedState,
    PendingArticle,
    PollResult,
    PollSummary,
)
from storage.store import Store

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
ARTICLE_RETRY_BASE = 900.0
ARTICLE_RETRY_CAP = 86400.0
ARTICLE_ATTEMPTS = 10


@dataclass(frozen=True, slots=True)
class Context:
    """What a poll needs, passed in: nothing here reads a global or the clock by itself."""

    store: Store
    writer: PollWriter  # poll outcomes go through it: group commit
    http: HttpClient
    limiter: HostLimiter
    robots: RobotsCache | None
    rules: SiteRules
    owner: str
    clock: Callable[[], datetime]
    rng: random.Random
    parse: Callable[[bytes, str, dict[str, str], datetime], ParsedFeed] = parse_feed
    parse_pool: Executor | None = None  # None: the loop's threads; a process pool uses more cores


@dataclass(frozen=True, slots=True)
class PollOutcome:
    feed: FeedState
    result: PollResult
    summary: PollSummary


async def poll_feed(ctx: Context, feed: FeedState, config: FeedConfig) -> PollOutcome:
    """Poll one claimed feed and write the outcome; the lease is released by that write."""
    now = ctx.clock()
    policy = policy_for(config)
    unconditional = should_poll_unconditionally(now, feed, policy)
    try:
        response = await _get_feed(ctx, feed, config, unconditional)
    except FetchError as exc:
        return await _finish(ctx, feed, policy, now, NO_RESPONSE, str(exc))
    rate = feed.items_per_day
    if response.status == 304:
        return await _apply(ctx, feed, _decide(ctx, feed, policy, now, response, None, rate))
    if response.status >= 300:
        error = f"fetch: HTTP {response.status} for {feed.url}"
        return await _finish(ctx, feed, policy, now, _observed(response), error, response)
    try:
        headers = dict(response.headers)
        parsed = await asyncio.get_running_loop().run_in_executor(  # HTML sanitized there too
            ctx.parse_pool, parse_safely, ctx.parse, response.body, response.final_url, headers,
            now,
        )
    except ParseError as exc:
        return await _finish(ctx, feed, policy, now, _observed(response), str(exc), response)
    result = _decide(ctx, feed, policy, now, response, parsed, rate)
    result = replace(result, unconditional=unconditional, fetch_articles=config.fetch_articles)
    return await _apply(ctx, feed, result)


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
    observed = replace(
        _observed(response, ttl=parsed.ttl if parsed else None),
        new_items=len(entries),
        items_per_day=rate,
    )
    decision = next_poll(now, feed, observed, policy, ctx.rng)
    status = STATUS_OK if parsed is not None else STATUS_NOT_MODIFIED
    # A 304 carries no body: keep the validators we sent unless the server gave new ones.
    return replace(
        _result(ctx, feed, now, decision, status, response),
        etag=response.header("etag") or (None if parsed else feed.etag),
        last_modified=response.header("last-modified") or (None if parsed else feed.last_modified),
        title=parsed.title if parsed else None,
        entries=entries,
        capture=capture_of("feed", response, now) if entries else None,
    )


def _result(
    ctx: Context,
    feed: FeedState,
    now: datetime,
    decision: Decision,
    status: str,
    response: Response | None,
    error: str | None = None,
) -> PollResult:
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
        gone=decision.gone,
        redirect_url=decision.redirect_url,
        redirect_count=decision.redirect_count,
        url=decision.new_url,
    )


async def _finish(
    ctx: Context,
    feed: FeedState,
    policy: PollPolicy,
    now: datetime,
    observation: Observation,
    error: str,
    response: Response | None = None,
) -> PollOutcome:
    """A failed poll is recorded like any other: error, back-off, and the validators kept."""
    decision = next_poll(now, feed, replace(observation, error=True), policy, ctx.rng)
    result = replace(
        _result(ctx, feed, now, decision, STATUS_ERROR, response, error),
        etag=feed.etag,
        last_modified=feed.last_modified,
    )
    return await _apply(ctx, feed, result)


async def _apply(ctx: Context, feed: FeedState, result: PollResult) -> PollOutcome:
    summary = await ctx.writer.write(result)
    if result.error:
        log.warning("%s", result.error)
    return PollOutcome(feed, result, summary)


def _observed(response: Response, ttl: float | None = None) -> Observation:
    redirect = response.permanent_redirect if response.status < 300 else None
    return Observation(
        http_status=response.status,
        error=response.status >= 400,
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


async def fetch_article(ctx: Context, pending: PendingArticle) -> ArticleResult:
    """Fetch and clean one item's page. Failures come back as values: the item keeps its feed
    content and the page is tried again later, backing off."""
    now = ctx.clock()
    backoff = min(ARTICLE_RETRY_CAP, ARTICLE_RETRY_BASE * 2**pending.attempts)
    retry = now + timedelta(seconds=backoff) if pending.attempts + 1 < ARTICLE_ATTEMPTS else None
    delay = None
    if ctx.robots is not None:
        if (refusal := await ctx.robots.refusal(pending.url)) is not None:
            return ArticleResult(error=f"fetch: {refusal}", next_try=retry)
        delay = await ctx.robots.crawl_delay(pending.url)
    try:
        async with ctx.limiter.slot(pending.url, delay=delay):
            response = await ctx.http.get(pending.url, accept=PAGE_ACCEPT)
    except FetchError as exc:
        return ArticleResult(error=str(exc), next_try=retry)
    if response.status != 200:
        error = f"fetch: HTTP {response.status} for {pending.url}"
        return ArticleResult(error=error, next_try=retry)
    capture = capture_of("page", response, now)
    try:
        article = await asyncio.to_thread(_extract, response, ctx.rules)
    except ExtractError as exc:
        return ArticleResult(capture=capture, error=str(exc), next_try=retry)
    return ArticleResult(article=article, capture=capture)


def _extract(response: Response, rules: SiteRules) -> Article:
    content_type = response.header("content-type") or ""
    if content_type and "html" not in content_type.lower():
        kind = content_type.split(";")[0]
        raise ExtractError(f"not an HTML page ({kind}) at {response.final_url}")
    from aggregator.extract.article import extract  # loaded on the first page (trafilatura)

    return extract(decode_html(response.body, content_type), response.final_url, rules)
