"""Dates a page shows as text next to its headline ("By Jane Doe | Nov 19, 2019, 8:03 am ET"); pure.

Readers take the date under the headline, not the one in the page's metadata, and often that
line is the only place that gives the local time and zone. Only text after the headline and
before the story's first long paragraph is read; links, captions and related/share blocks are
skipped, so that the timestamps of other stories (related news, "latest" lists) are never taken.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

from dateutil import parser as dateparser
from lxml import etree  # type: ignore[import-untyped,unused-ignore]
from lxml.html import HtmlElement  # type: ignore[import-untyped,unused-ignore]

WINDOW = 600  # characters of text after the headline that may hold its date line
_BEFORE, _BEFORE_BLOCKS = 200, 3  # ... and above it, in its own block
_LINE_WORDS = 12  # words beside the date in a date line ("By Jane Doe, Chief Reporter | …")
_BODY_PARAGRAPH = 160  # a text block this long is the story itself: the date line is above it
_SKIP = frozenset({"a", "figcaption", "figure", "script", "style", "noscript", "nav", "aside",
                   "footer", "button", "select", "form", "template", "svg", "amp-img", "img"})
# Blocks that list other stories (their timestamps are not this story's), and photo captions.
_FURNITURE = re.compile(r"related|promo|advert|recommend|popular|latest|more-?news|read-?also|"
                        r"also-?read|caption|credit|comment|teaser|trending|most-?read", re.I)

# Month names dateutil does not know, as Kazinform's Russian and Kazakh pages print them.
_MONTHS_LOCAL = {
    "января": "January", "февраля": "February", "марта": "March", "апреля": "April",
    "мая": "May", "июня": "June", "июля": "July", "августа": "August", "сентября": "September",
    "октября": "October", "ноября": "November", "декабря": "December", "қаңтар": "January",
    "ақпан": "February", "наурыз": "March", "сәуір": "April", "мамыр": "May", "маусым": "June",
    "шілде": "July", "тамыз": "August", "қыркүйек": "September", "қазан": "October",
    "қараша": "November", "желтоқсан": "December",
}  # fmt: skip
_MONTH = (r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
          r"sept?(?:ember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?|"
          + "|".join(_MONTHS_LOCAL) + r")\.?")
_DAY = r"\d{1,2}(?:st|nd|rd|th)?"
_YEAR = r"(?:19|20)\d{2}"
_WEEKDAY = r"(?:(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*\.?,?\s+)?"
_CLOCK = r"\d{1,2}[:.h]\d{2}(?::\d{2})?(?:\s*[ap]\.?\s?m\.?)?"
ZONES: dict[str, tzinfo] = {
    "UTC": UTC, "GMT": UTC, "Z": UTC,
    "EST": timezone(timedelta(hours=-5)), "EDT": timezone(timedelta(hours=-4)),
    "CST": timezone(timedelta(hours=-6)), "CDT": timezone(timedelta(hours=-5)),
    "MST": timezone(timedelta(hours=-7)), "MDT": timezone(timedelta(hours=-6)),
    "PST": timezone(timedelta(hours=-8)), "PDT": timezone(timedelta(hours=-7)),
    "AKST": timezone(timedelta(hours=-9)), "AKDT": timezone(timedelta(hours=-8)),
    "HST": timezone(timedelta(hours=-10)), "BST": timezone(timedelta(hours=1)),
    "CET": timezone(timedelta(hours=1)), "CEST": timezone(timedelta(hours=2)),
    "EET": timezone(timedelta(hours=2)), "EEST": timezone(timedelta(hours=3)),
    "MSK": timezone(timedelta(hours=3)), "IST": timezone(timedelta(hours=5, minutes=30)),
    "PKT": timezone(timedelta(hours=5)), "ALMT": timezone(timedelta(hours=6)),
    "WIB": timezone(timedelta(hours=7)), "HKT": timezone(timedelta(hours=8)),
    "SGT": timezone(timedelta(hours=8)), "JST": timezone(timedelta(hours=9)),
    "KST": timezone(timedelta(hours=9)), "AEST": timezone(timedelta(hours=10)),
    "AEDT": timezone(timedelta(hours=11)), "NZST": timezone(timedelta(hours=12)),
    "NZDT": timezone(timedelta(hours=13)), "WAT": timezone(timedelta(hours=1)),
    "CAT": timezone(timedelta(hours=2)), "EAT": timezone(timedelta(hours=3)),
    "SAST": timezone(timedelta(hours=2)),
    # Generic zone names: the offset depends on the day (daylight saving time).
    "ET": ZoneInfo("America/New_York"), "CT": ZoneInfo("America/Chicago"),
    "MT": ZoneInfo("America/Denver"), "PT": ZoneInfo("America/Los_Angeles"),
    "UK": ZoneInfo("Europe/London"),
}  # fmt: skip
_ZONE = r"(?:(?:GMT|UTC)\s?[+-]\s?\d{1,2}(?::?\d{2})?|[+-]\d{2}:?\d{2}|" + "|".join(
    sorted((re.escape(z) for z in ZONES if z != "Z"), key=len, reverse=True)
) + r")(?![A-Za-z])"
_DATE = (
    rf"(?:{_WEEKDAY}(?:{_DAY}\s+{_MONTH},?\s+{_YEAR}|{_MONTH}\s+{_DAY},?\s+{_YEAR})"
    rf"|{_YEAR}-\d{{2}}-\d{{2}}|\d{{1,2}}[./]\d{{1,2}}[./](?:{_YEAR}|\d{{2}})(?!\d)"
    rf"|{_YEAR}[./]\d{{1,2}}[./]\d{{1,2}})"
)
_SEP = r"(?:\s*(?:,|at|@|-{1,2}|–|—|\||/|•|T|à|às|um|в)?\s*)"
_SHOWN = re.compile(
    rf"(?P<before>{_CLOCK}(?:\s*{_ZONE})?\s*[,|•·–—-]?\s*)?(?P<date>{_DATE})"
    rf"(?P<after>{_SEP}{_CLOCK}(?:[\s,]*\(?{_ZONE}\)?)?)?",
    re.I,
)
_LABEL = re.compile(
    r"(?:(?P<upd>updated?|modified|edited|обновлено|изменено|atualizado|actualizado|"
    r"aktualisiert|mis à jour)|(?P<pub>published|posted|original|publié|publicado|"
    r"veröffentlicht|опубликовано))\W*(?:on\W*)?$",
    re.I,
)
_NO_DEFAULT = datetime(2000, 1, 1)
_HEADLINE_TAGS = ("h2", "h3", "div", "span", "p", "header", "strong", "b", "font", "td")


@dataclass(frozen=True, slots=True)
class Shown:
    """A date read off the page: its day, its clock time and zone when shown, and its label."""

    day: date
    clock: time | None = None
    zone: tzinfo | None = None
    # "published", "updated", "" (a date line that says neither), "stamp" (a <time datetime>
    # whose text shows no date: it may be an update's), "prose" (a date inside a sentence) or
    # "above" (over the headline: a masthead's today, maybe): the last three only lend their
    # offset, they never override the metadata
    label: str = ""

    def aware(self, default: tzinfo | None = None) -> datetime | None:
        """The instant, when the page (or ``default``) says which zone its clock is in."""
        zone = self.zone or default
        if self.clock is None or zone is None:
            return None
        local = datetime.combine(self.day, self.clock)
        offset = local.replace(tzinfo=zone).utcoffset()
        return local.replace(tzinfo=timezone(offset)) if offset is not None else None


def headline(root: HtmlElement, title: str | None) -> HtmlElement | None:
    """The element showing the headline: an <h1> with the title's words, else any element."""
    key = _norm(title or "")
    first = None
    for h1 in root.iter("h1"):
        text = _norm(h1.text_content())
        if key and text == key:
            return h1
        if first is None and len(text.split()) >= 2:
            first = h1
    if key:
        for node in root.iter(*_HEADLINE_TAGS):
            if node.text and _norm(node.text) == key:
                return node  # "whatever the element is called" (issue 17)
    return first


