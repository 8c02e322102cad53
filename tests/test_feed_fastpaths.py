"""The parse's shortcuts (issue 14) give what the plain code they spare gives, on any text.

Each shortcut is checked against the slow form it replaces, kept here verbatim as the oracle,
on hand-picked traps and on Hypothesis text built from the characters that matter.
"""

from __future__ import annotations

import dataclasses
import email.utils
import re
from datetime import UTC, datetime
from urllib.parse import urljoin, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from aggregator.feeds import feedmodel, xmlsafety, xmltext
from aggregator.feeds.xmltext import (
    bound_people,
    code_point,
    is_xml_char,
    squeeze_namespaces,
    without_illegal_chars,
)
from storage.records import Entry

pytestmark = pytest.mark.timeout(120)

# ------------------------------------------------------------ the slow forms, as they were

_ILLEGAL_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_OLD_XMLNS = re.compile(r"""(\sxmlns(?::[\w.-]+)?\s*=\s*)(["'])(.*?)\2""", re.DOTALL)
_CHAR_REF = re.compile(r"&#([xX][0-9A-Fa-f]+|[0-9]+);")


def _unless_space(match: re.Match[str]) -> str:
    code = code_point(match.group(1))
    return "" if code is not None and is_xml_char(code) and chr(code).isspace() else match.group(0)


def _old_squeeze(match: re.Match[str]) -> str:
    value = match.group(3)
    if "&#" in value:
        value = _CHAR_REF.sub(_unless_space, value)
    if not any(c.isspace() for c in value) and value == match.group(3):
        return match.group(0)
    return f"{match.group(1)}{match.group(2)}{''.join(value.split())}{match.group(2)}"


def old_squeeze_namespaces(text: str) -> str:
    return _OLD_XMLNS.sub(_old_squeeze, text)


# ------------------------------------------------------------ text made of what matters

_PIECES = [
    "xmlns", "xmlns:dc", " xmlns", "\txmlns:a", "=", " = ", '"', "'", "http://a b/", "&#x20;",
    "&#32;", "&#x85;", "&#xD800;", "\u0085", "\u3000", "x", "<", ">", "<author>", "</author>",
    "<dc:Creator a='1'>", "</dc:Creator>", "<![CDATA[", "]]>", "<!--", "-->", "\x00", "\x08",
    "\t", "\n", "\x1f", "\x7f", "\ud800", "\udfff", "\ufffe", "\uffff", "\ud55c", "\ud7a3",
    "é", "€", "\U0001f600", "<publi\u017fher>", "<URI>", "<ur\u0131>", "<NAME>", "a" * 300,
]  # fmt: skip
texts = st.lists(st.sampled_from(_PIECES) | st.text(max_size=5), max_size=40).map("".join)


@given(texts)
@settings(max_examples=400, deadline=None)
def test_without_illegal_chars_is_the_regex(text: str) -> None:
    assert without_illegal_chars(text) == _ILLEGAL_XML.sub("", text)


@pytest.mark.parametrize(
    "text",
    ["", "plain", "\x00", "a\x0bb", "tab\tnl\nok\r", "\ud800", "\ufffe", "\uffff", "\ud55c",
     "\ud7ff\ue000", "€\x1f", "\U0010ffff"],
)  # fmt: skip
def test_without_illegal_chars_cases(text: str) -> None:
    assert without_illegal_chars(text) == _ILLEGAL_XML.sub("", text)


@given(texts)
@settings(max_examples=400, deadline=None)
def test_squeeze_namespaces_is_the_regex(text: str) -> None:
    assert squeeze_namespaces(text) == old_squeeze_namespaces(text)


@pytest.mark.parametrize(
    "text",
    [
        '<rss xmlns:a="http://x y/">',
        "xmlns='a b' at the start, then <a xmlns='c d'>",
        '<a\txmlns:dc = "ur n:&#x20;x" axmlns="p q" xmlns="r&#32;s">',
        '<a xmlns="unclosed',
        '<a bxmlns="swallows  xmlns=\'x y\'" xmlns="z w">',
        '<a xmlns="no spaces" xmlns:b="&#x41;">',
    ],
)
def test_squeeze_namespaces_cases(text: str) -> None:
    assert squeeze_namespaces(text) == old_squeeze_namespaces(text)


def test_person_guard_reads_case_as_ignorecase_does() -> None:
    """Every character that IGNORECASE matches to a letter of a person field's name is in the
    guard's class for that letter, and no other."""
    letters = set("".join(xmltext._PERSON_NAMES))
    any_letter = re.compile("[a-z]", re.IGNORECASE)
    folding = [chr(c) for c in range(0x110000) if any_letter.fullmatch(chr(c))]
    for letter in letters:
        wanted = {c for c in folding if re.fullmatch(letter, c, re.IGNORECASE)}
        assert wanted == set(re.findall(".", xmltext._any_case(letter).strip("[]")))


