"""The feeds an HTML page advertises (`<link rel="alternate" type="…rss+xml">`); no I/O.

A newcomer often configures a site's home page instead of its feed (issue 13): the parse error
then names the feeds the page offers, and ``aggregator discover URL`` lists them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

from lxml import etree

FEED_TYPES = {
    "application/rss+xml": "RSS",
    "application/atom+xml": "Atom",
    "application/feed+json": "JSON Feed",
    "application/rdf+xml": "RSS 1.0",
}
SCANNED = 512 * 1024  # the <head> is near the start; a huge page is not read to its end
MAX_FOUND = 20


@dataclass(frozen=True, slots=True)
class Advertised:
    url: str
    kind: str  # "RSS", "Atom", "JSON Feed", "RSS 1.0"
    title: str


def advertised_feeds(html: bytes | str, base_url: str) -> list[Advertised]:
    """The feed links of a page, in page order, resolved against the page's URL (or its
    ``<base href>``); at most 20, from the first 512 KiB. lxml's HTML parser: linear on
    hostile markup (the stdlib one is quadratic on a run of unclosed tags)."""
    data = html[:SCANNED] if isinstance(html, bytes) else html[:SCANNED].encode("utf-8", "replace")
    try:
        root = etree.fromstring(data, etree.HTMLParser(no_network=True, recover=True))
    except (etree.LxmlError, ValueError):
        return []
    if root is None:
        return []
    base = base_url
    for href in root.xpath("//base/@href")[:1]:
        base = urljoin(base_url, str(href).strip())
    found: list[Advertised] = []
    for link in root.xpath("//link[@href] | //a[@href]"):
        feed = _feed_link(link, base)
        if feed is not None and feed.url not in {f.url for f in found}:
            found.append(feed)
            if len(found) == MAX_FOUND:
                break
    return found


def _feed_link(link: Any, base: str) -> Advertised | None:
    rels = str(link.get("rel") or "").lower().split()
    kind = FEED_TYPES.get(str(link.get("type") or "").split(";")[0].strip().lower())
    href = str(link.get("href") or "").strip()
    if "alternate" not in rels or not kind or not href:
        return None
    url = urljoin(base, href)
    if urlsplit(url).scheme not in ("http", "https"):
        return None
    return Advertised(url, kind, " ".join(str(link.get("title") or "").split()))


def html_page(html: bytes | str, base_url: str) -> str:
    """What the "not a feed" message says of the page: which feeds it advertises, if any."""
    found = advertised_feeds(html, base_url)
    if not found:
        return "an HTML page, advertising no feed"
    urls = ", ".join(feed.url for feed in found[:3])
    return f"an HTML page; it advertises {urls}: configure that as the feed's url"
