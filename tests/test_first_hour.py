"""A newcomer's first hour, scripted (issue 13): check-config with the usual mistakes, poll a local
site twice, feeds (and a feed by its short form), export and import, reextract, extract, discover.
Every line a user reads is checked, so that a change of wording or of an exit status fails here
first. Times ("0s ago", "in 1h 13m") and the server's address are the only parts replaced before
comparing.

Also: the advertised-feed finder on its own (``aggregator.feeds.discover``)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from aggregator.feeds.discover import Advertised, advertised_feeds, html_page
from tests.feedgen import Item, article_page, rss
from tests.httpserver import TestServer
from tests.test_cli_newcomer import aggregator, write

HOME = (b'<html><head><title>Fixture News</title>'
        b'<link rel="alternate" type="application/rss+xml" title="Fixture News" href="/feed.xml">'
        b'<link rel="stylesheet" href="/s.css"></head><body>Home</body></html>')  # fmt: skip


def masked(text: str, base: str) -> list[str]:
    """Lines with the server's address as BASE and spans of time as AGO / IN / WHEN."""
    text = text.replace(base, "BASE").replace(base.removeprefix("http://"), "HOST")
    text = re.sub(r"\b\d+[smhd]( \d+[smhd])? ago\b", "AGO", text)
    text = re.sub(r"\bin \d+[smhd]( \d+[smhd])?\b", "IN", text)
    text = re.sub(r"\d{4}-\d\d-\d\dT[\d:.]+\+00:00", "WHEN", text)
    return text.splitlines()


def serve_site(server: TestServer) -> list[Item]:
    items = [Item(n, server.base_url) for n in (1, 2)]
    server.route("/feed.xml", body=rss(items, title="Fixture News"), etag='"v1"',
                 headers={"Content-Type": "application/rss+xml"})  # fmt: skip
    for item in items:
        server.route(f"/news/{item.n}.html", body=article_page(item),
                     headers={"Content-Type": "text/html; charset=utf-8"})  # fmt: skip
    server.route("/", body=HOME, headers={"Content-Type": "text/html; charset=utf-8"})
    return items


HTTP = "http:\n  allow_private_networks: true\n  per_host_delay: 0\n  respect_robots: false\n"


