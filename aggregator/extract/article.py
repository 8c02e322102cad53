"""The extraction cascade for one page: site rule → structured data and meta → generic; pure."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from urllib.parse import urljoin, urlsplit

from bs4 import Tag
from htmldate import find_date
from lxml import etree  # type: ignore[import-untyped,unused-ignore]
from lxml.html import HtmlElement, HTMLParser, document_fromstring  # type: ignore[import-untyped,unused-ignore]

from aggregator.errors import ExtractError
from aggregator.extract import titles
from aggregator.extract.clean import clean_element, parse_soup, sanitize
from aggregator.extract.dates import in_page_zone, parse_date
from aggregator.extract.generic import GENERIC, generic_body
from aggregator.extract.polish import drop_leading_title, drop_link_blocks
from aggregator.extract.rules import SiteRule, SiteRules
from aggregator.extract.structured import META, STRUCTURED, PageMeta, is_amp, read_meta
from aggregator.extract.text import html_to_text
from storage.records import Article

EXTRACTOR_VERSION = "archiver-extract/1"
SITE_RULE = "site_rule"
MAX_HTML = 8 * 1024 * 1024  # characters; the fetcher caps bodies, this guards direct callers
MAX_ELEMENTS = 50_000  # a long news page has a few thousand
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
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
    root = parse_page(html, url)
    rule = rules.for_url(url)
    meta = read_meta(root)
    got = _Fields()
    headings = _headings(root)
    if rule is not None:
        _apply_rule(html, url, rule, is_amp(root), got)
    _apply_meta(meta, headings, url, rule, got)
    if "published" not in got.values:
        got.offer("published", _htmldate(root, url), GENERIC)
    if "html" not in got.values and _size_ok(root):
        got.offer("html", drop_link_blocks(generic_body(root, url)), GENERIC)
    if "html" not in got.values and meta.body:
        got.offer("html", _paragraphs_html(meta.body), STRUCTURED)
    return _build(got, rule, url)


def clean_input(html: str) -> str:
    """Capped, and without the NUL and C0 controls that lxml refuses in text."""
    return _CONTROL.sub("", html[:MAX_HTML])


def parse_page(html: str, url: str) -> HtmlElement:
    """An lxml tree of the page; ExtractError for what is not an HTML document."""
    text = html if _CONTROL.search(html) is None and len(html) <= MAX_HTML else clean_input(html)
    if not text.strip() or "<" not in text[:65536]:
        raise ExtractError(f"extract: not an HTML page for {url}")
    parser = HTMLParser(remove_comments=True, remove_pis=True, collect_ids=False)
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


def _apply_rule(html: str, url: str, rule: SiteRule, amp: bool, got: _Fields) -> None:
    """Selectors of the site's rule; the first selector that matches wins for each field."""
    soup = parse_soup(html)
    tz = rule.tzinfo()
    got.offer("title", titles.clean(_select_text(soup, rule.title)), SITE_RULE)
    got.offer("published", parse_date(_select_value(soup, rule.published), tz), SITE_RULE)
    got.offer("modified", parse_date(_select_value(soup, rule.modified), tz), SITE_RULE)
    got.offer("authors", _select_all(soup, rule.authors), SITE_RULE)
    got.offer("dateline", _select_text(soup, rule.dateline), SITE_RULE)
    body = _first(soup, (*rule.amp_body, *rule.body) if amp else rule.body)
    if body is not None:
        got.offer("html", clean_element(body, rule.remove, url), SITE_RULE)


def _first(soup: Tag, selectors: Sequence[str]) -> Tag | None:
    for selector in selectors:
        hit = soup.select_one(selector)
        if hit is not None:
            return hit
    return None


def _select_text(soup: Tag, selectors: Sequence[str]) -> str:
    hit = _first(soup, selectors)
    return " ".join(hit.get_text(" ").split()) if hit is not None else ""


def _select_value(soup: Tag, selectors: Sequence[str]) -> str:
    """A date element's machine value (content=, datetime=) before its visible text."""
    hit = _first(soup, selectors)
    if hit is None:
        return ""
    for attr in ("datetime", "content"):
        if isinstance(hit.get(attr), str):
            return str(hit.get(attr))
    return " ".join(hit.get_text(" ").split())


def _select_all(soup: Tag, selectors: Sequence[str]) -> tuple[str, ...]:
    for selector in selectors:
        names = [" ".join(h.get_text(" ").split()) for h in soup.select(selector)]
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
    stated = [d for v, _ in (*meta.published, *meta.modified) if (d := parse_date(v, tz))]
    stated += [d for v in meta.times if (d := parse_date(v, tz))]
    for name, found in (("published", meta.published), ("modified", meta.modified)):
        _, when, source = _first_date(found, tz, name)
        got.offer(name, in_page_zone(when, stated) if when else None, source)
    for names, source in meta.authors:
        got.offer("authors", names, source)
    for value, source in meta.language:
        got.offer("language", _language(value), source)
    for value, source in meta.canonical:
        got.offer("canonical_url", _absolute(url, value), source)
    for value, source in meta.image:
        got.offer("image", _absolute(url, value), source)


def _first_date(
    found: list[tuple[str, str]], tz: tzinfo | None, name: str
) -> tuple[str, datetime | None, str]:
    for value, source in found:
        parsed = parse_date(value, tz)
        if parsed is not None:
            return name, parsed, source
    return name, None, META


def _htmldate(root: HtmlElement, url: str) -> datetime | None:
    """htmldate gives a day only; it is the fallback when the page states no date anywhere."""
    try:
        day = find_date(root, url=url, extensive_search=False, original_date=True)
    except (ValueError, TypeError, RecursionError):
        return None
    return parse_date(day) if day else None


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
    html = drop_leading_title(str(got.values.get("html") or ""), _opt(got.values.get("title")))
    text = _strip_title(html_to_text(html), got.values.get("title"))
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
    )


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
