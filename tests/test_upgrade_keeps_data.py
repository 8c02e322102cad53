"""Upgrading an archive keeps it whole: from every earlier schema revision, with data in it.

An archive is opened by a newer program (``Store.open`` migrates to head) after it was written
by an older one. The data is made at head through the store, then the schema is taken down to
the earlier revision with foreign keys off (as an old program would have left it), and opened
again: every item, sighting, revision and capture must still be there.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine

from storage.engine import alembic_config
from storage.records import ArticleResult, Capture, FeedConfig
from storage.store import Store
from tests.dbfixtures import T0, entry, poll

FEED = "https://news.example/feed.xml"
COUNTED = ("feeds", "items", "sightings", "revisions", "captures", "blobs")


def earlier_revisions() -> list[str]:
    script = ScriptDirectory.from_config(alembic_config())
    head = script.get_current_head()
    return sorted(rev.revision for rev in script.walk_revisions() if rev.revision != head)


def fill(store: Store) -> dict[str, int]:
    store.sync_feeds([FeedConfig(url=FEED, fetch_articles=True),
                      FeedConfig(url=FEED + "?other")], T0)  # fmt: skip
    page = Capture("page", "https://news.example/story/1", "https://news.example/story/1", 200,
                   (("content-type", "text/html"),), T0, b"<html>story one</html>")  # fmt: skip
    poll(store, FEED, T0, [entry(1), entry(2), entry(3)])
    first = next(p for p in store.pending_articles(T0, 10) if p.url == page.url)
    store.apply_article(first.item_id, ArticleResult(capture=page, error="extract: test"), T0)
    poll(store, FEED + "?other", T0, [entry(1, key="other-1", guid="other-1")])
    poll(store, FEED, T0 + timedelta(hours=2), [entry(1, title="Story 1, updated")])
    stats = store.stats()
    return {name: stats[name] for name in COUNTED}


def downgrade(url: str, revision: str) -> None:
    """What an older program's database looks like: the schema at ``revision``, data kept."""
    engine = create_engine(url)  # a plain engine: SQLite's foreign keys stay off
    try:
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), revision)
    finally:
        engine.dispose()


@pytest.mark.parametrize("revision", earlier_revisions())
def test_upgrade_from_an_earlier_revision_keeps_every_row(store_url: str, revision: str) -> None:
    with Store.open(store_url) as store:
        before = fill(store)
    assert before["items"] == 3 and before["sightings"] == 4 and before["captures"] == 1
    downgrade(store_url, revision)
    with Store.open(store_url) as store:
        stats = store.stats()
        after = {name: stats[name] for name in COUNTED}
        assert store.integrity_check() == []
    assert after == before, f"upgrade from {revision} lost rows"
