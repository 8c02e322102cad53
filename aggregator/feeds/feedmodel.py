"""A parsed feed and the field rules the XML and JSON readers share; no parsing, no I/O.

Text is cleaned (control characters out, titles bounded), dates keep the source's UTC offset,
links are made absolute against the feed URL, enclosures are read into one shape, and each
entry gets its identity key from ``storage.identity.document_keys`` (the one owner of that rule).
"""

from __future__ import annotations

import email.utils
import functools
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime, timedelta, timezone
from operator import attrgetter
from urllib.parse import urljoin, urlsplit

from storage.identity import document_keys, has_substance
from storage.records import Enclosure, Entry

MAX_ENTRIES = 10_000
MAX_TITLE = 2_000  # characters and UTF-8 bytes; a 64 KB title is an attack or a bug
MAX_SHORT = 2_000  # guids, links, author names (characters and UTF-8 bytes: indexed columns)
MAX_ENCLOSURES = 50  # per entry; a podcast episode has one or a few
MAX_INT64 = 2**63 - 1  # what both databases store in a BIGINT
FUTURE_SLACK = timedelta(days=1)  # clocks and time zones disagree; beyond this a date is wrong
# C0 controls except tab, newline and carriage return; DEL; C1 controls; non-characters.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffe\uffff]")
_ASCII_CONTROL = bytes(range(0x09)) + b"\x0b\x0c" + bytes(range(0x0E, 0x20)) + b"\x7f"
# An absolute http(s) URL that urljoin and urlsplit give back unchanged: lower-case scheme, a
# plain host, no params, no empty query or fragment (tests/test_feed_fastpaths.py checks it).
_PLAIN_LINK = re.compile(
    r"https?://[A-Za-z0-9.-]+(?::[0-9]+)?(?:/[\w.~!$&'()*+,=:@%/-]*)?"
    r"(?:\?[\w.~!$&'()*+,=:@%/?-]+)?(?:#[\w.~!$&'()*+,=:@%/?#-]+)?",
    re.ASCII,
)
# The usual RSS date, which email.utils.parsedate_to_datetime reads through a general tokenizer.
_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTHS = {name: number for number, name in enumerate(_MONTH_NAMES, 1)}
_RFC822 = re.compile(
    rf"(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), )?([0-9]{{1,2}}) ({'|'.join(_MONTH_NAMES)}) "
    r"([1-9][0-9]{3}) ([0-9]{2}):([0-9]{2}):([0-9]{2}) (?:GMT|UTC?|Z|([+-])([0-9]{2})([0-9]{2}))"
)


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    title: str | None
    link: str | None
    ttl: float | None  # RSS <ttl>, in seconds
    entries: tuple[Entry, ...]
    warning: str | None  # a problem that was survived (malformed XML, lying encoding, cap hit)


@dataclass(frozen=True, slots=True)
class RawDate:
    """A date as the source wrote it, plus feedparser's UTC reading of it if any."""

    text: str | None
    parsed: time.struct_time | None = None


def clean_text(value: object, limit: int | None = None) -> str | None:
    """Control characters out (PostgreSQL rejects NUL); empty → None; optionally bounded, in
    characters and in UTF-8 bytes: guids and links go into indexed columns, and PostgreSQL
    refuses an index entry over about 2,700 bytes (2,000 Cyrillic characters are 4,000), which
    failed every poll of the feed."""
    if not isinstance(value, str):
        return None
    text = value if _no_controls(value) else _CONTROL.sub("", value)
    if limit is not None:
        text = " ".join(text.split())[:limit]  # runs of whitespace as one space, none at the ends
        if len(text) * 4 > limit and len(encoded := text.encode("utf-8", "surrogatepass")) > limit:
            text = encoded[:limit].decode("utf-8", "ignore")
    return text if text and not text.isspace() else None


def _no_controls(text: str) -> bool:
    """True when ``_CONTROL`` cannot match: ASCII shown free of controls by a C-speed delete
    (a quarter of the regex scan's cost on a summary, issue 14)."""
    if not text.isascii():
        return False
    data = text.encode("ascii")
    return len(data.translate(None, _ASCII_CONTROL)) == len(data)


def clean_link(value: object, base: str) -> str | None:
    """Absolute http(s) URL resolved against the feed URL; other schemes are dropped."""
    text = clean_text(value, MAX_SHORT)
    if text is None:
        return None
    if _PLAIN_LINK.fullmatch(text):
        return text  # what the lines below give back for it, in a tenth of the time (issue 14)
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
    return _not_future(value, now)


def date_from_text(text: str | None, now: datetime | None) -> datetime | None:
    """``parse_date(RawDate(text), now)``, without building the RawDate (issue 14)."""
    return _not_future(_from_text(text) if text else None, now)


def _not_future(value: datetime | None, now: datetime | None) -> datetime | None:
    if value is not None and now is not None and value > now + FUTURE_SLACK:
        return None
    return value


def _from_text(text: str) -> datetime | None:
    text = text.strip()
    value = _rfc822(text) or _rfc822_general(text)
    if value is None:
        try:
            value = datetime.fromisoformat(text.replace("z", "Z"))  # RFC 3339, as in Atom/JSON
        except ValueError:
            return None
    if value.tzinfo is None or value.utcoffset() is None:
        value = value.replace(tzinfo=UTC)  # no offset given: UTC is the feed convention
    return value


