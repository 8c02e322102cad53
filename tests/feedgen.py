"""Builds fixture feeds and article pages for end-to-end tests (RSS 2.0 and Atom, N items)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape


@dataclass(frozen=True)
class Item:
    n: int
    base: str  # "http://127.0.0.1:PORT"
    guid: str | None = None
    pubdate: str = "Tue, 20 Apr 2021 17:05:00 +0600"

    @property
    def link(self) -> str:
        return f"{self.base}/news/{self.n}.html"

    @property
    def title(self) -> str:
        return f"Story number {self.n}"


def rss(items: Sequence[Item], *, title: str = "Fixture feed", ttl: int | None = None) -> bytes:
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>',
        f"<title>{escape(title)}</title><link>http://example.invalid/</link>",
        f"<ttl>{ttl}</ttl>" if ttl else "",
    ]
    for item in items:
        guid = item.guid if item.guid is not None else f"urn:story:{item.n}"
        parts.append(
            f"<item><title>{escape(item.title)}</title><link>{escape(item.link)}</link>"
            f"<guid isPermaLink=\"false\">{escape(guid)}</guid>"
            f"<pubDate>{item.pubdate}</pubDate>"
            f"<description>Teaser of story {item.n}.</description></item>"
        )
    parts.append("</channel></rss>")
    return "".join(parts).encode("utf-8")


def article_page(item: Item) -> bytes:
    paragraphs = "".join(
        f"<p>Paragraph {k} of story {item.n}, with enough words in it to be an article body "
        f"that any extractor keeps, not a caption or a link.</p>"
        for k in range(1, 5)
    )
    return (
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{escape(item.title)} | Fixture News</title>"
        f"<link rel=\"canonical\" href=\"{escape(item.link)}\">"
        "<meta property=\"article:published_time\" content=\"2021-04-20T17:05:00+06:00\">"
        "</head><body><nav><a href=\"/\">Home</a> <a href=\"/world\">World</a></nav>"
        f"<article><h1>{escape(item.title)}</h1>{paragraphs}</article>"
        "<footer>© Fixture News</footer></body></html>"
    ).encode()
