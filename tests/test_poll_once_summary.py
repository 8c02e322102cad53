"""``aggregator poll --once`` as a user runs it: exit status, summary, each failure named.

Issue 10: it exited 0 when pages failed (the README says 1), named no failed page, counted an
article task's exception as a failed feed, and its feed counts did not add up to the feeds
configured (a stopped or held feed was in none of them).
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from aggregator.config.settings import load_settings
from storage.store import Store
from tests.feedgen import Item, article_page, rss
from tests.httpserver import TestServer
from tests.test_cli import config

ROOT = Path(__file__).parent.parent


def write_config(tmp_path: Path, database: str, *urls: str, fetch_articles: bool) -> Path:
    return Path(config(tmp_path, database, *urls, fetch_articles=fetch_articles))


def poll_once(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aggregator", "--config", str(config), "poll", "--once"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
        timeout=120,
    )


def test_failed_pages_exit_1_and_each_is_named_in_one_line(
    http_server: TestServer, store_url: str, tmp_path: Path
) -> None:
    base = http_server.base_url
    items = [Item(1, base), Item(2, base), Item(3, "http://xn--.invalid")]
    http_server.route("/feed.xml", body=rss(items))
    http_server.route("/news/1.html", body=article_page(items[0]),
                      headers={"Content-Type": "text/html; charset=utf-8"})
    # /news/2.html is not routed: a 404
    config = write_config(tmp_path, store_url, http_server.url("/feed.xml"), fetch_articles=True)
    done = poll_once(config)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == ("1 feeds: 1 ok, 0 not modified, 0 failed; 3 new items; "
                        "articles: 1 fetched, 2 failed")
    assert sorted(lines[1:]) == [
        f"  page failed: fetch: HTTP 404 for {items[1].link}",
        f"  page failed: fetch: invalid URL {items[2].link}: malformed host 'xn--.invalid' "
        "(bad IDN label 'xn--': Malformed A-label, no Punycode eligible content found)",
    ]
    assert "Traceback" not in done.stderr


def test_every_configured_feed_is_accounted_for(
    http_server: TestServer, store_url: str, tmp_path: Path
) -> None:
    http_server.route("/ok.xml", body=rss([Item(1, http_server.base_url)]))
    http_server.route("/gone.xml", status=410)
    http_server.route("/held.xml", body=rss([Item(2, http_server.base_url)]))
    urls = [http_server.url(p) for p in ("/ok.xml", "/gone.xml", "/held.xml")]
    config = write_config(tmp_path, store_url, *urls, fetch_articles=False)
    # Another live instance holds one feed (its lease runs for five more minutes).
    with Store.open(store_url) as store:
        now = datetime.now(UTC)
        store.sync_feeds(load_settings(config).feed_configs(), now)
        held = [f for f in store.claim_due(now, 3, "elsewhere.example:4242:0123abcd", 300)
                if f.url == urls[2]]
        for other in store.list_feeds():
            if other.url != urls[2]:
                store.release(other.id, "elsewhere.example:4242:0123abcd")
    assert held

    first = poll_once(config)
    assert first.returncode == 1  # the 410
    summary, failed, skipped = first.stdout.splitlines()
    assert summary == ("3 feeds: 1 ok, 0 not modified, 1 failed, 1 not polled "
                       "(1 held by another process); 1 new items")
    assert failed == f"  feed failed: fetch: HTTP 410 for {urls[1]}"
    # A holder on another host cannot be judged from here: its lease frees the feed.
    holder = "elsewhere.example:4242:0123abcd"
    assert skipped.startswith(f"skipped 1 feed held by {holder} (lease until ")

    second = poll_once(config)
    assert second.returncode == 0, second.stdout
    summary = second.stdout.splitlines()[0]
    assert summary.startswith("3 feeds: 1 ok, 0 not modified, 0 failed, 2 not polled (")
    assert "1 held by another process" in summary and "1 stopped after 410 Gone" in summary
