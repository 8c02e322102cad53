"""One bad character or element never loses a feed, and no field costs seconds (issue 10, item 3).

The corpus documents (``../shared/corpus/parse-traps/``) crash or stall feedparser 6.0.14; the
generated ones test each class around them. No timed assertion: the inputs are sized so that
a quadratic step would run for minutes, and the module's timeout turns that into a failure.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from feedparser.api import StrictFeedParser

import aggregator.feeds.parse
from aggregator.errors import ParseError
from aggregator.feeds.parse import ParsedFeed, parse_feed
from aggregator.feeds.xmlrescue import rescue_xml
from aggregator.feeds.xmltext import MAX_PERSON
from storage.export import write_export
from storage.records import ExportFilter
from storage.store import Store
from tests.corpusfiles import documents, require
from tests.feedfixtures import FEED_URL
from tests.feedgen import Item, article_page, rss
from tests.httpserver import TestServer
from tests.test_poll import items_of, poll, settings_for

pytestmark = pytest.mark.timeout(120)
TRAPS = documents("parse-traps")
EXPECTED_TITLE = {"latent-namespace-uri-leading-nel-charref.xml": "Real"}


def both(body: bytes) -> list[ParsedFeed]:
    """The document read with the fast path and through feedparser alone."""
    return [parse_feed(body, FEED_URL, {}, fast_path=fast) for fast in (True, False)]


def good_entry(parsed: ParsedFeed, title: str = "ok") -> None:
    found = [(e.guid, e.title) for e in parsed.entries]
    assert ("g1", title) in found, found


def test_the_parse_traps_corpus_is_there() -> None:
    folder = require("parse-traps")
    assert len(TRAPS) >= 9, sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("path", TRAPS, ids=lambda p: p.name)
def test_each_trap_yields_its_good_entry(path: Path) -> None:
    for parsed in both(path.read_bytes()):
        good_entry(parsed, EXPECTED_TITLE.get(path.name, "ok"))
        assert all(e.url is None or "fake" not in e.url for e in parsed.entries)


def test_each_trap_is_stored_through_the_whole_pipeline(
    http_server: TestServer, store: Store
) -> None:
    require("parse-traps")
    urls = []
    for path in TRAPS:
        http_server.route(f"/{path.name}", body=path.read_bytes(),
                          headers={"Content-Type": "application/rss+xml"})
        urls.append(http_server.url(f"/{path.name}"))
    totals = poll(settings_for(*urls), store)
    assert (totals.ok, totals.failed) == (len(TRAPS), 0)
    # The traps' good entries are one story (same guid and text): one item, seen in each feed.
    seen = {(s["feed_url"], s["guid"]) for i in items_of(store) for s in i["sightings"]}
    assert {(url, "g1") for url in urls} <= seen


# ---------------------------------------------------------------- character references


def rss_doc(item: str, head: str = "", root: str = '<rss version="2.0">') -> bytes:
    return (
        f'<?xml version="1.0" encoding="utf-8"?>{root}<channel><title>T</title>{head}'
        f"<item><guid>g1</guid>{item}</item></channel></rss>"
    ).encode()


REFERENCES = {
    "&#xD800;": "a\ufffdb", "&#xdfff;": "a\ufffdb", "&#55296;": "a\ufffdb",
    "&#x110000;": "a\ufffdb", "&#99999999999999999999999999;": "a\ufffdb",
    "&#x" + "0" * 5000 + "41;": "aAb", "&#0;": "ab", "&#x1;": "ab", "&#xFFFE;": "ab",
    "&#xD83D;&#xDE00;": "a\U0001f600b", "&#55357;&#56832;": "a\U0001f600b",
    "&#xDE00;&#xD83D;": "a\ufffd\ufffdb", "&#x9;": "a b", "&#x41;": "aAb",
    "<![CDATA[&#xD800;]]>": "a&#xD800;b",
}  # fmt: skip


@pytest.mark.parametrize("reference", REFERENCES)
def test_references_to_characters_xml_forbids(reference: str) -> None:
    body = rss_doc(f"<title>a{reference}b</title><category domain='x{reference}'>c</category>")
    fast, slow = both(body)
    assert fast == slow
    good_entry(fast, REFERENCES[reference])


# ---------------------------------------------------------------- namespaces and encodings

SPACES = ["&#x85;", "&#x2028;", "&#xA0;", "&#x20;", "&#9;", "&#x3000;", "\x85", "\u2028"]


@pytest.mark.parametrize("space", SPACES, ids=ascii)
@pytest.mark.parametrize("where", ["leading", "inside", "trailing"])
def test_whitespace_in_a_namespace_uri(space: str, where: str) -> None:
    uri = {"leading": f"{space}urn:x", "inside": f"urn:{space}x", "trailing": f"urn:x{space}"}
    root = f'<rss version="2.0" xmlns:a="{uri[where]}">'
    item = "<a:title>Fake</a:title><title>Real</title><a:link>http://fake.example/</a:link>"
    fast, slow = both(rss_doc(item, root=root))
    assert fast == slow
    good_entry(fast, "Real")
    assert fast.entries[0].url != "http://fake.example/"


@pytest.mark.parametrize(
    ("encoded", "title"), [("+2AA-", "T"), ("+2D3eAA-", "T\U0001f600"), ("+AOk-", "T\xe9")]
)
def test_utf7_documents_are_transcoded(encoded: str, title: str) -> None:
    body = (
        '<?xml version="1.0" encoding="utf-7"?><rss version="2.0"><channel>'
        f"<title>T{encoded}</title><item><title>ok</title><guid>g1</guid></item></channel></rss>"
    ).encode()
    for parsed in both(body):
        good_entry(parsed)
        assert parsed.title == title


# ---------------------------------------------------------------- long person fields

PERSON_TAGS = ["author", "managingEditor", "webMaster", "dc:creator", "dc:publisher",
               "dc:contributor", "itunes:author", "dc:author"]
NAMESPACES = ('xmlns:dc="http://purl.org/dc/elements/1.1/" '
              'xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd"')
HUGE = 400_000  # quadratic: about 100 s per copy of 40 KB squared, i.e. hours here


def shaped(shape: str) -> str:
    run = "a" * (HUGE // 100)
    return {
        "text": "a" * HUGE,
        "cdata": f"<![CDATA[{'a' * HUGE}]]>",
        "cdata-pieces": f"<![CDATA[{run}]]>" * 100,
        "child-elements": f"{run}<b/>" * 100,
        "comments": f"{run}<!-- c -->" * 100,
        "references": "&#97;" * (HUGE // 5),
        "mail-like": "a.b-c_d+" * (HUGE // 8),
    }[shape]


@pytest.mark.parametrize("tag", PERSON_TAGS)
@pytest.mark.parametrize("shape", ["text", "cdata", "cdata-pieces", "child-elements", "comments",
                                   "references", "mail-like"])
@pytest.mark.parametrize("level", ["item", "channel"])
def test_long_person_fields_are_cut_before_any_regex(tag: str, shape: str, level: str) -> None:
    field = f"<{tag}>{shaped(shape)}</{tag}>"
    root = f'<rss version="2.0" {NAMESPACES}>'
    item = f"<title>ok</title>{field if level == 'item' else ''}"
    body = rss_doc(item, head=field if level == "channel" else "", root=root)
    for parsed in both(body):
        good_entry(parsed)
        assert f"longer than {MAX_PERSON} characters: 1 cut" in (parsed.warning or "")
        assert all(len(name) <= MAX_PERSON for name in parsed.entries[0].authors)


@pytest.mark.parametrize("atom", ["http://www.w3.org/2005/Atom", "http://www.w3.org/20&nbsp;05/Atom"])
def test_an_atom_persons_parts_are_cut_one_by_one(atom: str) -> None:
    """In a malformed document (second case) feedparser's loose parser joins them into a text
    author, which its e-mail regex reads; the person keeps its structure."""
    body = (
        f'<feed xmlns="{atom}"><title>T</title><entry><id>g1</id><title>ok</title><author>'
        f"<name>{'1' * HUGE}</name><uri>{'u' * HUGE}</uri><email>{'e' * HUGE}</email></author>"
        "</entry></feed>"
    ).encode()
    for parsed in both(body):
        good_entry(parsed)
        assert parsed.entries[0].authors == ("1" * MAX_PERSON,)
        assert f"longer than {MAX_PERSON} characters: 3 cut" in (parsed.warning or "")


# ---------------------------------------------------------------- feedparser's own crashes

HANDLED = sorted(
    {n.removeprefix("_start_") for n in dir(StrictFeedParser) if n.startswith("_start_")}
    | {n.removeprefix("_end_") for n in dir(StrictFeedParser) if n.startswith("_end_")}
)
PREFIXES = {"dc": "http://purl.org/dc/elements/1.1/", "media": "http://search.yahoo.com/mrss/",
            "georss": "http://www.georss.org/georss", "gml": "http://www.opengis.net/gml",
            "itunes": "http://www.itunes.com/dtds/podcast-1.0.dtd",
            "content": "http://purl.org/rss/1.0/modules/content/"}
IDENTITY = {"item", "entry", "guid", "id"}  # another entry, or another id for this one
POSITIONS = {
    "in-description": "<title>ok</title><description>a <{t}>3</{t}></description>",
    "in-title": "<title>ok<{t}>3</{t}></title>",
    "in-item": "<title>ok</title><{t}>3</{t}>",
    "empty-in-item": "<title>ok</title><{t}/>",
    "in-author": "<title>ok</title><author>a<{t}>b</{t}></author>",
    "in-image-link": "<title>ok</title>",  # with <image><link>x<{t}/></link></image> in the head
}


def element(name: str) -> str:
    prefix, _, local = name.partition("_")
    return f"{prefix}:{local}" if local and prefix in PREFIXES else name


@pytest.mark.parametrize("position", POSITIONS)
@pytest.mark.parametrize("malformed", [False, True], ids=["well-formed", "malformed"])
def test_an_element_where_feedparser_crashes_never_loses_the_feed(
    position: str, malformed: bool
) -> None:
    """Every element feedparser has a handler for, where it expects text or nothing; in a
    malformed document (an undeclared entity) its loose parser and lxml's recovery read it."""
    root = '<rss version="2.0" ' + " ".join(f'xmlns:{p}="{u}"' for p, u in PREFIXES.items()) + ">"
    rescued, lost = 0, []
    for name in sorted(set(HANDLED) - IDENTITY):
        tag = element(name)
        head = f"<image><link>x<{tag}/></link></image>" if position == "in-image-link" else ""
        head += "<description>&nbsp;</description>" if malformed else ""
        parsed = parse_feed(rss_doc(POSITIONS[position].format(t=tag), head, root), FEED_URL, {},
                            fast_path=False)
        if not any(e.guid == "g1" and e.title and e.title.startswith("ok") for e in parsed.entries):
            lost.append(tag)
        rescued += "feedparser failed" in (parsed.warning or "")
    assert not lost
    if position != "empty-in-item":  # feedparser 6.0 crashes on some of each of the others
        assert rescued


