"""A parsed feed and the field rules the XML and JSON readers share; no parsing, no I/O.

Text is cleaned (control characters out, titles bounded), dates keep the source's UTC offset,
links are made absolute against the feed URL, and each entry gets its identity key
(DESIGN.md decision 7: guid/id, else link, else a hash; links when guids repeat).
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from urllib.parse import urljoin, urlsplit

from storage.records import Entry

MAX_ENTRIES = 10_000
MAX_TITLE = 2_000  # characters; a 64 KB title is an attack or a bug, not a headline
MAX_SHORT = 2_000  # guids, links, author names
FUTURE_SLACK = timedelta(days=1)  # clocks and time zones disagree; beyond this a date is wrong
# C0 controls except tab, newline and carriage return; DEL; C1 controls; non-characters.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffe\uffff]")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    title: str | None
    link: str | None
    ttl: float | None  # RSS <ttl>, in seconds
    entries: tuple[Entry, ...]
    warning: str | None  # a problem that was survived (malformed XML, lying encoding, cap hit)
    guids_unreliable: bool  # the same guid on several entries of this document


@dataclass(frozen=True, slots=True)
class RawDate:
    """A date as the source wrote it, plus feedparser's UTC reading of it if any."""

    text: str | None
    parsed: time.struct_time | None = None


def clean_text(value: object, limit: int | None = None) -> str | None:
    """Control characters out (PostgreSQL rejects NUL); empty → None; optionally bounded."""
    if not isinstance(value, str):
        return None
    text = _CONTROL.sub("", value)
    if limit is not None:
        text = _SPACE.sub(" ", text).strip()[:limit]
    return text if text.strip() else None


def clean_link(value: object, base: str) -> str | None:
    """Absolute http(s) URL resolved against the feed URL; other schemes are dropped."""
    text = clean_text(value, MAX_SHORT)
    if text is None:
        return None
    try:
        link = urljoin(base, text.strip())
        scheme = urlsplit(link).scheme
    except ValueError:
        return None
    return link if scheme in ("http", "https") else None


def parse_date(raw: RawDate, now: datetime | None) -> datetime | None:
    """Aware datetime keeping the source's offset; None if missing, unparsable or in the future."""
    value = _from_text(raw.text) if raw.text else None
    if value is None and raw.parsed is not None:
        try:  # feedparser's struct is UTC and has lost the offset: a last resort
            value = datetime(*raw.parsed[:6], tzinfo=UTC)
        except (ValueError, OverflowError, TypeError):
            value = None
    if value is not None and now is not None and value > now + FUTURE_SLACK:
        return None
    return value


def _from_text(text: str) -> datetime | None:
    text = text.strip()
    value: datetime | None = None
    try:
        value = email.utils.parsedate_to_datetime(text)  # RFC 822/1123, as in RSS
    except (TypeError, ValueError, IndexError, OverflowError):
        try:
            value = datetime.fromisoformat(text.replace("z", "Z"))  # RFC 3339, as in Atom/JSON
        except ValueError:
            return None
    if value.tzinfo is None or value.utcoffset() is None:
        value = value.replace(tzinfo=UTC)  # no offset given: UTC is the feed convention
    return value


def authors_of(names: Iterable[object]) -> tuple[str, ...]:
    """Distinct cleaned names in document order."""
    seen: dict[str, None] = {}
    for name in names:
        text = clean_text(name, MAX_SHORT)
        if text:
            seen.setdefault(text, None)
    return tuple(seen)


def hash_key(title: str | None, date: datetime | None, summary: str | None) -> str:
    stamp = date.isoformat() if date else None
    digest = hashlib.sha256(json.dumps([title, stamp, summary]).encode("utf-8", "replace"))
    return "hash:" + digest.hexdigest()[:32]


def entry_key(entry: Entry, by_link: bool = False) -> str:
    """guid, else link, else a hash; kinds are prefixed so a link can never pose as a guid."""
    if entry.guid and not by_link:
        return "guid:" + entry.guid
    if entry.url:
        return "link:" + entry.url
    return hash_key(entry.title, entry.published or entry.updated, entry.summary)


def finish_entries(entries: list[Entry]) -> tuple[tuple[Entry, ...], bool, str | None]:
    """Key entries, re-key those whose guid repeats by link, drop exact key duplicates.

    Returns (entries, guids_unreliable, warning).
    """
    counts: dict[str, int] = {}
    for entry in entries:
        if entry.guid:
            counts[entry.guid] = counts.get(entry.guid, 0) + 1
    repeated = {guid for guid, count in counts.items() if count > 1}
    keyed = [replace(e, key=entry_key(e, by_link=e.guid in repeated)) for e in entries]
    kept = _unique(keyed)
    dropped = len(keyed) - len(kept)
    warning = f"{dropped} duplicate entries dropped" if dropped else None
    return kept, bool(repeated), warning


def rekey_by_link(entries: Iterable[Entry]) -> tuple[Entry, ...]:
    """For a feed the store marked ``link_keys``: its guids cannot be trusted from poll to poll."""
    return _unique([replace(e, key=entry_key(e, by_link=True)) for e in entries])


def _unique(entries: list[Entry]) -> tuple[Entry, ...]:
    """First occurrence wins: feeds list newest first, and a store write needs distinct keys."""
    seen: dict[str, Entry] = {}
    for entry in entries:
        seen.setdefault(entry.key, entry)
    return tuple(seen.values())


def join_warnings(*warnings: str | None) -> str | None:
    parts = [w for w in warnings if w]
    return "; ".join(parts) if parts else None
