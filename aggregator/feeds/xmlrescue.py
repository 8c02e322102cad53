"""The last resort when feedparser itself crashes: a copy of the feed with only what we read.

feedparser 6 raises on some documents whatever we prepare (an element where it expects text,
``<link>x<br/></link>`` in an image, ``<width>`` inside a description, a GML point outside its
``georss:where``): the whole feed would be lost for one odd element (issue 10, item 3). Rather
than patch feedparser, :func:`rescue_xml` rebuilds the document keeping only the elements the
archive reads (feed title, link and ttl; each entry's id, link, title, text, people, dates and
enclosures), each read field as plain text (child markup flattened into it, as feedparser
reads markup inside a description), and feedparser reads that copy instead. No I/O: lxml
resolves no entity, loads no DTD and touches no network.
"""

from __future__ import annotations

import re

from lxml import etree

from aggregator.feeds.xmlsafety import hardened_parser

_ATOM = "http://www.w3.org/2005/Atom"
_MEDIA = "http://search.yahoo.com/mrss/"
_FEED_NS = frozenset(
    {
        "", _ATOM, "http://purl.org/atom/ns#", "http://purl.org/rss/1.0/",
        "http://my.netscape.com/rdf/simple/0.9/", "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
        "http://backend.userland.com/rss2", "http://blogs.law.harvard.edu/tech/rss",
    }
)  # fmt: skip
_DC = "http://purl.org/dc/elements/1.1/"
_DCTERMS = "http://purl.org/dc/terms/"
_CONTENT = "http://purl.org/rss/1.0/modules/content/"
_ITUNES = "http://www.itunes.com/dtds/podcast-1.0.dtd"
_ROOTS = frozenset({"rss", "rdf", "feed", "channel"})
_ENTRIES = frozenset({"item", "entry"})
_FEED_TEXT = frozenset({"title", "link", "ttl", "id"})
_ENTRY_TEXT = frozenset(
    {"title", "link", "guid", "id", "description", "summary", "content", "author", "pubdate",
     "published", "updated", "issued", "modified", "created"}
)  # fmt: skip
_EXTENSION_TEXT = {
    _DC: frozenset({"creator", "date", "title", "description"}),
    _DCTERMS: frozenset({"issued", "modified", "created"}),
    _CONTENT: frozenset({"encoded"}),
    _ITUNES: frozenset({"duration", "author"}),
}
_PERSON_PARTS = frozenset({"name", "email", "uri"})
_MARKUP_KEPT = frozenset({"title", "description", "summary", "content", "encoded"})
_XMLNS = re.compile(r'\sxmlns(?::[\w.-]+)?="[^"]*"')  # lxml repeats inherited declarations
_ATTRIBUTES = frozenset(
    {"rel", "type", "href", "hreflang", "title", "length", "ispermalink", "url", "filesize",
     "duration", "medium", "version"}
)  # fmt: skip


def rescue_xml(data: bytes) -> bytes | None:
    """The document reduced to the fields the archive reads, or None if lxml finds no root."""
    try:
        root = etree.fromstring(data, hardened_parser(recover=True))
    except (etree.LxmlError, ValueError):
        return None
    if root is None or _kind(root)[1] not in _ROOTS:
        return None
    _keep_attributes(root)
    _prune_container(root)
    etree.cleanup_namespaces(root)  # no declaration of a namespace nothing kept uses
    result: bytes = etree.tostring(root, encoding="utf-8", xml_declaration=True)
    return result


def _kind(el: etree._Element) -> tuple[str, str]:
    """(namespace, lower-cased local name); comments and the like have no string tag."""
    tag = el.tag
    if not isinstance(tag, str):
        return "", ""
    namespace, _, local = tag[1:].partition("}") if tag[0] == "{" else ("", "", tag)
    return namespace, local.rpartition(":")[2].lower()  # recovery keeps unbound "rdf:RDF"


def _prune_container(container: etree._Element) -> None:
    """rss, RDF, channel, feed: keep the feed's text fields, nested containers and entries."""
    for child in list(container):
        ns, name = _kind(child)
        if ns in _FEED_NS and name in _ROOTS:
            _keep_attributes(child)
            _prune_container(child)
        elif ns in _FEED_NS and name in _ENTRIES:
            _keep_attributes(child)
            _prune_entry(child)
        elif ns in _FEED_NS and name in _FEED_TEXT:
            _flatten(child)
        else:
            container.remove(child)


def _prune_entry(entry: etree._Element) -> None:
    for child in list(entry):
        ns, name = _kind(child)
        if ns in _FEED_NS and name in ("author", "contributor") and _is_person(child):
            _keep_attributes(child)
            _prune_person(child)
        elif (ns in _FEED_NS and name in _ENTRY_TEXT) or name in _EXTENSION_TEXT.get(ns, ()):
            _flatten(child)
        elif (ns in _FEED_NS and name == "enclosure") or (ns == _MEDIA and name == "content"):
            _keep_attributes(child)
            _drop_children(child)
        elif ns == _MEDIA and name == "group":
            _keep_attributes(child)
            for part in list(child):
                if _kind(part) == (_MEDIA, "content"):
                    _keep_attributes(part)
                    _drop_children(part)
                else:
                    child.remove(part)
        else:
            entry.remove(child)


def _is_person(el: etree._Element) -> bool:
    return any(_kind(child)[1] in _PERSON_PARTS for child in el)


def _prune_person(person: etree._Element) -> None:
    for part in list(person):
        if _kind(part)[1] in _PERSON_PARTS:
            _flatten(part)
        else:
            person.remove(part)


def _flatten(el: etree._Element) -> None:
    """Child elements become text: their markup in a text construct (as feedparser reads markup
    inside a description), only their text in an id, link, date or name."""
    _keep_attributes(el)
    if len(el):
        if _kind(el)[1] in _MARKUP_KEPT:
            inner = (el.text or "") + "".join(
                _XMLNS.sub("", etree.tostring(child, encoding="unicode", with_tail=True))
                for child in el
            )
        else:
            inner = "".join(el.itertext())
        _drop_children(el)
        el.text = inner
    if el.get("type", "").lower() in ("xhtml", "application/xhtml+xml"):
        el.set("type", "html")


def _drop_children(el: etree._Element) -> None:
    for child in list(el):
        el.remove(child)


def _keep_attributes(el: etree._Element) -> None:
    """Only attributes we read; never ``xml:base`` or one in an odd namespace."""
    for name in list(el.attrib):
        if name.startswith("{") or name.lower() not in _ATTRIBUTES:
            del el.attrib[name]
