"""Feeds out (issue 16): export-shaped items written as Atom (RFC 4287) or JSON Feed 1.1, with
the full article text. Pure writers (items in, text chunks out) used by the web view's
``/feeds/…`` and by ``aggregator export --format atom|jsonfeed``; ``write_feed_file`` adds the
export's atomic file.

Every piece of HTML is put under the stored-HTML policy again on the way out (``safehtml``:
idempotent, one cheap pass on clean markup): a reader of these feeds trusts us, not the sites.
Characters XML 1.0 cannot carry (C0 controls, lone surrogates, U+FFFE/F) are dropped from Atom.
"""

from __future__ import annotations

import html
import json
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import quote
from xml.sax.saxutils import escape, quoteattr

import nh3

from storage.engine import sqlite_file
from storage.errors import ExportError
from storage.files import atomic_text
from storage.records import ExportFilter
from storage.redact import strip_credentials
from storage.safehtml import sanitize_fragment

if TYPE_CHECKING:
    from storage.store import Store

FORMATS = ("atom", "jsonfeed")
JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"
GENERATOR = "feed-archiver"
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@dataclass(frozen=True, slots=True)
class FeedMeta:
    """What a feed out says about itself."""

    title: str
    id: str  # Atom's feed id: a URN that names the selection (``selection_id``)
    updated: datetime
    self_url: str | None = None  # where the document is served, if it is
    home_url: str | None = None


def selection_id(tag: str | None = None) -> str:
    """A stable id for the feed of everything, or of one tag's feeds."""
    return "urn:feed-archiver:all" if tag is None else f"urn:feed-archiver:tag:{quote(tag)}"


def item_id(item: dict[str, Any]) -> str:
    """An entry's id: the item's archive id, which never changes (its URL may)."""
    return f"urn:feed-archiver:item:{quote(str(item['id']), safe='')}"


def body_html(item: dict[str, Any]) -> str | None:
    """The fullest HTML the archive holds for an item: the article, the feed's content, or
    its summary; sanitized."""
    article = item.get("article") or {}
    for candidate in (article.get("html"), item.get("content_html"), item.get("summary")):
        if isinstance(candidate, str) and candidate.strip():
            return sanitize_fragment(candidate)
    return None


def plain_text(fragment: str | None) -> str | None:
    """HTML as text (tags dropped, entities read): JSON Feed's summary is text."""
    if not fragment:
        return None
    return html.unescape(str(nh3.clean(fragment, tags=set()))).strip() or None


# -- Atom ------------------------------------------------------------------------------------


def atom(items: Iterable[dict[str, Any]], meta: FeedMeta) -> Iterator[str]:
    """An Atom document, a chunk per entry (a whole archive streams in constant memory)."""
    yield '<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">\n'
    yield f"<title>{_x(meta.title)}</title>\n<id>{_x(meta.id)}</id>\n"
    yield f"<updated>{meta.updated.astimezone(UTC).isoformat()}</updated>\n"
    yield f"<author><name>{GENERATOR}</name></author>\n<generator>{GENERATOR}</generator>\n"
    if meta.self_url:
        yield f'<link rel="self" type="application/atom+xml" href={_a(meta.self_url)}/>\n'
    if meta.home_url:
        yield f'<link rel="alternate" type="text/html" href={_a(meta.home_url)}/>\n'
    for item in items:
        yield _atom_entry(item)
    yield "</feed>\n"


def _atom_entry(item: dict[str, Any]) -> str:
    article = item.get("article") or {}
    updated = item.get("updated") or item.get("published") or item["first_seen"]
    parts = [f"<entry>\n<id>{_x(item_id(item))}</id>\n",
             f"<title type=\"text\">{_x(item.get('title') or '')}</title>\n",
             f"<updated>{_x(updated)}</updated>\n"]  # fmt: skip
    if item.get("published"):
        parts.append(f"<published>{_x(item['published'])}</published>\n")
    if item.get("url"):
        parts.append(f'<link rel="alternate" type="text/html" href={_a(item["url"])}/>\n')
    for name in item.get("authors") or article.get("authors") or ():
        parts.append(f"<author><name>{_x(name)}</name></author>\n")
    for enc in item.get("enclosures") or ():
        extra = (f" type={_a(enc['type'])}" if enc.get("type") else "") + (
            f' length="{int(enc["length"])}"' if enc.get("length") else "")
        parts.append(f'<link rel="enclosure" href={_a(enc["url"])}{extra}/>\n')
    summary = item.get("summary")
    if summary:
        parts.append(f'<summary type="html">{_x(sanitize_fragment(summary))}</summary>\n')
    content = body_html(item)
    if content:
        parts.append(f'<content type="html">{_x(content)}</content>\n')
    feed_url = strip_credentials(item["feed_url"])
    parts.append(f"<source><id>{_x(feed_url)}</id>"
                 f'<link rel="self" href={_a(feed_url)}/></source>\n</entry>\n')
    return "".join(parts)


