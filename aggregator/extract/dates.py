"""Dates stated by a page to aware datetimes that keep the page's own offset; no clock reads."""

from __future__ import annotations

import re
import warnings
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo

from dateutil import parser as dateparser

from aggregator.extract.shown import ZONES, Shown

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
                text, fuzzy=True, dayfirst=not _ISO_DAY.match(text), default=_NO_DEFAULT,
                tzinfos=_zone_named,
            )
    except (ValueError, OverflowError, TypeError):
        return None
    if parsed.tzinfo is not None and parsed.utcoffset() is None:
        return parsed.replace(tzinfo=None)
    return parsed


def _zone_named(name: str, offset: int | None) -> tzinfo | int | None:
    """"IST", "EST", "ET": the abbreviations news pages print, as dateutil wants them."""
    if offset is not None:
        return offset
    return ZONES.get((name or "").upper())


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


_CLOCK_IN_TEXT = re.compile(r"\d{1,2}[:h.]\d{2}(?!\d)|T\d{2}")


def is_day_only(value: str | None) -> bool:
    """"2019-11-18", "November 19, 2019": a day, no time of day."""
    text = (value or "").strip()
    return bool(text) and (_ISO_DAY.match(text) is not None or not _CLOCK_IN_TEXT.search(text))


Published = tuple[datetime | None, date | None, bool]  # (time, day only, taken from the page text)
_MATCH = timedelta(seconds=60)
_MAX_OFFSET = timedelta(hours=14)
_OFF_HOUR = timedelta(minutes=30)
_LENDS_ZONE = ("updated", "stamp", "prose", "above")  # dates that never override the metadata


def reconcile(
    machine: datetime | None,
    day_only: bool,
    seen: Shown | None,
    default_tz: tzinfo | None,
    stated: Sequence[datetime] = (),
) -> Published:
    """The publication time from the page's metadata (``machine``) and the date it shows.

    What the reader sees decides: the zone of the date line, or its clock against the metadata's
    UTC instant, gives the offset; a date line that disagrees with the metadata wins unless it is
    labelled an update; a day without a time stays a day (issue 17).
    """
    if seen is None:
        if machine is None:
            return None, None, False
        if day_only:
            return None, machine.date(), False
        return in_page_zone(machine, stated), None, False
    if seen.clock is None:
        return _day_shown(machine, day_only, seen, stated)
    at = seen.aware(default_tz)
    if machine is not None and not day_only:
        return _time_and_machine(machine, seen, at, default_tz, stated)
    if at is not None:
        return at, None, True
    offset = _page_offset(stated)
    if offset is not None:
        return datetime.combine(seen.day, seen.clock, timezone(offset)), None, True
    return None, seen.day, True


def _day_shown(
    machine: datetime | None, day_only: bool, seen: Shown, stated: Sequence[datetime]
) -> Published:
    if machine is None or (day_only and seen.label not in _LENDS_ZONE):
        return None, seen.day, True
    if day_only:
        return None, machine.date(), False
    local = in_page_zone(machine, stated)
    if seen.label not in _LENDS_ZONE and abs((local.date() - seen.day).days) > 1:
        return None, seen.day, True  # the page shows another day than its metadata states
    return local, None, False


def _time_and_machine(
    machine: datetime, seen: Shown, at: datetime | None, default_tz: tzinfo | None,
    stated: Sequence[datetime],
) -> Published:
    zone = seen.zone or default_tz
    if at is not None and zone is not None:
        if abs(machine - at) <= _MATCH or seen.label in _LENDS_ZONE:
            return _in_zone(machine, zone), None, False
        return at, None, True
    offset = _offset_between(seen, machine)  # the same instant (to the minute) in local time
    if offset is not None and seen.label != "updated":
        return machine.astimezone(timezone(offset)), None, False
    return in_page_zone(machine, stated), None, False


def _in_zone(value: datetime, zone: tzinfo) -> datetime:
    """``value`` as a fixed offset of ``zone`` at that instant."""
    local = value.astimezone(zone)
    offset = local.utcoffset()
    return local.replace(tzinfo=timezone(offset)) if offset is not None else value


def _offset_between(seen: Shown, machine: datetime) -> timedelta | None:
    """The page's clock against the metadata's instant: its offset, when it is a real one."""
    if seen.clock is None:
        return None
    wall = datetime.combine(seen.day, seen.clock)
    diff = wall - machine.astimezone(UTC).replace(tzinfo=None)
    offset = round(diff / timedelta(minutes=30)) * timedelta(minutes=30)
    if abs(offset) > _MAX_OFFSET or abs(diff - offset) > _MATCH or abs(offset) == _OFF_HOUR:
        return None  # real offsets are whole or half hours (±0:30 is none)
    return offset


def _page_offset(stated: Sequence[datetime]) -> timedelta | None:
    offsets = Counter(o for d in stated if (o := d.utcoffset()) is not None and o != timedelta(0))
    return offsets.most_common(1)[0][0] if offsets else None
