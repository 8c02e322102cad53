"""Caps are visible (issue 10, item 9): a feed cut at the entry cap says so in the log, in the
poll history and in ``aggregator feeds show``; every cap is in the README with its value.

Before, a feed of 10,001 entries was stored as 10,000 items and nothing said so anywhere.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from aggregator.cli.commands import cli
from aggregator.config.settings import Settings
from aggregator.feeds.feedmodel import MAX_ENTRIES
from aggregator.feeds.parse import parse_feed
from aggregator.runtime.oneshot import OneShot
from storage.records import ExportFilter
from storage.store import Store
from tests.feedgen import Item, rss
from tests.httpserver import TestServer

ROOT = Path(__file__).parent.parent
CAP = 3  # the entry cap, lowered so that both databases store a cut feed in a blink


def settings_for(url: str) -> Settings:
    return Settings.model_validate({
        "http": {"allow_private_networks": True, "per_host_delay": 0, "respect_robots": False},
        "defaults": {"fetch_articles": False},
        "feeds": [{"url": url}],
    })


def test_a_feed_cut_at_the_entry_cap_says_so_in_log_history_and_feeds_show(
    http_server: TestServer, store: Store, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr("aggregator.feeds.parse.MAX_ENTRIES", CAP)
    http_server.route("/feed.xml", body=rss([Item(n, http_server.base_url) for n in range(5)]))
    url = http_server.url("/feed.xml")
    settings = settings_for(url)
    store.sync_feeds(settings.feed_configs(), datetime.now(UTC))
    with caplog.at_level(logging.WARNING, logger="aggregator.runtime.pipeline"):
        totals = asyncio.run(OneShot(settings, store).poll_once())
    assert (totals.ok, totals.failed, totals.new_items) == (1, 0, CAP)
    assert len(list(store.iter_items(ExportFilter()))) == CAP
    note = f"more than {CAP} entries; kept the first {CAP}"
    assert f"parse: {note} for {url}" in caplog.messages

    feed = store.get_feed(url)
    assert feed is not None
    (last,) = store.poll_history(feed.id)
    assert (last["status"], last["warning"], last["error"]) == ("ok", note, None)

    shown = CliRunner().invoke(cli, ["--database", store.url, "feeds", "show", url],
                               env={"COLUMNS": "200"})  # the table's rows on one line each
    assert shown.exit_code == 0, shown.output
    assert f"  read in part   {note}" in shown.stdout
    assert f"warning: {note}" in shown.stdout  # its row in the poll history
    as_json = CliRunner().invoke(cli, ["--database", store.url, "feeds", "show", url, "--json"])
    assert json.loads(as_json.stdout)["history"][0]["warning"] == note


def test_a_whole_feed_leaves_no_warning(http_server: TestServer, store: Store) -> None:
    http_server.route("/feed.xml", body=rss([Item(n, http_server.base_url) for n in range(5)]))
    url = http_server.url("/feed.xml")
    settings = settings_for(url)
    store.sync_feeds(settings.feed_configs(), datetime.now(UTC))
    asyncio.run(OneShot(settings, store).poll_once())
    feed = store.get_feed(url)
    assert feed is not None
    assert [p["warning"] for p in store.poll_history(feed.id)] == [None]
    shown = CliRunner().invoke(cli, ["--database", store.url, "feeds", "show", url])
    assert "read in part" not in shown.stdout and "warning:" not in shown.stdout


@pytest.mark.parametrize("kind", ["rss", "json"])
def test_the_real_entry_cap_is_reported_by_the_parser(kind: str) -> None:
    count = MAX_ENTRIES + 1
    if kind == "rss":
        body = rss([Item(n, "https://news.example") for n in range(count)])
    else:
        body = json.dumps({
            "version": "https://jsonfeed.org/version/1.1", "title": "t",
            "items": [{"id": str(n), "url": f"https://news.example/{n}", "content_text": "x"}
                      for n in range(count)],
        }).encode()
    parsed = parse_feed(body, "https://news.example/feed", {}, datetime.now(UTC))
    assert len(parsed.entries) == MAX_ENTRIES
    assert parsed.warning is not None
    assert f"more than {MAX_ENTRIES} entries; kept the first {MAX_ENTRIES}" in parsed.warning


def readme_limits() -> dict[str, str]:
    """The README's Limits table: first cell → second cell."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Limits", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| ([^|]+?) \| ([^|]+?) \|", section, re.MULTILINE)
    return {label: value for label, value in rows if label not in ("cap", "---")}