@given(texts)
@settings(max_examples=400, deadline=None)
def test_person_guard_misses_no_person_field(text: str) -> None:
    starts = [m for m in xmltext._PERSON_START.finditer(text) if m.group(1)]
    if starts:
        assert xmltext._ANY_PERSON.search(text) is not None


@given(texts)
@settings(max_examples=200, deadline=None)
def test_bound_people_with_a_small_limit(text: str) -> None:
    """A small limit makes cuts common: the guard must never skip one."""
    guard = xmltext._ANY_PERSON
    try:
        xmltext._ANY_PERSON = re.compile("")  # always "maybe": the scan always runs
        slow = bound_people(text, limit=3)
    finally:
        xmltext._ANY_PERSON = guard
    assert bound_people(text, limit=3) == slow


# ------------------------------------------------------------ feedmodel: text, links, dates

_OLD_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffe\uffff]")
_OLD_SPACE = re.compile(r"\s+")
BASE = "https://example.org/feeds/a.xml"


def old_clean_text(value: object, limit: int | None = None) -> str | None:
    if not isinstance(value, str):
        return None
    text = _OLD_CONTROL.sub("", value)
    if limit is not None:
        text = _OLD_SPACE.sub(" ", text).strip()[:limit]
        if len(text) * 4 > limit and len(encoded := text.encode("utf-8", "surrogatepass")) > limit:
            text = encoded[:limit].decode("utf-8", "ignore")
    return text if text.strip() else None


def old_clean_link(value: object, base: str) -> str | None:
    text = old_clean_text(value, feedmodel.MAX_SHORT)
    if text is None:
        return None
    try:
        link = urljoin(base, text.strip())
        scheme = urlsplit(link).scheme
    except ValueError:
        return None
    return link if scheme in ("http", "https") else None


def old_from_text(text: str) -> datetime | None:
    text = text.strip()
    value: datetime | None = None
    try:
        value = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        try:
            value = datetime.fromisoformat(text.replace("z", "Z"))
        except ValueError:
            return None
    if value.tzinfo is None or value.utcoffset() is None:
        value = value.replace(tzinfo=UTC)
    return value


_SPACES = ["", " ", "  ", "\t", "\n", "\r\n", "\x0b", "\x1c", "\x85", "\xa0", "\u2028", "\u3000"]
_TEXT_BITS = [*_SPACES, "a", "word", "é", "\x00", "\x7f", "\x9f", "\ufffe", "\ud800", "x" * 30]
spaced = st.lists(st.sampled_from(_TEXT_BITS) | st.text(max_size=4), max_size=30).map("".join)


@given(spaced, st.sampled_from([None, 1, 5, 40, 2000]))
@settings(max_examples=500, deadline=None)
def test_clean_text_is_the_old_one(text: str, limit: int | None) -> None:
    assert feedmodel.clean_text(text, limit) == old_clean_text(text, limit)


url_like = st.from_regex(feedmodel._PLAIN_LINK, fullmatch=True)
links = st.lists(
    st.sampled_from(["http://", "https://", "HTTP://", "ftp://", "//", "a", ".", "/", "?", "#",
                     ";", ":", "@", "[", "]", "%20", " ", "\t", "é", "..", "80", "x=1&y=2"]),
    max_size=12,
).map("".join)  # fmt: skip


@given(url_like | links, st.sampled_from([BASE, "http://h/", "", "https://a.b/c?d#e"]))
@settings(max_examples=1000, deadline=None)
def test_clean_link_is_the_old_one(link: str, base: str) -> None:
    assert feedmodel.clean_link(link, base) == old_clean_link(link, base)


def _pick(*values: str) -> st.SearchStrategy[str]:
    return st.sampled_from(values)


rfc822_like = st.tuples(
    _pick("", "Mon, ", "Sun, ", "Xyz, ", "mon, "),
    _pick("1", "07", "31", "00", "32", "9"),
    _pick("Jan", "Feb", "Dec", "dec", "Foo"),
    _pick("2026", "1999", "1000", "0099", "9999"),
    _pick("00:00:00", "10:43:01", "23:59:60", "24:00:00", "12:60:00", "1:02:03", "10:43"),
    _pick("GMT", "UT", "UTC", "Z", "+0000", "-0000", "+0530", "-0930", "+0099", "+2359",
          "+2400", "-2400", "EST", "gmt", "+05"),
).map(lambda p: f"{p[0]}{p[1]} {p[2]} {p[3]} {p[4]} {p[5]}")  # fmt: skip


_DATE_BITS = [
    "2026", "-12", "-07", "T", "t", "10:43:01", ".5", "Z", "z", "+02:00", "-0000", ",", "Mon",
    "Dec", "07", "GMT", " ", "\t", "\xa0", "\u3000", "\x1c", "\n", "x",
]  # fmt: skip
date_words = st.lists(st.sampled_from(_DATE_BITS), max_size=10).map("".join)


