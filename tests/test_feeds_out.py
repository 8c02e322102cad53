"""Feeds out and the WARC export (issue 16), on SQLite and PostgreSQL: ``export --format atom``
is read back by feedparser with every item; ``--format jsonfeed`` is JSON Feed 1.1 (its schema's
rules, and our own JSON Feed reader, with every item); the web view's ``/feeds/…`` carry the same
entries; ``warcio index`` lists every capture of ``--format warc`` and ``warcio check`` finds its
digests right.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import feedparser
import jsonschema
import pytest
from click.testing import CliRunner

from aggregator.cli.commands import cli
from aggregator.feeds import parse_feed
from aggregator.web.app import create_app
from storage.feedsout import item_id
from storage.records import ExportFilter
from storage.store import Store
from tests import webfixtures as wf

with warnings.catch_warnings():  # starlette 1.x would have httpx2 here; httpx serves as well
    warnings.simplefilter("ignore", UserWarning)
    from starlette.testclient import TestClient

ALL_ITEMS = wf.NEWS_ITEMS + 3  # the hostile one, the Russian and the Kazakh stories
# JSON Feed 1.1's rules (https://www.jsonfeed.org/version/1.1/) as a schema: what must be there
# and of which type; a date is RFC 3339.
RFC3339 = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$"
JSON_FEED_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["version", "title", "items"],
    "properties": {
        "version": {"const": "https://jsonfeed.org/version/1.1"},
        "title": {"type": "string"},
        "home_page_url": {"type": "string"}, "feed_url": {"type": "string"},
        "items": {"type": "array", "items": {
            "type": "object", "required": ["id"],
            "anyOf": [{"required": ["content_html"]}, {"required": ["content_text"]}],
            "properties": {
                "id": {"type": "string"}, "url": {"type": "string"}, "title": {"type": "string"},
                "content_html": {"type": "string"}, "content_text": {"type": "string"},
                "summary": {"type": "string"}, "language": {"type": "string"},
                "date_published": {"type": "string", "pattern": RFC3339},
                "date_modified": {"type": "string", "pattern": RFC3339},
                "authors": {"type": "array", "items": {"type": "object", "required": ["name"]}},
                "attachments": {"type": "array", "items": {
                    "type": "object", "required": ["url", "mime_type"]}},
            },
        }},
    },
}  # fmt: skip


@pytest.fixture
def archive(store_url: str) -> tuple[str, dict[str, int], list[str]]:
    """The fixture archive; and every item's id as a feed out names it."""
    with Store.open(store_url) as writer:
        ids = wf.build(writer)
        every = [item_id(item) for item in writer.iter_items(ExportFilter())]
    return store_url, ids, every


def export(database: str, *args: str) -> str:
    result = CliRunner().invoke(cli, ["--database", database, "export", *args],
                                catch_exceptions=False)  # fmt: skip
    assert result.exit_code == 0, result.output
    return result.output


def test_atom_export_reads_back_with_every_item(archive: Any, tmp_path: Path) -> None:
    database, _ids, every = archive
    export(database, "--format", "atom", "-o", str(tmp_path / "all.atom"))
    parsed = feedparser.parse((tmp_path / "all.atom").read_bytes())
    assert parsed.bozo == 0 and parsed.version == "atom10"
    assert sorted(e.id for e in parsed.entries) == sorted(every)
    assert len(every) == ALL_ITEMS
    story = next(e for e in parsed.entries if e.title == "Story 1")
    assert "The council met on Tuesday." in story.content[0].value  # the full article text
    assert story.link == "https://news.example/story/1"
    hostile = next(e for e in parsed.entries if e.title.startswith("Hostile"))
    for text in (hostile.summary, hostile.content[0].value):
        assert "<script" not in text and "onerror" not in text and "javascript:" not in text
    russian = next(e for e in parsed.entries if e.title == wf.RUSSIAN_TITLE)
    assert russian.source.id == wf.OTHER


