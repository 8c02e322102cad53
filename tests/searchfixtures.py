"""A small archive with known search answers (issue 16), the same on SQLite and PostgreSQL.

Three feeds as Kazinform publishes them (Kazakh, Russian) and one in English. Items carry
Cyrillic (Kazakh letters too), Latin words with diacritics, HTML in summaries, and articles
with a language (Russian and English are stemmed on PostgreSQL, Kazakh is not). Each item
is named by a short key; ``QUERIES`` maps a query to the keys it must find, on both databases.
Inflected forms that PostgreSQL's stemmers would join (and SQLite would not) are kept out of
the answers here; ``STEMMED`` lists the PostgreSQL-only matches separately.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from storage.records import Article, ArticleResult, FeedConfig
from storage.store import Store
from tests.dbfixtures import T0, entry, poll

KZ = "https://kazinform.example/kz.xml"
RU = "https://kazinform.example/ru.xml"
EN = "https://world.example/en.xml"
FEEDS = [FeedConfig(KZ, tags=("kz", "news")), FeedConfig(RU, tags=("kz", "ru")),
         FeedConfig(EN, tags=("world",))]  # fmt: skip


@dataclass(frozen=True)
class Story:
    feed: str
    title: str
    summary: str
    text: str | None = None  # the article's, if one was fetched
    language: str | None = None
    day: int = 1  # published on 2026-03-<day>

    def url(self, key: str) -> str:
        return f"https://stories.example/{key}"


STORIES = {
    "kz-investors": Story(
        KZ, "Қазақстан Президенті Астанада шетелдік инвесторлармен кездесті",
        "<p>Мемлекет басшысы Астана қаласында кездесу өткізді.</p>",
        "Қазақстан Президенті инвесторлармен кездесті. Кездесу Астана қаласында өтті.", "kk", 1),
    "ru-investors": Story(
        RU, "Президент провёл встречу с инвесторами",
        "Глава государства Касым-Жомарт Токаев принял инвесторов.",
        "Международный финансовый центр «Астана» приглашает инвесторов.", "ru", 2),
    "ru-economy": Story(
        RU, "Экономика Казахстана выросла", "Рост составил пять процентов за год.",
        "Экономика страны выросла, сообщили в правительстве.", "ru-RU", 3),
    "en-cafe": Story(EN, "Café culture in Zürich", "A naïve guide to coffee houses", day=4),
    "en-budget": Story(
        EN, "State budget approved", "Parliament approved the state budget for 2027.",
        "The state budget was approved on Monday after a long session.", "en", 5),
    "en-talks": Story(
        EN, "Budget talks stall",
        "<p>No agreement on the <b>budget</b>; the tax debate goes on.</p>", day=6),
    "en-festival": Story(
        EN, "Riverside festival", "<p>The riverside <strong>festival</strong> draws crowds.</p>",
        day=7),
}  # fmt: skip

QUERIES: dict[str, set[str]] = {
    "Қазақстан": {"kz-investors"},
    "қазақстан": {"kz-investors"},
    "ҚАЗАҚСТАН": {"kz-investors"},
    "Астана": {"kz-investors", "ru-investors"},
    "Президенті": {"kz-investors"},
    "президент": {"ru-investors"},
    "президент*": {"kz-investors", "ru-investors"},
    "инвесторлармен кездесті": {"kz-investors"},
    '"финансовый центр"': {"ru-investors"},
    '"центр финансовый"': set(),
    '"пять процентов"': {"ru-economy"},
    "Токаев OR Экономика": {"ru-investors", "ru-economy"},
    "экономика -правительстве": set(),
    "инвесторов -экономика": {"ru-investors"},
    "выросла NOT правительстве": set(),
    "Казахстана": {"ru-economy"},
    "cafe": {"en-cafe"},
    "CAFÉ": {"en-cafe"},
    "zurich": {"en-cafe"},
    "naïve": {"en-cafe"},
    "naive coffee": {"en-cafe"},
    "budget": {"en-budget", "en-talks"},
    "budget tax": {"en-talks"},
    "budget AND tax": {"en-talks"},
    "budget OR festival": {"en-budget", "en-talks", "en-festival"},
    "budget -tax": {"en-budget"},
    "budget NOT tax": {"en-budget"},
    "bud*": {"en-budget", "en-talks"},
    "(budget OR cafe) -tax": {"en-cafe", "en-budget"},
    '"state budget"': {"en-budget"},
    '"budget state"': set(),
    "approved monday": {"en-budget"},
    "riverside festival": {"en-festival"},
    "strong": set(),  # an HTML tag of a summary, not a word of it
    "2027": {"en-budget"},
    "astana": set(),  # Latin letters do not find Cyrillic ones
}

# What PostgreSQL finds beyond SQLite: other forms of a word, in items whose language it stems.
STEMMED: dict[str, set[str]] = {
    "экономику": {"ru-economy"},
    "инвестор": {"ru-investors"},
    "approve": {"en-budget"},
}


def published(story: Story) -> datetime:
    return datetime(2026, 3, story.day, 9, 0, tzinfo=UTC)


def build(store: Store) -> dict[str, int]:
    """Fill ``store`` with ``STORIES``; their item ids by key."""
    store.sync_feeds(FEEDS, T0)
    for feed in (KZ, RU, EN):
        entries = [entry(key, url=s.url(key), title=s.title, summary=s.summary,
                         published=published(s))
                   for key, s in STORIES.items() if s.feed == feed]  # fmt: skip
        poll(store, feed, T0, entries)
    ids: dict[str, int] = {}
    for key, story in STORIES.items():
        item_id = store.item_id_for_url(story.url(key))
        assert item_id is not None
        ids[key] = item_id
        if story.text is not None:
            article = Article(title=story.title, text=story.text, html="",
                              language=story.language)  # fmt: skip
            store.apply_article(item_id, ArticleResult(article), T0)
    return ids


def found(store: Store, query: str, **filters: object) -> set[int]:
    page = store.search(query, limit=100, **filters)  # type: ignore[arg-type]
    assert page.total == len(page.hits)
    return {hit.item_id for hit in page.hits}
