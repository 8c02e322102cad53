"""A fast path for plain RSS 2.0 and Atom 1.0: lxml reads what feedparser would, or declines.

feedparser's Python handlers cost about 4 ms per 20-entry feed, most of a new feed's parse
(issue 2). Most feeds use a handful of elements whose reading by feedparser 6 (strict parser,
``sanitize_html=False``, ``resolve_relative_uris=False``, which is how ``feeds`` calls it) this
module reproduces exactly, on a tree lxml builds in C. Anything else (another root, an XML or
namespace error, an element or attribute whose reading is not reproduced here) makes
:func:`read_fast` return None, and the caller runs feedparser on the same bytes.

The input is always :func:`aggregator.feeds.xmlsafety.prepare_xml`'s output that expat read whole:
UTF-8, no DTD. lxml resolves no entity, loads no DTD, touches no network and keeps its default
depth and size limits. What feedparser does, and this module copies, per element:

* text: joined, ``strip()``-ed, mis-decoded UTF-8 repaired (latin-1 round trip), C1 characters
  mapped to their cp1252 meaning; ``link`` and permalink guids lose extra slashes after
  ``scheme://``, and entry links turn ``&amp;`` into ``&`` and ``&name;`` into ``&name``;
* one title and one guid/id per entry (a second one follows depth rules: declined); the link is
  the last ``link`` text or ``rel=alternate`` HTML href, else a permalink guid or Atom id;
* summary: the description/summary element, else the first content (content:encoded);
* authors: RSS text ("mail (Name)" split as feedparser splits it), or Atom persons (``name``);
* enclosures: RSS ``enclosure`` and Atom ``link rel=enclosure`` (feedparser's ``enclosures``),
  then ``media:content`` (also in ``media:group``), and the entry's ``itunes:duration``;
* dates: the last element of each kind, read by ``parse_date`` with feedparser's date parser as
  the fallback, as for feedparser's own results;
* ``xml:base`` anywhere, typed (``xhtml``, base64, ``src``) text, an unknown-namespace element
  whose name feedparser would map onto a handler or a field, namespace declarations below the
  root: declined.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Mapping
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
    enclosures_of,
    parse_date,
)
from aggregator.feeds.xmlsafety import hardened_parser
from aggregator.feeds.xmltext import MAX_PERSON
from storage.records import Entry

ATOM_FEED = "{http://www.w3.org/2005/Atom}feed"
_XLINK = "http://www.w3.org/1999/xlink"
# feedparser's namespace table, looked up by lower-cased URI, and every name it has a handler for.
_KNOWN: dict[str, str] = {uri.lower(): p for uri, p in StrictFeedParser.namespaces.items()}
_CANONICAL = frozenset(p.lower() for p in _KNOWN.values() if p)
_HANDLED = frozenset(
    n.removeprefix("_start_").removeprefix("_end_")
    for n in dir(StrictFeedParser)
    if n.startswith(("_start_", "_end_"))
)
# Keys an element without a handler must not be stored under (feedparser stores its text in the
# entry or feed under its name): fields read here or by the handlers reproduced here, and names
# feedparser's dict maps onto them (guid → id, date → updated, …).
_DANGER = frozenset(
    {
        "id", "guid", "link", "links", "title", "summary", "description", "content", "author",
        "authors", "author_detail", "contributors", "published", "issued", "updated", "date",
        "modified", "published_parsed", "issued_parsed", "updated_parsed", "date_parsed",
        "modified_parsed", "ttl", "tags", "image", "textinput", "source", "cloud",
        "generator_detail", "publisher", "publishers", "publisher_detail", "media_content",
        "media_thumbnail", "media_credit", "name", "href", "url", "guidislink",
    }
)
_LANG = frozenset({"xml:lang", "lang"})
_TYPED = _LANG | {"type"}
_GUID_ATTRS = _LANG | {"ispermalink"}
_LINK_ATTRS = _LANG | {"rel", "type", "href", "hreflang", "title", "length"}
_TEXT_TYPES = frozenset({"text", "plain", "html", "text/plain", "text/html"})
_HTML_TYPES = frozenset({"html", "text/html", "xhtml", "application/xhtml+xml"})
_EMPTY: dict[str, str] = {}
_URI_FIXER = re.compile("^([A-Za-z][A-Za-z0-9+-.]*://)(/*)(.*?)")  # feedparser.urls._urljoin
_NAMED_REF = re.compile("&([A-Za-z0-9_]+);")
_C1 = re.compile("[\x80-\x9f]")
_UNDEFINED_1252 = b"\x81\x8d\x8f\x90\x9d"  # no cp1252 meaning: feedparser leaves them be
_CP1252 = {c: bytes([c]).decode("cp1252") for c in range(0x80, 0xA0) if c not in _UNDEFINED_1252}
_EMAIL = re.compile(  # feedparser's, verbatim: it decides what is left of "mail (Name)"
    r"""(([a-zA-Z0-9\_\-\.\+]+)@((\[[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.)|(([a-zA-Z0-9\-]+\.)+))([a-zA-Z]{2,4}|[0-9]{1,3})(\]?))(\?subject=\S+)?"""
)


class _Decline(Exception):
    """The document holds something whose feedparser reading is not reproduced here."""


@dataclass(frozen=True, slots=True)
class FastFeed:
    """Feed-level values as feedparser would hold them (raw), and the finished entries."""

    title: str | None
    link: str | None
    ttl: str | None
    entries: list[Entry]


def read_fast(data: bytes, url: str, now: datetime | None) -> FastFeed | None:
    """Read prepared, well-formed XML exactly as feedparser would, or return None (decline)."""
    parser = hardened_parser()
    try:
        root = etree.fromstring(data, parser)
        if len(parser.error_log):
            return None
        return _Reader(root, url, now).read()
    except (_Decline, etree.LxmlError, ValueError):
        return None


def _text(raw: str | None, uri: bool = False) -> str:
    """feedparser's ``pop``: strip, drop extra slashes in URIs, repair UTF-8 read as latin-1,
    read C1 controls as cp1252."""
    text = (raw or "").strip()
    if uri:
        text = _fix_uri(text)
    if not text.isascii():
        with contextlib.suppress(UnicodeError):
            text = text.encode("iso-8859-1").decode("utf-8")
        if _C1.search(text):
            text = text.translate(_CP1252)
    return text


def _fix_uri(uri: str) -> str:
    """feedparser's ``_urljoin`` against its empty base: "http:///x" becomes "http://x"."""
    match = _URI_FIXER.match(uri)
    return match.group(1) + uri[match.end(2) :] if match and match.group(2) else uri


def _attrs(el: etree._Element) -> dict[str, str]:
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
        raise _Decline
    for key in ("rel", "type"):
        if key in keyed:
            keyed[key] = keyed[key].lower()
    return keyed


def _leaf(el: etree._Element, allowed: frozenset[str] | None = _LANG) -> str | None:
    """The text of an element without children, whose attributes are all in ``allowed``."""
    if len(el):
        raise _Decline
    attrs = _attrs(el)
    if allowed is not None and not allowed.issuperset(attrs):
        raise _Decline
    if allowed is _TYPED and attrs.get("type", "text") not in _TEXT_TYPES:
        raise _Decline  # xhtml is re-serialized by feedparser, other types may be base64
    text: str | None = el.text
    return text


class _Names:
    """feedparser's name for each element (``dc_creator``, ``title``, ``yt_videoid``, …).

    It depends on the namespaces declared, and on their order where a URI has two prefixes or a
    prefix names a known namespace: such documents are declined.
    """

    def __init__(self, root: etree._Element) -> None:
        declared: Mapping[str | None, str] = root.nsmap
        if _XLINK in declared.values():  # feedparser passes xlink declarations as attributes
            raise _Decline
        self.remap = {p: _KNOWN[_norm(u)] for p, u in declared.items() if _norm(u) in _KNOWN}
        canonical = set(self.remap.values())
        for prefix, mapped in self.remap.items():  # "dc" bound to another known namespace
            if prefix and prefix.lower() in _CANONICAL and prefix.lower() != mapped.lower():
                raise _Decline
        self.unknown: dict[str, str] = {}
        for prefix, uri in declared.items():
            if prefix is None or _norm(uri) in _KNOWN:
                continue
            if uri in self.unknown or prefix in canonical or prefix.lower() in self.remap:
                raise _Decline
            self.unknown[uri] = prefix
        self.cache: dict[str, str] = {}

    def __call__(self, tag: object) -> str:
        if not isinstance(tag, str):
            raise _Decline
        name = self.cache.get(tag)
        if name is None:
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


@dataclass
class _Item:
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
            raise _Decline
        self.seen.add(kind)

    def set_link(self, value: str, default: bool = False) -> None:
        if not (default and self.has_link):
            self.link, self.has_link = value, True


class _Reader:
    def __init__(self, root: etree._Element, url: str, now: datetime | None) -> None:
        self.root, self.url, self.now = root, url, now
        self.names = _Names(root)
        self.feed = _Item()
        self.ttl: str | None = None
        self.items: list[_Item] = []

    def read(self) -> FastFeed:
        scope = self.root.nsmap
        if any(el.nsmap != scope for el in self.root.iter()):
            raise _Decline  # a namespace declared below the root
        _attrs(self.root)
        if self.root.tag == ATOM_FEED:
            container = self.root
        elif self.root.tag == "rss" and len(self.root) == 1:
            container = self.root[0]
            if self.names(container.tag) != "channel" or not _LANG.issuperset(_attrs(container)):
                raise _Decline
        else:
            raise _Decline
        for el in container:
            name = self.names(el.tag)
            handler = _FEED.get(name)
            if handler is None:
                self.generic(el, name)
            else:
                handler(self, el)
        entries = [self.finish(item) for item in self.items]  # only once nothing can decline
        return FastFeed(self.feed.title, self.feed.link, self.ttl, entries)

    def generic(self, el: etree._Element, name: str) -> None:
        """An element feedparser has no handler for: its text lands under its name, harmlessly."""
        if name in _HANDLED or name in _DANGER:
            raise _Decline
        _attrs(el)
        for child in el:
            self.generic(child, self.names(child.tag))

    # ------------------------------------------------------------ feed level

    def feed_title(self, el: etree._Element) -> None:
        self.feed.once("title")
        self.feed.title = _text(_leaf(el, _TYPED))

    def feed_link(self, el: etree._Element) -> None:
        link = self.link(el)
        if link is not None:
            value, from_text = link
            self.feed.set_link(_named_refs(value) if from_text else value)

    def feed_id(self, el: etree._Element) -> None:
        self.feed.once("guid")
        value, permalink = self.guid(el)
        if permalink:
            self.feed.set_link(value, default=True)

    def feed_ttl(self, el: etree._Element) -> None:
        if el.items():  # with attributes, feedparser keeps the attributes as the ttl
            raise _Decline
        self.ttl = _text(_leaf(el))

    def image(self, el: etree._Element) -> None:
        self.container(el, frozenset({"title", "url", "link", "width", "height", "description"}))

    def textinput(self, el: etree._Element) -> None:
        self.container(el, frozenset({"title", "description", "name", "link"}))

    def container(self, el: etree._Element, children: frozenset[str]) -> None:
        """image, textInput: their children go to the image or textinput, not the feed."""
        if not _LANG.issuperset(_attrs(el)):
            raise _Decline
        for child in el:
            if self.names(child.tag) not in children:
                raise _Decline
            _leaf(child, None)

    def harmless(self, el: etree._Element) -> None:
        """Handled by feedparser, but into fields nobody reads here (category, rights, …)."""
        _leaf(el, None)

    def empty(self, el: etree._Element) -> None:
        """enclosure, cloud: attributes only; any text goes nowhere."""
        if len(el):
            raise _Decline
        _attrs(el)

    def person(self, el: etree._Element) -> str | None:
        """An Atom person: exactly one name (returned raw: feedparser does not clean it)."""
        _attrs(el)
        name: str | None = None
        seen: set[str] = set()
        for child in el:
            kind = self.names(child.tag)
            if kind in ("name", "email", "uri"):
                if kind in seen:
                    raise _Decline
                seen.add(kind)
                text = _leaf(child, None)
                if kind == "name":
                    name = (text or "").strip()
            else:
                self.generic(child, kind)
        return name if "name" in seen else None

    def feed_person(self, el: etree._Element) -> None:
        if len(el):
            self.person(el)
        else:
            _leaf(el, None)

    def entry(self, el: etree._Element) -> None:
        if not _LANG.issuperset(_attrs(el)):
            raise _Decline
        item = _Item()
        for child in el:
            name = self.names(child.tag)
            handler = _ENTRY.get(name)
            if handler is None:
                self.generic(child, name)
            else:
                handler(self, item, child)
        if item.persons and not any(item.people):
            raise _Decline  # feedparser then falls back to a formatted "name (email)"
        self.items.append(item)

    # ------------------------------------------------------------ shared by feed and entries

    def link(
        self, el: etree._Element, item: _Item | None = None
    ) -> tuple[str, bool] | None:
        """(value, from text) if this link sets the feed's or entry's link, else None. An
        entry's ``rel=enclosure`` link is one of its enclosures (the feed's: declined)."""
        attrs = _attrs(el)
        if len(el) or not _LINK_ATTRS.issuperset(attrs):
            raise _Decline
        if "href" not in attrs:
            return _text(el.text, uri=True), True
        rel = attrs.get("rel", "alternate")
        kind = attrs.get("type", "application/atom+xml" if rel == "self" else "text/html")
        if rel == "enclosure":  # feedparser's default type comes with it
            if item is None:
                raise _Decline
            item.enclosures.append(_enclosure({**attrs, "type": kind}, _fix_uri(attrs["href"])))
            return None
        if rel == "alternate" and kind in _HTML_TYPES:
            return _fix_uri(attrs["href"]), False
        return None

    def guid(self, el: etree._Element) -> tuple[str, bool]:
        if len(el):
            raise _Decline
        attrs = _attrs(el)
        if not _GUID_ATTRS.issuperset(attrs):
            raise _Decline
        permalink = attrs.get("ispermalink", "true") == "true"
        return _text(el.text, uri=permalink), permalink

    # ------------------------------------------------------------ entry level

    def item_title(self, item: _Item, el: etree._Element) -> None:
        item.once("title")
        item.title = _text(_leaf(el, _TYPED))

    def item_link(self, item: _Item, el: etree._Element) -> None:
        link = self.link(el, item)
        if link is not None:
            value, from_text = link
            if from_text:
                value = _named_refs(value.replace("&amp;", "&"))
            item.set_link(value)

    def item_guid(self, item: _Item, el: etree._Element) -> None:
        item.once("guid")
        item.guid, permalink = self.guid(el)
        if permalink:
            item.set_link(item.guid, default=True)

    def item_summary(self, item: _Item, el: etree._Element) -> None:
        item.once("summary")
        item.summary, item.has_summary = _text(_leaf(el, _TYPED)), True

    def item_content(self, item: _Item, el: etree._Element) -> None:
        value = _text(_leaf(el, _TYPED))
        item.contents.append(value)
        if not item.has_summary:
            item.summary, item.has_summary = value, True

    def item_author(self, item: _Item, el: etree._Element) -> None:
        if len(el):
            item.persons = True
            name = self.person(el)
            if name is None:
                raise _Decline
            item.people.append(name)
        else:
            item.texts = True
            item.author = _text(_leaf(el))
            item.people.append(_split_author(item.author))
        if item.persons and item.texts:
            raise _Decline  # feedparser then renames earlier authors after later ones

    def item_contributor(self, item: _Item, el: etree._Element) -> None:
        if len(el):
            self.person(el)
        else:
            _leaf(el, None)

    def item_published(self, item: _Item, el: etree._Element) -> None:
        item.published = _text(_leaf(el))

    def item_updated(self, item: _Item, el: etree._Element) -> None:
        item.updated = _text(_leaf(el))

    def item_harmless(self, item: _Item, el: etree._Element) -> None:
        _leaf(el, None)

    def item_enclosure(self, item: _Item, el: etree._Element) -> None:
        """RSS ``enclosure``: attributes only (feedparser keeps ``url``, else ``uri``, else
        ``href``, unresolved); any text goes nowhere."""
        if len(el):
            raise _Decline
        attrs = _attrs(el)
        href = attrs.get("url", attrs.get("uri", attrs.get("href")))
        item.enclosures.append(_enclosure(attrs, href))

    def item_duration(self, item: _Item, el: etree._Element) -> None:
        """itunes:duration; with attributes feedparser keeps a dict instead: declined."""
        if el.items():
            raise _Decline
        item.duration = _text(_leaf(el))

    def item_media(self, item: _Item, el: etree._Element) -> None:
        """media:content and media:group, with thumbnails and credits (no titles: they count)."""
        attrs = _attrs(el)
        if self.names(el.tag) == "media_content":
            found = (attrs.get(k) for k in ("url", "type", "filesize", "duration"))
            item.media.append(RawEnclosure(*found))
        for child in el:
            name = self.names(child.tag)
            if name in ("media_content", "media_group"):
                self.item_media(item, child)
            elif name in ("media_thumbnail", "media_credit"):
                _leaf(child, None)
            else:
                self.generic(child, name)

    def finish(self, item: _Item) -> Entry:
        """As ``feeds._entry`` maps feedparser's entry (people, else the unsplit author)."""
        names = item.people if any(item.people) else [item.author]
        return Entry(
            key="",
            guid=clean_text(item.guid, MAX_SHORT),
            url=clean_link(item.link, self.url),
            title=clean_text(item.title, MAX_TITLE),
            summary=clean_text(item.summary),
            content_html=clean_text(max(item.contents, key=len)) if item.contents else None,
            authors=authors_of(names),
            published=_date(item.published, self.now),
            updated=_date(item.updated, self.now),
            enclosures=enclosures_of(item.enclosures + item.media, self.url, item.duration),
        )


def _enclosure(attrs: Mapping[str, str], href: str | None) -> RawEnclosure:
    return RawEnclosure(href or None, attrs.get("type"), attrs.get("length"))


def _named_refs(link: str) -> str:
    """feedparser undoes what it takes for mangled query strings: "?a=1&b;=2" → "?a=1&b=2"."""
    return _NAMED_REF.sub(r"&\1", link) if "&" in link else link


def _split_author(author: str) -> str | None:
    """feedparser's ``_sync_author_detail`` for a text author: the name left beside the mail."""
    if not author:
        return None
    # Quadratic on long input: prepare_xml already cut person fields to MAX_PERSON characters.
    match = _EMAIL.search(author[: 2 * MAX_PERSON])
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
    value = parse_date(RawDate(text), now)
    if value is None and text:
        value = parse_date(RawDate(text, _parse_date(text)), now)
    return value


_FeedHandler = Callable[[_Reader, etree._Element], None]
_ItemHandler = Callable[[_Reader, _Item, etree._Element], None]
_FEED: dict[str, _FeedHandler] = {
    "title": _Reader.feed_title,
    "link": _Reader.feed_link,
    "id": _Reader.feed_id,
    "guid": _Reader.feed_id,
    "ttl": _Reader.feed_ttl,
    "item": _Reader.entry,
    "entry": _Reader.entry,
    "image": _Reader.image,
    "textinput": _Reader.textinput,
    "author": _Reader.feed_person,
    "managingeditor": _Reader.feed_person,
    "contributor": _Reader.feed_person,
    "cloud": _Reader.empty,
    **dict.fromkeys(
        (
            "description", "subtitle", "language", "copyright", "rights", "webmaster",
            "pubdate", "lastbuilddate", "published", "updated", "category", "generator",
            "dc_creator", "dc_language", "dc_rights", "dc_date", "dc_subject",
        ),
        _Reader.harmless,
    ),
}
_ENTRY: dict[str, _ItemHandler] = {
    "title": _Reader.item_title,
    "link": _Reader.item_link,
    "guid": _Reader.item_guid,
    "id": _Reader.item_guid,
    "description": _Reader.item_summary,
    "summary": _Reader.item_summary,
    "content": _Reader.item_content,
    "content_encoded": _Reader.item_content,
    "author": _Reader.item_author,
    "dc_creator": _Reader.item_author,
    "dc_author": _Reader.item_author,
    "contributor": _Reader.item_contributor,
    "enclosure": _Reader.item_enclosure,
    "itunes_duration": _Reader.item_duration,
    "media_content": _Reader.item_media,
    "media_group": _Reader.item_media,
    **dict.fromkeys(("pubdate", "published", "issued", "dcterms_issued"), _Reader.item_published),
    **dict.fromkeys(
        ("updated", "modified", "lastbuilddate", "dc_date", "dcterms_modified"),
        _Reader.item_updated,
    ),
    **dict.fromkeys(
        ("category", "dc_subject", "rights", "copyright", "source", "media_thumbnail",
         "media_credit"),
        _Reader.item_harmless,
    ),
}