def near(read: Window, lang: str = "") -> list[Shown]:
    """Dates shown next to the headline, in reading order.

    The text after it first; then the <time datetime> there ("2 days ago" on screen); then the
    text just above it, in the same block ("Ideas | 11.14.2019 09:00 AM" over the headline).
    """
    after, stamps = read.text, read.stamps
    dayfirst = not lang.lower().startswith("en") or lang.lower() in ("en-gb", "en-in", "en-au")
    found = _dates_in(after, dayfirst)
    if not found:
        found = [s for v in stamps if (s := _from_stamp(v)) is not None][:1]
    if found:
        return found
    above = _dates_in(_text_before(read.headline), dayfirst)
    return [Shown(s.day, s.clock, s.zone, s.label or "above") for s in above]


def is_date_line(text: str) -> bool:
    """"Published: 14/03/2006", "Nov 19, 2019, 8:03 am ET": a line that is only a date."""
    m = _SHOWN.search(text)
    if m is None:
        return False
    rest = (text[: m.start()] + text[m.end() :]).strip(" |:,.-–—()")
    return len(rest.split()) <= 3


def _dates_in(text: str, dayfirst: bool) -> list[Shown]:
    return [s for m in _SHOWN.finditer(text) if (s := _parse(m, dayfirst)) is not None]


