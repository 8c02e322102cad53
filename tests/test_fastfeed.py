"""The lxml fast path reads what feedparser reads: whenever it accepts a document, parse_feed's
result is the one feedparser gives; what it cannot reproduce it declines, cheaply and safely."""

from __future__ import annotations

import codecs
import inspect
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import feedparser.html
import feedparser.urls
import pytest
from feedparser.mixin import _FeedParserMixin
from feedparser.util import FeedParserDict
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregator.errors import ParseError
from aggregator.feeds import fastfeed, fastrules
from aggregator.feeds.fastfeed import read_fast
from aggregator.feeds.feedmodel import MAX_ENTRIES
from aggregator.feeds.parse import ParsedFeed, parse_feed
from aggregator.feeds.xmlsafety import prepare_xml
from benchmarks.feedserver import render_feed
from tests.feedfixtures import FEED_URL, FEEDS, item, rss
from tests.httpserver import TestServer

pytestmark = pytest.mark.timeout(60)
NOW = datetime(2025, 11, 25, 12, 0, tzinfo=UTC)


def both(body: bytes, headers: dict[str, str] | None = None, now: datetime | None = None) -> None:
    """parse_feed with the fast path equals parse_feed through feedparser (errors included)."""

    def run(fast: bool) -> ParsedFeed | str:
        try:
            return parse_feed(body, FEED_URL, headers or {}, now, fast_path=fast)
        except ParseError as exc:
            return str(exc)

    assert run(True) == run(False)


def accepted(body: bytes, headers: dict[str, str] | None = None) -> bool:
    prepared = prepare_xml(body, headers or {}, MAX_ENTRIES)
    return prepared.well_formed and read_fast(prepared.data, FEED_URL, None) is not None


def bench_feed() -> bytes:
    """The bytes benchmarks/feedserver.py serves for one feed of 20 entries."""
    dates = [1_764_000_000.0 - k * 3600 for k in range(20)]
    return render_feed("http://127.42.0.1:8080", 7, 19, 20, dates)


XML_FIXTURES = sorted(p for p in FEEDS.iterdir() if p.suffix in (".rss", ".rdf", ".atom", ".xml"))
COMMON = ["rss20_full.rss", "rss20_agency.rss", "rss091.rss", "atom10_plain.atom"]


@pytest.mark.parametrize("path", XML_FIXTURES, ids=lambda p: p.name)
@pytest.mark.parametrize("now", [None, NOW], ids=["no-now", "now"])
def test_every_fixture_reads_the_same_both_ways(path: Path, now: datetime | None) -> None:
    both(path.read_bytes(), now=now)


def test_the_common_fixtures_and_the_benchmark_feed_take_the_fast_path() -> None:
    assert {p.name for p in XML_FIXTURES} >= set(COMMON)
    for name in COMMON:
        assert accepted((FEEDS / name).read_bytes()), name
    assert accepted(bench_feed())
    both(bench_feed())


EDGE_DOCUMENTS = {
    "utf16-bom": codecs.BOM_UTF16_LE + rss(item("Ψ", guid="g")).decode().replace(
        'encoding="utf-8"', 'encoding="utf-16"').encode("utf-16-le"),
    "lying-encoding": rss(item("Café", guid="g")).decode().encode("cp1252"),
    "dtd-stripped": rss(item("x", guid="g"), prolog='<!DOCTYPE rss [<!ENTITY a "b">]>'),
    "capped": rss("".join(item(n, guid=f"g{n}") for n in range(MAX_ENTRIES + 5))),
    "same-guid": rss("".join(item(n, guid="same", link=f"/p/{n}") for n in range(5))),
    "empty": rss(""),
    "control-chars": rss(item("a\x00b\x01c\x7f\x85\x92", guid="g\x02", description="x\x9dy")),
    "podcast": rss(
        "".join(f'<item><title>E{n}</title><guid>e{n}</guid><link>/</link>'
                f'<enclosure url="/e{n}.mp3" length="{n}00" type="Audio/MPEG"/>'
                f'<atom:link rel="enclosure" href="https:///x.example/e{n}.ogg" length="7"/>'
                f'<itunes:duration>{n}:05</itunes:duration><media:group>'
                f'<media:content url="/e{n}.mp3" fileSize="1" duration="9"/>'
                f'<media:content url="/e{n}.mp4" type="video/mp4" duration="{n}"/></media:group>'
                "</item>" for n in range(3)),
    ).replace(b'<rss version="2.0">', b'<rss version="2.0" '
              b'xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd" '
              b'xmlns:media="http://search.yahoo.com/mrss/" '
              b'xmlns:atom="http://www.w3.org/2005/Atom">'),
}


