"""Parses feed bytes (RSS 0.9x/1.0/2.0, Atom 0.3/1.0, JSON Feed 1.0/1.1) into plain values; no I/O.

Synchronous and CPU-heavy: the service runs ``parse_feed`` in a worker thread or process.
XML passes through :mod:`.xmlsafety` before any parser sees it (DESIGN.md decision 5).
Plain RSS 2.0 and Atom 1.0 are then read by :mod:`.fastfeed` (lxml, the same result
as feedparser's, about 5x cheaper); whatever it declines goes to feedparser. HTML in summaries
and content is kept raw, sanitizing is nh3's job elsewhere.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from aggregator.errors import ParseError
from aggregator.feeds.discover import html_page
from aggregator.feeds.fastfeed import read_fast
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
from aggregator.feeds.jsonfeed import parse_json_feed, without_lone_surrogates
from aggregator.feeds.xmlrescue import rescue_xml
from aggregator.feeds.xmlsafety import UnsafeXml, looks_like_html, prepare_xml
from storage.records import Entry

__all__ = ["ParsedFeed", "parse_feed"]


def parse_feed(
    body: bytes,
    url: str,
    headers: Mapping[str, str],
    now: datetime | None = None,
    *,
    fast_path: bool = True,
) -> ParsedFeed:
    """Read one feed document. Raises ParseError ("parse: … for <url>") and nothing else.

    ``now``, when given, drops dates more than a day in the future (a wrong clock or a typo in
    the feed; the entry is kept, its date is not). Without it dates are kept as written.
    ``fast_path=False`` sends every XML document to feedparser (tests and benchmarks compare).
    """
    try:
        if _is_json(body, headers):
            return parse_json_feed(_load_json(body, url), url, now)
        return _parse_xml(body, url, headers, now, fast_path)
    except ParseError:
        raise
    except (RecursionError, MemoryError) as exc:
        kind = type(exc).__name__
        raise ParseError(f"document too deeply nested or too large ({kind}) for {url}") from None
    except Exception as exc:  # a bug met on hostile bytes must still be one feed's ParseError
        detail = f"{type(exc).__name__}: {str(exc)[:200]}"
        raise ParseError(f"internal error ({detail}) for {url}") from exc


def _is_json(body: bytes, headers: Mapping[str, str]) -> bool:
    """The first non-space byte decides; the content type only when that byte says nothing."""
    start = body[:64].lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if start in (b"{", b"["):
        return True
    if start == b"<":
        return False
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    return "json" in content_type.lower()


def _load_json(body: bytes, url: str) -> object:
    try:
        return json.loads(body, object_pairs_hook=without_lone_surrogates)
    except RecursionError:
        raise ParseError(f"JSON nested too deeply for {url}") from None
    except (ValueError, UnicodeError) as exc:  # JSONDecodeError is a ValueError
        raise ParseError(f"invalid JSON ({str(exc)[:120]}) for {url}") from None


def _parse_xml(
    body: bytes, url: str, headers: Mapping[str, str], now: datetime | None, fast_path: bool
) -> ParsedFeed:
    if looks_like_html(body):
        raise ParseError(f"not a feed ({html_page(body, url)}) for {url}")
    try:
        prepared = prepare_xml(body, headers, MAX_ENTRIES)
    except UnsafeXml as exc:
        raise ParseError(f"{exc} for {url}") from None
    fast = read_fast(prepared.data, url, now) if fast_path and prepared.well_formed else None
    if fast is not None:
        return _assemble(fast.title, fast.link, fast.ttl, fast.entries, url, prepared.warnings)
    result, rescued = _feedparser_or_rescue(prepared.data, headers, url)
    bozo = join_warnings(rescued, _bozo_message(result))
    raw_entries = result.entries
    if prepared.last_entry_cut and raw_entries:
        raw_entries = raw_entries[:-1]
        bozo = f"{bozo}; the last entry was cut off and dropped"
    if not result.get("version") and not raw_entries:
        raise ParseError(f"not a feed ({bozo or 'no RSS, Atom or RDF root'}) for {url}")
    if bozo and not raw_entries:
        raise ParseError(f"{bozo}, and no entries could be read, for {url}")
    feed = result.feed
    entries = [_entry(e, url, now) for e in raw_entries]
    warnings = (*prepared.warnings, bozo)
    return _assemble(feed.get("title"), feed.get("link"), feed.get("ttl"), entries, url, warnings)


def _assemble(
    title: object,
    link: object,
    ttl: object,
    entries: list[Entry],
    url: str,
    warnings: tuple[str | None, ...],
) -> ParsedFeed:
    """The feed's values as either reader holds them, cleaned and keyed the same way."""
    kept, dup_note = finish_entries(entries)
    return ParsedFeed(
        title=clean_text(title, MAX_TITLE),
        link=clean_link(link, url),
        ttl=_ttl(ttl),
        entries=kept,
        warning=join_warnings(*warnings, dup_note),
    )


