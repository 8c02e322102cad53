"""A fast path for plain RSS 2.0 and Atom 1.0: lxml reads what feedparser would, or declines.

feedparser's Python handlers cost about 4 ms per 20-entry feed, most of a new feed's parse
(issue 2). Most feeds use a handful of elements whose reading by feedparser 6 (strict parser,
``sanitize_html=False``, ``resolve_relative_uris=False``, which is how ``feeds`` calls it) this
module reproduces exactly, on a tree lxml builds in C. Anything else (another root, an XML or
namespace error, an element or attribute whose reading is not reproduced here) makes
:func:`read_fast` return None, and the caller runs feedparser on the same bytes.

The input is always :func:`aggregator.feeds.xmlsafety.prepare_xml`'s output that expat read whole:
UTF-8, no DTD. lxml resolves no entity, loads no DTD, touches no network and keeps its default
depth and size limits. This module walks the document, element by element, as feedparser's
handlers do; how feedparser reads a text, an attribute, an element's name, an author or a date
is in :mod:`.fastrules`. Per element:

* one title and one guid/id per entry (a second one follows depth rules: declined); the link is
  the last ``link`` text or ``rel=alternate`` HTML href, else a permalink guid or Atom id;
  entry links turn ``&amp;`` into ``&`` and ``&name;`` into ``&name``;
* summary: the description/summary element, else the first content (content:encoded);
* authors: RSS text ("mail (Name)" split as feedparser splits it), or Atom persons (``name``);
* enclosures: RSS ``enclosure`` and Atom ``link rel=enclosure`` (feedparser's ``enclosures``),
  then ``media:content`` (also in ``media:group``), and the entry's ``itunes:duration``;
* dates: the last element of each kind;
* ``xml:base`` anywhere, typed (``xhtml``, base64, ``src``) text, an unknown-namespace element
  whose name feedparser would map onto a handler or a field, namespace declarations below the
  root: declined.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from lxml import etree

from aggregator.feeds.fastrules import (
    DANGER,
    GUID_ATTRS,
    HANDLED,
    HTML_TYPES,
    LANG,
    LINK_ATTRS,
    TYPED,
    Decline,
    ElementNames,
    Item,
    attributes,
    enclosure,
    entry_of,
    fix_uri,
    leaf_text,
    named_refs,
    pop_text,
    split_author,
)
from aggregator.feeds.feedmodel import RawEnclosure
from aggregator.feeds.xmlsafety import hardened_parser
from storage.records import Entry

ATOM_FEED = "{http://www.w3.org/2005/Atom}feed"


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
        return _Reader(root, url, now).read(maybe_below=data.count(b"xmlns") > len(root.nsmap))
    except (Decline, etree.LxmlError, ValueError):
        return None


class _Reader:
    def __init__(self, root: etree._Element, url: str, now: datetime | None) -> None:
        self.root, self.url, self.now = root, url, now
        self.names = ElementNames(root)
        self.feed = Item()
        self.ttl: str | None = None
        self.items: list[Item] = []

    def read(self, maybe_below: bool = True) -> FastFeed:
        """``maybe_below``: the bytes hold more "xmlns" than the root's declarations (each
        declaration writes one), so one may sit below the root; only then is each element
        checked, a tenth of the walk's cost (issue 14)."""
        scope = self.root.nsmap
        if maybe_below and any(el.nsmap != scope for el in self.root.iter()):
            raise Decline  # a namespace declared below the root
        attributes(self.root)
        if self.root.tag == ATOM_FEED:
            container = self.root
        elif self.root.tag == "rss" and len(self.root) == 1:
            container = self.root[0]
            if self.names(container.tag) != "channel" or not LANG.issuperset(attributes(container)):
                raise Decline
        else:
            raise Decline
        for el in container:
            name = self.names(el.tag)
            handler = _FEED.get(name)
            if handler is None:
                self.generic(el, name)
            else:
                handler(self, el)
        # only once nothing can decline any more
        entries = [entry_of(item, self.url, self.now) for item in self.items]
        return FastFeed(self.feed.title, self.feed.link, self.ttl, entries)

    def generic(self, el: etree._Element, name: str) -> None:
        """An element feedparser has no handler for: its text lands under its name, harmlessly."""
        if name in HANDLED or name in DANGER:
            raise Decline
        attributes(el)
        for child in el:
            self.generic(child, self.names(child.tag))

    # ------------------------------------------------------------ feed level

    def feed_title(self, el: etree._Element) -> None:
        self.feed.once("title")
        self.feed.title = pop_text(leaf_text(el, TYPED))

    def feed_link(self, el: etree._Element) -> None:
        link = self.link(el)
        if link is not None:
            value, from_text = link
            self.feed.set_link(named_refs(value) if from_text else value)

    def feed_id(self, el: etree._Element) -> None:
        self.feed.once("guid")
        value, permalink = self.guid(el)
        if permalink:
            self.feed.set_link(value, default=True)

    def feed_ttl(self, el: etree._Element) -> None:
        if el.items():  # with attributes, feedparser keeps the attributes as the ttl
            raise Decline
        self.ttl = pop_text(leaf_text(el))

    def image(self, el: etree._Element) -> None:
        self.container(el, frozenset({"title", "url", "link", "width", "height", "description"}))

    def textinput(self, el: etree._Element) -> None:
        self.container(el, frozenset({"title", "description", "name", "link"}))

    def container(self, el: etree._Element, children: frozenset[str]) -> None:
        """image, textInput: their children go to the image or textinput, not the feed."""
        if not LANG.issuperset(attributes(el)):
            raise Decline
        for child in el:
            if self.names(child.tag) not in children:
                raise Decline
            leaf_text(child, None)

    def harmless(self, el: etree._Element) -> None:
        """Handled by feedparser, but into fields nobody reads here (category, rights, …)."""
        leaf_text(el, None)

    def empty(self, el: etree._Element) -> None:
        """enclosure, cloud: attributes only; any text goes nowhere."""
        if len(el):
            raise Decline
        attributes(el)

    def person(self, el: etree._Element) -> str | None:
        """An Atom person: exactly one name (returned raw: feedparser does not clean it)."""
        attributes(el)
        name: str | None = None
        seen: set[str] = set()
        for child in el:
            kind = self.names(child.tag)
            if kind in ("name", "email", "uri"):
                if kind in seen:
                    raise Decline
                seen.add(kind)
                text = leaf_text(child, None)
                if kind == "name":
                    name = (text or "").strip()
            else:
                self.generic(child, kind)
        return name if "name" in seen else None

    def feed_person(self, el: etree._Element) -> None:
        if len(el):
            self.person(el)
        else:
            leaf_text(el, None)

    def entry(self, el: etree._Element) -> None:
        if not LANG.issuperset(attributes(el)):
            raise Decline
        item = Item()
        known = self.names.cache  # looked up here: a call per element costs 2 % of a parse
        for child in el:
            name = known.get(child.tag) or self.names(child.tag)
            handler = _ENTRY.get(name)
            if handler is None:
                self.generic(child, name)
            else:
                handler(self, item, child)
        if item.persons and not any(item.people):
            raise Decline  # feedparser then falls back to a formatted "name (email)"
        self.items.append(item)

    # ------------------------------------------------------------ shared by feed and entries

    def link(
        self, el: etree._Element, item: Item | None = None
    ) -> tuple[str, bool] | None:
        """(value, from text) if this link sets the feed's or entry's link, else None. An
        entry's ``rel=enclosure`` link is one of its enclosures (the feed's: declined)."""
        attrs = attributes(el)
        if len(el) or not LINK_ATTRS.issuperset(attrs):
            raise Decline
        if "href" not in attrs:
            return pop_text(el.text, uri=True), True
        rel = attrs.get("rel", "alternate")
        kind = attrs.get("type", "application/atom+xml" if rel == "self" else "text/html")
        if rel == "enclosure":  # feedparser's default type comes with it
            if item is None:
                raise Decline
            item.enclosures.append(enclosure({**attrs, "type": kind}, fix_uri(attrs["href"])))
            return None
        if rel == "alternate" and kind in HTML_TYPES:
            return fix_uri(attrs["href"]), False
        return None

    def guid(self, el: etree._Element) -> tuple[str, bool]:
        if len(el):
            raise Decline
        attrs = attributes(el)
        if not GUID_ATTRS.issuperset(attrs):
            raise Decline
        permalink = attrs.get("ispermalink", "true") == "true"
        return pop_text(el.text, uri=permalink), permalink

    # ------------------------------------------------------------ entry level

    def item_title(self, item: Item, el: etree._Element) -> None:
        item.once("title")
        item.title = pop_text(leaf_text(el, TYPED))

    def item_link(self, item: Item, el: etree._Element) -> None:
        link = self.link(el, item)
        if link is not None:
            value, from_text = link
            if from_text:
                value = named_refs(value.replace("&amp;", "&"))
            item.set_link(value)

    def item_guid(self, item: Item, el: etree._Element) -> None:
        item.once("guid")
        item.guid, permalink = self.guid(el)
        if permalink:
            item.set_link(item.guid, default=True)

    def item_summary(self, item: Item, el: etree._Element) -> None:
        item.once("summary")
        item.summary, item.has_summary = pop_text(leaf_text(el, TYPED)), True

    def item_content(self, item: Item, el: etree._Element) -> None:
        value = pop_text(leaf_text(el, TYPED))
        item.contents.append(value)
        if not item.has_summary:
            item.summary, item.has_summary = value, True

    def item_author(self, item: Item, el: etree._Element) -> None:
        if len(el):
            item.persons = True
            name = self.person(el)
            if name is None:
                raise Decline
            item.people.append(name)
        else:
            item.texts = True
            item.author = pop_text(leaf_text(el))
            item.people.append(split_author(item.author))
        if item.persons and item.texts:
            raise Decline  # feedparser then renames earlier authors after later ones

    def item_contributor(self, item: Item, el: etree._Element) -> None:
        if len(el):
            self.person(el)
        else:
            leaf_text(el, None)

    def item_published(self, item: Item, el: etree._Element) -> None:
        item.published = pop_text(leaf_text(el))

    def item_updated(self, item: Item, el: etree._Element) -> None:
        item.updated = pop_text(leaf_text(el))

    def item_harmless(self, item: Item, el: etree._Element) -> None:
        leaf_text(el, None)

    def item_enclosure(self, item: Item, el: etree._Element) -> None:
        """RSS ``enclosure``: attributes only (feedparser keeps ``url``, else ``uri``, else
        ``href``, unresolved); any text goes nowhere."""
        if len(el):
            raise Decline
        attrs = attributes(el)
        href = attrs.get("url", attrs.get("uri", attrs.get("href")))
        item.enclosures.append(enclosure(attrs, href))

    def item_duration(self, item: Item, el: etree._Element) -> None:
        """itunes:duration; with attributes feedparser keeps a dict instead: declined."""
        if el.items():
            raise Decline
        item.duration = pop_text(leaf_text(el))

    def item_media(self, item: Item, el: etree._Element) -> None:
        """media:content and media:group, with thumbnails and credits (no titles: they count)."""
        attrs = attributes(el)
        if self.names(el.tag) == "media_content":
            found = (attrs.get(k) for k in ("url", "type", "filesize", "duration"))
            item.media.append(RawEnclosure(*found))
        for child in el:
            name = self.names(child.tag)
            if name in ("media_content", "media_group"):
                self.item_media(item, child)
            elif name in ("media_thumbnail", "media_credit"):
                leaf_text(child, None)
            else:
                self.generic(child, name)


_FeedHandler = Callable[[_Reader, etree._Element], None]
_ItemHandler = Callable[[_Reader, Item, etree._Element], None]
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