@given(rfc822_like | date_words)
@settings(max_examples=1500, deadline=None)
def test_dates_read_as_email_utils_reads_them(text: str) -> None:
    assert repr(feedmodel._from_text(text)) == repr(old_from_text(text))


# ------------------------------------------------------------ xmlsafety: the entry cap

_XML_BITS = [
    "<rss>", "</rss>", "<channel>", "</channel>", "<item>", "</item>", "<a:entry>", "</a:entry>",
    "<entry/>", "<x>", "</x>", "<t>text</t>", "&amp;", "&bad;", "<", ">", "<!-- c -->",
    "<![CDATA[<item>]]>", "<?pi x?>", "é", "\x00",
]  # fmt: skip
xml_docs = st.lists(st.sampled_from(_XML_BITS), max_size=30).map(lambda bits: "".join(bits))


@given(xml_docs, st.integers(min_value=0, max_value=6))
@settings(max_examples=1000, deadline=None)
def test_check_only_is_the_handler_scan(doc: str, max_entries: int) -> None:
    """Where cap_entries takes the shortcut (no more "<" than either limit), it gives what the
    element-by-element scan gives."""
    data = b'<?xml version="1.0" encoding="utf-8"?>\n' + doc.encode("utf-8")
    if data.count(b"<") <= min(xmlsafety.MAX_DEPTH, max_entries):
        assert xmlsafety._check_only(data, max_entries) == xmlsafety._cap_scan(data, max_entries)
    try:
        scanned = xmlsafety._cap_scan(data, max_entries)
    except xmlsafety.UnsafeXml:
        return
    assert xmlsafety.cap_entries(data, max_entries) == scanned


# ------------------------------------------------------------ fastfeed: namespaces below the root

_NS_BITS = [
    "<a>", "</a>", '<b xmlns:p="urn:p">', "</b>", '<c xmlns="urn:c">', "</c>", "xmlns", "t",
    '<d x="xmlns">', "</d>", "<p:e>", "</p:e>", '<f xmlns:q="urn:q" xmlns:r="urn:r">', "</f>",
]  # fmt: skip
_ROOTS = [
    "<rss>", '<rss xmlns:p="urn:p">', '<rss xmlns="urn:d" xmlns:p="urn:p">',
    '<rss xmlns:p="urn:p" title="xmlns">', '<rss xmlns:xml="http://www.w3.org/XML/1998/namespace">',
]  # fmt: skip


@given(st.sampled_from(_ROOTS), st.lists(st.sampled_from(_NS_BITS), max_size=12))
@settings(max_examples=1000, deadline=None)
def test_xmlns_count_proves_no_declaration_below_the_root(root: str, bits: list[str]) -> None:
    """read_fast skips the per-element namespace check when the bytes hold no more "xmlns" than
    the root declares: then no element below the root may declare one."""
    data = f"{root}{''.join(bits)}</rss>".encode()
    try:
        tree = etree.fromstring(data, xmlsafety.hardened_parser())
    except etree.XMLSyntaxError:
        return
    if data.count(b"xmlns") <= len(tree.nsmap):
        assert all(el.nsmap == tree.nsmap for el in tree.iter())


def test_keyed_is_replace() -> None:
    """Every field but the key is copied, whatever Entry's fields become."""
    values = {f.name: f"value of {f.name}" for f in dataclasses.fields(Entry)}
    entry = Entry(**values)  # type: ignore[arg-type]  # any distinct values will do
    assert feedmodel.keyed(entry, "new") == dataclasses.replace(entry, key="new")


@given(rfc822_like | spaced, st.sampled_from([None, datetime(2026, 1, 1, tzinfo=UTC)]))
@settings(max_examples=300, deadline=None)
def test_date_from_text_is_parse_date(text: str, now: datetime | None) -> None:
    expected = feedmodel.parse_date(feedmodel.RawDate(text), now)
    assert repr(feedmodel.date_from_text(text, now)) == repr(expected)


def test_no_enclosures_whatever_the_duration() -> None:
    """entry_of skips enclosures_of when an entry has none: a duration alone makes none."""
    for duration in (None, "3600", "1:02:03", 12):
        assert feedmodel.enclosures_of([], BASE, duration) == ()


@pytest.mark.parametrize(
    "text",
    ["2026-12-07T10:43:01Z", "2026-12-07T10:43:01.5+02:00", "2026-12-07t10:43:01z", "2026-12-07",
     "2026-12-07 10:43:01", "2026-12-07\t10:43:01", "2026-12-07\xa010:43:01", "20261207T104301",
     "Mon,07Dec2026", "07-Dec-26 10:43:01 GMT", "Monday, 07-Dec-26 10:43:01 GMT", " 2026-12-07 "],
)  # fmt: skip
def test_atom_and_odd_dates_read_as_before(text: str) -> None:
    assert repr(feedmodel._from_text(text)) == repr(old_from_text(text))