def _feedparser_or_rescue(
    data: bytes, headers: Mapping[str, str], url: str
) -> tuple[Any, str | None]:
    """feedparser's result; if feedparser itself raises, its result on the rescued copy.

    One odd element must not lose a feed (issue 10): :func:`rescue_xml` keeps only the fields
    the archive reads, flattened to text, and the warning names what feedparser raised.
    """
    try:
        return _feedparser(data, headers), None
    except (RecursionError, MemoryError):
        raise
    except Exception as exc:  # a feedparser bug on hostile bytes, of any class
        failure = f"{type(exc).__name__}: {str(exc)[:120]}"
    rescued = rescue_xml(data)
    if rescued is None:
        raise ParseError(f"feedparser failed ({failure}) and no feed could be rescued for {url}")
    try:
        result = _feedparser(rescued, headers)
    except (RecursionError, MemoryError):
        raise
    except Exception:
        message = f"feedparser failed ({failure}), even on a rescued copy, for {url}"
        raise ParseError(message) from None
    return result, f"feedparser failed ({failure}); read again keeping only the fields archived"


def _feedparser(data: bytes, headers: Mapping[str, str]) -> Any:
    """Run feedparser on prepared bytes.

    Wrapped in BytesIO because feedparser opens a bytes argument as a local file path if a file
    by that name exists. The real headers' charset no longer applies (the bytes are UTF-8 now),
    so only the content language is passed on, under a UTF-8 XML content type.
    """
    import feedparser  # most feeds never need it (the fast path reads them): load it on demand

    language = next((v for k, v in headers.items() if k.lower() == "content-language"), None)
    response_headers = {"content-type": "application/xml; charset=utf-8"}
    if language:
        response_headers["content-language"] = language
    return feedparser.parse(
        io.BytesIO(data),
        response_headers=response_headers,
        sanitize_html=False,
        resolve_relative_uris=False,
    )


def _bozo_message(result: Any) -> str | None:
    if not result.get("bozo"):
        return None
    exc = result.get("bozo_exception")
    return f"malformed XML: {str(exc)[:200] or type(exc).__name__}"


def _ttl(value: object) -> float | None:
    """RSS <ttl> is in minutes; a missing, negative or absurd one means nothing."""
    try:
        minutes = float(str(value).strip())
    except ValueError:
        return None
    return minutes * 60 if 0 < minutes < 10**7 else None


def _entry(item: Any, base: str, now: datetime | None) -> Entry:
    contents = [c.get("value") for c in item.get("content") or () if isinstance(c, Mapping)]
    texts = [c for c in contents if isinstance(c, str)]
    return Entry(
        key="",
        guid=clean_text(item.get("id"), MAX_SHORT),
        url=clean_link(item.get("link"), base),
        title=clean_text(item.get("title"), MAX_TITLE),
        summary=clean_text(item.get("summary")),
        content_html=clean_text(max(texts, key=len)) if texts else None,
        authors=authors_of(_author_names(item)),
        published=parse_date(_raw(item, "published"), now),
        updated=parse_date(_raw(item, "updated"), now),
        enclosures=enclosures_of(_enclosures(item), base, item.get("itunes_duration")),
    )


def _enclosures(item: Any) -> list[RawEnclosure]:
    """RSS ``enclosure`` and Atom ``rel=enclosure`` (feedparser's ``enclosures``), then Media
    RSS ``media:content`` (also inside ``media:group``)."""
    found = [RawEnclosure(e.get("href"), e.get("type"), e.get("length"))
             for e in item.get("enclosures") or () if isinstance(e, Mapping)]  # fmt: skip
    found += [RawEnclosure(m.get("url"), m.get("type"), m.get("filesize"), m.get("duration"))
              for m in item.get("media_content") or () if isinstance(m, Mapping)]  # fmt: skip
    return found


def _author_names(item: Any) -> list[object]:
    people = [a.get("name") for a in item.get("authors") or () if isinstance(a, Mapping)]
    return people if any(people) else [item.get("author")]


def _raw(item: Any, field: str) -> RawDate:
    """Plain dict lookups: feedparser's ``updated`` silently falls back to ``published``."""
    text = dict.get(item, field)
    parsed = dict.get(item, field + "_parsed")
    return RawDate(text if isinstance(text, str) else None, parsed)
