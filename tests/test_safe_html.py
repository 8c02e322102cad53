"""Stored HTML is safe everywhere (issue 11): feed summaries and content go through the article
policy (nh3) before they are stored, on every feed format and every field that carries HTML;
served by a real server, polled, stored and exported, on SQLite and PostgreSQL. The raw feed
capture keeps the bytes as served."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import nh3
from alembic import command
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import create_engine, select

from aggregator.config.settings import Settings
from aggregator.feeds.feedhtml import _Cache, sanitize_feed
from aggregator.feeds.parse import parse_feed
from aggregator.runtime.oneshot import OneShot
from storage.captures import unpack
from storage.engine import alembic_config
from storage.export import read_export, write_export
from storage.identity import content_hash
from storage.records import ExportFilter, FeedConfig
from storage.safehtml import POLICY, sanitize_fragment
from storage.store import Store
from storage.tables import blobs, captures
from tests.dbfixtures import T0, entry
from tests.dbfixtures import poll as poll_store
from tests.httpserver import TestServer

# Well-formed XML as well as HTML, so that Atom's type="xhtml" can carry it unescaped.
PAYLOAD = (
    '<script>alert("x1")</script>'
    '<img src="pic.png" onerror="alert(2)"/>'
    '<a href="javascript:alert(3)">js link</a>'
    '<a href="JaVaScRiPt&#x3a;alert(6)">encoded js link</a>'
    '<a href="data:text/html;base64,PHNjcmlwdD4=">data link</a>'
    '<p style="background:url(javascript:alert(4))" onclick="alert(7)">styled</p>'
    "<style>body { display: none }</style>"
    '<iframe src="https://evil.example/frame"></iframe>'
    '<object data="https://evil.example/x.swf"></object>'
    '<embed src="https://evil.example/x.swf"/>'
    '<form action="https://evil.example/post"><input name="q"/></form>'
    '<base href="https://evil.example/"/>'
    '<meta http-equiv="refresh" content="0;url=https://evil.example/"/>'
    '<svg xmlns:xlink="http://www.w3.org/1999/xlink"><a xlink:href="javascript:alert(5)">'
    "svg link</a></svg>"
    '<p>Kept <b>bold</b> and <a href="https://ok.example/story">a link</a>.</p>'
)
FORBIDDEN = (
    "<script", "alert(", "onerror", "onclick", "javascript", "data:text", "style=", "<style",
    "display", "<iframe",
    "<object", "<embed", "<form", "<input", "<base", "<meta", "refresh", "<svg", "xlink",
    "evil.example",
)  # fmt: skip
KEPT = ("Kept <b>bold</b>", 'href="https://ok.example/story"')


def assert_safe(html: str | None, *, kept: bool = True) -> None:
    assert html is not None
    lowered = html.lower()
    assert [bad for bad in FORBIDDEN if bad in lowered] == []
    if kept:
        assert all(good in html for good in KEPT), html


# -- the policy ----------------------------------------------------------------------------


def test_every_payload_is_neutralized_and_the_story_kept() -> None:
    assert_safe(sanitize_fragment(PAYLOAD))


SHORTCUT_UNSAFE = "<>&\r\x00\u00a0"  # what the policy changes in text (storage/safehtml.py)


def test_the_policy_changes_no_other_character() -> None:
    """Every code point, once: the shortcut that skips nh3 for text free of these is exact."""
    cleaner = nh3.Cleaner(**POLICY)
    points = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    changed = []
    for start in range(0, len(points), 4096):  # a block at once; one by one where it changed
        block = points[start : start + 4096]
        if cleaner.clean("a".join(block)) != "a".join(block):
            changed += [c for c in block if cleaner.clean(f"a{c}b") != f"a{c}b"]
    assert sorted(changed) == sorted(SHORTCUT_UNSAFE)


@given(st.text(alphabet=st.characters(blacklist_characters=SHORTCUT_UNSAFE,
                                      blacklist_categories=("Cs",))))
def test_text_without_markup_is_what_the_policy_makes_of_it(text: str) -> None:
    """The shortcut that skips nh3 for plain text changes nothing."""
    assert sanitize_fragment(text) == nh3.clean(text, **POLICY)


def test_the_cache_answers_as_the_policy_and_stays_within_its_budget() -> None:
    cache = _Cache(budget=16_000)
    first = cache.clean(PAYLOAD)
    assert first == sanitize_fragment(PAYLOAD) and cache.clean(PAYLOAD) == first
    for n in range(200):
        cache.clean(f"<p onclick='x'>entry {n} " + "words " * 20 + "</p>")
    assert cache.held <= cache.budget
    assert sum(len(k) + len(v) for k, v in cache.entries.items()) == cache.held
    huge = "<p>" + "a" * 10_000 + "</p>"
    assert cache.clean(huge) == huge and huge not in cache.entries  # too big to keep


# -- every format, every field --------------------------------------------------------------


def rss_feed() -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel>'
        "<title>RSS</title><link>https://site.example/</link>"
        "<item><title>RSS story</title><link>https://site.example/rss/1</link>"
        "<guid>urn:rss:1</guid>"
        f"<description>{escape(PAYLOAD)}</description>"
        f"<content:encoded><![CDATA[{PAYLOAD}]]></content:encoded></item>"
        "</channel></rss>"
    ).encode()


def atom_feed() -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        "<title>Atom</title><id>urn:atom</id><updated>2024-05-01T00:00:00Z</updated>"
        "<entry><title>Atom html</title><id>urn:atom:1</id>"
        '<link href="https://site.example/atom/1"/><updated>2024-05-01T00:00:00Z</updated>'
        f'<summary type="html">{escape(PAYLOAD)}</summary>'
        f'<content type="html">{escape(PAYLOAD)}</content></entry>'
        "<entry><title>Atom xhtml</title><id>urn:atom:2</id>"
        '<link href="https://site.example/atom/2"/><updated>2024-05-01T00:00:00Z</updated>'
        f'<summary type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">{PAYLOAD}</div>'
        "</summary>"
        f'<content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">{PAYLOAD}</div>'
        "</content></entry></feed>"
    ).encode()


def json_feed() -> bytes:
    return json.dumps({
        "version": "https://jsonfeed.org/version/1.1", "title": "JSON",
        "items": [{"id": "json-1", "url": "https://site.example/json/1", "title": "JSON story",
                   "summary": PAYLOAD, "content_html": PAYLOAD}],
    }).encode()  # fmt: skip


FEEDS = {
    "/rss.xml": (rss_feed, "application/rss+xml"),
    "/atom.xml": (atom_feed, "application/atom+xml"),
    "/feed.json": (json_feed, "application/feed+json"),
}


def test_parsing_then_sanitizing_leaves_no_payload_in_any_field() -> None:
    """Both XML readers (the lxml fast path and feedparser) and the JSON reader."""
    for path, (make, kind) in FEEDS.items():
        for fast in (True, False):
            parsed = parse_feed(make(), f"https://site.example{path}", {"content-type": kind},
                                fast_path=fast)
            assert parsed.entries, path
            for one in sanitize_feed(parsed).entries:
                assert_safe(one.summary)
                assert_safe(one.content_html)


def settings_for(*urls: str) -> Settings:
    return Settings.model_validate({
        "http": {"allow_private_networks": True, "per_host_delay": 0, "timeout": 5,
                 "respect_robots": False},
        "defaults": {"fetch_articles": False},
        "feeds": [{"url": url} for url in urls],
    })  # fmt: skip


def poll_service(settings: Settings, store: Store) -> None:
    store.sync_feeds(settings.feed_configs(), datetime.now(UTC))
    totals = asyncio.run(OneShot(settings, store).poll_once())
    assert totals.failed == 0, totals.errors


def exported(store: Store, tmp_path: Path) -> list[dict[str, Any]]:
    out = tmp_path / "export.jsonl"
    write_export(store, out, "jsonl", ExportFilter())
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]


def feed_captures(store: Store) -> dict[str, bytes]:
    query = select(captures.c.url, blobs.c.codec, blobs.c.body).join(
        blobs, blobs.c.sha256 == captures.c.blob_sha256).where(captures.c.kind == "feed")
    with store.db.read() as conn:
        return {row.url: unpack(row.codec, row.body) for row in conn.execute(query)}


def serve_all(http_server: TestServer) -> list[str]:
    for path, (make, kind) in FEEDS.items():
        http_server.route(path, body=make(), headers={"Content-Type": kind})
    return [http_server.url(path) for path in FEEDS]


def test_feed_html_is_sanitized_when_polled_stored_and_exported(
    http_server: TestServer, store: Store, tmp_path: Path
) -> None:
    urls = serve_all(http_server)
    poll_service(settings_for(*urls), store)
    items = exported(store, tmp_path)
    assert sorted(i["title"] for i in items) == [
        "Atom html", "Atom xhtml", "JSON story", "RSS story"]
    for item in items:
        assert_safe(item["summary"])
        assert_safe(item["content_html"])
        for revision in item["revisions"]:
            assert_safe(revision["summary"])
    raw = feed_captures(store)
    assert {raw[url] for url in urls} == {make() for make, _ in FEEDS.values()}


def test_a_changed_feed_makes_no_revision_of_its_unchanged_sanitized_entries(
    http_server: TestServer, store: Store, tmp_path: Path
) -> None:
    """What is compared with the stored entry is the sanitized form: a re-poll of the same
    payload is no change, only the new entry is written."""
    urls = serve_all(http_server)
    settings = settings_for(*urls)
    poll_service(settings, store)
    before = {i["id"]: i for i in exported(store, tmp_path)}
    grown = rss_feed().replace(
        b"</channel>",
        b"<item><title>Second</title><link>https://site.example/rss/2</link><guid>urn:rss:2</guid>"
        b"<description>&lt;b onmouseover='x()'&gt;plain&lt;/b&gt;</description></item></channel>",
    )
    http_server.route("/rss.xml", body=grown, headers={"Content-Type": "application/rss+xml"})
    poll_service(settings, store)
    after = {i["id"]: i for i in exported(store, tmp_path)}
    assert set(after) - set(before) and len(after) == len(before) + 1
    for uid, item in before.items():
        assert after[uid]["revisions"] == item["revisions"]
        assert after[uid]["content_hash"] == item["content_hash"]
    [new] = [after[uid] for uid in set(after) - set(before)]
    assert new["summary"] == "<b>plain</b>"


# -- whichever way HTML arrives: an old archive, an import file ------------------------------

TAGS = ("p", "a", "b", "script", "style", "img", "iframe", "svg", "math", "table", "td", "form",
        "textarea", "noscript", "template", "select", "option", "title", "xmp", "plaintext")
PIECES = st.one_of(
    st.sampled_from([f"<{t}>" for t in TAGS] + [f"</{t}>" for t in TAGS]),
    st.sampled_from(['<a href="javascript:x">', '<img src=x onerror=y>', "<!--", "-->", "&amp;",
                     "&lt;", "&", "<", ">", '"', "'", "\u00a0", "\r\n", "<![CDATA[", "]]>"]),
    st.text(max_size=8),
)


@given(st.lists(PIECES, max_size=30).map("".join))
def test_the_policy_is_idempotent(html: str) -> None:
    """What was stored sanitized comes back the same from an export, and a re-poll of the same
    entry compares equal to what is stored."""
    once = sanitize_fragment(html)
    assert sanitize_fragment(once) == once


FEED_URL = "https://old.example/feed.xml"


def old_archive(store: Store) -> None:
    """What a version before issue 11 stored: the feed's HTML as it came."""
    store.sync_feeds([FeedConfig(url=FEED_URL, fetch_articles=False)], T0)
    poll_store(store, FEED_URL, T0, [entry(1, summary=PAYLOAD, content_html=PAYLOAD), entry(2)])