def _from_stamp(value: str) -> Shown | None:
    """A <time datetime="…"> value: the page's own machine reading of its date line."""
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace(" ", "T", 1))
    except ValueError:
        return None
    if not 1990 <= when.year <= 2100:
        return None
    has_clock = "T" in value or ":" in value
    clock = when.time().replace(microsecond=0) if has_clock else None
    return Shown(when.date(), clock, when.tzinfo, "stamp")


def _text_before(node: HtmlElement) -> str:
    """The end of the text above the headline inside its own block (not the masthead)."""
    blocks: list[HtmlElement] = []
    for level in (node, node.getparent()):
        if level is None or level.tag in ("body", "html"):
            break
        nearest = list(level.itersiblings(preceding=True))[:_BEFORE_BLOCKS]
        blocks = [*reversed(nearest), *blocks]
    pieces: list[tuple[str, bool]] = []
    state = [0, 0]
    for block in blocks:
        _walk(block, pieces, [], state, whole=True)
    return " | ".join(t for t, linked in pieces if not linked)[-_BEFORE:]


def choose(shown: list[Shown]) -> Shown | None:
    """The publication date among those shown: labelled so, else the first not an update."""
    for wanted in ("published", ""):
        group = [item for item in shown if item.label == wanted]
        if group:  # "2021-04-20 … 20 April 2021, 17:05": the same day with its time
            timed = (i for i in group if i.clock is not None and i.day == group[0].day)
            return next(timed, group[0])
    return shown[0] if shown else None


_BY = re.compile(
    r"(?:^|\|)\s*((?:(?:written|posted|publicado|publié|reported|story)\s+)?"
    r"(?:by|por|von|par|door|av)\b\s*:?\s*(?:\|\s*)?[^|]{2,120}(?:\|[^|]{1,80}){0,2})",
    re.I,
)


def byline_near(window: Window) -> str:
    """The "By Jane Doe" line under the headline (author links included), or ""."""
    m = _BY.search(window.with_links)
    return m.group(1) if m else ""


@dataclass(frozen=True, slots=True)
class Window:
    """The text after a headline, read once: without links (dates), with links (bylines)."""

    headline: HtmlElement
    text: str
    with_links: str
    stamps: tuple[str, ...]


def window(node: HtmlElement) -> Window:
    """Text after ``node`` in document order, element boundaries kept as " | ", up to the
    story's first long paragraph; and the datetime values of the <time> elements in it.

    Only what follows the headline is walked, and a skipped element's subtree is never
    entered: the cost is that of the window, not of the page. Read once, for dates and bylines.
    """
    pieces: list[tuple[str, bool]] = []
    stamps: list[str] = []
    state = [0, 0]  # characters so far, link depth
    _add(pieces, node.tail, state)
    for root in _following(node):
        if _walk(root, pieces, stamps, state):
            break
    return Window(
        node,
        " | ".join(t for t, linked in pieces if not linked),
        " | ".join(t for t, _ in pieces),
        tuple(stamps),
    )


def _following(node: HtmlElement) -> Iterator[HtmlElement | str]:
    """The elements after ``node`` (and the tails of its ancestors), in document order."""
    current = node
    while current is not None and current.tag not in ("body", "html"):
        yield from current.itersiblings()
        current = current.getparent()
        if current is not None and current.tail:
            yield current.tail


def _walk(
    root: HtmlElement | str,
    pieces: list[tuple[str, bool]],
    stamps: list[str],
    state: list[int],
    whole: bool = False,
) -> bool:
    """Add the text of one subtree; True when the window is full or the story has begun
    (never, with ``whole``)."""
    if isinstance(root, str):
        _add(pieces, root, state)
        return state[0] >= WINDOW
    walker = etree.iterwalk(root, events=("start", "end"))
    for event, elem in walker:
        tag = elem.tag if isinstance(elem.tag, str) else ""
        if event == "start":
            if _skipped(elem):
                walker.skip_subtree()
                _add(pieces, None, state)
                continue
            if not whole and _is_body_paragraph(elem):
                return True
            if tag == "a":
                state[1] += 1
            elif tag == "time" and elem.get("datetime"):
                stamps.append(str(elem.get("datetime")))
            _add(pieces, elem.text, state)
        else:
            if tag == "a" and not _skipped(elem):
                state[1] -= 1
            _add(pieces, elem.tail, state)
        if state[0] >= WINDOW and not whole:
            return True
    return False


