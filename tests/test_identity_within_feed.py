"""Issue 10, items 1 and 2: every entry of a feed becomes an item, however the feed is written,
and its enclosures are archived. Real HTTP server on 127.0.0.1, SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from storage.export import read_export, write_export
from storage.records import Enclosure, ExportFilter, FeedConfig
from storage.store import Store
from tests.dbfixtures import T0, entry, poll
from tests.feedfixtures import FEEDS
from tests.httpserver import TestServer
from tests.test_poll import poll as service_poll
from tests.test_poll import settings_for

pytestmark = pytest.mark.timeout(120)
PODCAST = FEEDS / "podcast_shared_link.rss"
HOME = "https://longtable.example/"
RSS = {"Content-Type": "application/rss+xml"}


def items_of(store: Store) -> list[dict[str, Any]]:
    return list(store.iter_items(ExportFilter()))


def episode(n: int, guid: str | None = None, audio: str | None = None) -> str:
    audio = audio or f"https://cdn.longtable.example/audio/ltm-{n:03d}.mp3"
    return (f"<item><title>Episode {n}</title><link>{HOME}</link>"
            f'<guid isPermaLink="false">{guid or f"ltm-ep-{n:03d}"}</guid>'
            f'<enclosure url="{audio}" length="{1000 + n}" type="audio/mpeg"/></item>')  # fmt: skip


def podcast(items: list[str]) -> bytes:
    return ('<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
            f"<title>The Long Table</title><link>{HOME}</link>{''.join(items)}"
            "</channel></rss>").encode()  # fmt: skip


def test_the_podcast_fixture_is_stored_episode_by_episode(
    http_server: TestServer, store: Store
) -> None:
    http_server.route("/podcast.xml", body=PODCAST.read_bytes(), headers=RSS)
    settings = settings_for(http_server.url("/podcast.xml"), fetch_articles=True)
    first = service_poll(settings, store)
    assert (first.ok, first.new_items) == (1, 130)
    found = items_of(store)
    assert len(found) == 130  # was 9: every episode folded onto the home page's few keys
    numbers = sorted(int(re.findall(r"\((\d+)\)", i["title"])[0]) for i in found)
    assert numbers == list(range(1, 131))
    # every episode keeps its MP3; lengths in bytes, itunes:duration in seconds
    by_number = {int(re.findall(r"\((\d+)\)", i["title"])[0]): i for i in found}
    assert by_number[130]["enclosures"] == [{
        "url": "https://cdn.longtable.example/audio/ltm-130.mp3", "type": "audio/mpeg",
        "length": 30_000_000 + 130 * 1234, "duration": 1 * 3600 + 10 * 60 + 10}]  # fmt: skip
    assert all(len(i["enclosures"]) == 1 for i in found)
    # the repeated guid keys only its two carriers apart; the older keeps the bare guid
    keys = {n: by_number[n]["sightings"][0]["key"] for n in (95, 96, 97)}
    assert keys[95] == "guid:ltm-ep-095" and keys[96] == "guid:ltm-ep-096"
    assert keys[97].startswith("guid:ltm-ep-096#")
    # the home page is nobody's article, and nobody's identity
    assert {i["article_status"] for i in found} == {"off"}
    assert {i["canonical_url"] for i in found} == {None}
    again = service_poll(settings, store)
    assert (again.ok, again.new_items) == (1, 0)
    assert len(items_of(store)) == 130 and store.stats()["duplicates_folded"] == 0


def test_episodes_that_left_the_feed_are_never_what_a_new_one_folds_into(store: Store) -> None:
    store.sync_feeds([FeedConfig(HOME + "feed.xml")], T0)
    eps = [entry(f"ep{n}", url=HOME, title=f"Episode {n}", summary=f"Show notes {n}")
           for n in range(40)]  # fmt: skip
    poll(store, HOME + "feed.xml", T0, eps[:30])
    later = poll(store, HOME + "feed.xml", T0 + timedelta(hours=1), eps[10:])
    assert (later.new_items, later.duplicates_folded) == (10, 0)
    assert len(items_of(store)) == 40


def test_a_one_episode_feed_keeps_every_episode(http_server: TestServer, store: Store) -> None:
    """The only entry links the home page: that link is not shared in any one document, yet
    each new episode is a new item (it does not look like the one before)."""
    url = http_server.url("/latest.xml")
    settings = settings_for(url)
    for n in (1, 2, 3):
        http_server.route("/latest.xml", body=podcast([episode(n)]), headers=RSS)
        assert service_poll(settings, store).new_items == 1
    assert sorted(i["title"] for i in items_of(store)) == ["Episode 1", "Episode 2", "Episode 3"]
    assert store.stats()["duplicates_folded"] == 0


def test_guids_changing_every_poll_under_a_shared_link_add_nothing(
    http_server: TestServer, store: Store
) -> None:
    url = http_server.url("/regen.xml")
    settings = settings_for(url)
    for run in range(4):
        doc = podcast([episode(n, guid=f"run{run}-{n}") for n in range(5)])
        http_server.route("/regen.xml", body=doc, headers=RSS)
        assert service_poll(settings, store).new_items == (5 if run == 0 else 0)
    assert len(items_of(store)) == 5
    assert all(len(i["sightings"]) == 1 for i in items_of(store))


def test_same_guid_and_enclosure_twice_is_one_entry(http_server: TestServer, store: Store) -> None:
    """Listed twice alike (guid, title, enclosure, text): one episode; a careful archivist keeps
    one item, and the parser says it dropped a duplicate."""
    http_server.route("/twice.xml", body=podcast([episode(1), episode(1), episode(2)]),
                      headers=RSS)  # fmt: skip
    totals = service_poll(settings_for(http_server.url("/twice.xml")), store)
    assert totals.new_items == 2


def test_a_changed_enclosure_is_a_new_revision(store: Store) -> None:
    url = HOME + "feed.xml"
    store.sync_feeds([FeedConfig(url)], T0)
    mp3 = Enclosure("https://cdn.longtable.example/a.mp3", "audio/mpeg", 10, 60)
    fixed = Enclosure("https://cdn.longtable.example/a-fixed.mp3", "audio/mpeg", 12, 61)
    poll(store, url, T0, [entry(1, url=HOME, enclosures=(mp3,))])
    again = poll(store, url, T0 + timedelta(hours=2), [entry(1, url=HOME, enclosures=(mp3,))])
    assert again.revisions == 0
    changed = poll(store, url, T0 + timedelta(hours=4), [entry(1, url=HOME, enclosures=(fixed,))])
    assert changed.revisions == 1
    [item] = items_of(store)
    assert [r["enclosures"][0]["url"] for r in item["revisions"]] == [mp3.url, fixed.url]
    assert item["enclosures"] == [{"url": fixed.url, "type": "audio/mpeg", "length": 12,
                                   "duration": 61}]  # fmt: skip
    assert item["revisions"][0]["content_hash"] != item["content_hash"]


def test_entries_without_enclosures_hash_as_before() -> None:
    """Items stored before enclosures were archived must not all gain a revision."""
    from storage.identity import content_hash, sha256_text

    assert content_hash("t", "s", None) == sha256_text('["t", "s", null]')


def test_enclosures_are_exported_and_imported(
    store: Store, store_url: str, store_url_factory: Callable[[str], str], tmp_path: Path
) -> None:
    url = HOME + "feed.xml"
    store.sync_feeds([FeedConfig(url)], T0)
    mp3 = Enclosure("https://cdn.longtable.example/a.mp3", "audio/mpeg", 2**40, 3600)
    ogg = Enclosure("https://cdn.longtable.example/a.ogg", None, None, None)
    poll(store, url, T0, [entry(1, url=HOME, enclosures=(mp3,)), entry(2, url=HOME)])
    poll(store, url, T0 + timedelta(hours=2), [entry(1, url=HOME, enclosures=(mp3, ogg)),
                                               entry(2, url=HOME)])  # fmt: skip
    path = tmp_path / "archive.jsonl"
    assert write_export(store, path, "jsonl", ExportFilter()) == 2
    backend = "postgres" if store_url.startswith("postgresql") else "sqlite"
    with Store.open(store_url_factory(backend)) as other:
        other.import_items(read_export(path))
        assert items_of(other) == items_of(store)
    first = json.loads(path.read_text("utf-8").splitlines()[0])
    assert [e["url"] for e in first["enclosures"]] == [mp3.url, ogg.url]
    assert [len(r["enclosures"]) for r in first["revisions"]] == [1, 2]
    # a version-1 file written before enclosures were archived still imports
    old = tmp_path / "old.jsonl"
    lines = [json.loads(line) for line in path.read_text("utf-8").splitlines()]
    for record in lines:
        del record["enclosures"]
        for revision in record["revisions"]:
            del revision["enclosures"]
    old.write_text("".join(json.dumps(r) + "\n" for r in lines), "utf-8")
    with Store.open(store_url_factory(backend)) as older:
        older.import_items(read_export(old))
        assert [i["enclosures"] for i in items_of(older)] == [None, None]


def test_a_cleared_link_keys_flag_comes_back_without_new_items(store: Store) -> None:
    """Migration 0005 clears every feed's flag (the old rule set it for one repeated guid); a
    feed whose guids really change every poll sets it again, adding nothing."""
    url = HOME + "feed.xml"
    store.sync_feeds([FeedConfig(url)], T0)
    for n in range(3):
        doc = [entry(i, key=f"p{n}-{i}", guid=f"p{n}-{i}") for i in range(5)]
        poll(store, url, T0 + timedelta(hours=n), doc)
    flagged = store.get_feed(url)
    assert flagged is not None and flagged.link_keys
    with store.db.write() as conn:
        conn.execute(text("UPDATE feeds SET link_keys = :no").bindparams(no=False))
    doc = [entry(i, key=f"p9-{i}", guid=f"p9-{i}") for i in range(5)]
    assert poll(store, url, T0 + timedelta(hours=5), doc).new_items == 0
    again = store.get_feed(url)
    assert again is not None and again.link_keys and len(items_of(store)) == 5