def test_json_feed_export_is_json_feed_1_1_with_every_item(archive: Any, tmp_path: Path) -> None:
    database, _ids, every = archive
    target = tmp_path / "all.json"
    export(database, "--format", "jsonfeed", "-o", str(target))
    document = json.loads(target.read_text(encoding="utf-8"))
    jsonschema.validate(document, JSON_FEED_SCHEMA)
    assert sorted(item["id"] for item in document["items"]) == sorted(every)
    story = next(i for i in document["items"] if i.get("title") == "Story 1")
    assert story["content_text"] == wf.NEW_TEXT and story["authors"] == [{"name": "A. Writer"}]
    ours = parse_feed(target.read_bytes(), "https://archive.example/all.json", {})
    assert len(ours.entries) == ALL_ITEMS


def test_a_tag_selects_the_feeds_that_carry_it(archive: Any, tmp_path: Path) -> None:
    database, _ids, _every = archive
    other = json.loads(export(database, "--format", "jsonfeed", "--tag", "other"))
    titles = sorted(item.get("title") for item in other["items"])
    assert titles == sorted([wf.RUSSIAN_TITLE, wf.KAZAKH_TITLE, "Story 1"])
    result = CliRunner().invoke(cli, ["--database", database, "export", "--format", "atom",
                                      "--tag", "nope"])  # fmt: skip
    assert result.exit_code == 2 and "no feed has the tag 'nope'" in result.output


def test_the_views_feeds_out_carry_the_newest_items(archive: Any) -> None:
    database, _ids, every = archive
    with Store.open(database, read_only=True) as store:
        client = TestClient(create_app(store))
        atom = client.get("/feeds/all.atom")
        assert atom.headers["content-type"] == "application/atom+xml; charset=utf-8"
        parsed = feedparser.parse(atom.content)
        assert parsed.bozo == 0 and len(parsed.entries) == 50
        assert {e.id for e in parsed.entries} <= set(every)
        tagged = client.get("/feeds/tag/other.json")
        assert tagged.headers["content-type"] == "application/feed+json; charset=utf-8"
        document = tagged.json()
        jsonschema.validate(document, JSON_FEED_SCHEMA)
        assert len(document["items"]) == 3
        assert document["feed_url"] == "http://testserver/feeds/tag/other.json"
        assert client.get("/feeds/tag/nope.atom").status_code == 404


def warcio(*args: str) -> str:
    tool = shutil.which("warcio") or str(Path(sys.executable).parent / "warcio")
    done = subprocess.run([tool, *args], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_warcio_index_lists_every_capture(archive: Any, tmp_path: Path) -> None:
    database, _ids, _every = archive
    target = tmp_path / "archive.warc.gz"
    with Store.open(database) as store:
        captures = [cap for _id, cap in store.browse.iter_captures(ExportFilter())]
    assert len(captures) == 4  # two feed documents, two pages of story 1
    export(database, "--format", "warc", "-o", str(target))
    records = [json.loads(line) for line in warcio("index", str(target)).splitlines()]
    assert records[0]["warc-type"] == "warcinfo"
    responses = [r["warc-target-uri"] for r in records if r["warc-type"] == "response"]
    requests = [r["warc-target-uri"] for r in records if r["warc-type"] == "request"]
    assert sorted(responses) == sorted(cap.final_url for cap in captures) == sorted(requests)
    warcio("check", str(target))
    detail = warcio("index", "-f", "warc-date,http:status,http:content-type,length", str(target))
    assert '"http:status": "200"' in detail and "2026-03-01T12:00:00" in detail


def test_a_warc_response_holds_the_body_as_stored(archive: Any, tmp_path: Path) -> None:
    """The body is stored decoded: its record says no Content-Encoding, the right length."""
    from warcio.archiveiterator import ArchiveIterator

    database, _ids, _every = archive
    target = tmp_path / "pages.warc.gz"
    export(database, "--format", "warc", "--feed", wf.NEWS, "-o", str(target))
    bodies = {}
    with target.open("rb") as stream:
        for record in ArchiveIterator(stream):
            if record.rec_type == "response":
                assert record.http_headers.get_header("Content-Encoding") is None
                body = record.content_stream().read()
                assert int(record.http_headers.get_header("Content-Length")) == len(body)
                bodies.setdefault(record.rec_headers.get_header("WARC-Target-URI"), []).append(
                    body)
    assert bodies == {wf.NEWS: [b"<rss>one</rss>"],
                      "https://news.example/story/1": [b"<p>v1</p>", b"<p>v2</p>"]}