@pytest.mark.parametrize("name", EDGE_DOCUMENTS)
def test_edge_documents_read_the_same_and_are_accepted(name: str) -> None:
    both(EDGE_DOCUMENTS[name])
    assert accepted(EDGE_DOCUMENTS[name])


def rss_with(ns: str, items: str) -> bytes:
    """rss() with namespaces declared on the root, where the fast path expects them."""
    return rss(items).replace(b'<rss version="2.0">', f'<rss version="2.0" {ns}>'.encode())


def atom(entries: str, head: str = "", ns: str = "") -> bytes:
    return (
        f'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"{ns}>'
        f"<title>A</title>{head}{entries}</feed>"
    ).encode()


DECLINED = {
    "xml-base": rss(item(1, guid="g").replace("<item>", '<item><link xml:base="/b/">x</link>')),
    "xhtml-content": atom(
        '<entry><id>1</id><content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">'
        "<p>x</p></div></content></entry>"
    ),
    "base64-summary": atom('<entry><id>1</id><summary type="image/png">eA==</summary></entry>'),
    "content-src": atom('<entry><id>1</id><content src="/x" type="text/html"/></entry>'),
    "two-titles": rss("<item><title>a</title><title>b</title></item>"),
    "media-title": rss_with(
        'xmlns:media="http://search.yahoo.com/mrss/"', "<item><media:title>m</media:title></item>"
    ),
    "namespace-below-root": rss('<item xmlns:dc="http://purl.org/dc/elements/1.1/"><title>x'
                                "</title><dc:creator>A</dc:creator></item>"),
    "rss10": (FEEDS / "rss10.rdf").read_bytes(),
    "atom03": (FEEDS / "atom03.atom").read_bytes(),
    "undeclared-entity": rss(item("a&nbsp;b", guid="g")),
    "bare-date": rss("<item><title>x</title><date>2021-01-01</date></item>"),
    "item-rdf-about": rss_with('xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"',
                               '<item rdf:about="https://x.org/1"><title>x</title></item>'),
    "one-namespace-two-prefixes": rss_with('xmlns:a="urn:u" xmlns:b="urn:u"',
                                           "<item><a:x>1</a:x></item>"),
    "prefix-dc-for-another-known-namespace": rss_with(
        'xmlns:dc="http://purl.org/rss/1.0/modules/content/"', "<item><dc:x>1</dc:x></item>"
    ),
    "xlink-declared": rss_with('xmlns:xl="http://www.w3.org/1999/xlink"', item(1, guid="g")),
    "person-without-name": atom("<entry><id>1</id><author><email>a@b.org</email></author></entry>"),
    "mixed-authors": atom(
        "<entry><id>1</id><author>a@b.org (Ann)</author><author><name>Bob</name></author></entry>"
    ),
    "ttl-with-attribute": rss("", head='<ttl unit="min">5</ttl>'),
    "namespaced-attribute": rss_with(
        'xmlns:a="urn:a"',
        '<item><guid a:isPermaLink="false" isPermaLink="true">https://x.org/</guid></item>',
    ),
    "base-in-unknown-namespace": rss_with(
        'xmlns:x="urn:x"', '<item><x:foo x:BASE="/b">t</x:foo><link>p</link></item>'
    ),
    "truncated": rss(item(1, guid="g") + item(2, guid="h"))[:-20],
}


@pytest.mark.parametrize("name", DECLINED)
def test_constructs_not_reproduced_are_declined_and_still_parsed(name: str) -> None:
    body = DECLINED[name]
    assert not accepted(body)
    both(body)