def test_rescue_keeps_only_the_fields_read_as_text() -> None:
    body = rss_doc(
        "<title>ok<b>!</b></title><guid>g1<x/></guid><description>a <width>3</width></description>"
        '<enclosure url="https://e.org/a.mp3" length="1" type="audio/mpeg" xml:base="/x"/>'
        "<gml:pos>1 2</gml:pos>",
        head="<image><link>x<br/></link></image>",
        root='<rss version="2.0" xmlns:gml="http://www.opengis.net/gml">',
    )
    rescued = rescue_xml(body)
    assert rescued is not None
    assert b"<image" not in rescued and b"gml" not in rescued and b"xml:base" not in rescued
    for kept in (b"<title>ok&lt;b&gt;!&lt;/b&gt;</title>", b"<guid>g1</guid>",
                 b"<description>a &lt;width&gt;3&lt;/width&gt;</description>",
                 b'url="https://e.org/a.mp3"'):
        assert kept in rescued


@pytest.mark.parametrize("body", [b"<html><body>x</body></html>", b"\x00\x01", b"<a><rss/></a>"])
def test_rescue_finds_nothing_in_what_is_not_a_feed(body: bytes) -> None:
    assert rescue_xml(body) is None


def test_a_crash_on_the_rescued_copy_too_is_one_parse_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A feedparser failure we have never seen must still be one line naming the feed."""

    def crash(data: bytes, headers: object) -> object:
        raise KeyError("links")

    monkeypatch.setattr(aggregator.feeds.parse, "_feedparser", crash)
    with pytest.raises(ParseError) as caught:
        parse_feed(rss_doc("<title>ok</title>"), FEED_URL, {}, fast_path=False)
    message = str(caught.value)
    assert message == (f"parse: feedparser failed (KeyError: 'links'), even on a rescued copy, "
                       f"for {FEED_URL}")


# ---------------------------------------------------------------- the same class in JSON Feed

JSON_FIELDS = ["title", "id", "url", "external_url", "summary", "content_text", "content_html",
               "date_published", "date_modified"]


def json_feed(trap: str) -> bytes:
    """Entry g1 is clean; entry g2 has an escaped lone surrogate in every string it reads."""
    fields = ", ".join(f'"{name}": "https://e.org/{trap}x"' for name in JSON_FIELDS)
    return (
        '{"version": "https://jsonfeed.org/version/1.1", "title": "T' + trap + '", "items": ['
        '{"id": "g1", "title": "ok"}, {' + fields + ', "authors": [{"name": "' + trap + 'n"}]}]}'
    ).encode()


@pytest.mark.parametrize("trap", ["\\ud800", "\\uDFFF", "\\udc00\\ud800"])
def test_escaped_lone_surrogates_in_json_become_replacement_characters(trap: str) -> None:
    parsed = parse_feed(json_feed(trap), FEED_URL, {"Content-Type": "application/feed+json"})
    good_entry(parsed)
    text = repr([parsed.title, parsed.link, *(vars_of(e) for e in parsed.entries)])
    assert "\\ud" not in text and "\ufffd" in text
    for entry in parsed.entries:
        for value in vars_of(entry):
            str(value).encode("utf-8")  # what the database does with every field


def vars_of(entry: object) -> list[object]:
    return [getattr(entry, name) for name in entry.__slots__]  # type: ignore[attr-defined]


def test_a_json_feed_with_a_lone_surrogate_is_stored(http_server: TestServer, store: Store) -> None:
    """It used to fail every poll of its feed at the database ("surrogates not allowed")."""
    http_server.route("/feed.json", body=json_feed("\\ud800"),
                      headers={"Content-Type": "application/feed+json"})
    totals = poll(settings_for(http_server.url("/feed.json")), store)
    assert (totals.ok, totals.failed, totals.new_items) == (1, 0, 2)
    titles = sorted(i["title"] for i in items_of(store))
    assert titles == ["https://e.org/\ufffdx", "ok"]


# ---------------------------------------------------------------- and in an article's JSON-LD

JSON_LD = ('<script type="application/ld+json">{"@type": "NewsArticle", "headline": "H\\ud800",'
           ' "author": [{"name": "\\udc00Ann"}, "Bob\\udfff"], "inLanguage": "en\\ud800"}'
           "</script></head>")


def test_an_article_with_lone_surrogates_in_its_json_ld_is_archived_as_text(
    http_server: TestServer, store: Store, tmp_path: Path
) -> None:
    """They were stored as they came: no UTF-8 writer can write them (export wrote "?")."""
    story = Item(1, http_server.base_url)
    page = article_page(story).replace(b"</head>", JSON_LD.encode())
    http_server.route("/feed.xml", body=rss([story]))
    http_server.route("/news/1.html", body=page, headers={"Content-Type": "text/html"})
    totals = poll(settings_for(http_server.url("/feed.xml"), fetch_articles=True), store)
    assert (totals.new_items, totals.articles_ok, totals.articles_failed) == (1, 1, 0)
    [stored] = items_of(store)
    assert set(stored["article"]["authors"]) == {"\ufffdAnn", "Bob\ufffd"}
    out = tmp_path / "export.jsonl"
    assert write_export(store, out, "jsonl", ExportFilter()) == 1
    assert "\ufffdAnn" in out.read_text("utf-8")
