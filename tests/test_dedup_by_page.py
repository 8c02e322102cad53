"""One story, one item: two feeds that link the same story under different URLs are folded once
the pages show the same canonical URL (known only after the items were stored)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from aggregator.runtime.oneshot import OneShot
from storage.records import ExportFilter
from storage.store import Store
from tests.feedgen import Item, rss
from tests.httpserver import TestServer
from tests.test_poll import settings_for

HTML = "text/html; charset=utf-8"


def page(canonical: str, title: str) -> bytes:
    body = "".join(f"<p>Paragraph {k}: the council approved the budget for the new bridge "
                   "after a long debate that lasted well into the night.</p>" for k in range(4))
    return (f'<!doctype html><html lang="en"><head><title>{title}</title>'
            f'<link rel="canonical" href="{canonical}"></head>'
            f"<body><article><h1>{title}</h1>{body}</article></body></html>").encode()


def poll_all(store: Store, *urls: str) -> None:
    settings = settings_for(*urls, fetch_articles=True)
    store.sync_feeds(settings.feed_configs(), datetime.now(UTC))
    asyncio.run(OneShot(settings, store).poll_once())


def test_two_feeds_one_story_under_different_links(http_server: TestServer, store: Store) -> None:
    base = http_server.base_url
    canonical = f"{base}/2026/bridge.html"
    # Feed A links the story itself; feed B links its AMP version, with another title and teaser.
    http_server.route("/a.xml", body=rss([Item(1, base, guid="a-1")], title="A"))
    http_server.route("/b.xml", body=rss([Item(2, base, guid="b-1")], title="B"))
    http_server.route("/news/1.html", body=page(canonical, "Bridge approved"), headers={
        "Content-Type": HTML})
    http_server.route("/news/2.html", body=page(canonical, "Council approves bridge"), headers={
        "Content-Type": HTML})
    poll_all(store, http_server.url("/a.xml"), http_server.url("/b.xml"))

    found = list(store.iter_items(ExportFilter()))
    assert len(found) == 1, [(i["url"], i["canonical_url"], i["article"]) for i in found]
    (item,) = found
    assert sorted(s["guid"] for s in item["sightings"]) == ["a-1", "b-1"]
    assert item["article"]["canonical_url"] == canonical
    assert store.stats()["duplicates_folded"] == 1
    assert store.integrity_check() == []
    # Polling again adds nothing: both entries are known, through the one item.
    poll_all(store, http_server.url("/a.xml"), http_server.url("/b.xml"))
    (again,) = list(store.iter_items(ExportFilter()))
    assert (again["id"], len(again["sightings"])) == (item["id"], 2)


def test_one_feed_listing_two_entries_keeps_two_items(
    http_server: TestServer, store: Store
) -> None:
    base = http_server.base_url
    home = f"{base}/live.html"  # a site whose pages all declare the same canonical URL
    http_server.route("/a.xml", body=rss([Item(1, base), Item(2, base)]))
    for n in (1, 2):
        http_server.route(f"/news/{n}.html", body=page(home, f"Update {n}"),
                          headers={"Content-Type": HTML})
    poll_all(store, http_server.url("/a.xml"))
    assert len(list(store.iter_items(ExportFilter()))) == 2