WELL_FORMEDNESS = {
    "xmlns-prefix-declared": 'xmlns:xmlns="urn:x"',
    "prefix-bound-to-xmlns-uri": 'xmlns:p="http://www.w3.org/2000/xmlns/"',
    "prefix-bound-to-xml-uri": 'xmlns:p="http://www.w3.org/XML/1998/namespace"',
    "xml-prefix-declared-rightly": 'xmlns:xml="http://www.w3.org/XML/1998/namespace"',
    "relative-namespace-uri": 'xmlns:r="relative"',
    "empty-prefixed-namespace": 'xmlns:e=""',
}
NAMES = ["<:a>x</:a>", "<a:>x</a:>", "<ünï>x</ünï>", "<a\u0300b>x</a\u0300b>",
         "<a\U00010000>x</a\U00010000>", "<r:x>1</r:x>", "<t>a&#xFFFE;</t>", "<t>&#x85;&#x92;</t>"]


@pytest.mark.parametrize("declaration", WELL_FORMEDNESS.values(), ids=list(WELL_FORMEDNESS))
@pytest.mark.parametrize("element", NAMES)
def test_lxml_and_expat_agree_on_what_is_well_formed(declaration: str, element: str) -> None:
    """Where feedparser's expat (namespace mode) fails and falls back, lxml must fail too."""
    both(rss_with(declaration, f"<item><title>x</title>{element}</item>"))


def test_declining_is_cheap() -> None:
    """A document declined at its last element costs one lxml parse, not a feedparser run."""
    body = rss("".join(item(n, guid=f"g{n}") for n in range(200)) + "<item><date>x</date></item>")
    data = prepare_xml(body, {}, MAX_ENTRIES).data
    started = time.process_time()
    for _ in range(20):
        assert read_fast(data, FEED_URL, None) is None
    declined = (time.process_time() - started) / 20
    started = time.process_time()
    parse_feed(body, FEED_URL, {}, fast_path=False)
    assert declined < (time.process_time() - started) / 3


BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY a "aaaaaaaaaa">'
    + "".join(f'<!ENTITY {chr(98 + k)} "{("&" + chr(97 + k) + ";") * 10}">' for k in range(9))
    + ']><rss version="2.0"><channel><title>&j;</title></channel></rss>'
)


def test_lxml_expands_no_entity_even_without_xmlsafety() -> None:
    """Defence in depth: read_fast never sees a DTD, but its parser would not expand one."""
    started = time.perf_counter()
    assert read_fast(BILLION_LAUGHS.encode(), FEED_URL, None) is None
    assert time.perf_counter() - started < 1


def test_lxml_reads_no_file_and_fetches_no_url(tmp_path: Path, http_server: TestServer) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-31415")
    http_server.route("/evil.dtd", body=b'<!ENTITY x "FETCHED">')
    for prolog in (
        f'<!DOCTYPE rss [<!ENTITY x SYSTEM "file://{secret}">]>',
        f'<!DOCTYPE rss SYSTEM "{http_server.url("/evil.dtd")}">',
        f'<!DOCTYPE rss [<!ENTITY % p SYSTEM "{http_server.url("/evil.dtd")}"> %p;]>',
    ):
        body = f'<?xml version="1.0"?>{prolog}<rss version="2.0"><channel><title>&x;</title>'
        result = read_fast(f"{body}</channel></rss>".encode(), FEED_URL, None)
        assert "TOP-SECRET" not in repr(result) and "FETCHED" not in repr(result)
    assert http_server.hits("/evil.dtd") == 0


def test_tables_match_the_installed_feedparser() -> None:
    """What the fast path copies from feedparser by hand, checked against feedparser itself."""
    assert feedparser.html._cp1252 == fastrules.CP1252
    assert fastrules.EMAIL.pattern in inspect.getsource(_FeedParserMixin._sync_author_detail)
    tables = set(fastfeed._FEED) | set(fastfeed._ENTRY)
    # each reproduced handler still exists (ttl and itunes:duration have none: their text is kept
    # under their name, as for any unknown element)
    assert tables - {"ttl", "itunes_duration"} <= fastrules.HANDLED
    assert "itunes_duration" not in fastrules.HANDLED
    read = {"id", "link", "title", "summary", "content", "authors", "author", "published",
            "updated", "published_parsed", "updated_parsed", "ttl"}  # by feeds._entry
    keymap = FeedParserDict.keymap.items()
    aliases = {k for k, v in keymap if read & set(v if isinstance(v, list) else [v])}
    assert read | aliases <= fastrules.DANGER


