"""Export and import: round trips on SQLite, on PostgreSQL and across the two; importing twice
changes nothing; `since` is an incremental cursor; bad files are refused whole, naming file and
line, and leave the archive as it was."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from storage.errors import ExportFormatError
from storage.export import read_export, write_export
from storage.records import Article, ArticleResult, ExportFilter, FeedConfig
from storage.store import Store
from tests.dbfixtures import T0, entry, poll

A, B = "https://a.example/feed", "https://b.example/feed"
KYIV = timezone(timedelta(hours=2))


def build_archive(store: Store) -> None:
    """Two feeds, a shared story, revisions, an article, offsets, NUL and non-ASCII text."""
    store.sync_feeds([FeedConfig(A), FeedConfig(B, fetch_articles=False)], T0)
    published = T0.astimezone(KYIV)
    doc = [entry(1, published=published, authors=("Ана", "Bob")), entry(2, title="Ti\x00tle ✓")]
    poll(store, A, T0, doc)
    poll(store, B, T0, [entry("b", url="https://news.example/story/1?utm_campaign=z"),
                        entry("b2")], fetch_articles=False)  # fmt: skip
    t1 = T0 + timedelta(hours=2)
    poll(store, A, t1, [entry(1, published=published, authors=("Ана", "Bob"), title="New")])
    [pending, *_] = store.pending_articles(t1, 10)
    art = Article(title="New", text="One.\n\nTwo.", html="<p>One.</p><p>Two.</p>",
                  authors=("Ана",), published=published, modified=t1.astimezone(KYIV),
                  language="uk", canonical_url="https://news.example/story/1", image=None,
                  dateline="KYIV", sources=(("title", "structured_data"), ("text", "generic")),
                  extractor="test-extractor/1.0")  # fmt: skip
    store.apply_article(pending.item_id, ArticleResult(article=art), t1)


def export_items(store: Store) -> list[dict[str, Any]]:
    return list(store.iter_items(ExportFilter()))


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_round_trip_on_the_same_kind_of_database(
    store: Store, store_url_factory: Callable[[str], str], store_url: str, fmt: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    build_archive(store)
    path = tmp_path / f"archive.{fmt}"
    assert write_export(store, path, fmt, ExportFilter(), now=T0) == 3
    backend = "postgres" if store_url.startswith("postgresql") else "sqlite"
    with Store.open(store_url_factory(backend)) as other:
        first = other.import_items(read_export(path))
        assert first.items_added == 3
        assert export_items(other) == export_items(store)
        second = other.import_items(read_export(path))
        assert (second.items_added, second.items_updated, second.sightings_added) == (0, 0, 0)
        assert second.items_unchanged == 3
        assert export_items(other) == export_items(store)


@pytest.mark.postgres
@pytest.mark.parametrize(("source", "target"), [("sqlite", "postgres"), ("postgres", "sqlite")])
def test_round_trip_across_databases(
    store_url_factory: Callable[[str], str], source: str, target: str, tmp_path: Path
) -> None:
    path = tmp_path / "archive.jsonl"
    with Store.open(store_url_factory(source)) as src:
        build_archive(src)
        write_export(src, path, "jsonl", ExportFilter())
        expected = export_items(src)
    with Store.open(store_url_factory(target)) as dst:
        dst.import_items(read_export(path))
        assert export_items(dst) == expected
        back = tmp_path / "back.jsonl"
        write_export(dst, back, "jsonl", ExportFilter())
    assert back.read_text("utf-8") == path.read_text("utf-8")


def test_export_item_shape(store: Store) -> None:
    build_archive(store)
    item = export_items(store)[0]
    assert item["published"] == "2026-03-01T14:00:00+02:00"
    assert item["authors"] == ["Ана", "Bob"]
    assert sorted(s["feed_url"] for s in item["sightings"]) == [A, B]
    assert [r["title"] for r in item["revisions"]] == ["Story 1", "New"]
    assert item["article"]["modified"] == "2026-03-01T16:00:00+02:00"
    assert item["article"]["sources"] == {"title": "structured_data", "text": "generic"}
    assert item["provenance"]["extractor"] == "test-extractor/1.0"
    assert export_items(store)[1]["title"] == "Title ✓"


def test_since_is_an_incremental_cursor(store: Store) -> None:
    build_archive(store)
    cursor = T0 + timedelta(hours=1)
    changed = list(store.iter_items(ExportFilter(since=cursor)))
    assert [i["title"] for i in changed] == ["New"]
    before = list(store.iter_items(ExportFilter(until=cursor)))
    assert len(before) == 2
    only_b = list(store.iter_items(ExportFilter(feed_url=B)))
    assert len(only_b) == 2


def test_export_streams_many_items_in_pages(store: Store, tmp_path: Path) -> None:
    store.sync_feeds([FeedConfig(A)], T0)
    poll(store, A, T0, [entry(i) for i in range(1234)])
    path = tmp_path / "big.json"
    assert write_export(store, path, "json", ExportFilter()) == 1234
    document = json.loads(path.read_text("utf-8"))
    assert len({i["id"] for i in document["items"]}) == 1234
    assert not list(tmp_path.glob(".*tmp"))


def good_lines(store: Store, tmp_path: Path) -> list[str]:
    build_archive(store)
    path = tmp_path / "good.jsonl"
    write_export(store, path, "jsonl", ExportFilter())
    return path.read_text("utf-8").splitlines()


def bad_files(lines: list[str]) -> dict[str, tuple[str, str]]:
    """name -> (file content, the location the error must name). ``lines``: 3 good items."""
    wrong_type = json.loads(lines[1]) | {"authors": "Bob"}
    wrong_version = json.loads(lines[1]) | {"format_version": 3}
    bad_time = json.loads(lines[2]) | {"first_seen": "yesterday"}
    doc = '{"format":"feed-archiver-export","version":1,"items":[\n' + ",\n".join(
        json.dumps({k: v for k, v in json.loads(x).items() if k != "format_version"})
        for x in lines
    )  # fmt: skip
    return {
        "truncated.jsonl": ("\n".join([*lines[:2], lines[2][:50]]), "line 3"),
        "wrong-type.jsonl": ("\n".join([lines[0], json.dumps(wrong_type), lines[2]]), "line 2"),
        "wrong-version.jsonl": ("\n".join([lines[0], json.dumps(wrong_version)]), "line 2"),
        "bad-time.jsonl": ("\n".join([*lines[:2], json.dumps(bad_time)]), "line 3"),
        "truncated.json": (doc[:-40], "line 4"),
        "unclosed.json": (doc, "line 4"),
        "version.json": (doc.replace('"version":1', '"version":7') + "]}", "version 7"),
        "not-export.json": ('{"hello": "world"}', "not a feed-archiver-export"),
    }


def test_bad_files_are_refused_whole_and_change_nothing(store: Store, tmp_path: Path) -> None:
    lines = good_lines(store, tmp_path)
    before = export_items(store)
    for name, (content, where) in bad_files(lines).items():
        path = tmp_path / name
        path.write_text(content, "utf-8")
        with pytest.raises(ExportFormatError) as info:
            store.import_items(read_export(path))
        message = str(info.value)
        assert message.startswith(f"import: {path}"), message
        assert where in message, message
        assert export_items(store) == before, name


def test_a_bad_file_leaves_a_fresh_archive_empty(
    store: Store, store_url_factory: Callable[[str], str], tmp_path: Path
) -> None:
    lines = good_lines(store, tmp_path)
    path = tmp_path / "late-error.jsonl"
    path.write_text("\n".join([*lines, "{not json"]), "utf-8")
    with Store.open(store_url_factory("sqlite")) as fresh:
        with pytest.raises(ExportFormatError, match="line 4"):
            fresh.import_items(read_export(path))
        assert export_items(fresh) == []
