"""OPML subscription lists in and out: bytes → the feeds to add, configured feeds → OPML 2.0.

Reading is listparser's (issue 15): it knows the dialects in the wild (OPML 1.0 and 2.0, folders
as nested outlines, ``text`` vs ``title``, ``category`` paths, RSS 1.0 / FOAF blogrolls). A DTD
is refused before it sees the bytes: an OPML file needs none, and an entity bomb hides in one.
No file or network I/O here; ``aggregator.cli.opml`` reads and writes the files.
"""

from __future__ import annotations

import codecs
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from typing import Any

from aggregator.errors import ConfigError

MAX_OPML_BYTES = 16 * 2**20  # a 5,000-feed list is about 1 MiB
_DTD = re.compile(r"<!(?:DOCTYPE[^>\[]*\[|ENTITY)", re.IGNORECASE)
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
DUPLICATE, BAD_URL, NO_FEED = "duplicate", "bad URL", "no feed URL"
_UTF16 = ((codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))


class OpmlError(ConfigError):
    """A subscription list that cannot be read; the message names the file."""

    stage = "opml"


@dataclass(frozen=True, slots=True)
class Outline:
    """One feed of a subscription list, as the configuration will hold it."""

    url: str
    title: str | None
    tags: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Subscriptions:
    """What a list holds: its feeds in document order, how many feed outlines named a URL
    that listparser had already met (a duplicate within the file, by the exact URL), and the
    web pages listed without a feed (``htmlUrl`` but no ``xmlUrl``) and the other subscription
    lists it links to (``type="include"``, not followed)."""

    outlines: tuple[Outline, ...]
    repeated: dict[str, int]
    pages: tuple[str, ...] = ()
    linked: tuple[str, ...] = ()


def read_opml(data: bytes, name: str) -> Subscriptions:
    """The feeds of an OPML (or RSS 1.0 / FOAF) subscription list; ``OpmlError`` otherwise."""
    import listparser

    _refuse_dtd(data, name)
    parsed = listparser.parse(data)
    if not parsed.version:
        raise OpmlError(f"{name}: not an OPML or RSS 1.0 subscription list (no <opml> or "
                        "<rdf:RDF> root)")
    outlines = tuple(_outline(found) for found in parsed.feeds if found.get("url"))
    if not outlines:
        raise OpmlError(f"{name}: no feeds in it (no outline with an xmlUrl)")
    pages = tuple(str(page["url"]) for page in parsed.opportunities if page.get("url"))
    linked = tuple(str(found["url"]) for found in parsed.lists if found.get("url"))
    return Subscriptions(outlines, _repeated(data), pages, linked)


def _refuse_dtd(data: bytes, name: str) -> None:
    encoding = next((enc for bom, enc in _UTF16 if data.startswith(bom)), "utf-8")
    if _DTD.search(data.decode(encoding, errors="replace")):
        raise OpmlError(f"{name}: has a DTD or an entity declaration, refused (an OPML list "
                        "needs none, and entities can expand without bound)")


def _outline(found: dict[str, Any]) -> Outline:
    """Title from ``text`` (else ``title``); tags from the folders around the outline and its
    ``category`` paths, each folder name a tag (``/Tech/Python`` → ``Tech``, ``Python``)."""
    paths = found.get("categories") or []
    tags = tag_union(*[[str(part) for part in path if str(part).strip()] for path in paths])
    title = str(found.get("title") or "").strip()
    url = str(found["url"])
    return Outline(url, title if title and title != url else None, tags)


def _repeated(data: bytes) -> dict[str, int]:
    """Feed outlines per ``xmlUrl`` beyond the first, read by the same HTML parser listparser
    uses (attribute names folded to lower case), so both see the same outlines."""
    from lxml import etree

    root = etree.fromstring(data, etree.HTMLParser(recover=True, no_network=True))
    counts: dict[str, int] = {}
    for element in [] if root is None else root.iter("outline"):
        url = (element.get("xmlurl") or "").strip()
        if url:
            counts[url] = counts.get(url, 0) + 1
    return {url: n - 1 for url, n in counts.items() if n > 1}


def write_opml(feeds: Iterable[Outline], title: str, now: datetime) -> bytes:
    """OPML 2.0: a folder per feed's first tag (the readers that ignore ``category`` keep the
    grouping), every tag in ``category``; feeds without tags at the top level."""
    root = ET.Element("opml", version="2.0")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = _clean(title)
    ET.SubElement(head, "dateCreated").text = format_datetime(now)
    body = ET.SubElement(root, "body")
    folders: dict[str, ET.Element] = {}
    for feed in feeds:
        parent, tags = body, tag_union([_clean(tag).strip() for tag in feed.tags if tag.strip()])
        tags = tuple(tag for tag in tags if tag)
        if tags:
            if tags[0] not in folders:
                folders[tags[0]] = ET.SubElement(body, "outline", text=tags[0], title=tags[0])
            parent = folders[tags[0]]
        ET.SubElement(parent, "outline", _attributes(feed, tags))
    ET.indent(root, space="  ")
    data: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return data + b"\n"


def _attributes(feed: Outline, tags: tuple[str, ...]) -> dict[str, str]:
    name = _clean(feed.title or "").strip() or feed.url
    attrs = {"type": "rss", "text": name, "title": name, "xmlUrl": _clean(feed.url)}
    if tags:
        attrs["category"] = ",".join(tags)
    return attrs


def _clean(text: str) -> str:
    """XML 1.0 cannot carry control characters: a title with one would make the file unreadable."""
    return _NOT_XML.sub("", text)


def tag_union(*groups: Sequence[str]) -> tuple[str, ...]:
    """The tags of every group in order, each once."""
    out: list[str] = []
    for group in groups:
        out += [tag for tag in group if tag not in out]
    return tuple(out)


@dataclass(frozen=True, slots=True)
class ImportPlan:
    """What ``opml import`` will do: feeds to add, and each outline left out with its reason."""

    added: tuple[Outline, ...]
    left_out: tuple[tuple[str, str, str], ...]  # (url, kind, why)

    def count(self, kind: str) -> int:
        return sum(left[1] == kind for left in self.left_out)


def plan_import(
    found: Subscriptions, configured: Sequence[str], extra_tags: Sequence[str] = ()
) -> ImportPlan:
    """The list's feeds less those already configured or met earlier in the list (URLs compared
    as the configuration compares them, ``feed_key``) and those no request could reach."""
    from aggregator.config.settings import check_http_url, feed_key
    from storage.redact import redact_url

    seen = {feed_key(url): url for url in configured}
    known = set(configured)
    added: list[Outline] = []
    left_out = [(url, DUPLICATE, f"{n + 1} outlines in the file name it, taken once")
                for url, n in found.repeated.items()]
    left_out += [(page, NO_FEED, "a web page without xmlUrl, not a feed (`aggregator discover "
                  "URL` finds its feeds)") for page in found.pages]
    left_out += [(url, NO_FEED, "a linked subscription list, not followed (import its file)")
                 for url in found.linked]
    for outline in found.outlines:
        try:
            url = check_http_url(outline.url)
        except ValueError as exc:
            left_out.append((outline.url, BAD_URL, str(exc).split("': ", 1)[-1]))
            continue
        key = feed_key(url)
        if key in seen:
            first = seen[key]
            where = "already configured" if first in known else "earlier in the file"
            same = "" if first == url else f" as {redact_url(first)}"
            left_out.append((url, DUPLICATE, f"{where}{same}"))
            continue
        seen[key] = url
        added.append(Outline(url, outline.title, tag_union(outline.tags, extra_tags)))
    return ImportPlan(tuple(added), tuple(left_out))