def _rfc822_general(text: str) -> datetime | None:
    """RFC 822/1123, as in RSS, by email.utils. It reads no date out of one word (with no
    whitespace), so an ISO 8601 date skips it: a quarter of an Atom date's cost (issue 14)."""
    if " " not in text and text.isprintable():
        return None
    try:
        return email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _rfc822(text: str) -> datetime | None:
    """The usual RSS date read as ``email.utils.parsedate_to_datetime`` reads it, with an
    unknown offset ("-0000") as UTC, in a third of its time (issue 14); else None."""
    match = _RFC822.fullmatch(text)
    if match is None:
        return None
    day, month, year, hour, minute, second, sign, hours, minutes = match.groups()
    offset = 0 if sign is None else int(hours) * 3600 + int(minutes) * 60
    try:
        zone = _zone(-offset if sign == "-" else offset)
        return datetime(int(year), _MONTHS[month], int(day), int(hour), int(minute), int(second),
                        tzinfo=zone)  # fmt: skip
    except ValueError:  # the slow path then decides, as before
        return None


@functools.lru_cache(maxsize=64)
def _zone(seconds: int) -> timezone:
    """The fixed offset (UTC itself for 0): feeds repeat a handful of them."""
    return timezone(timedelta(seconds=seconds))


def authors_of(names: Iterable[object]) -> tuple[str, ...]:
    """Distinct cleaned names in document order."""
    seen: dict[str, None] = {}
    for name in names:
        text = clean_text(name, MAX_SHORT)
        if text:
            seen.setdefault(text, None)
    return tuple(seen)


@dataclass(frozen=True, slots=True)
class RawEnclosure:
    """An enclosure as either reader found it, before cleaning (any value may be junk)."""

    url: object
    type: object = None
    length: object = None
    duration: object = None


def enclosures_of(
    raw: Iterable[RawEnclosure], base: str, duration: object = None
) -> tuple[Enclosure, ...]:
    """Clean, deduplicated (by URL, first wins, later ones fill its gaps) and bounded.

    ``duration`` is the entry's own (itunes:duration): it goes to an entry's only enclosure.
    """
    found: dict[str, Enclosure] = {}
    for item in raw:
        url = clean_link(item.url, base)
        if url is None:
            continue
        new = Enclosure(url, clean_text(item.type, MAX_SHORT), _count(item.length),
                        parse_duration(item.duration))  # fmt: skip
        old = found.get(url)
        if old is None and len(found) < MAX_ENCLOSURES:
            found[url] = new
        elif old is not None:
            found[url] = Enclosure(url, old.type or new.type, _first(old.length, new.length),
                                   _first(old.duration, new.duration))  # fmt: skip
    kept = tuple(found.values())
    seconds = parse_duration(duration)
    if len(kept) == 1 and kept[0].duration is None and seconds is not None:
        kept = (replace(kept[0], duration=seconds),)
    return kept


def parse_duration(value: object) -> int | None:
    """Seconds from "3723", "62:03", "1:02:03", "3723.5" or a JSON number; else None."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = repr(value)
    text = clean_text(value, 40)
    if text is None:
        return None
    parts = text.split(":")
    if len(parts) > 3:
        return None
    total = 0.0
    for part in parts:
        try:
            number = float(part) if part.strip() else 0.0
        except ValueError:
            return None
        if not 0 <= number < 10**9:
            return None
        total = total * 60 + number
    return _count(int(total))


def _count(value: object) -> int | None:
    """A non-negative integer a database column holds, or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    else:
        text = clean_text(value, 40)
        if text is None or not text.isdigit():
            return None
        number = int(text)
    return number if 0 <= number <= MAX_INT64 else None


def _first(one: int | None, other: int | None) -> int | None:
    return one if one is not None else other


def finish_entries(entries: list[Entry]) -> tuple[tuple[Entry, ...], str | None]:
    """Key entries (``storage.identity.document_keys``), keep the first of each key, and drop
    entries with nothing to archive. Returns (entries, warning)."""
    substantial = [e for e in entries if has_substance(e)]
    empty = len(entries) - len(substantial)
    keys = document_keys(substantial).keys
    seen: dict[str, Entry] = {}
    for entry, key in zip(substantial, keys, strict=True):
        if key not in seen:  # feeds list newest first
            seen[key] = keyed(entry, key)
    dropped = len(substantial) - len(seen)
    warning = join_warnings(
        f"{dropped} duplicate entries dropped" if dropped else None,
        f"{empty} entries with no id, link, title or text dropped" if empty else None,
    )
    return tuple(seen.values()), warning


_UNKEYED = attrgetter(*(f.name for f in fields(Entry) if f.name != "key"))


def keyed(entry: Entry, key: str) -> Entry:
    """``replace(entry, key=key)`` at half the cost: ``key`` is Entry's first field."""
    return Entry(key, *_UNKEYED(entry))


def join_warnings(*warnings: str | None) -> str | None:
    parts = [w for w in warnings if w]
    return "; ".join(parts) if parts else None