def test_upgrading_an_old_archive_sanitizes_what_it_stored(store_url: str, tmp_path: Path) -> None:
    with Store.open(store_url) as store:
        old_archive(store)
        [raw, plain] = sorted(exported(store, tmp_path), key=lambda i: i["guid"])
    assert "<script>" in raw["summary"]  # the test stores what an old version stored
    downgrade(store_url, "0004")
    with Store.open(store_url) as store:
        [item, same] = sorted(exported(store, tmp_path), key=lambda i: i["guid"])
        assert same == plain  # nothing to clean: untouched
        for html in (item["summary"], item["content_html"], item["revisions"][0]["summary"]):
            assert_safe(html)
        clean = sanitize_fragment(PAYLOAD)
        assert item["content_hash"] == content_hash(item["title"], clean, None)
        assert item["revisions"][0]["content_hash"] == item["content_hash"]
        assert item["changed_at"] > raw["changed_at"]
        # the same entry, now sanitized by the poll, is no change
        again = poll_store(store, FEED_URL, T0 + timedelta(hours=1),
                     [entry(1, summary=clean, content_html=clean), entry(2)])
        assert (again.new_items, again.revisions) == (0, 0)


def test_an_import_file_is_sanitized_before_it_is_stored(
    store_url: str, tmp_path: Path
) -> None:
    source = tmp_path / "old.jsonl"
    with Store.open(f"sqlite:///{tmp_path / 'old.db'}") as old:
        old_archive(old)
        write_export(old, source, "jsonl", ExportFilter())
    assert "<script>" in source.read_text(encoding="utf-8")
    with Store.open(store_url) as new:
        new.import_items(read_export(source))
        items = exported(new, tmp_path)
    [item] = [i for i in items if i["guid"] == "guid-1"]
    for html in (item["summary"], item["content_html"], item["revisions"][0]["summary"]):
        assert_safe(html)
    assert item["content_hash"] == content_hash(item["title"], item["summary"], None)
    assert item["revisions"][0]["content_hash"] == item["content_hash"]


def downgrade(url: str, revision: str) -> None:
    """The schema (and data) as an older program left it; a plain engine keeps SQLite's foreign
    keys off, as tests/test_upgrade_keeps_data.py does."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), revision)
    finally:
        engine.dispose()
