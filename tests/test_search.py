"""Full-text search on both databases (issue 16): known answers on a fixture archive with Kazakh,
Russian and English text (``tests/searchfixtures.py``), the same items from SQLite and
PostgreSQL, filters and paging, the index kept in step with every write of an item, and the
reindex of an archive written before the index existed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, text

from storage.records import Article, ArticleResult, ExportFilter, FeedConfig
from storage.search import MARK_END, MARK_START
from storage.store import Store
from tests.dbfixtures import T0, entry, poll
from tests.searchfixtures import EN, KZ, QUERIES, RU, STEMMED, STORIES, build, found
from tests.test_upgrade_keeps_data import downgrade


def keys(ids: dict[str, int], found_ids: set[int]) -> set[str]:
    names = {v: k for k, v in ids.items()}
    return {names[i] for i in found_ids}


def test_known_answers(store: Store) -> None:
    ids = build(store)
    wrong = {q: keys(ids, found(store, q)) for q in QUERIES}
    assert {q: got for q, got in wrong.items() if got != QUERIES[q]} == {}


def test_both_databases_return_the_same_items(
    store_url_factory: Callable[[str], str],
) -> None:
    answers = []
    for backend in ("sqlite", "postgres"):
        with Store.open(store_url_factory(backend)) as store:
            ids = build(store)
            answers.append({q: keys(ids, found(store, q)) for q in QUERIES})
    assert answers[0] == answers[1]
    assert answers[0] == QUERIES


def test_postgres_also_finds_other_forms_of_a_word_in_stemmed_languages(store: Store) -> None:
    ids = build(store)
    postgres = store.db.engine.dialect.name == "postgresql"
    for query, expected in STEMMED.items():
        assert keys(ids, found(store, query)) == (expected if postgres else set()), query


def test_filters_by_feed_tag_and_time(store: Store) -> None:
    ids = build(store)
    assert keys(ids, found(store, "Астана", tag="kz")) == {"kz-investors", "ru-investors"}
    assert keys(ids, found(store, "Астана", tag="ru")) == {"ru-investors"}
    assert found(store, "Астана", tag="world") == set()
    assert found(store, "Астана", tag="no-such-tag") == set()
    assert keys(ids, found(store, "Астана", feed_url=KZ)) == {"kz-investors"}
    assert found(store, "budget", feed_url=RU) == set()
    day = datetime(2026, 3, 2, tzinfo=UTC)
    query = "Астана OR Экономика"
    assert keys(ids, found(store, query, since=day)) == {"ru-investors", "ru-economy"}
    assert keys(ids, found(store, query, until=day)) == {"kz-investors"}
    assert keys(ids, found(store, query, since=day, until=day + timedelta(days=1))) == {
        "ru-investors"}  # fmt: skip


def test_paging_covers_every_hit_once_and_counts_them(store: Store) -> None:
    build(store)
    seen: list[int] = []
    for offset in range(0, 6, 2):
        page = store.search("budget OR festival OR cafe", limit=2, offset=offset)
        assert page.total == 4
        seen += [hit.item_id for hit in page.hits]
    assert len(seen) == len(set(seen)) == 4


def test_a_total_past_the_count_limit_is_not_counted(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    build(store)
    monkeypatch.setattr("storage.search.COUNT_LIMIT", 3)
    assert store.search("budget OR festival OR cafe", limit=1).total is None
    assert store.search("budget OR festival", limit=1).total == 3
    assert store.search("budget OR festival OR cafe", limit=10).total == 4  # all on the page


def test_hits_carry_the_item_and_a_highlighted_snippet(store: Store) -> None:
    ids = build(store)
    [hit] = store.search('"финансовый центр"').hits
    assert hit.item_id == ids["ru-investors"]
    assert (hit.feed_url, hit.url) == (RU, STORIES["ru-investors"].url("ru-investors"))
    assert hit.title == STORIES["ru-investors"].title
    assert hit.published == datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    assert f"{MARK_START}финансовый{MARK_END} {MARK_START}центр{MARK_END}" in hit.snippet
    [hit] = store.search("strong festival OR riverside").hits  # the summary's HTML is gone
    assert "<" not in hit.snippet and f"{MARK_START}festival{MARK_END}" in hit.snippet
    [hit] = store.search("cafe").hits  # the title matched; the snippet shows the summary
    assert hit.snippet == "A naïve guide to coffee houses"


def test_ranking_puts_title_matches_first(store: Store) -> None:
    store.sync_feeds([FeedConfig(EN)], T0)
    poll(store, EN, T0, [
        entry(1, title="Weather report", summary="Snow and rain. " + "Calm days ahead. " * 5
              + "Mention of an election at the end."),
        entry(2, title="Election results", summary="The count is done. " + "Turnout high. " * 5),
    ])  # fmt: skip
    hits = store.search("election").hits
    assert [h.title for h in hits] == ["Election results", "Weather report"]
    assert hits[0].rank > hits[1].rank


def index_rows(store: Store) -> int:
    table = "search_docs" if store.db.engine.dialect.name == "postgresql" else "item_search"
    with store.db.read() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def test_the_index_moves_with_every_write_of_an_item(store: Store) -> None:
    store.sync_feeds([FeedConfig(EN, retention_count=1)], T0)
    poll(store, EN, T0, [entry(1, title="Harvest begins early")])
    assert found(store, "harvest")
    later = T0 + timedelta(hours=1)
    poll(store, EN, later, [entry(1, title="Harvest delayed by rain")])  # a new revision
    assert found(store, "delayed") and not found(store, "early")
    item_id = store.item_id_for_url("https://news.example/story/1")
    assert item_id is not None
    article = Article(title="x", text="Farmers in the steppe wait for dry weather.", html="")
    store.apply_article(item_id, ArticleResult(article), later)
    assert found(store, "steppe") == {item_id}
    again = Article(title="x", text="Farmers now expect the harvest next week.", html="")
    store.apply_article(item_id, ArticleResult(again), later)  # re-extraction changed it
    assert not found(store, "steppe") and found(store, "expect") == {item_id}
    poll(store, EN, later + timedelta(hours=1), [entry(2, title="Markets open")])
    store.apply_retention(later + timedelta(days=1))  # keeps one item: the story goes
    assert not found(store, "harvest") and found(store, "markets")
    assert index_rows(store) == store.stats()["items"] == 1


def test_an_item_folded_into_its_twin_leaves_no_index_row(store: Store) -> None:
    store.sync_feeds([FeedConfig(EN), FeedConfig(KZ)], T0)
    poll(store, EN, T0, [entry(1, url="https://a.example/1", title="Flood warning")])
    poll(store, KZ, T0, [entry(2, url="https://b.example/2", title="Flood warning issued")])
    second = store.item_id_for_url("https://b.example/2")
    assert second is not None
    canonical = Article(title="x", text="Rivers rise.", html="",
                        canonical_url="https://a.example/1")  # fmt: skip
    store.apply_article(second, ArticleResult(canonical), T0)  # the same story: one item
    assert store.stats()["items"] == index_rows(store) == 1
    assert found(store, "rivers") == {store.item_id_for_url("https://a.example/1")}


def test_imported_items_are_searchable(
    store: Store, store_url_factory: Callable[[str], str]
) -> None:
    build(store)
    exported = list(store.iter_items(ExportFilter()))
    backend = "postgres" if store.db.engine.dialect.name == "postgresql" else "sqlite"
    with Store.open(store_url_factory(backend)) as other:
        other.import_items(exported)
        assert len(found(other, "Астана")) == 2
        other.import_items(exported)  # twice is once
        assert len(found(other, "Астана")) == 2


def test_reindex_of_an_archive_written_before_the_index(store_url: str) -> None:
    with Store.open(store_url) as store:
        ids = build(store)
    downgrade(store_url, "0008")
    with Store.open(store_url) as store:
        backlog = store.search_backlog()
        assert backlog is not None and backlog.end_id == max(ids.values())
        assert found(store, "Астана") == set()  # not indexed yet
        poll(store, EN, T0 + timedelta(hours=1), [entry("new", title="Harvest news")])
        assert len(found(store, "harvest")) == 1  # a new item is indexed as it is written
        assert store.reindex_search(3) == (3, store.search_backlog())
    with Store.open(store_url) as store:  # interrupted: the next run goes on from there
        left = store.search_backlog()
        assert left is not None and left.done_id == sorted(ids.values())[2]
        done, left = store.reindex_search(3)
        while left is not None:
            more, left = store.reindex_search(3)
            done += more
        assert done == len(ids) - 3
        assert store.reindex_search(3) == (0, None)  # idempotent: nothing left
        answers = {q: keys(ids, found(store, q)) for q in QUERIES}
        assert answers == QUERIES
        assert store.reindex_search(100, restart=True) == (len(ids) + 1, None)
        assert {q: keys(ids, found(store, q)) for q in QUERIES} == QUERIES


def test_the_sqlite_delete_trigger_is_in_place(store_url: str) -> None:
    """Kept by migration 0010; a future batch migration of ``items`` must create it again."""
    if not store_url.startswith("sqlite"):
        pytest.skip("PostgreSQL deletes index rows by foreign key")
    with Store.open(store_url):
        pass
    engine = create_engine(store_url)
    with engine.connect() as conn:
        names = conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        assert "items_search_delete" in {r[0] for r in names}
    engine.dispose()
