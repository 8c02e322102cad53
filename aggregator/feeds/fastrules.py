"""feedparser's readings that the fast path (:mod:`.fastfeed`) copies: text, attributes, names.

What feedparser 6 makes of an element's text (``pop``: joined, ``strip()``-ed, mis-decoded UTF-8
repaired by a latin-1 round trip, C1 characters mapped to their cp1252 meaning; ``link`` and
permalink guids lose extra slashes after ``scheme://``), of its attributes (keyed by the prefix
feedparser knows for their namespace), of its name (``dc_creator``, ``yt_videoid``, …), of a text
author ("mail (Name)") and of a date (``parse_date``, feedparser's own date parser as the
fallback); the entry as feedparser holds it, and how ``feeds`` maps that onto an :class:`Entry`.
Whatever is not reproduced raises :class:`Decline`. tests/test_fastfeed.py checks the tables
copied here against the installed feedparser.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from feedparser.api import StrictFeedParser
from feedparser.datetimes import _parse_date
from lxml import etree

from aggregator.feeds.feedmodel import (
    MAX_SHORT,
    MAX_TITLE,
    RawDate,
    RawEnclosure,
    authors_of,
    clean_link,
    clean_text,
    date_from_text,
    enclosures_of,
    parse_date,
)
from aggregator.feeds.xmltext import MAX_PERSON
from storage.records import Entry

__all__ = ["CP1252", "DANGER", "EMAIL", "GUID_ATTRS", "HANDLED", "HTML_TYPES", "LANG",
           "LINK_ATTRS", "TYPED", "Decline", "ElementNames", "Item", "attributes", "enclosure",
           "entry_of", "fix_uri", "leaf_text", "named_refs", "pop_text", "split_author"]

_XLINK = "http://www.w3.org/1999/xlink"
# feedparser's namespace table, looked up by lower-cased URI, and every name it has a handler for.
_KNOWN: dict[str, str] = {uri.lower(): p for uri, p in StrictFeedParser.namespaces.items()}
_CANONICAL = frozenset(p.lower() for p in _KNOWN.values() if p)
HANDLED = frozenset(
    n.removeprefix("_start_").removeprefix("_end_")
    for n in dir(StrictFeedParser)
    if n.startswith(("_start_", "_end_"))
)
# Keys an element without a handler must not be stored under (feedparser stores its text in the
# entry or feed under its name): fields read here or by the handlers reproduced here, and names
# feedparser's dict maps onto them (guid → id, date → updated, …).
DANGER = frozenset(
    {
        "id", "guid", "link", "links", "title", "summary", "description", "content", "author",
        "authors", "author_detail", "contributors", "published", "issued", "updated", "date",
        "modified", "published_parsed", "issued_parsed", "updated_parsed", "date_parsed",
        "modified_parsed", "ttl", "tags", "image", "textinput", "source", "cloud",
        "generator_detail", "publisher", "publishers", "publisher_detail", "media_content",
        "media_thumbnail", "media_credit", "name", "href", "url", "guidislink",
    }
)
LANG = frozenset({"xml:lang", "lang"})
TYPED = LANG | {"type"}
GUID_ATTRS = LANG | {"ispermalink"}
LINK_ATTRS = LANG | {"rel", "type", "href", "hreflang", "title", "length"}
_TEXT_TYPES = frozenset({"text", "plain", "html", "text/plain", "text/html"})
HTML_TYPES = frozenset({"html", "text/html", "xhtml", "application/xhtml+xml"})
_EMPTY: dict[str, str] = {}
_URI_FIXER = re.compile("^([A-Za-z][A-Za-z0-9+-.]*://)(/*)(.*?)")  # feedparser.urls._urljoin
_NAMED_REF = re.compile("&([A-Za-z0-9_]+);")
_C1 = re.compile("[\x80-\x9f]")
_UNDEFINED_1252 = b"\x81\x8d\x8f\x90\x9d"  # no cp1252 meaning: feedparser leaves them be
CP1252 = {c: bytes([c]).decode("cp1252") for c in range(0x80, 0xA0) if c not in _UNDEFINED_1252}
EMAIL = re.compile(  # feedparser's, verbatim: it decides what is left of "mail (Name)"
    r"""(([a-zA-Z0-9\_\-\.\+]+)@((\[[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.)|(([a-zA-Z0-9\-]+\.)+))([a-zA-Z]{2,4}|[0-9]{1,3})(\]?))(\?subject=\S+)?"""
)



class Decline(Exception):
    """The document holds something whose feedparser reading is not reproduced here."""



def pop_text(raw: str | None, uri: bool = False) -> str:
    """feedparser's ``pop``: strip, drop extra slashes in URIs, repair UTF-8 read as latin-1,
    read C1 controls as cp1252."""
    text = (raw or "").strip()
    if uri:
        text = fix_uri(text)
    if not text.isascii():
        with contextlib.suppress(UnicodeError):
            text = text.encode("iso-8859-1").decode("utf-8")
        if _C1.search(text):
            text = text.translate(CP1252)
    return text


def fix_uri(uri: str) -> str:
    """feedparser's ``_urljoin`` against its empty base: "http:///x" becomes "http://x"."""
    match = _URI_FIXER.match(uri)
    return match.group(1) + uri[match.end(2) :] if match and match.group(2) else uri


def attributes(el: etree._Element) -> dict[str, str]:
    """Attributes keyed as feedparser keys them: by name, namespaced ones by its prefix for the
    namespace (none for one it does not know) and again by "prefix:name" (here a key that no
    check allows); ``rel`` and ``type`` values lower-cased. Any ``base`` declines."""
    items = el.items()
    if not items:
        return _EMPTY
    keyed: dict[str, str] = {}
    for name, value in items:
        if name[0] != "{":
            keyed[name.lower()] = value
            continue
        ns, _, local = name[1:].partition("}")
        prefix = _KNOWN.get(ns.lower(), "")
        keyed[f"{prefix}:{local}".lower() if prefix else local.lower()] = value
        if prefix != "xml":
            keyed[name] = value
    if "base" in keyed or "xml:base" in keyed:  # xml:base moves feedparser's base URI for good
        raise Decline
    for key in ("rel", "type"):
        if key in keyed:
            keyed[key] = keyed[key].lower()
    return keyed


def leaf_text(el: etree._Element, allowed: frozenset[str] | None = LANG) -> str | None:
    """The text of an element without children, whose attributes are all in ``allowed``."""
    if len(el):
        raise Decline
    attrs = attributes(el)
    if attrs and allowed is not None:
        if not allowed.issuperset(attrs):
            raise Decline
        if allowed is TYPED and attrs.get("type", "text") not in _TEXT_TYPES:
            raise Decline  # xhtml is re-serialized by feedparser, other types may be base64
    text: str | None = el.text
    return text


class ElementNames:
    """feedparser's name for each element (``dc_creator``, ``title``, ``yt_videoid``, …).

    It depends on the namespaces declared, and on their order where a URI has two prefixes or a
    prefix names a known namespace: such documents are declined.
    """

    def __init__(self, root: etree._Element) -> None:
        declared: Mapping[str | None, str] = root.nsmap
        if _XLINK in declared.values():  # feedparser passes xlink declarations as attributes
            raise Decline
        self.remap = {p: _KNOWN[_norm(u)] for p, u in declared.items() if _norm(u) in _KNOWN}
        canonical = set(self.remap.values())
        for prefix, mapped in self.remap.items():  # "dc" bound to another known namespace
            if prefix and prefix.lower() in _CANONICAL and prefix.lower() != mapped.lower():
                raise Decline
        self.unknown: dict[str, str] = {}
        for prefix, uri in declared.items():
            if prefix is None or _norm(uri) in _KNOWN:
                continue
            if uri in self.unknown or prefix in canonical or prefix.lower() in self.remap:
                raise Decline
            self.unknown[uri] = prefix
        self.cache: dict[str, str] = {}

    def __call__(self, tag: object) -> str:
        name: str | None = self.cache.get(tag)  # type: ignore[call-overload]  # non-str: None
        if name is None:
            if not isinstance(tag, str):
                raise Decline
            name = self.cache[tag] = self._name(tag)
        return name

    def _name(self, tag: str) -> str:
        if tag[0] != "{":
            return tag.lower()
        ns, _, local = tag[1:].partition("}")
        prefix = _KNOWN.get(_norm(ns))
        if prefix is None:
            prefix = self.unknown.get(ns)
        if not prefix:
            return local.lower()
        lowered = prefix.lower()
        mapped = self.remap.get(lowered, lowered)
        return f"{mapped}_{local.lower()}" if mapped else local.lower()


def _norm(uri: str) -> str:
    low = uri.lower()
    return "http://backend.userland.com/rss" if "backend.userland.com/rss" in low else low



def named_refs(link: str) -> str:
    """feedparser undoes what it takes for mangled query strings: "?a=1&b;=2" → "?a=1&b=2"."""
    return _NAMED_REF.sub(r"&\1", link) if "&" in link else link


def split_author(author: str) -> str | None:
    """feedparser's ``_sync_author_detail`` for a text author: the name left beside the mail."""
    if not author:
        return None
    # Quadratic on long input: prepare_xml already cut person fields to MAX_PERSON characters.
    match = EMAIL.search(author[: 2 * MAX_PERSON])
    if match:
        email = match.group(0)
        for junk in (email, "()", "<>", "&lt;&gt;"):
            author = author.replace(junk, "")
        author = author.strip()
        if author and author[0] == "(":
            author = author[1:]
        if author and author[-1] == ")":
            author = author[:-1]
        author = author.strip()
    return author or None


def _date(text: str | None, now: datetime | None) -> datetime | None:
    """``parse_date`` with feedparser's reading as the fallback, computed only when needed."""
    if text is None:
        return None
    value = date_from_text(text, now)
    if value is None and text:
        value = parse_date(RawDate(text, _parse_date(text)), now)
    return value


@dataclass(slots=True)
class Item:
    """What feedparser holds for one entry, in the fields ``feeds`` reads."""

    title: str | None = None
    guid: str | None = None
    link: str | None = None
    has_link: bool = False
    summary: str | None = None
    has_summary: bool = False
    contents: list[str] = field(default_factory=list)
    people: list[str | None] = field(default_factory=list)
    author: str | None = None  # feedparser's "author" of a text author: the last one, unsplit
    persons: bool = False
    texts: bool = False
    published: str | None = None
    updated: str | None = None
    enclosures: list[RawEnclosure] = field(default_factory=list)  # enclosure, rel=enclosure
    media: list[RawEnclosure] = field(default_factory=list)  # media:content
    duration: str | None = None  # itunes:duration
    seen: set[str] = field(default_factory=set)

    def once(self, kind: str) -> None:
        """A second title, guid or summary follows feedparser rules not reproduced: decline."""
        if kind in self.seen:
            raise Decline
        self.seen.add(kind)

    def set_link(self, value: str, default: bool = False) -> None:
        if not (default and self.has_link):
            self.link, self.has_link = value, True


def entry_of(item: Item, url: str, now: datetime | None) -> Entry:
    """As ``feeds._entry`` maps feedparser's entry (people, else the unsplit author)."""
    names = item.people if any(item.people) else [item.author]
    return Entry(
        key="",
        guid=clean_text(item.guid, MAX_SHORT),
        url=clean_link(item.link, url),
        title=clean_text(item.title, MAX_TITLE),
        summary=clean_text(item.summary),
        content_html=clean_text(max(item.contents, key=len)) if item.contents else None,
        authors=authors_of(names),
        published=_date(item.published, now),
        updated=_date(item.updated, now),
        enclosures=enclosures_of(item.enclosures + item.media, url, item.duration)
        if item.enclosures or item.media
        else (),
    )


def enclosure(attrs: Mapping[str, str], href: str | None) -> RawEnclosure:
    return RawEnclosure(href or None, attrs.get("type"), attrs.get("length"))