def _x(text: str) -> str:
    return escape(_NOT_XML.sub("", text))


def _a(text: str) -> str:
    return quoteattr(_NOT_XML.sub("", text))


# -- JSON Feed 1.1 ---------------------------------------------------------------------------


def json_feed(items: Iterable[dict[str, Any]], meta: FeedMeta) -> Iterator[str]:
    """A JSON Feed 1.1 document, a chunk per item."""
    head: dict[str, Any] = {"version": JSON_FEED_VERSION, "title": meta.title}
    if meta.home_url:
        head["home_page_url"] = meta.home_url
    if meta.self_url:
        head["feed_url"] = meta.self_url
    yield _json(head)[:-1] + ',"items":[\n'
    for index, item in enumerate(items):
        yield ("," if index else "") + _json(_json_item(item)) + "\n"
    yield "]}\n"


def _json_item(item: dict[str, Any]) -> dict[str, Any]:
    article = item.get("article") or {}
    out: dict[str, Any] = {"id": item_id(item)}
    if item.get("url"):
        out["url"] = item["url"]
    if item.get("title"):
        out["title"] = item["title"]
    content = body_html(item)
    out["content_html"] = content or ""
    if article.get("text"):
        out["content_text"] = article["text"]
    summary = plain_text(item.get("summary"))
    if summary:
        out["summary"] = summary
    if item.get("published"):
        out["date_published"] = item["published"]
    out["date_modified"] = item.get("updated") or item["changed_at"]
    authors = item.get("authors") or article.get("authors") or ()
    if authors:
        out["authors"] = [{"name": name} for name in authors]
    if article.get("language"):
        out["language"] = article["language"]
    attachments = [_attachment(enc) for enc in item.get("enclosures") or ()]
    if attachments:
        out["attachments"] = attachments
    out["_feed_archiver"] = {"feed_url": strip_credentials(item["feed_url"]),
                             "first_seen": item["first_seen"]}  # fmt: skip
    return out


def _attachment(enc: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"url": enc["url"], "mime_type": enc.get("type") or
                           "application/octet-stream"}  # fmt: skip
    if enc.get("length"):
        out["size_in_bytes"] = enc["length"]
    if enc.get("duration"):
        out["duration_in_seconds"] = enc["duration"]
    return out


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# -- the export command ----------------------------------------------------------------------


def write_feed_file(
    store: Store, path: Path | None, fmt: str, flt: ExportFilter, tag: str | None = None,
    *, parents: bool = False, now: datetime | None = None,
) -> int:  # fmt: skip
    """``aggregator export --format atom|jsonfeed``: the items ``flt`` selects (``tag``: the
    selection's name), in archive order, to ``path`` (atomically) or standard output; returns
    how many."""
    if fmt not in FORMATS:
        raise ExportError(f"export: unknown feed format {fmt!r} ({' or '.join(FORMATS)})")
    title = "feed-archiver" + (f": {tag}" if tag else "")
    meta = FeedMeta(title=title, id=selection_id(tag), updated=now or datetime.now(UTC))
    counted = _Counted(store.iter_items(flt))
    writer = atom if fmt == "atom" else json_feed
    if path is None:
        _copy(writer(counted, meta), sys.stdout)
        sys.stdout.flush()
        return counted.count
    database = sqlite_file(store.url)
    with atomic_text(path, parents=parents, avoid=Path(database) if database else None) as out:
        _copy(writer(counted, meta), out)
    return counted.count


def _copy(chunks: Iterable[str], out: IO[str]) -> None:
    for chunk in chunks:
        out.write(chunk)


class _Counted:
    """An iterator of items that counts what went through."""

    def __init__(self, items: Iterable[dict[str, Any]]) -> None:
        self.items = iter(items)
        self.count = 0

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for item in self.items:
            self.count += 1
            yield item
