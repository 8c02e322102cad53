"""A newcomer's first hour, continued (issue 13): what the CLI says about the archive. A
configuration that would deactivate most feeds, the short URL form ``feeds`` shows and the
commands that take it, ``reextract``'s counts, the page's own canonical URL in the export, and a
reader that stops reading. Run as a process, exact lines and exit statuses."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.feedgen import Item, article_page, rss
from tests.httpserver import TestServer
from tests.test_cli_newcomer import ROOT, aggregator, config, write


def serve(server: TestServer, *names: str) -> list[str]:
    for n, name in enumerate(names, 1):
        server.route(f"/{name}.xml", body=rss([Item(n, server.base_url)]))
    return [server.url(f"/{name}.xml") for name in names]


@pytest.mark.parametrize("command", ["poll", "run"])
def test_a_config_that_drops_most_feeds_asks_for_allow_removal(
    tmp_path: Path, http_server: TestServer, command: str
) -> None:
    a, b, c, d = serve(http_server, "a", "b", "c", "d")
    assert aggregator("poll", "-c", config(tmp_path, "sqlite:///a.db", a, b, c, d),
                      cwd=tmp_path)[0] == 0  # fmt: skip
    cfg = config(tmp_path, "sqlite:///a.db", a)
    code, out, err = aggregator(command, "-c", cfg, cwd=tmp_path)
    assert (code, out) == (2, "")
    assert err == (f"config: {cfg} would deactivate 3 of the 4 active feeds in the archive "
                   f"({b}, {c}, {d}); if that is meant, pass --allow-removal (their items stay "
                   "archived)\n")
    listing = aggregator("feeds", "-c", cfg, cwd=tmp_path)[1]
    assert "not in config" not in listing, "nothing was written"
    assert aggregator("poll", "--allow-removal", "-c", cfg, cwd=tmp_path)[0] == 0
    assert aggregator("feeds", "-c", cfg, cwd=tmp_path)[1].count("(not in config)") == 3


def test_a_small_archive_may_be_replaced_whole(tmp_path: Path, http_server: TestServer) -> None:
    a, b, c = serve(http_server, "a", "b", "c")
    assert aggregator("poll", "-c", config(tmp_path, "sqlite:///a.db", a, b), cwd=tmp_path)[0] == 0
    code, _, err = aggregator("poll", "-c", config(tmp_path, "sqlite:///a.db", c), cwd=tmp_path)
    assert (code, err) == (0, ""), "two feeds or fewer: someone trying things out"


def test_feeds_shows_short_forms_that_other_commands_take(
    tmp_path: Path, http_server: TestServer
) -> None:
    urls = serve(http_server, "news", "sport")
    host = http_server.base_url.removeprefix("http://")
    cfg = config(tmp_path, "sqlite:///a.db", *urls)
    assert aggregator("poll", "-c", cfg, cwd=tmp_path)[0] == 0
    out = aggregator("feeds", "-c", cfg, cwd=tmp_path)[1]
    assert [line.split()[0] for line in out.splitlines()[1:]] == [f"{host}/news.xml",
                                                                  f"{host}/sport.xml"]  # fmt: skip
    code, out, _ = aggregator("feeds", "show", f"{host}/news.xml", "-c", cfg, cwd=tmp_path)
    assert (code, out.splitlines()[0]) == (0, f"{urls[0]}  (Feed 1)")
    code, out, _ = aggregator("feeds", "show", f"{host}/sp", "-c", cfg, cwd=tmp_path)
    assert (code, out.splitlines()[0]) == (0, f"{urls[1]}  (Feed 2)"), "a unique beginning"
    code, out, err = aggregator("feeds", "show", host, "-c", cfg, cwd=tmp_path)
    assert (code, out) == (2, "")
    assert err == (f"feeds: {host} matches 2 feeds; give more of the URL:\n  {urls[0]}\n"
                   f"  {urls[1]}\n")
    code, out, _ = aggregator("export", "--feed", f"{host}/sport.xml", "-c", cfg, cwd=tmp_path)
    assert code == 0 and [json.loads(line)["feed_url"] for line in out.splitlines()] == [urls[1]]
    code, _, err = aggregator("reextract", "--feed", host, "-c", cfg, cwd=tmp_path)
    assert code == 2 and err.startswith(f"reextract: {host} matches 2 feeds")


def serve_story(server: TestServer, canonical: str | None = None) -> str:
    item = Item(1, server.base_url)
    page = article_page(item)
    if canonical is not None:
        page = page.replace(item.link.encode(), canonical.replace("&", "&amp;").encode(), 1)
    server.route("/feed.xml", body=rss([item, Item(2, server.base_url)]))
    pages = {1: page, 2: article_page(Item(2, server.base_url))}
    for n, body in pages.items():
        server.route(f"/news/{n}.html", body=body,
                     headers={"Content-Type": "text/html; charset=utf-8"})  # fmt: skip
    return server.url("/feed.xml")


def articles_config(tmp_path: Path, url: str) -> str:
    return write(tmp_path / "feeds.yaml", (
        "database: sqlite:///a.db\n"
        "http:\n  allow_private_networks: true\n  per_host_delay: 0\n  respect_robots: false\n"
        f"feeds:\n  - url: {url}\n"))


def test_reextract_counts_every_changed_field_and_pages_it_lacks(
    tmp_path: Path, http_server: TestServer
) -> None:
    cfg = articles_config(tmp_path, serve_story(http_server))
    assert aggregator("poll", "-c", cfg, cwd=tmp_path)[0] == 0
    with sqlite3.connect(tmp_path / "a.db") as db:  # as an older extractor had stored it
        db.execute("UPDATE items SET article = json_set(article, '$.title', 'Old',"
                   " '$.language', 'de') WHERE url LIKE '%/news/1.html'")  # fmt: skip
    db.close()
    code, out, _ = aggregator("reextract", "-c", cfg, cwd=tmp_path)
    assert (code, out) == (0, "re-extracted 2 pages: 1 changed (language 1, title 1), 0 failed\n")
    assert aggregator("reextract", "-c", cfg, cwd=tmp_path)[1] == (
        "re-extracted 2 pages: 0 changed, 0 failed\n")
    assert aggregator("export", "-o", "out.jsonl", "-c", cfg, cwd=tmp_path)[0] == 0
    assert aggregator("import", "out.jsonl", "--database", "sqlite:///copy.db",
                      cwd=tmp_path)[0] == 0  # fmt: skip
    code, out, _ = aggregator("reextract", "--database", "sqlite:///copy.db", cwd=tmp_path)
    assert (code, out) == (0, "re-extracted 0 pages: 0 changed, 0 failed; 2 items have no "
                              "archived page to re-extract (restored from an export, which "
                              "carries no raw pages)\n")  # fmt: skip


def test_the_export_shows_the_canonical_url_the_page_declares(
    tmp_path: Path, http_server: TestServer
) -> None:
    declared = http_server.url("/news/1.html?utm_source=feed&id=1")
    cfg = articles_config(tmp_path, serve_story(http_server, declared))
    assert aggregator("poll", "-c", cfg, cwd=tmp_path)[0] == 0
    out = aggregator("export", "-c", cfg, cwd=tmp_path)[1]
    first = next(i for i in map(json.loads, out.splitlines()) if i["guid"] == "urn:story:1")
    assert (first["format_version"], first["canonical_url"], first["canonical_key"]) == (
        2, declared, http_server.url("/news/1.html?id=1").replace("http:", "https:"))
    assert first["article"]["canonical_url"] == declared  # the key: one scheme, no tracking


def test_a_reader_that_stops_reading_ends_the_export_quietly(
    tmp_path: Path, http_server: TestServer
) -> None:
    """``aggregator export | head``: the pipe closes; no traceback, no "unexpected error", and
    the status a shell shows for SIGPIPE."""
    cfg = config(tmp_path, "sqlite:///a.db", *serve(http_server, "a"))
    assert aggregator("poll", "-c", cfg, cwd=tmp_path)[0] == 0
    read, written = os.pipe()
    os.close(read)  # closed before the export starts: every write fails with EPIPE
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGGREGATOR_")}
    proc = subprocess.run([sys.executable, "-m", "aggregator", "export", "-c", cfg],
                          stdout=written, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                          env={**env, "PYTHONPATH": str(ROOT)}, timeout=120, check=False)
    os.close(written)
    assert (proc.returncode, proc.stderr) == (141, "")
