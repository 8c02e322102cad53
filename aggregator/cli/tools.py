"""The CLI's one-off jobs on single pages and archived captures (extract, reextract)."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aggregator.config import HttpSettings, Settings
from aggregator.errors import ExtractError, FetchError
from aggregator.extract import SiteRules, decode_html, extract
from aggregator.feeds.discover import Advertised, advertised_feeds
from aggregator.feeds.xmlsafety import looks_like_html
from aggregator.fetch import HttpClient
from aggregator.runtime.pipeline import unexpected
from storage.items import article_json
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


# What a re-extraction may change, as the report names it: each stored field in one group.
FIELD_KINDS = {"title": "title", "authors": "authors", "published": "published",
               "published_date": "published", "modified": "published", "language": "language",
               "canonical_url": "canonical", "image": "image", "text": "text", "html": "html",
               "dateline": "text"}  # fmt: skip


@dataclass
class Reextracted:
    """What ``reextract`` did: pages seen, articles whose stored result changed (and in which
    kinds of field), pages that failed, items that had no archived page to re-run on."""

    pages: int = 0
    changed: int = 0
    failed: int = 0
    no_page: int = 0
    fields: Counter[str] = field(default_factory=Counter)

    def line(self) -> str:
        kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(self.fields.items()))
        text = (f"re-extracted {self.pages} pages: {self.changed} changed"
                + (f" ({kinds})" if kinds else "") + f", {self.failed} failed")  # fmt: skip
        if self.no_page:
            text += (f"; {self.no_page} items have no archived page to re-extract (restored "
                     "from an export, which carries no raw pages)")
        return text


def changed_kinds(before: dict[str, Any] | None, after: dict[str, Any]) -> set[str]:
    """The kinds of field (``FIELD_KINDS``) in which ``after`` differs from the stored article."""
    old = before or {}
    return {kind for name, kind in FIELD_KINDS.items() if old.get(name) != after.get(name)}


def reextract_all(
    store: Store, settings: Settings, feed_url: str | None, since: datetime | None
) -> Reextracted:
    """Extract every archived page again; every article whose stored result changes is counted
    (a new revision is kept only where the text changed)."""
    rules = SiteRules.load(settings.sites)
    done = Reextracted(no_page=store.count_without_page(feed_url, since))
    for item_id, capture in store.iter_page_captures(feed_url, since):
        done.pages += 1
        content_type = dict(capture.headers).get("content-type")
        try:
            article = extract(decode_html(capture.body, content_type), capture.final_url, rules)
        except ExtractError:
            done.failed += 1
            continue
        except Exception as exc:  # one page the extractor trips on never stops the others
            log.warning("%s", unexpected("extract", exc, capture.final_url))
            done.failed += 1
            continue
        kinds = changed_kinds(store.reextraction_basis(item_id), article_json(article))
        store.apply_article(item_id, ArticleResult(article=article), datetime.now(UTC))
        if kinds:
            done.changed += 1
            done.fields.update(kinds)
    return done
