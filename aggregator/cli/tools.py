"""The CLI's one-off jobs on single pages and archived captures (extract, reextract)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

from aggregator.config import HttpSettings, Settings
from aggregator.errors import ExtractError, FetchError
from aggregator.extract import SiteRules, decode_html, extract
from aggregator.feeds.discover import Advertised, advertised_feeds
from aggregator.feeds.xmlsafety import looks_like_html
from aggregator.fetch import HttpClient
from aggregator.runtime.pipeline import unexpected
from storage.records import ArticleResult
from storage.store import Store

log = logging.getLogger(__name__)


async def load_page(source: str, url: str | None, http: HttpSettings) -> tuple[str, str]:
    """The page's HTML and URL: fetched when SOURCE is a URL, read when it is a saved file."""
    if source.startswith(("http://", "https://")):
        client = HttpClient(http)
        try:
            response = await client.get(source)
        finally:
            await client.aclose()
        if response.status != 200:
            raise FetchError(f"HTTP {response.status} for {source}")
        return decode_html(response.body, response.header("content-type")), response.final_url
    path = Path(source)
    try:
        body = path.read_bytes()
    except OSError as exc:
        raise ExtractError(f"cannot read {path}: {exc.strerror or exc}") from None
    return decode_html(body, None), url or path.resolve().as_uri()


async def discover(url: str, http: HttpSettings) -> tuple[str, list[Advertised], bool]:
    """(final URL, the feeds the page advertises, whether the URL is a feed itself)."""
    client = HttpClient(http)
    try:
        response = await client.get(url)
    finally:
        await client.aclose()
    if response.status != 200:
        raise FetchError(f"HTTP {response.status} for {url}")
    is_feed = not looks_like_html(response.body) and response.body.lstrip()[:1] in (b"<", b"{")
    return response.final_url, advertised_feeds(response.body, response.final_url), is_feed


def reextract_all(
    store: Store, settings: Settings, feed_url: str | None, since: datetime | None
) -> tuple[int, int, int]:
    """Extract every archived page again; the store keeps a revision only where text changed."""
    rules = SiteRules.load(settings.sites)
    seen = changed = failed = 0
    for item_id, capture in store.iter_page_captures(feed_url, since):
        seen += 1
        content_type = dict(capture.headers).get("content-type")
        try:
            article = extract(decode_html(capture.body, content_type), capture.final_url, rules)
        except ExtractError:
            failed += 1
            continue
        except Exception as exc:  # one page the extractor trips on never stops the others
            log.warning("%s", unexpected("extract", exc, capture.final_url))
            failed += 1
            continue
        result = ArticleResult(article=article)
        if store.apply_article(item_id, result, datetime.now(UTC)):
            changed += 1
    return seen, changed, failed
