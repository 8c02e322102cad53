"""The feeds an HTML page advertises (`<link rel="alternate" type="…rss+xml">`); no I/O.

A newcomer often configures a site's home page instead of its feed (issue 13): the parse error
then names the feeds the page offers, and ``aggregator discover URL`` lists them.
"""

from __future__ import annotations

from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

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


class _Links(HTMLParser):
    def __init__(self, base: str) -> None:
        super().__init__(convert_charrefs=True)
        self.base = base
        self.found: list[Advertised] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "base":
            href = dict(attrs).get("href")
            if href:
                self.base = urljoin(self.base, href.strip())
            return
        if tag not in ("link", "a") or len(self.found) >= MAX_FOUND:
            return
        values = {name: value or "" for name, value in attrs}
        rels = values.get("rel", "").lower().split()
        kind = FEED_TYPES.get(values.get("type", "").split(";")[0].strip().lower())
        href = values.get("href", "").strip()
        if "alternate" in rels and kind and href:
            url = urljoin(self.base, href)
            if urlsplit(url).scheme in ("http", "https") and url not in {f.url for f in self.found}:
                self.found.append(Advertised(url, kind, " ".join(values.get("title", "").split())))


def advertised_feeds(html: bytes | str, base_url: str) -> list[Advertised]:
    """The feed links of a page, in page order, resolved against the page's URL (or its
    ``<base href>``); at most 20, from the first 512 KiB."""
    text = html[:SCANNED].decode("utf-8", "replace") if isinstance(html, bytes) else html[:SCANNED]
    parser = _Links(base_url)
    try:
        parser.feed(text)
        parser.close()
    except (AssertionError, ValueError):  # markup the stdlib parser gives up on: keep the finds
        pass
    return parser.found


def offer(html: bytes | str, base_url: str) -> str:
    """The end of the "not a feed" message: which feeds the page advertises, if any."""
    found = advertised_feeds(html, base_url)
    if not found:
        return " (it advertises no feed: look for an RSS or Atom link on the site)"
    urls = ", ".join(feed.url for feed in found[:3])
    return f"; the page advertises {urls}: configure that as the feed's url"