@given(st.text(max_size=30))
def test_uri_fix_is_feedparsers_join_with_an_empty_base(uri: str) -> None:
    assert fastrules.fix_uri(uri) == feedparser.urls._urljoin("", uri)


# ---------------------------------------------------------------- generated documents

TEXT_PIECES = [
    "Budget", " passed ", "  ", "\n\t", "\r\n", "&amp;", "&lt;b&gt;bold&lt;/b&gt;", "&lt;p&gt;",
    "&quot;", "&apos;", "&#233;", "&#x2014;", "&#128;", "&#x92;", "&#x9d;", "&#133;", "&#160;",
    "<![CDATA[<p>a & b</p>]]>", "<![CDATA[]]>", "<![CDATA[  ]]>", "<!-- note -->", "<?pi x?>",
    "é", "Ψ", "中文", "😀", "Ã©", "â€™", "\u00a0", "\u2028", "\x85", "\x92", "\x01", "&amp;amp;",
    "&amp;nbsp;", "&amp;mdash;", "a@example.com", "(Name)", "&lt;&gt;", "http:///x",
    "&#xD800;", "&#x110000;", "&#xD83D;&#xDE00;", "&#1;", "&#xFFFE;",  # repaired by xmltext
]  # fmt: skip
LINKS = [
    "https://example.com/a?x=1&amp;y=2", "/relative/path", "relative", "http:///triple/slash",
    "HTTPS://Example.COM/Ä", "  https://padded.example/x  ", "javascript:alert(1)", "",
    "https://ex.com/a&amp;amp;b", "https://ex.com/q?a=1&amp;b;=2", "mailto:a@b.c",
    "//proto.example/x", "ftp://ex.com/f", "https://ex.com/%E2%82%AC", "\n https://ex.com/nl \n",
    "https://ex.com/\x85", "https://ex.com/Ã©", "tag:ex.com,2021:1", "urn:uuid:1",
]  # fmt: skip
DATES = [
    "Tue, 20 Apr 2021 17:05:00 +0600", "Tue, 20 Apr 2021 17:05:00 GMT", "20 Apr 2021 17:05 EST",
    "2021-04-20T17:05:00Z", "2021-04-20T17:05:00+06:00", "2021-04-20", "2021-04-20 17:05:00",
    "Tuesday, April 20, 2021", "Tue Apr 20 17:05:00 2021", "2021-04-20T17:05:00.123-03:30",
    "20210420T170500Z", "garbage", "", "  Tue, 20 Apr 2021 17:05:00 +0600  ", "Tue, 45 Foo 2021",
    "Fri, 01 Jan 2100 00:00:00 GMT", "Wed, 26 Nov 2025 11:00:00 +0000", "2004년 05월 28일 01:31:15",
    "Sun, 31 Dec 9999 23:59:59 +1400", "Mon, 1 Jan 0001 00:00:00 -1200", "2021-W16-2", "1618938300",
    "Tue, 20 Apr 21 17:05:00 +0600", "2021-04-20T17:05:00+0600", "20 Apr 2021", "Apr 2021",
]  # fmt: skip
AUTHORS = [
    "Jane Roe", "jane@example.com (Jane Roe)", "jane@example.com", "Jane &lt;jane@example.com&gt;",
    "(Editor) x@y.org", "", "  ", "Ann &amp; Bob", "Ã‰ditions", "a@b.co (A (B))",
    "a" * 600, "x@y.org (" + "b." * 400 + ")", "<![CDATA[" + "c" * 700 + "]]>",  # cut at 500
]  # fmt: skip
NAMESPACES = {
    "dc": "http://purl.org/dc/elements/1.1/",
    "dcterms": "http://purl.org/dc/terms/",
    "content": "http://purl.org/rss/1.0/modules/content/",
    "atom": "http://www.w3.org/2005/Atom",
    "media": "http://search.yahoo.com/mrss/",
    "yandex": "http://news.yandex.ru",
    "x": "urn:example:extension",
}
SAFE_GENERIC = ["yandex:full-text", "yandex:genre", "x:foo", "x:videoId", "x:parsed", "comments"]
RISKY_GENERIC = ["date", "x:link", "x:date", "ttl", "link", "x:title", "name", "x:author"]