@pytest.mark.timeout(360)  # about 25 processes, each a CLI start: slow on a loaded machine
def test_the_first_hour(tmp_path: Path, http_server: TestServer) -> None:
    items = serve_site(http_server)
    base, home, feed = http_server.base_url, http_server.url("/"), http_server.url("/feed.xml")

    def step(*args: str) -> tuple[int, list[str], list[str]]:
        code, out, err = aggregator(*args, cwd=tmp_path)
        return code, masked(out, base), masked(err, base)

    # 1. The first commands: a version, and what a missing config says.
    assert step("--version") == (0, ["aggregator, version 0.1.0"], [])
    assert step("check-config") == (2, [], [
        "config: no configuration: pass --config FILE or set AGGREGATOR_CONFIG"])

    # 2. A config with the usual mistakes, one at a time, as a person fixes them.
    write(tmp_path / "feeds.yaml", f"{HTTP}feeds:\n  - {home}\n")
    assert step("check-config", "-c", "feeds.yaml") == (2, [], [
        "config: feeds.yaml:6: feeds[0]: expected `- url: BASE/` (a feed is a mapping with a "
        "`url:` key)"])
    write(tmp_path / "feeds.yaml", f"{HTTP}feeds:\n  - url: {home}\n    intervall: 1h\n")
    assert step("check-config", "-c", "feeds.yaml") == (2, [], [
        "config: feeds.yaml:7: feeds[0].intervall: unknown key; did you mean `interval`?"])
    write(tmp_path / "feeds.yaml", f"{HTTP}feeds:\n  - url: {home}\n    interval: 1h\n")
    assert step("check-config", "-c", "feeds.yaml") == (0, [
        f"feeds.yaml: ok, 1 feeds, database sqlite:///{tmp_path}/data/archive.db"], [])

    # 3. Reading before polling creates nothing.
    assert step("feeds", "-c", "feeds.yaml") == (3, [], [
        f"storage: no archive at {tmp_path}/data/archive.db yet: `aggregator poll` creates it"])
    assert not (tmp_path / "data").exists()

    # 4. The home page was given, not the feed: the error says which feed it offers.
    offered = ("  feed failed: parse: not a feed (an HTML page; it advertises BASE/feed.xml: "
               "configure that as the feed's url) for BASE/")
    assert step("poll", "-c", "feeds.yaml") == (1, [
        "1 feeds: 0 ok, 0 not modified, 1 failed; 0 new items", offered], [])
    assert step("discover", home, "-c", "feeds.yaml") == (0, [
        "BASE/feed.xml  RSS  Fixture News"], [])
    write(tmp_path / "feeds.yaml", f"{HTTP}feeds:\n  - url: {feed}\n    interval: 1h\n"
                                   "    title: Fixture News\n")  # fmt: skip

    # 5. Poll twice: new items with their articles, then nothing new (304).
    assert step("poll", "-c", "feeds.yaml") == (0, [
        "1 feeds: 1 ok, 0 not modified, 0 failed; 2 new items; articles: 2 fetched, 0 failed"],
        [])  # fmt: skip
    assert step("poll", "-c", "feeds.yaml") == (0, [
        "1 feeds: 0 ok, 1 not modified, 0 failed; 0 new items"], [])

    # 6. What the archive holds: the home page is no longer configured.
    code, out, err = step("feeds", "-c", "feeds.yaml")
    assert (code, err) == (0, [])
    assert [re.sub(r" {2,}", " | ", line) for line in out] == [
        "FEED | TITLE | LAST POLL | RESULT | NEXT POLL | ITEMS",
        "HOST (not in config) | - | AGO | error 200 | IN | 0",
        "HOST/feed.xml | Fixture News | AGO | not modified 304 | IN | 2",
    ]
    code, out, _ = step("feeds", "show", feed[7:], "-c", "feeds.yaml")  # as `feeds` shows it
    assert (code, out[:5]) == (0, [
        "BASE/feed.xml  (Fixture News)",
        "  next poll      IN (WHEN): configured interval (no history yet)",
        "  interval       3600s; 0 errors in a row",
        '  validators     etag "v1"; last-modified -',
        "  items          2",
    ])

    # 7. Export (into a folder that is not there yet), then import into a second archive.
    assert step("export", "-c", "feeds.yaml", "-o", "out/items.jsonl") == (3, [], [
        f"export: directory {tmp_path}/out does not exist (create it, or pass --parents)"])
    assert step("export", "-c", "feeds.yaml", "-o", "out/items.jsonl", "--parents") == (0, [], [
        "exported 2 items to out/items.jsonl"])
    assert step("import", "out/items.jsonl", "--database", "sqlite:///copy.db") == (0, [
        "imported: 2 items added, 0 items updated, 0 items unchanged, 2 sightings added, "
        "2 revisions added, 1 feeds added, 0 sightings elsewhere"], [])
    assert step("export", "--feed", feed.replace("feed.xml", "feeds.xml"), "-c",
                "feeds.yaml") == (2, [], [
        "export: no feed BASE/feeds.xml in the archive; did you mean BASE/feed.xml?"])
    assert step("export", "--feed", "127.0.0.1:", "-c", "feeds.yaml") == (2, [], [
        "export: 127.0.0.1: matches 2 feeds; give more of the URL:", "  BASE/", "  BASE/feed.xml"])

    # 8. Extraction again over the archived pages; the imported copy has none to re-run on.
    assert step("reextract", "-c", "feeds.yaml") == (0, [
        "re-extracted 2 pages: 0 changed, 0 failed"], [])
    assert step("reextract", "--database", "sqlite:///copy.db") == (0, [
        "re-extracted 0 pages: 0 changed, 0 failed; 2 items have no archived page to re-extract "
        "(restored from an export, which carries no raw pages)"], [])

    # 9. One page through the extractor.
    (tmp_path / "page.html").write_bytes(article_page(items[0]))
    code, out, _ = step("extract", "page.html", "--url", items[0].link, "-c", "feeds.yaml")
    assert (code, out[:3]) == (0, ["title         Story number 1  [meta]",
                                   "published     2021-04-20T17:05:00+06:00  [meta]",
                                   "modified      -"])  # fmt: skip
    assert out[9:11] == ["extractor     archiver-extract/1", ""]

    # 10. The figures.
    code, out, _ = step("stats", "-c", "feeds.yaml")
    assert code == 0
    assert [line.strip().split("  ")[0] for line in out] == [
        "feeds", "still configured", "items", "sightings", "duplicates folded", "revisions",
        "captures", "stored bodies", "captured bytes", "after deduplication",
        "after compression", "compression ratio", "articles", "fetched"]
    assert out[2].split() == ["items", "2"] and out[-1].split() == ["fetched", "2"]


def test_advertised_feeds_resolve_and_keep_only_feed_types() -> None:
    page = ('<html><head><base href="https://cdn.example/site/">'
            '<link rel="alternate" type="application/atom+xml" href="atom.xml" title=" All  news ">'
            '<link rel="alternate" type="text/html" hreflang="fr" href="/fr/">'
            '<link rel="Alternate Feed" type="application/feed+json; charset=utf-8" href="f.json">'
            '<link rel="alternate" type="application/rss+xml" href="javascript:alert(1)">'
            '<link rel="alternate" type="application/rss+xml" href="atom.xml">'
            "</head><body><a rel=alternate type=application/rss+xml href=/rss>RSS</a>")  # fmt: skip
    assert advertised_feeds(page, "https://www.example/") == [
        Advertised("https://cdn.example/site/atom.xml", "Atom", "All news"),
        Advertised("https://cdn.example/site/f.json", "JSON Feed", ""),
        Advertised("https://cdn.example/rss", "RSS", ""),
    ]


def test_the_not_a_feed_message_says_what_the_page_offers() -> None:
    assert html_page(HOME, "https://news.example/") == (
        "an HTML page; it advertises https://news.example/feed.xml: configure that as the "
        "feed's url")
    assert html_page(b"<html><body>nothing</body></html>", "https://news.example/") == (
        "an HTML page, advertising no feed")
    hostile = b"<html><head>" + b"<link " * 200_000  # linear, not quadratic, in lxml
    assert html_page(hostile, "https://x.example/") == "an HTML page, advertising no feed"
