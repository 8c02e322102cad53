"""``canonical_url`` is the page's own, as it declares it (absolute, unnormalized); the key of
deduplication is ``canonical_key`` (issue 13). On SQLite and PostgreSQL: the export, an import
of an older file (the key in ``canonical_url``, no ``canonical_key``) and the 0009 migration."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import create_engine, select

from storage.engine import alembic_config
from storage.exportschema import item_validator
from storage.records import Article, ArticleResult, Capture, ExportFilter, FeedConfig
from storage.store import Store
from storage.tables import items
from tests.dbfixtures import T0, entry, poll

FEED = "https://news.example/feed.xml"
DECLARED = "https://News.Example:443/story/1?utm_source=rss&id=7"
KEY = "https://news.example/story/1?id=7"


def archived(store: Store) -> dict[str, object]:
    store.sync_feeds([FeedConfig(url=FEED)], T0)
    poll(store, FEED, T0, [entry(1)])
    (pending,) = store.pending_articles(T0, 10)
    article = Article(title="Story 1", text="Body.", html="<p>Body.</p>", canonical_url=DECLARED)
    page = Capture("page", pending.url, pending.url, 200, (("content-type", "text/html"),), T0,
                   b"<html>...</html>")  # fmt: skip
    store.apply_article(pending.item_id, ArticleResult(article=article, capture=page), T0)
    (item,) = store.iter_items(ExportFilter())
    return item


def test_the_export_shows_the_pages_own_and_the_key_apart(store: Store) -> None:
    item = archived(store)
    assert (item["canonical_url"], item["canonical_key"]) == (DECLARED, KEY)
    assert item_validator().is_valid(item)
    assert store.item_id_for_url(DECLARED) is not None, "dedup still uses the key"


def test_an_item_whose_page_was_not_read_has_only_a_key(store: Store) -> None:
    store.sync_feeds([FeedConfig(url=FEED, fetch_articles=False)], T0)
    poll(store, FEED, T0, [entry(1)], fetch_articles=False)
    (item,) = store.iter_items(ExportFilter())
    assert (item["canonical_url"], item["canonical_key"]) == (None,
                                                              "https://news.example/story/1")


def test_an_older_export_is_read_with_its_key_as_both(store_url: str, tmp_path: Path) -> None:
    with Store.open(f"sqlite:///{tmp_path / 'old.db'}") as old:
        item = archived(old)
    del item["canonical_key"]
    item["canonical_url"] = KEY  # what format 1 files written before issue 13 hold
    path = tmp_path / "old.jsonl"
    path.write_text(json.dumps({"format_version": 1, **item}) + "\n", encoding="utf-8")
    with Store.open(store_url) as store:
        store.import_file(path)
        (back,) = store.iter_items(ExportFilter())
        assert (back["canonical_url"], back["canonical_key"]) == (KEY, KEY)
        store.import_file(path)
        assert store.import_file(path).items_unchanged == 1


def test_the_migration_copies_the_key_for_existing_rows(store_url: str) -> None:
    from alembic import command

    with Store.open(store_url) as store:
        archived(store)
    engine = create_engine(store_url)
    try:
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), "0008")
    finally:
        engine.dispose()
    with Store.open(store_url) as store:
        (item,) = store.iter_items(ExportFilter())
        assert (item["canonical_url"], item["canonical_key"]) == (KEY, KEY)
        with store.db.read() as conn:
            assert conn.execute(select(items.c.page_canonical_url)).scalar() == KEY
