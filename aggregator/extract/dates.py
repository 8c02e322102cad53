"""Dates stated by a page to aware datetimes that keep the page's own offset; no clock reads."""

from __future__ import annotations

import re
import warnings
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta, timezone, tzinfo

from dateutil import parser as dateparser

_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_YEAR = re.compile(r"(?<!\d)(?:19|20)\d{2}(?!\d)")
_NO_DEFAULT = datetime(2000, 1, 1)  # dateutil fills gaps from today's date otherwise
_MAX_LEN = 100  # a date is short; anything longer is not worth parsing
_MIN_YEAR, _MAX_YEAR = 1990, 2100


def parse_date(value: str | None, default_tz: tzinfo | None = None) -> datetime | None:
    """Parse an ISO 8601 or human date ("20 April 2021, 17:05"); None when unsure.

    A date without an offset is the page's local time: it takes the site's default offset when
    the rule gives one, else it is labelled UTC so that its calendar day stays the day written.
    """
    text = (value or "").strip()
    if not text or len(text) > _MAX_LEN:
        return None
    parsed = _iso(text) or _human(text)
    if parsed is None or not _MIN_YEAR <= parsed.year <= _MAX_YEAR:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=default_tz or UTC)
    offset = parsed.utcoffset()
    # A fixed offset, not a zone: the export writes it and the store keeps it as stated.
    return parsed.replace(tzinfo=timezone(offset)) if offset is not None else None


def _iso(text: str) -> datetime | None:
    candidate = text.replace("Z", "+00:00") if text.endswith("Z") else text
    try:
        return datetime.fromisoformat(candidate)
    except ValueError:
        return None


def _human(text: str) -> datetime | None:
    if not _YEAR.search(text):
        return None  # "May 5" or "yesterday": no year stated, no guess
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "tzname EST not understood": we drop it below
            parsed = dateparser.parse(
                text, fuzzy=True, dayfirst=not _ISO_DAY.match(text), default=_NO_DEFAULT
            )
    except (ValueError, OverflowError, TypeError):
        return None
    if parsed.tzinfo is not None and parsed.utcoffset() is None:
        return parsed.replace(tzinfo=None)
    return parsed


def iso(value: datetime | None) -> str | None:
    """ISO 8601 with the offset, as the export writes it."""
    return value.isoformat() if value is not None else None


def in_page_zone(value: datetime, stated: Iterable[datetime]) -> datetime:
    """A UTC date moved to the offset the page uses elsewhere, so that its day is the page's.

    Many sites write JSON-LD in UTC ("…Z") but their <time> and meta tags in local time: the
    calendar day a reader sees is the local one. Dates already stated with an offset stay.
    """
    if value.utcoffset() != timedelta(0):
        return value
    offsets = Counter(o for d in stated if (o := d.utcoffset()) is not None and o != timedelta(0))
    if not offsets:
        return value
    offset = offsets.most_common(1)[0][0]
    return value.astimezone(timezone(offset))