def test_every_cap_is_in_the_readme_with_its_value() -> None:
    from aggregator.config import yamlread as configyaml
    from aggregator.config.settings import HttpSettings
    from aggregator.extract import article, structured, titles
    from aggregator.feeds import feedmodel, xmltext
    from aggregator.feeds.xmlsafety import MAX_DEPTH
    from aggregator.fetch import http, httppool, politeness
    from aggregator.runtime import pipeline, writer
    from aggregator.runtime.daemon import SHUTDOWN_GRACE
    from aggregator.schedule.freshness import MAX_SERVER_DELAY
    from aggregator.schedule.policy import REDIRECT_REPEATS, PollPolicy
    from storage import export, identity, maintenance, revisions

    http_defaults = HttpSettings()
    gap_hours = revisions.MIN_GAP.total_seconds() / 3600
    expected = {
        "decoded body of a feed or page": [f"{http_defaults.max_body_bytes // 2**20} MiB"],
        "total deadline per request": [f"{http_defaults.timeout:.0f} s",
                                       f"connect {http_defaults.connect_timeout:.0f} s"],
        "redirects per request": [str(http.MAX_REDIRECTS)],
        "response head": [f"{httppool._MAX_HEAD_BYTES // 1024} KiB"],
        "connections per site": [f"{httppool._PER_ORIGIN_CONNECTIONS} in use",
                                 f"{httppool._PER_ORIGIN_KEEPALIVE} kept alive for "
                                 f"{httppool._KEEPALIVE_EXPIRY:.0f} s"],
        "requests in flight": [f"{http.MAX_IN_FLIGHT} per process",
                               f"{http_defaults.per_host_concurrency} per site"],
        "robots.txt": [f"{politeness.ROBOTS_MAX_BYTES // 1024} KiB",
                       f"kept {politeness.ROBOTS_TTL / 3600:.0f} h",
                       f"after {politeness.ROBOTS_ERROR_TTL / 60:.0f} min"],
        "entries per feed document": [f"{feedmodel.MAX_ENTRIES:,}"],
        "XML nesting depth": [str(MAX_DEPTH)],
        "feed title, entry title": [f"{feedmodel.MAX_TITLE:,} characters and "
                                    f"{feedmodel.MAX_TITLE:,} UTF-8 bytes"],
        "guid, link, author name": [f"{feedmodel.MAX_SHORT:,} characters and "
                                    f"{feedmodel.MAX_SHORT:,} UTF-8 bytes"],
        "dates in the future": [f"{feedmodel.FUTURE_SLACK.days} day ahead"],
        "article page": [f"{article.MAX_HTML // 2**20} M characters",
                         f"{article.MAX_ELEMENTS:,} elements"],
        "article title": [f"{titles.MAX_TITLE:,} characters"],
        "JSON-LD block": [f"{structured._MAX_JSON // 2**20} MiB",
                          f"nested {structured._MAX_DEPTH} deep"],
        "article attempts": [f"{pipeline.ARTICLE_ATTEMPTS},",
                             f"{pipeline.ARTICLE_RETRY_BASE / 60:.0f} min",
                             f"to {pipeline.ARTICLE_RETRY_CAP / 86400:.0f} day"],
        "feed error back-off": [f"up to {PollPolicy(1, 1, 1).max_backoff / 86400:.0f} day"],
        "server-requested delay (`Retry-After`, `max-age`, `Expires`, `ttl`)":
            [f"{MAX_SERVER_DELAY / 86400:.0f} days"],
        "permanent redirect": [f"{REDIRECT_REPEATS} polls in a row"],
        "revisions per item": [f"first {revisions.FREE_REVISIONS}",
                               "1 an hour" if gap_hours == 1 else f"1 every {gap_hours:g} hours",
                               f"{revisions.MAX_REVISIONS} in all"],
        "poll history": [f"{maintenance.HISTORY} polls per feed"],
        "poll results per write transaction": [str(writer.MAX_BATCH)],
        "shutdown grace": [f"{SHUTDOWN_GRACE:.0f} s"],
        "author, managingEditor, webMaster and other person fields, before parsing":
            [f"{xmltext.MAX_PERSON} characters"],
        "canonical URL (dedup key), once escaped": [f"{identity.MAX_KEY_URL:,} characters"],
        "enclosures per entry": [str(feedmodel.MAX_ENCLOSURES)],
        "import: one item's JSON": [f"{export.MAX_ITEM_CHARS // 2**20} MiB"],
        "configuration file": [f"{configyaml.MAX_CONFIG_BYTES // 2**20} MiB",
                               f"{configyaml.MAX_NODES:,} values",
                               f"{configyaml.MAX_DEPTH} levels",
                               f"{configyaml.MAX_ALIAS_WEIGHT:,} values beyond"],
    }
    rows = readme_limits()
    for label, values in expected.items():
        assert label in rows, f"README Limits has no row {label!r}"
        for value in values:
            assert value in rows[label], f"README Limits, {label!r}: no {value!r}"
