"""Reads JSON Feed 1.0 and 1.1 (https://jsonfeed.org) into a ParsedFeed; no I/O, no HTML work."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from aggregator.errors import ParseError
from aggregator.feeds.feedmodel import (
    MAX_ENTRIES,
    MAX_SHORT,
    MAX_TITLE,
    ParsedFeed,
    RawDate,
    RawEnclosure,
    authors_of,
    clean_link,
    clean_text,
    enclosures_of,
    finish_entries,
    join_warnings,
    parse_date,
)
from storage.records import Entry

VERSIONS = ("https://jsonfeed.org/version/1", "https://jsonfeed.org/version/1.1")


def parse_json_feed(document: object, url: str, now: datetime | None) -> ParsedFeed:
    """Check the top level (version URL, items list), then read each item; junk items skipped."""
    if not isinstance(document, dict):
        raise ParseError(f"JSON Feed is not an object for {url}")
    version = document.get("version")
    known = isinstance(version, str) and version.rstrip("/").replace("http:", "https:") in VERSIONS
    if not known:
        raise ParseError(f"JSON Feed version missing or unknown ({str(version)[:80]!r}) for {url}")
    items = document.get("items")
    if not isinstance(items, list):
        raise ParseError(f"JSON Feed 'items' is missing or not a list for {url}")
    capped = len(items) > MAX_ENTRIES
    objects = [item for item in items[:MAX_ENTRIES] if isinstance(item, dict)]
    skipped = min(len(items), MAX_ENTRIES) - len(objects)
    entries, dup_note = finish_entries([_entry(i, url, now) for i in objects])
    return ParsedFeed(
        title=clean_text(document.get("title"), MAX_TITLE),
        link=clean_link(document.get("home_page_url"), url),
        ttl=None,
        entries=entries,
        warning=join_warnings(
            f"more than {MAX_ENTRIES} entries; kept the first {MAX_ENTRIES}" if capped else None,
            f"{skipped} items are not objects; skipped" if skipped else None,
            dup_note,
        ),
    )


def _entry(item: Mapping[str, Any], url: str, now: datetime | None) -> Entry:
    raw_id = item.get("id")
    # JSON Feed 1.0 readers must coerce a numeric id to a string.
    numeric = isinstance(raw_id, int | float) and not isinstance(raw_id, bool)
    guid = str(raw_id) if numeric else raw_id
    summary = clean_text(item.get("summary")) or clean_text(item.get("content_text"))
    return Entry(
        key="",
        guid=clean_text(guid, MAX_SHORT),
        url=clean_link(item.get("url"), url) or clean_link(item.get("external_url"), url),
        title=clean_text(item.get("title"), MAX_TITLE),
        summary=summary,
        content_html=clean_text(item.get("content_html")),
        authors=authors_of(_author_names(item)),
        published=parse_date(RawDate(_str(item.get("date_published"))), now),
        updated=parse_date(RawDate(_str(item.get("date_modified"))), now),
        enclosures=enclosures_of(_attachments(item), url),
    )


def _attachments(item: Mapping[str, Any]) -> list[RawEnclosure]:
    found = item.get("attachments")
    if not isinstance(found, list):
        return []
    return [RawEnclosure(a.get("url"), a.get("mime_type"), a.get("size_in_bytes"),
                         a.get("duration_in_seconds"))
            for a in found if isinstance(a, dict)]  # fmt: skip


def _author_names(item: Mapping[str, Any]) -> list[object]:
    """1.1 has ``authors`` (a list); 1.0 has ``author`` (one object)."""
    found = item.get("authors")
    people = found if isinstance(found, list) else [item.get("author")]
    return [p.get("name") for p in people if isinstance(p, dict)]


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


_SURROGATE = re.compile("[\ud800-\udfff]")


def without_lone_surrogates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``json.loads`` object hook: string members keep no lone surrogate (U+FFFD instead).

    JSON may escape one ("\\ud800"); no database stores it, so a single one in a title made
    every poll of its feed fail. Every field read here is an object member.
    """
    return {key: _replace_surrogates(value) for key, value in pairs}


def _replace_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)  # json.loads joins the valid pairs itself
    return value