texts = st.lists(
    st.one_of(st.sampled_from(TEXT_PIECES), st.text(max_size=6).map(escape)), max_size=6
).map("".join)
links = st.one_of(st.sampled_from(LINKS), st.text(max_size=12).map(escape))
hrefs = st.one_of(st.sampled_from(LINKS), st.text(max_size=12)).map(
    lambda s: quoteattr(s.replace("&amp;", "&"))
)
dates = st.one_of(st.sampled_from(DATES), st.text(max_size=20).map(escape))
guids = st.sampled_from(["g1", "g2", "https://example.com/p/1", "/p/2", "http:///p/3", " g4 "])
lang = st.sampled_from(["", "", ' xml:lang="en"'])


def el(tag: str, text: str, attrs: str = "") -> str:
    return f"<{tag}{attrs}>{text}</{tag}>"


@dataclass(frozen=True)
class Doc:
    body: bytes
    headers: dict[str, str]
    plain: bool  # made only of constructs the fast path must accept


@st.composite
def encoded(draw: st.DrawFn, xml: str, plain: bool) -> Doc:
    """The document in one of the encodings feeds arrive in, with matching or lying labels."""
    kind = draw(st.sampled_from(["utf-8", "utf-8", "utf-16", "cp1252-lying", "header"]))
    decl = '<?xml version="1.0" encoding="utf-8"?>\n'
    if kind == "utf-16":
        body = codecs.BOM_UTF16_LE + (decl.replace("utf-8", "utf-16") + xml).encode("utf-16-le")
    elif kind == "cp1252-lying":
        body = (decl + xml).encode("cp1252", "xmlcharrefreplace")
    else:
        body = (decl + xml).encode()
    headers = {"content-type": "application/rss+xml; charset=utf-8"} if kind == "header" else {}
    return Doc(body, headers, plain)


