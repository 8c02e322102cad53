"""Titles, bylines and dates as a reader cites them (issue 17): units, golden pages, benchmark."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, date, datetime, time, timedelta, timezone
from pathlib import Path

import pytest

from aggregator.extract import SiteRules, article_to_dict, extract
from aggregator.extract.article import parse_page
from aggregator.extract.bylines import names_in, people, shown_bylines
from aggregator.extract.dates import reconcile
from aggregator.extract.shown import Shown, choose, headline, near, window
from aggregator.extract.titles import choose as choose_title
from benchmarks import extract_meta
from storage.records import Article, ArticleResult, ExportFilter, FeedConfig
from storage.store import Store
from tests.dbfixtures import T0, entry, poll

PAGES = Path(__file__).parent / "data" / "pages"
KAZ_AMP2 = ("https://amp.qazinform.com/en/kassym-jomart-tokayev-receives-minister-of-internal-"
            "affairs-yerlan-turgumbayev_a3780153")
EST = timezone(timedelta(hours=-5))
ALMATY = timezone(timedelta(hours=6))


# ---------------------------------------------------------------- bylines
@pytest.mark.parametrize(("byline", "names"), [
    ("By TOM KRISHER, AP Auto Writer", ["Tom Krisher"]),
    ("By Stefan Becket, Kathryn Watson, Grace Segers", ["Stefan Becket", "Kathryn Watson",
                                                        "Grace Segers"]),
    ("By Mike Wuerthele and Malcolm Owen Monday, November 18, 2019, 04:05 pm PT",
     ["Mike Wuerthele", "Malcolm Owen"]),
    ("Analysis by Chris Cillizza, CNN Editor-at-large", ["Chris Cillizza"]),
    ("Ilana Muhlstein, MS, RDN", ["Ilana Muhlstein"]),
    ("Finian Cunningham. Sputnik International", ["Finian Cunningham"]),
    ("Текст: Венера Ерофеева", ["Венера Ерофеева"]),
    ("Jeff FoustMonday, November 18, 2019", ["Jeff Foust"]),
    ("By Matthew Digby , Minh Do on Monday, November 18th, 2019", ["Matthew Digby", "Minh Do"]),
    ("Chris Davies - Nov 19, 2019, 10:31 pm CST", ["Chris Davies"]),
    ("Regan", ["Regan"]),
    ("By AJ Willingham, CNN", ["AJ Willingham"]),
    ("Martin Luther King III", ["Martin Luther King III"]),
])
def test_byline_gives_the_persons(byline: str, names: list[str]) -> None:
    assert names_in(byline) == names


@pytest.mark.parametrize("byline", [
    "Reuters", "The Associated Press", "PTI", "Staff Reports", "By Staff", "Editorial",
    "HNN Staff", "Telegraph Sport", "JERUSALEM POST STAFF", "News Nation Bureau", "admin",
    "jdadmin", "kevin-r", "KWCHCIK", "Photo: Jane Doe", "By", "Updated 2 hours ago",
    "Ryan Reed's Most Recent Stories", "@saraheneedleman", "Sarah.Needleman@wsj.com",
    "Science X staff", "The Water Coolest", "Гость",
])
def test_byline_without_a_person_gives_none(byline: str) -> None:
    assert names_in(byline) == []


def test_outlet_named_as_author_is_no_person() -> None:
    assert people(["LinkNaija"], (), "www.linknaija.com") == ()
    assert people(["Beachbody"], (), "www.beachbodyondemand.com") == ()
    assert people(["Al Jazeera"], ["Al Jazeera"], "www.aljazeera.com") == ()
    assert people(["Jane Doe", "jane doe", "JANE DOE"]) == ("Jane Doe",)


def test_shown_byline_groups_coauthors_and_skips_comments() -> None:
    root = parse_page(
        "<html><body><h1>Moon landers picked</h1><p class='byline'>By "
        "<span class='by-author'><a rel='author'>Tariq Malik</a>,</span> "
        "<span class='by-author'>Mike Wall</span></p><p>Story text.</p>"
        "<div class='comments'><span class='comment-author'>Karol</span></div></body></html>",
        "https://x.example/a",
    )
    assert people(shown_bylines(root)[:1]) == ("Tariq Malik", "Mike Wall")


def test_json_ld_organization_author_is_not_a_byline() -> None:
    html = ('<html><head><script type="application/ld+json">{"@type": "NewsArticle", '
            '"headline": "Sweden drops inquiry", "author": [{"@type": "NewsMediaOrganization", '
            '"name": "BBC News"}, {"@type": "Person", "name": "Jane Doe"}]}</script></head><body>'
            "<h1>Sweden drops inquiry</h1><p>" + "Words of the story. " * 40 + "</p></body></html>")
    assert extract(html, "https://news.example/a", SiteRules()).authors == ("Jane Doe",)


def test_by_line_under_the_headline_beats_the_metadata() -> None:
    html = ('<html><head><meta name="author" content="Kevin Rebong"></head><body>'
            "<h1>Major layoffs to begin today</h1><div class='meta'>November 18, 2019 12:02 PM "
            "<span>By David Jeans</span></div><p>" + "Words of the story. " * 40 + "</p>"
            "</body></html>")
    article = extract(html, "https://news.example/a", SiteRules())
    assert article.authors == ("David Jeans",)
    assert dict(article.sources)["authors"] == "generic"


# ---------------------------------------------------------------- dates shown near the headline
def _near(html: str, title: str) -> list[Shown]:
    root = parse_page(html, "https://x.example/a")
    node = headline(root, title)
    assert node is not None
    return near(window(node), root.get("lang") or "")


def test_date_line_under_the_headline_with_its_zone() -> None:
    seen = _near("<html lang='en-US'><body><h1>Big story here</h1><p>By Jo Roe | Nov. 19, 2019 "
                 "8:03 am ET</p><p>" + "Story. " * 50 + "</p></body></html>", "Big story here")
    assert choose(seen) == Shown(date(2019, 11, 19), time(8, 3), seen[0].zone, "")
    at = seen[0].aware()
    assert at is not None and at.isoformat() == "2019-11-19T08:03:00-05:00"


def test_related_news_timestamps_are_never_taken() -> None:
    html = ("<html><body><div class='ticker'><span>20 April 2021, 16:58</span></div>"
            "<div class='x'><h1>The headline of it</h1><ul class='related-news'><li><span>"
            "20 April 2021, 16:40</span> <a href='/o'>Other story</a></li></ul>"
            "<div><a href='/p'>20 April 2021, 16:30 Another</a></div>"
            "<span class='when'>20 April 2021, 17:05</span></div><p>" + "Story. " * 50 + "</p>"
            "</body></html>")
    seen = choose(_near(html, "The headline of it"))
    assert seen is not None and (seen.day, seen.clock) == (date(2021, 4, 20), time(17, 5))


def test_updated_line_is_not_the_publication_date() -> None:
    seen = _near("<html><body><h1>Headline words here</h1><p>Updated Nov 19, 2019, 6:55 AM EST"
                 "</p><p>Posted Nov 19, 2019, 6:51 AM EST</p><p>" + "Story. " * 50 + "</p>"
                 "</body></html>", "Headline words here")
    picked = choose(seen)
    assert [s.label for s in seen] == ["updated", "published"]
    assert picked is not None and picked.clock == time(6, 51)


@pytest.mark.parametrize(("machine", "day_only", "seen", "tz", "expected"), [
    # The date line's zone moves the metadata's UTC instant into the page's offset.
    (datetime(2019, 11, 19, 13, 3, tzinfo=UTC), False,
     Shown(date(2019, 11, 19), time(8, 3), EST), None, ("2019-11-19T08:03:00-05:00", None)),
    # A clock without zone against a UTC instant: the difference is the offset.
    (datetime(2019, 11, 20, 2, 59, 46, tzinfo=UTC), False,
     Shown(date(2019, 11, 19), time(20, 59)), None, ("2019-11-19T20:59:46-06:00", None)),
    # A differing date line wins over the metadata ...
    (datetime(2019, 11, 19, 19, 31, tzinfo=UTC), False,
     Shown(date(2019, 11, 18), time(19, 14), UTC), None, ("2019-11-18T19:14:00+00:00", None)),
    # ... unless it is labelled an update: then it only lends its zone.
    (datetime(2019, 11, 20, 6, 35, 39, tzinfo=UTC), False,
     Shown(date(2019, 11, 20), time(1, 39), EST, "updated"), None,
     ("2019-11-20T01:35:39-05:00", None)),
    # Day-only metadata and the time shown: the site's zone completes it (Kazinform).
    (datetime(2021, 4, 20, tzinfo=ALMATY), True, Shown(date(2021, 4, 20), time(17, 5)), ALMATY,
     ("2021-04-20T17:05:00+06:00", None)),
    # A day and nothing more stays a day: not midnight UTC.
    (datetime(2019, 11, 18, tzinfo=UTC), True, None, None, (None, "2019-11-18")),
    (None, False, Shown(date(2006, 3, 14)), None, (None, "2006-03-14")),
    # A clock whose zone nobody states gives the day only.
    (None, False, Shown(date(2018, 8, 25), time(15, 24)), None, (None, "2018-08-25")),
])
def test_reconcile(
    machine: datetime | None, day_only: bool, seen: Shown | None, tz: timezone | None,
    expected: tuple[str | None, str | None],
) -> None:
    when, day, _ = reconcile(machine, day_only, seen, tz)
    assert (when.isoformat() if when else None, day.isoformat() if day else None) == expected


def test_day_only_metadata_is_reported_as_a_date() -> None:
    html = ('<html><head><script type="application/ld+json">{"@type": "NewsArticle", '
            '"headline": "Quiet day", "datePublished": "2019-11-18"}</script></head><body>'
            "<h1>Quiet day</h1><p>" + "Words of the story. " * 40 + "</p></body></html>")
    article = extract(html, "https://news.example/a", SiteRules())
    assert article.published is None
    assert article.published_date == date(2019, 11, 18)
    exported = article_to_dict(article)
    assert exported["published"] is None and exported["published_date"] == "2019-11-18"


def test_a_stored_day_only_date_is_exported_as_a_day(store: Store) -> None:
    """Both databases: the day survives storage and export; ``published`` stays null."""
    store.sync_feeds([FeedConfig("https://a.example/feed")], T0)
    poll(store, "https://a.example/feed", T0, [entry(1)])
    [pending] = store.pending_articles(T0, 10)
    article = Article(title="Quiet day", text="One.", html="<p>One.</p>",
                      published_date=date(2019, 11, 18), extractor="test/1")
    store.apply_article(pending.item_id, ArticleResult(article=article), T0)
    [item] = store.iter_items(ExportFilter())
    assert item["article"]["published"] is None
    assert item["article"]["published_date"] == "2019-11-18"


def test_extract_command_shows_a_day_only_date(capsys: pytest.CaptureFixture[str]) -> None:
    from aggregator.cli.views import print_article

    print_article(Article(title="T", text="One.", html="<p>One.</p>",
                          published_date=date(2006, 3, 14),
                          sources=(("published_date", "generic"),)))
    assert "published     2006-03-14 (day only)  [generic]" in capsys.readouterr().out


# ---------------------------------------------------------------- titles
def test_shown_headline_beats_a_differing_seo_title() -> None:
    stated = [("Prison guards charged in connection with Jeffrey Epstein's death", "meta")]
    shown = ("Two federal prison officers charged with falsifying records in connection with "
             "Jeffrey Epstein's suicide")
    assert choose_title(stated, [shown], [], "www.usatoday.com") == (shown, "generic")


def test_stated_titles_vote_and_a_truncated_one_yields() -> None:
    stated = [("Why the SEO team wrote this", "structured_data"),
              ("Council approves ferry timetable", "meta"),
              ("Council approves ferry timetable | Coastal Gazette", "meta")]
    assert choose_title(stated, [], ["Coastal Gazette"], "") == (
        "Council approves ferry timetable", "meta")
    truncated = [("Council approves new ferry timetable after a long…", "meta"),
                 ("Council approves new ferry timetable after a long debate", "meta")]
    assert choose_title(truncated, [], [], "")[0].endswith("debate")  # type: ignore[index]


def test_a_date_above_the_headline_never_overrides_the_metadata() -> None:
    html = ('<html><head><meta property="article:published_time" content="2019-11-18T21:10:29Z">'
            "</head><body><div><div class='top'>Wednesday, November 20, 2019</div>"
            "<h1>Hunter catches plague</h1></div><p>" + "Words of the story. " * 40 + "</p>"
            "</body></html>")
    article = extract(html, "https://news.example/a", SiteRules())
    assert article.published == datetime(2019, 11, 18, 21, 10, 29, tzinfo=UTC)


def test_logo_heading_does_not_replace_the_title() -> None:
    stated = [("Jangan Membenci Satu Kaum Secara Berlebihan | Kabar tentang Dunia Islam", "meta")]
    got = choose_title(stated, ["Kabar tentang Dunia Islam"], [], "kabarislamia.com")
    assert got == ("Jangan Membenci Satu Kaum Secara Berlebihan", "meta")


# ---------------------------------------------------------------- golden pages
def test_second_kazinform_amp_markup_gives_the_time_with_its_offset() -> None:
    html = (PAGES / "kazinform-article-amp2.html").read_text(encoding="utf-8")
    article = extract(html, KAZ_AMP2, SiteRules.load())
    assert article.published is not None
    assert article.published.isoformat() == "2021-04-20T17:05:00+06:00"
    assert article.authors == ()
    for junk in ("16:58", "16:40", "17:30", "Latest news", "Senate passes", "Go to the main",
                 "Telegram", "Tags:", "All rights reserved", "Full version"):
        assert junk not in article.text, junk


@pytest.mark.parametrize("element", ["span", "div", "time", "p", "b"])
def test_kazinform_amp_time_is_read_whatever_the_element(element: str) -> None:
    html = (PAGES / "kazinform-article-amp2.html").read_text(encoding="utf-8").replace(
        '<span class="news__when">20 April 2021, 17:05</span>',
        f'<{element} class="x-{element}">20 April 2021, 17:05</{element}>',
    )
    article = extract(html, KAZ_AMP2, SiteRules.load())
    assert article.published is not None
    assert article.published.isoformat() == "2021-04-20T17:05:00+06:00"


def test_old_markup_page_keeps_paragraphs_and_loses_furniture() -> None:
    html = (PAGES / "old-markup.html").read_text(encoding="utf-8")
    article = extract(html, "http://www.coastal-gazette.example/news/2006/0314-ferry.html",
                      SiteRules())
    assert article.title == "Harbour council approves new ferry timetable"
    assert article.authors == ("Margaret Llewellyn",)
    assert article.published is None and article.published_date == date(2006, 3, 14)
    assert article.text.count("\n\n") == 4  # five paragraphs
    assert article.text.startswith("The harbour council last night approved")
    for junk in ("Share this story", "Email a friend", "Digg", "Read also", "Lifeboat crew",
                 "Copyright", "All rights reserved", "Home", "Contact us", "since 1887",
                 "Chief Reporter", "Published:"):
        assert junk not in article.text, junk


# ---------------------------------------------------------------- the benchmark
def test_metadata_benchmark_scores_a_page(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    html = (PAGES / "old-markup.html").read_bytes()
    (tmp_path / "p1.html.gz").write_bytes(gzip.compress(html))
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps({"pages": [{
        "id": "p1", "url": "http://www.coastal-gazette.example/news/2006/0314-ferry.html",
        "title": "Harbour council approves new ferry timetable",
        "authors": ["Margaret Llewellyn"], "published": "2006-03-15",
    }]}), encoding="utf-8")
    assert extract_meta.main(["--pages", str(tmp_path), "--labels", str(labels), "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["title"] == figures["authors"] == 1.0
    assert figures["date_day"] == 0.0  # the page says the 14th, the label the 15th


def test_metadata_benchmark_without_the_dev_pages_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert extract_meta.main(["--pages", str(tmp_path / "absent")]) == 0
    assert "no dev pages" in capsys.readouterr().out


def test_labeled_set_is_well_formed() -> None:
    pages = json.loads(extract_meta.LABELS.read_text(encoding="utf-8"))["pages"]
    assert len(pages) == 181
    for label in pages:
        assert label["title"].strip() == label["title"] and label["title"]
        assert all(a.strip() for a in label["authors"])
        if label["published"]:
            text = label["published"]
            assert len(text) == 10 or datetime.fromisoformat(text).utcoffset() is not None
