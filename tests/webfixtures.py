"""A small archive with known answers for the web view, the feeds out and the WARC export
(issue 16), written through the store's own write path (polls, articles, captures).

What it holds, and what the tests rely on:
- two feeds: NEWS (tags ``news``, ``kz``) with ``NEWS_ITEMS`` stories, and OTHER (tag ``other``)
  with a story in Russian and one in Kazakh, and one story NEWS carries too (a second sighting);
- story 1 of NEWS has an article (with a page capture) and a second revision whose text
  changed one line: "The council met on Monday." became "The council met on Tuesday.";
- ``HOSTILE``: an item whose title, summary, content and article HTML carry script, event
  handler and ``javascript:`` payloads, stored raw (as an archive written before sanitizing
  would hold them); each payload, if it ran, would set ``window.__xss``;
- every poll that brought something new keeps its feed document as a capture.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from storage.records import Article, ArticleResult, Capture, Entry, FeedConfig
from storage.store import Store
from tests.dbfixtures import entry, poll

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
NEWS = "https://news.example/feed.xml"
OTHER = "https://other.example/rss"
NEWS_ITEMS = 60  # with the hostile one, two pages of 50
HOSTILE_TITLE = ('Hostile <script>window.__xss="title";alert(1)</script>'
                 '<img src=x onerror="window.__xss=\'title-img\'">')  # fmt: skip
HOSTILE_HTML = (
    '<p>Body <script>window.__xss="body"</script></p>'
    '<img src="x" onerror="window.__xss=\'onerror\'">'
    '<a href="javascript:window.__xss=\'href\'" id="jslink">click me</a>'
    '<svg onload="window.__xss=\'svg\'"></svg>'
    '<iframe src="javascript:window.__xss=\'iframe\'"></iframe>'
    '<form action="javascript:window.__xss=\'form\'"><button>go</button></form>'
)
HOSTILE_URL = "https://news.example/story/hostile"
OLD_TEXT = "Opening line.\n\nThe council met on Monday.\n\nClosing line."
NEW_TEXT = "Opening line.\n\nThe council met on Tuesday.\n\nClosing line."
RUSSIAN_TITLE = "Правительство обсудило бюджет"
KAZAKH_TITLE = "Үкімет бюджетті талқылады"


def feed_capture(url: str, when: datetime, body: bytes) -> Capture:
    return Capture(kind="feed", url=url, final_url=url, status=200,
                   headers=(("content-type", "application/rss+xml; charset=utf-8"),
                            ("etag", '"v1"')), fetched_at=when, body=body)  # fmt: skip


def page_capture(url: str, when: datetime, html: str) -> Capture:
    return Capture(kind="page", url=url, final_url=url, status=200,
                   headers=(("content-type", "text/html; charset=utf-8"),
                            ("content-encoding", "gzip")), fetched_at=when,
                   body=html.encode())  # fmt: skip


def article(text: str, title: str = "Story 1", html: str | None = None) -> Article:
    body = html or "".join(f"<p>{p}</p>" for p in text.split("\n\n"))
    return Article(title=title, text=text, html=body, authors=("A. Writer",), language="en",
                   extractor="test/1")  # fmt: skip


def build(store: Store) -> dict[str, int]:
    """Fill ``store``; returns the item ids the tests open, by name."""
    store.sync_feeds([FeedConfig(url=NEWS, title="News Example", tags=("news", "kz")),
                      FeedConfig(url=OTHER, title="Other Example", tags=("other",))], T0)
    news = [entry(n, published=T0 - timedelta(hours=NEWS_ITEMS - n)) for n in
            range(1, NEWS_ITEMS + 1)]  # fmt: skip
    hostile = Entry(key="hostile", guid="hostile", url=HOSTILE_URL, title=HOSTILE_TITLE,
                    summary=HOSTILE_HTML, content_html=HOSTILE_HTML)  # fmt: skip
    poll(store, NEWS, T0, [*news, hostile], capture=feed_capture(NEWS, T0, b"<rss>one</rss>"))
    other = [
        entry("ru", title=RUSSIAN_TITLE, summary="Депутаты обсудили расходы на образование.",
              url="https://other.example/ru"),
        entry("kk", title=KAZAKH_TITLE, summary="Депутаттар білім беру шығындарын талқылады.",
              url="https://other.example/kk"),
        news[0],  # the same story as NEWS's first: one item, two sightings
    ]  # fmt: skip
    poll(store, OTHER, T0, other, capture=feed_capture(OTHER, T0, b"<rss>two</rss>"))
    ids = {"story1": _id(store, news[0].url), "hostile": _id(store, HOSTILE_URL),
           "russian": _id(store, "https://other.example/ru"),
           "kazakh": _id(store, "https://other.example/kk")}  # fmt: skip
    later = T0 + timedelta(hours=2)
    store.apply_article(ids["story1"], ArticleResult(
        article=article(OLD_TEXT), capture=page_capture(news[0].url or "", T0, "<p>v1</p>")), T0)
    store.apply_article(ids["story1"], ArticleResult(
        article=article(NEW_TEXT), capture=page_capture(news[0].url or "", later, "<p>v2</p>")),
        later)  # fmt: skip
    store.apply_article(ids["hostile"], ArticleResult(article=article(
        "Body", title=HOSTILE_TITLE, html=HOSTILE_HTML)), T0)  # fmt: skip
    # a later poll of NEWS with nothing new must not break anything
    poll(store, NEWS, later + timedelta(hours=1), [replace(news[1])])
    return ids


def _id(store: Store, url: str | None) -> int:
    found = store.item_id_for_url(url or "")
    assert found is not None, url
    return found