@st.composite
def rss_items(draw: st.DrawFn, plain: bool) -> str:
    permalink = st.sampled_from(
        ["", ' isPermaLink="false"', ' isPermaLink="true"', ' isPermaLink="True"']
    )
    once = [
        draw(st.sampled_from(["", el("title", draw(texts), draw(lang))])),
        draw(st.sampled_from(["", el("guid", draw(guids), draw(permalink))])),
        draw(st.sampled_from(["", el("description", draw(texts))])),
    ]
    many = st.one_of(
        links.map(lambda s: el("link", s)),
        st.tuples(st.sampled_from(["self", "alternate", "enclosure", None]), hrefs,
                  st.sampled_from(["", ' type="text/html"', ' type="application/rss+xml"',
                                   ' type="HTML"'])).map(
            lambda t: f"<atom:link{f' rel={quoteattr(t[0])}' if t[0] else ''} href={t[1]}{t[2]}/>"
        ),
        texts.map(lambda s: el("content:encoded", s)),
        st.one_of(st.sampled_from(AUTHORS), texts).map(lambda s: el("author", s)),
        st.sampled_from(AUTHORS).map(lambda s: el("dc:creator", s)),
        st.tuples(st.sampled_from(["pubDate", "dc:date", "dcterms:modified", "dcterms:issued"]),
                  dates).map(lambda t: el(*t)),
        texts.map(lambda s: el("category", s, ' domain="d"')),
        links.map(lambda s: el("comments", s)),
        hrefs.map(lambda h: f'<enclosure url={h} length="1" type="image/jpeg"/>'),
        texts.map(lambda s: el("source", s, ' url="https://src.example/"')),
        hrefs.map(lambda h: f"<media:content url={h}><media:thumbnail url={h}/>"
                            "<media:credit>c</media:credit></media:content>"),
        st.tuples(st.sampled_from(SAFE_GENERIC), texts).map(lambda t: el(*t)),
        st.tuples(st.sampled_from(["PubDate", "PUBDATE", "Link", "Category"]), texts).map(
            lambda t: el(*t)),
        texts.map(lambda s: el("x:foo", s, ' a="1" x:b="2"')),
    )  # fmt: skip
    tricky = st.one_of(
        texts.map(lambda s: el("title", s)),
        texts.map(lambda s: el("atom:title", s)),
        texts.map(lambda s: el("description", s, ' type="base64"')),
        st.sampled_from([
            '<guid x:isPermaLink="false">https://x.org/</guid>', '<title x:base="/b">t</title>',
            '<category x:base="/b">c</category>', '<link x:rel="self">/l</link>',
            '<item><title>nested item</title></item>', '<guid ISPERMALINK="false">/g</guid>',
        ]),
        st.tuples(st.sampled_from(RISKY_GENERIC), texts).map(lambda t: el(*t)),
        texts.map(lambda s: el("media:title", s)),
        texts.map(lambda s: el("link", s, ' xml:base="https://base.example/"')),
        st.just('<author><name>N</name><email>n@x.org</email></author>'),
        st.just('<dc:creator xmlns:dc="http://purl.org/dc/elements/1.1/">Nested</dc:creator>'),
        hrefs.map(lambda h: f"<link href={h}/>"),
        texts.map(lambda s: el("content:encoded", f"<b>{s}</b>")),
    )
    children = [c for c in once if c] + draw(st.lists(many, max_size=6))
    if not plain:
        children += draw(st.lists(tricky, min_size=1, max_size=2))
    return "<item>" + "".join(draw(st.permutations(children))) + "</item>"


@st.composite
def rss_documents(draw: st.DrawFn) -> Doc:
    plain = draw(st.booleans())
    head = [
        draw(st.sampled_from(["", el("title", draw(texts))])),
        draw(st.sampled_from(["", el("link", draw(links))])),
        '<atom:link rel="self" href="https://example.com/feed.xml" type="application/rss+xml"/>',
        draw(st.sampled_from(["", el("ttl", draw(st.sampled_from(
            ["60", " 30 ", "-5", "soon", "1e3", "６０", "0", "99999999"])))])),
        draw(st.sampled_from(["", "<image><url>/logo.png</url><title>Logo</title>"
                                  "<link>https://example.com/</link></image>"])),
        el("description", draw(texts)), el("lastBuildDate", draw(dates)),
        draw(st.sampled_from(["", "<textInput><title>t</title><name>q</name>"
                                  "<link>/search</link><description>d</description></textInput>"])),
    ]  # fmt: skip
    items = draw(st.lists(rss_items(plain), max_size=5))
    channel = "".join(draw(st.permutations([h for h in head if h] + items)))
    declarations = "".join(f' xmlns:{p}="{uri}"' for p, uri in NAMESPACES.items())
    odd_uri = st.sampled_from(["", ' xmlns:w="&#x85;urn:w"', ' xmlns:w="urn:&#x2028;w"'])
    declarations += draw(odd_uri)  # whitespace referenced in a namespace URI: squeezed
    xml = f'<rss version="2.0"{declarations}><channel>{channel}</channel></rss>'
    return draw(encoded(xml, plain))