def _skipped(elem: HtmlElement) -> bool:
    """A caption or furniture (and, for dates, a link: see ``_Window``): not read."""
    tag = elem.tag if isinstance(elem.tag, str) else "#"
    if tag in _SKIP:
        return tag != "a"
    marks = f"{elem.get('class') or ''} {elem.get('id') or ''}" if tag != "#" else ""
    return bool(marks.strip()) and _FURNITURE.search(marks) is not None


def _is_body_paragraph(elem: HtmlElement) -> bool:
    if elem.tag != "p":
        return False
    return len(" ".join((elem.text_content() or "").split())) >= _BODY_PARAGRAPH


def _add(pieces: list[tuple[str, bool]], text: str | None, state: list[int]) -> None:
    text = " ".join((text or "").split())
    if text:
        pieces.append((text, state[1] > 0))
        state[0] += len(text) if state[1] == 0 else 0


def _parse(m: re.Match[str], dayfirst: bool) -> Shown | None:
    raw_date = m.group("date")
    clock_text = (m.group("before") or "") + " " + (m.group("after") or "")
    yearfirst = re.match(r"\d{4}", raw_date) is not None
    day = _day(raw_date, not yearfirst and (dayfirst or "." in raw_date))
    if day is None:
        return None
    clock, zone = _clock(clock_text)
    prefix = m.string[max(0, m.start() - 40) : m.start()]
    label = "prose" if _in_prose(m) else _label(prefix)
    return Shown(day, clock, zone, label)


def _in_prose(m: re.Match[str]) -> bool:
    """The date sits in a sentence ("Since Jan 1, 2019, the council …"), not in a date line."""
    start = m.string.rfind("|", 0, m.start()) + 1
    end = m.string.find("|", m.end())
    piece = m.string[start : end if end >= 0 else len(m.string)]
    rest = piece[: m.start() - start] + piece[m.end() - start :]
    return len(rest.split()) > _LINE_WORDS


def _day(text: str, dayfirst: bool) -> date | None:
    iso = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})", text)
    try:
        if iso:
            return date(int(iso[1]), int(iso[2]), int(iso[3]))
        for local, english in _MONTHS_LOCAL.items():
            text = re.sub(local, english, text, flags=re.I)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parsed = dateparser.parse(text, fuzzy=True, dayfirst=dayfirst, default=_NO_DEFAULT)
    except (ValueError, OverflowError, TypeError):
        return None
    return parsed.date() if 1990 <= parsed.year <= 2100 else None


def _clock(text: str) -> tuple[time | None, tzinfo | None]:
    m = re.search(_CLOCK, text, re.I)
    if not m:
        return None, None
    digits = re.findall(r"\d+", m.group(0))
    hour, minute = int(digits[0]), int(digits[1])
    second = int(digits[2]) if len(digits) > 2 else 0
    meridiem = re.search(r"([ap])\.?\s?m", m.group(0), re.I)
    if meridiem and 1 <= hour <= 12:  # "17:19 PM" happens: a 24-hour clock wins
        hour = hour % 12 + (12 if meridiem.group(1).lower() == "p" else 0)
    if hour > 23 or minute > 59 or second > 59:
        return None, None
    return time(hour, minute, second), _zone(text[m.end() :])


def _zone(text: str) -> tzinfo | None:
    m = re.match(rf"[\s,]*\(?({_ZONE})", text, re.I)
    if not m:
        return None
    name = m.group(1).upper().replace(" ", "")
    if name in ZONES:
        return ZONES[name]
    offset = re.search(r"([+-])(\d{1,2}):?(\d{2})?$", name)
    if not offset:
        return None
    minutes = int(offset[2]) * 60 + int(offset[3] or 0)
    if minutes > 14 * 60:
        return None
    return timezone(timedelta(minutes=-minutes if offset[1] == "-" else minutes))


def _label(prefix: str) -> str:
    m = _LABEL.search(re.sub(r"\s*\|\s*", " ", prefix))
    if not m:
        return ""
    return "updated" if m.group("upd") else "published"


def _norm(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.casefold()))
