"""Helpers for the feed parsing tests: golden-file rendering and hostile documents built in code."""

from __future__ import annotations

from dataclasses import asdict, is_dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from aggregator.feeds.parse import ParsedFeed

FEEDS = Path(__file__).parent / "data" / "feeds"
FEED_URL = "https://example.org/feeds/main.xml"


def as_golden(parsed: ParsedFeed) -> dict[str, Any]:
    """A ParsedFeed as JSON-able data; datetimes as ISO 8601 with their offset."""

    def value(v: object) -> object:
        if isinstance(v, datetime):
            return v.isoformat()
        if isinstance(v, tuple):
            return [value(x) for x in v]
        if is_dataclass(v) and not isinstance(v, type):
            return asdict(v)
        return v

    entries = [{name: value(getattr(e, name)) for name in e.__slots__} for e in parsed.entries]
    return {
        "title": parsed.title,
        "link": parsed.link,
        "ttl": parsed.ttl,
        "warning": parsed.warning,
        "entries": entries,
    }


def rss(items: str, head: str = "", prolog: str = "") -> bytes:
    """A small RSS 2.0 document around ``items`` (markup), UTF-8."""
    return (
        f'<?xml version="1.0" encoding="utf-8"?>\n{prolog}\n<rss version="2.0"><channel>'
        f"<title>T</title><link>https://example.org/</link>{head}{items}</channel></rss>"
    ).encode()


def item(n: int | str, guid: str | None = None, link: str | None = None, **extra: str) -> str:
    parts = [f"<title>Item {n}</title>"]
    if guid is not None:
        parts.append(f"<guid>{guid}</guid>")
    if link is not None:
        parts.append(f"<link>{link}</link>")
    parts += [f"<{tag}>{text}</{tag}>" for tag, text in extra.items()]
    return "<item>" + "".join(parts) + "</item>"