@st.composite
def atom_entries(draw: st.DrawFn, plain: bool) -> str:
    types = st.sampled_from(["", ' type="text"', ' type="html"', ' type="HTML"'])
    person = st.tuples(
        st.sampled_from(["Ann", "Bob", " Çelik ", "Ã‰ric", "x@y.org (Z)", "Caf\x92 \x85"]),
        st.sampled_from(["", "<email>a@b.org</email>", "<uri>/me</uri>"]),
    ).map(lambda t: f"<author>{t[1]}<name>{t[0]}</name></author>")
    once = [
        draw(st.sampled_from(["", el("title", draw(texts), draw(types))])),
        draw(st.sampled_from(["", el("id", draw(st.one_of(guids, links)))])),
        draw(st.sampled_from(["", el("summary", draw(texts), draw(types))])),
    ]
    many = st.one_of(
        st.tuples(st.sampled_from([None, "alternate", "self", "related", "ALTERNATE"]), hrefs,
                  st.sampled_from(["", ' type="text/html"', ' type="application/xhtml+xml"',
                                   ' type="text/plain"'])).map(
            lambda t: f"<link{f' rel={quoteattr(t[0])}' if t[0] else ''} href={t[1]}{t[2]}/>"
        ),
        st.tuples(texts, types).map(lambda t: el("content", *t)),
        st.tuples(st.sampled_from(["published", "updated", "dc:date"]), dates).map(
            lambda t: el(*t)),
        person,
        st.just('<category term="t" scheme="s" label="l"/>'),
        texts.map(lambda s: el("rights", s)),
        st.just("<contributor><name>C</name></contributor>"),
        st.tuples(st.sampled_from(SAFE_GENERIC), texts).map(lambda t: el(*t)),
    )  # fmt: skip
    tricky = st.one_of(
        texts.map(lambda s: el("title", s)),
        texts.map(lambda s: el("summary", s)),
        st.just('<content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">x</div></content>'),
        st.just('<content src="/x"/>'),
        st.sampled_from(AUTHORS).map(lambda s: el("author", s)),
        st.just("<author><email>e@x.org</email></author>"),
        st.tuples(st.sampled_from(RISKY_GENERIC), texts).map(lambda t: el(*t)),
        texts.map(lambda s: el("link", s)),
        st.just('<source><title>S</title><id>s</id></source>'),
        st.just('<link x:rel="alternate" href="/x"/>'),
        st.just('<link rel="alternate" href="/x" xml:base="/b/"/>'),
    )
    children = [c for c in once if c] + draw(st.lists(many, max_size=6))
    if not plain:
        children += draw(st.lists(tricky, min_size=1, max_size=2))
    attrs = draw(st.sampled_from(["", ' xml:lang="de"']))
    return f"<entry{attrs}>" + "".join(draw(st.permutations(children))) + "</entry>"


@st.composite
def atom_documents(draw: st.DrawFn) -> Doc:
    plain = draw(st.booleans())
    head = [
        draw(st.sampled_from(["", el("title", draw(texts))])),
        draw(st.sampled_from(["", '<link href="https://example.com/"/>',
                              '<link rel="alternate" href="/home"/>'])),
        '<link rel="self" href="https://example.com/feed.atom"/>',
        draw(st.sampled_from(["", el("id", draw(st.one_of(guids, links)))])),
        el("updated", draw(dates)), "<author><name>Feed Author</name></author>",
        '<generator uri="/g" version="1">G</generator>', "<icon>/i.png</icon>",
    ]  # fmt: skip
    entries = draw(st.lists(atom_entries(plain), max_size=5))
    body = "".join(draw(st.permutations([h for h in head if h] + entries)))
    declarations = "".join(
        f' xmlns:{p}="{uri}"' for p, uri in NAMESPACES.items() if p in ("dc", "yandex", "x")
    )
    xml = f'<feed xmlns="http://www.w3.org/2005/Atom"{declarations}>{body}</feed>'
    return draw(encoded(xml, plain))


def check(doc: Doc, now: datetime | None) -> None:
    if doc.plain:
        assert accepted(doc.body, doc.headers), doc.body.decode("utf-8", "replace")
    if accepted(doc.body, doc.headers):
        both(doc.body, doc.headers, now)


GENERATED = settings(
    max_examples=250, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@GENERATED
@given(rss_documents(), st.sampled_from([None, NOW]))
def test_generated_rss_reads_the_same_both_ways(doc: Doc, now: datetime | None) -> None:
    check(doc, now)


@GENERATED
@given(atom_documents(), st.sampled_from([None, NOW]))
def test_generated_atom_reads_the_same_both_ways(doc: Doc, now: datetime | None) -> None:
    check(doc, now)
