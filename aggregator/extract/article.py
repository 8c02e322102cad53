"""The extraction cascade for one page: site rule → structured data and meta → generic; pure."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from typing import Any
from urllib.parse import urljoin, urlsplit

from htmldate import find_date
from lxml import etree  # type: ignore[import-untyped,unused-ignore]
from lxml.html import HtmlElement, document_fromstring  # type: ignore[import-untyped,unused-ignore]

from aggregator.errors import ExtractError
from aggregator.extract import shown, titles
from aggregator.extract.bylines import people, shown_bylines
from aggregator.extract.clean import sanitize
from aggregator.extract.dates import in_page_zone, is_day_only, parse_date, reconcile
from aggregator.extract.generic import GENERIC, generic_body
from aggregator.extract.polish import (
    drop_leading_meta,
    drop_leading_title,
    drop_link_blocks,
    inner_html,
)
from aggregator.extract.ruledoc import RuleDoc, rule_doc
from aggregator.extract.rules import SiteRule, SiteRules
from aggregator.extract.structured import META, STRUCTURED, PageMeta, is_amp, read_meta
from aggregator.extract.text import element_text
from aggregator.extract.trees import fragment, html_parser
from storage.records import Article

EXTRACTOR_VERSION = "archiver-extract/1"
SITE_RULE = "site_rule"
MAX_HTML = 8 * 1024 * 1024  # characters; the fetcher caps bodies, this guards direct callers
MAX_ELEMENTS = 50_000  # a long news page has a few thousand
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_CONTROL_CHARS = tuple(map(chr, [*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0xFFFE, 0xFFFF]))
_DATELINE = re.compile(
    r"^(?P<dateline>[A-ZÀ-ÞА-ЯЁ][A-ZÀ-ÞА-ЯЁ.,'’ -]{1,60}?(?:\([A-Za-z .]+\))?)\s*[–—-]+\s+\S"
)


@dataclass(slots=True)
class _Fields:
    """The cascade's working state: each field's value and source, first writer wins."""

    values: dict[str, object] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)

    def offer(self, name: str, value: object, source: str) -> None:
        if name not in self.values and value not in (None, "", ()):
            self.values[name] = value
            self.sources[name] = source


def extract(html: str, url: str, rules: SiteRules) -> Article:
    """Clean one page into an Article; ExtractError when the page holds no article."""
    html = clean_input(html)
    root = _parse(html, url)
    rule = rules.for_url(url)
    meta = read_meta(root)
    got = _Fields()
    headings = _headings(root)
    rule_date = ""
    if rule is not None:
        rule_date = _apply_rule(root, html, url, rule, meta, got)
    _apply_meta(meta, headings, url, rule, got)
    head = shown.headline(root, _opt(got.values.get("title")))
    near = shown.window(head) if head is not None else None
    _apply_authors(root, near, meta, url, got)
    _apply_published(root, near, meta, rule, rule_date, got)
    if "published" not in got.values and "published_date" not in got.values:
        got.offer("published_date", _htmldate(root, url), GENERIC)
    if "html" not in got.values and _size_ok(root):  # generic_body prunes root: its last use
        got.offer("html", drop_link_blocks(generic_body(root, url)), GENERIC)
    if "html" not in got.values and meta.body:
        got.offer("html", _paragraphs_html(meta.body), STRUCTURED)
    return _build(got, rule, url)


def clean_input(html: str) -> str:
    """Capped, and without the NUL and C0 controls that lxml refuses in text.

    Looking for each character (``in``) reads a page faster than the regex does, and pages
    rarely hold any."""
    html = html[:MAX_HTML]
    return _CONTROL.sub("", html) if any(c in html for c in _CONTROL_CHARS) else html


def parse_page(html: str, url: str) -> HtmlElement:
    """An lxml tree of the page; ExtractError for what is not an HTML document."""
    return _parse(clean_input(html), url)


def _parse(text: str, url: str) -> HtmlElement:
    """parse_page for a text clean_input has cleaned: one pass over a long page, not two."""
    if not text.strip() or "<" not in text[:65536]:
        raise ExtractError(f"extract: not an HTML page for {url}")
    parser = html_parser(remove_comments=True, remove_pis=True, collect_ids=False)
    try:
        root = document_fromstring(text, parser=parser)
    except (etree.ParserError, ValueError) as exc:
        raise ExtractError(f"extract: unreadable HTML ({exc}) for {url}") from exc
    if root is None or (root.find(".//body") is None and not len(root)):
        raise ExtractError(f"extract: empty HTML document for {url}")
    return root


def _size_ok(root: HtmlElement) -> bool:
    """The generic extractor costs ~60 µs an element: past the cap, it would take seconds."""
    return float(root.xpath("count(//*)")) <= MAX_ELEMENTS


def _headings(root: HtmlElement) -> list[str]:
    return [" ".join(h.text_content().split()) for h in list(root.iter("h1"))[:5]]


def _apply_rule(
    root: HtmlElement, html: str, url: str, rule: SiteRule, meta: PageMeta, got: _Fields
) -> str:
    """Selectors of the site's rule; the first selector that matches wins for each field.

    Returns the published date's text: it is weighed with the date the page shows later.
    """
    doc = rule_doc(root, html, rule)
    tz = rule.tzinfo()
    host = urlsplit(url).hostname or ""
    got.offer("title", titles.clean(_select_text(doc, rule.title)), SITE_RULE)
    got.offer("modified", parse_date(_select_value(doc, rule.modified), tz), SITE_RULE)
    got.offer("authors", people(_select_all(doc, rule.authors), meta.site_names, host), SITE_RULE)
    got.offer("dateline", _select_text(doc, rule.dateline), SITE_RULE)
    body = _first(doc, (*rule.amp_body, *rule.body) if is_amp(root) else rule.body)
    if body is not None:
        got.offer("html", doc.body_html(body, rule.remove, url), SITE_RULE)
    return _select_value(doc, rule.published)


def _first(doc: RuleDoc, selectors: Sequence[str]) -> Any:
    for selector in selectors:
        hits = doc.select(selector)
        if hits:
            return hits[0]
    return None


def _select_text(doc: RuleDoc, selectors: Sequence[str]) -> str:
    hit = _first(doc, selectors)
    return doc.text(hit) if hit is not None else ""


def _select_value(doc: RuleDoc, selectors: Sequence[str]) -> str:
    """A date element's machine value (content=, datetime=) before its visible text.

    Hits inside links or related/share blocks are other stories' dates, never this one's.
    """
    hit = next((h for s in selectors for h in doc.select(s) if not doc.elsewhere(h)), None)
    if hit is None:
        return ""
    for attr in ("datetime", "content"):
        value = doc.attr(hit, attr)
        if value is not None:
            return value
    return doc.text(hit)


def _select_all(doc: RuleDoc, selectors: Sequence[str]) -> tuple[str, ...]:
    for selector in selectors:
        names = [doc.text(h) for h in doc.select(selector)]
        found = tuple(dict.fromkeys(n for n in names if n))
        if found:
            return found
    return ()


def _apply_meta(
    meta: PageMeta, headings: list[str], url: str, rule: SiteRule | None, got: _Fields
) -> None:
    host = urlsplit(url).hostname or ""
    chosen = titles.choose(meta.titles, headings, meta.site_names, host)
    if chosen:
        got.offer("title", chosen[0], chosen[1])
    tz = rule.tzinfo() if rule else None
    _, when, source = _first_date(meta.modified, tz, "modified")
    got.offer("modified", in_page_zone(when, _stated(meta, tz)) if when else None, source)
    for value, source in meta.language:
        got.offer("language", _language(value), source)
    for value, source in meta.canonical:
        got.offer("canonical_url", _absolute(url, value), source)
    for value, source in meta.image:
        got.offer("image", _absolute(url, value), source)


def _stated(meta: PageMeta, tz: tzinfo | None) -> list[datetime]:
    """Every date the page states in its metadata: the offsets it uses."""
    stated = [d for v, _ in (*meta.published, *meta.modified) if (d := parse_date(v, tz))]
    return stated + [d for v in meta.times if (d := parse_date(v, tz))]


def _first_date(
    found: list[tuple[str, str]], tz: tzinfo | None, name: str
) -> tuple[str, datetime | None, str]:
    for value, source in found:
        parsed = parse_date(value, tz)
        if parsed is not None:
            return value, parsed, source
    return "", None, META


def _apply_authors(
    root: HtmlElement, near: shown.Window | None, meta: PageMeta, url: str, got: _Fields
) -> None:
    """Persons from the metadata, weighed with the byline the page shows.

    The "By …" line under the headline is what a reader cites: it wins when it names persons.
    A byline element elsewhere (class "byline"/"author") fills in when the metadata names
    nobody, or names fewer of the same authors.
    """
    host = urlsplit(url).hostname or ""
    stated: tuple[str, ...] = ()
    source = META
    for raw, where in meta.authors:
        stated, source = people(raw, meta.site_names, host), where
        if stated:
            break
    keys = {_name_key(n) for n in stated}
    under = people([shown.byline_near(near)], meta.site_names, host) if near else ()
    under = under if all(len(n.split()) >= 2 for n in under) else ()  # "By Comparison, …"
    if under and not keys >= {_name_key(n) for n in under}:
        stated, source = under, GENERIC
    elif not under:
        found = (p for b in shown_bylines(root) if (p := people([b], meta.site_names, host)))
        shown_names = next(found, ())
        if shown_names and (not stated or keys < {_name_key(n) for n in shown_names}):
            stated, source = shown_names, GENERIC
    got.offer("authors", stated, source)


def _name_key(name: str) -> str:
    return " ".join(name.casefold().split())


def _apply_published(
    root: HtmlElement,
    near: shown.Window | None,
    meta: PageMeta,
    rule: SiteRule | None,
    rule_date: str,
    got: _Fields,
) -> None:
    """Metadata (or the site rule) weighed with the date shown under the headline."""
    tz = rule.tzinfo() if rule else None
    text, machine, source = rule_date, parse_date(rule_date, tz), SITE_RULE
    if machine is None:
        text, machine, source = _first_date(meta.published, tz, "published")
    seen = shown.choose(shown.near(near, root.get("lang") or "")) if near else None
    when, day, from_page = reconcile(machine, is_day_only(text), seen, tz, _stated(meta, tz))
    where = GENERIC if from_page else source
    got.offer("published", when, where)
    got.offer("published_date", day, where)


def _htmldate(root: HtmlElement, url: str) -> date | None:
    """htmldate gives a day only; it is the fallback when the page states no date anywhere."""
    try:
        day = find_date(root, url=url, extensive_search=False, original_date=True)
    except (ValueError, TypeError, RecursionError):
        return None
    parsed = parse_date(day) if day else None
    return parsed.date() if parsed else None


def _language(value: str) -> str:
    tag = value.split(",")[0].strip().replace("_", "-")
    return tag if re.fullmatch(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*", tag) else ""


def _absolute(url: str, value: str) -> str:
    try:
        joined = urljoin(url, value.strip())
    except ValueError:
        return ""
    return joined if joined.startswith(("http://", "https://")) else ""


def _paragraphs_html(body: str) -> str:
    """JSON-LD articleBody is plain text: each line becomes a paragraph."""
    parts = [p.strip() for p in re.split(r"\n\s*\n|\n", body) if p.strip()]
    escaped = (p.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") for p in parts)
    return sanitize("".join(f"<p>{p}</p>" for p in escaped), "")


def _build(got: _Fields, rule: SiteRule | None, url: str) -> Article:
    html, text = _finish(str(got.values.get("html") or ""), got)
    if not text.strip():
        raise ExtractError(f"extract: no article text found (or page too large) for {url}")
    by_rule = rule is not None and rule.dateline_pattern is not None
    got.offer("dateline", _dateline(text, rule), SITE_RULE if by_rule else GENERIC)
    v = got.values
    return Article(
        title=_opt(v.get("title")),
        text=text,
        html=html,
        authors=_names(v.get("authors")),
        published=_dt(v.get("published")),
        modified=_dt(v.get("modified")),
        language=_opt(v.get("language")),
        canonical_url=_opt(v.get("canonical_url")),
        image=_opt(v.get("image")),
        dateline=_opt(v.get("dateline")),
        sources=tuple(sorted(got.sources.items())),
        extractor=EXTRACTOR_VERSION,
        published_date=_day(v.get("published_date")),
    )


def _finish(html: str, got: _Fields) -> tuple[str, str]:
    """The body without its leading headline (and, when generic, byline and date lines), with
    its text: one parse of the fragment for all three."""
    if not html.strip():
        return html, ""
    root = fragment(html)
    changed = drop_leading_title(root, _opt(got.values.get("title")))
    if got.sources.get("html") == GENERIC:
        changed = drop_leading_meta(root) or changed
    text = _strip_title(element_text(root), got.values.get("title"))
    return (inner_html(root) if changed else html), text


def _strip_title(text: str, title: object) -> str:
    """The headline is the title field; repeated as the body's first block it is noise."""
    first, _, rest = text.partition("\n\n")
    if isinstance(title, str) and rest and titles.normalize(first) == titles.normalize(title):
        return rest
    return text


def _dateline(text: str, rule: SiteRule | None) -> str | None:
    """"NUR-SULTAN. KAZINFORM – …": the place (and agency) that opens the first paragraph."""
    pattern = re.compile(rule.dateline_pattern) if rule and rule.dateline_pattern else _DATELINE
    m = pattern.match(text[:200])
    if not m:
        return None
    found = m.group("dateline").strip(" .,-–—")
    return found if found and sum(c.isupper() for c in found) >= 2 else None


def _names(value: object) -> tuple[str, ...]:
    return tuple(str(n) for n in value) if isinstance(value, tuple) else ()


def _opt(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _dt(value: object) -> datetime | None:
    return value if isinstance(value, datetime) else None


def _day(value: object) -> date | None:
    return value if isinstance(value, date) and not isinstance(value, datetime) else None
