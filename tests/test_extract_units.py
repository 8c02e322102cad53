"""Table tests of the extraction's pure pieces: titles, dates, text blocks, datelines, meta."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aggregator.extract import SiteRules, extract, titles
from aggregator.extract.article import parse_page
from aggregator.extract.dates import in_page_zone, parse_date
from aggregator.extract.rules import parse_zone
from aggregator.extract.structured import read_meta
from aggregator.extract.text import html_to_text

SITE = ["The Outlet"]


@pytest.mark.parametrize(("raw", "want"), [
    ("Headline here | The Outlet", "Headline here"),
    ("Headline here - The Outlet", "Headline here"),
    ("Headline here — Outlet", "Headline here"),
    ("The Outlet: Headline here", "Headline here"),
    ("Headline - with a dash | The Outlet", "Headline - with a dash"),
    ("Headline here", "Headline here"),
    ("Headline here | outlet.com", "Headline here"),
    ("A | B", "A | B"),  # neither side names the outlet
])
def test_strip_site_name(raw: str, want: str) -> None:
    assert titles.strip_site_name(raw, SITE, "www.outlet.com") == want


def test_host_names_without_public_suffix_list() -> None:
    stripped = titles.strip_site_name("기사 제목 - Entermedia", [], "www.entermedia.co.kr")
    assert stripped == "기사 제목"


@pytest.mark.parametrize(("candidates", "headings", "want"), [
    # the <h1> confirms a truncated JSON-LD headline: the <h1> wins, whole
    ([("A long headline that was cut at", "structured_data")],
     ["A long headline that was cut at a fixed length"],
     ("A long headline that was cut at a fixed length", "structured_data")),
    # <h1> equal to a segment of <title>
    ([("Section | The real headline | Somewhere", "meta")], ["The real headline"],
     ("The real headline", "meta")),
    # the <h1> is the site logo: it matches nothing, the stated title wins
    ([("Story title", "meta")], ["The Outlet"], ("Story title", "meta")),
    # "<h1> – Unknown Outlet" in <title>: the <h1> is the headline
    ([("Dare to play again / October pack – Some Studio Name", "meta")],
     ["Dare to play again / October pack"], ("Dare to play again / October pack", "meta")),
    # the same headline edited for the head and for the page: the page's wins
    ([("HS Roundup: Viera defeats Rockledge to stay unbeaten", "meta")],
     ["High School Roundup: Viera defeats Rockledge to stay unbeaten"],
     ("High School Roundup: Viera defeats Rockledge to stay unbeaten", "meta")),
    ([], ["Only heading"], ("Only heading", "generic")),
    ([], ["One", "Two"], None),
])
def test_choose(candidates: list[tuple[str, str]], headings: list[str],
                want: tuple[str, str] | None) -> None:
    assert titles.choose(candidates, headings, SITE, "outlet.com") == want


def test_title_is_capped() -> None:
    chosen = titles.choose([("x" * 70_000, "meta")], [], [], "a.example")
    assert chosen is not None and len(chosen[0]) == titles.MAX_TITLE


PLUS6 = timezone(timedelta(hours=6))


@pytest.mark.parametrize(("raw", "tz", "want"), [
    ("2021-04-20T17:05:00+06:00", None, datetime(2021, 4, 20, 17, 5, tzinfo=PLUS6)),
    ("2021-04-20T11:05:00Z", None, datetime(2021, 4, 20, 11, 5, tzinfo=UTC)),
    ("20 April 2021, 17:05", PLUS6, datetime(2021, 4, 20, 17, 5, tzinfo=PLUS6)),
    ("2021-04-20 17:05", parse_zone("Asia/Almaty"), datetime(2021, 4, 20, 17, 5, tzinfo=PLUS6)),
    ("2021-04-20", None, datetime(2021, 4, 20, tzinfo=UTC)),
    ("Tue, 20 Apr 2021 17:05:00 +0600", None, datetime(2021, 4, 20, 17, 5, tzinfo=PLUS6)),
    ("20.04.2021 17:05", PLUS6, datetime(2021, 4, 20, 17, 5, tzinfo=PLUS6)),
    ("yesterday", None, None),
    ("April 20", None, None),  # no year: no guess
    ("", None, None),
    ("9999-01-01", None, None),
    ("2021-04-20" + "x" * 200, None, None),
])
def test_parse_date(raw: str, tz: timezone | None, want: datetime | None) -> None:
    got = parse_date(raw, tz)
    assert got == want
    if got is not None and want is not None:
        assert got.utcoffset() == want.utcoffset()


def test_zone_gives_the_offset_of_the_day() -> None:
    almaty = parse_zone("Asia/Almaty")
    later = parse_date("2025-04-20 17:05", almaty)
    assert later is not None and later.utcoffset() == timedelta(hours=5)


@given(st.text(max_size=120))
def test_parse_date_never_raises(raw: str) -> None:
    got = parse_date(raw)
    assert got is None or got.tzinfo is not None


def test_text_blocks() -> None:
    html = ("<h2>Head</h2><p>One\n  two <b>three</b></p><ul><li>a</li><li>b<br>c</li></ul>"
            "<blockquote><p>Quote</p></blockquote><figure><img src='x'><figcaption>Cap"
            "</figcaption></figure>")
    assert html_to_text(html) == "Head\n\nOne two three\n\na\n\nb\nc\n\nQuote\n\nCap"


def test_text_of_empty_html() -> None:
    assert html_to_text("") == ""
    assert html_to_text("<p> </p>") == ""


def test_meta_reads_graph_lists_and_microdata() -> None:
    html = """<html lang="kk"><head>
    <script type="application/ld+json">[{"@type": "WebSite", "name": "Site"},
     {"@graph": [{"@type": ["NewsArticle"], "headline": "H", "datePublished": "2020-01-02",
       "author": [{"@type": "Person", "name": "By Ann"}, "Bob"], "image": {"url": "/i.jpg"},
       "articleBody": "Body"}]}]</script>
    <script type="application/ld+json">{ broken json</script>
    <meta property="og:site_name" content="Outlet"></head>
    <body><span itemprop="dateModified" content="2020-01-03"></span></body></html>"""
    meta = read_meta(parse_page(html, "https://a.example/"))
    assert meta.titles[0] == ("H", "structured_data")
    assert meta.published[0] == ("2020-01-02", "structured_data")
    assert meta.modified[0] == ("2020-01-03", "structured_data")
    assert meta.authors[0] == (("Ann", "Bob"), "structured_data")
    assert meta.image[0] == ("/i.jpg", "structured_data")
    assert meta.body == "Body"
    assert meta.article_count == 1
    assert {"Site", "Outlet"} <= set(meta.site_names)
    assert ("kk", "meta") in meta.language


def test_utc_dates_move_to_the_pages_own_offset() -> None:
    utc = datetime(2019, 11, 20, 5, 57, tzinfo=UTC)
    minus8 = timezone(timedelta(hours=-8))
    local = datetime(2019, 11, 19, 21, 57, tzinfo=minus8)
    moved = in_page_zone(utc, [utc, local])
    assert moved == utc and moved.utcoffset() == timedelta(hours=-8)
    assert moved.date().isoformat() == "2019-11-19"
    assert in_page_zone(utc, [utc]) is utc  # a UTC page stays UTC
    assert in_page_zone(local, [utc]) is local  # a stated offset is kept


def test_page_offset_from_time_elements() -> None:
    html = ('<html><head><script type="application/ld+json">{"@type": "NewsArticle", '
            '"headline": "Night story", "datePublished": "2019-11-20T05:57:50Z"}</script></head>'
            '<body><h1>Night story</h1><time datetime="2019-11-19T21:57:00-08:00">Nov 19</time>'
            "<p>" + "Words of the story go on for a while here. " * 20 + "</p></body></html>")
    article = extract(html, "https://a.example/n", SiteRules())
    assert article.published is not None
    assert article.published.isoformat() == "2019-11-19T21:57:50-08:00"
