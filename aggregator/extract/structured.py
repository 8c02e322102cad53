"""Metadata a page states about itself: JSON-LD, microdata, meta tags; never edits the tree."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from lxml.html import HtmlElement  # type: ignore[import-untyped,unused-ignore]

STRUCTURED = "structured_data"
META = "meta"
_MAX_JSON = 2 * 1024 * 1024
_MAX_DEPTH = 8
_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_BYLINE = re.compile(r"^(?:by|von|par|por|di|door|av|af)\s+", re.I)
_ARTICLE_TYPES = frozenset({"BlogPosting", "LiveBlogPosting", "Report", "SocialMediaPosting"})
_SITE_TYPES = frozenset({"WebSite", "Organization", "NewsMediaOrganization"})
_ORG_TYPES = frozenset({
    "Organization", "NewsMediaOrganization", "Corporation", "GovernmentOrganization", "NGO",
    "EducationalOrganization", "WebSite", "Brand",
})

Found = tuple[str, str]  # (value, source)


@dataclass(slots=True)
class PageMeta:
    """Candidates for each field, best first, each with where it came from."""

    titles: list[Found] = field(default_factory=list)
    site_names: list[str] = field(default_factory=list)
    published: list[Found] = field(default_factory=list)
    modified: list[Found] = field(default_factory=list)
    authors: list[tuple[tuple[str, ...], str]] = field(default_factory=list)
    language: list[Found] = field(default_factory=list)
    canonical: list[Found] = field(default_factory=list)
    image: list[Found] = field(default_factory=list)
    times: list[str] = field(default_factory=list)  # <time datetime> values: the page's offsets
    body: str | None = None  # JSON-LD articleBody
    article_count: int = 0  # how many article objects the JSON-LD holds (listing pages: several)


def read_meta(root: HtmlElement) -> PageMeta:
    """Collect JSON-LD first (the most explicit), then microdata, then meta and link tags."""
    meta = PageMeta()
    _read_jsonld(root, meta)
    _read_microdata(root, meta)
    _read_tags(root, meta)
    return meta


# ---------------------------------------------------------------- JSON-LD
def _read_jsonld(root: HtmlElement, meta: PageMeta) -> None:
    articles: list[dict[str, Any]] = []
    for script in root.iterfind(".//script[@type]"):
        if (script.get("type") or "").strip().lower() != "application/ld+json":
            continue
        data = _load_json(script.text or "")
        for obj in _objects(data, 0):
            types = _types(obj)
            if any(t.endswith("Article") or t in _ARTICLE_TYPES for t in types):
                articles.append(obj)
            elif types & _SITE_TYPES and isinstance(obj.get("name"), str):
                meta.site_names.append(obj["name"].strip())
    meta.article_count = len(articles)
    if articles:
        _read_article(articles[0], meta)


def _load_json(text: str) -> Any:
    if len(text) > _MAX_JSON:
        return None
    try:
        data = json.loads(text.strip().removeprefix("<!--").removesuffix("-->"), strict=False)
    except (ValueError, RecursionError):
        return None
    return _without_lone_surrogates(data, 0) if _SURROGATE_ESCAPE.search(text) else data


def _without_lone_surrogates(node: Any, depth: int) -> Any:
    """JSON keeps an escaped lone surrogate ("\\ud800"), which no database stores: one in an
    author's name failed the article's every write. U+FFFD instead (pairs are joined already)."""
    if isinstance(node, str):
        return _SURROGATE.sub("\ufffd", node)
    if depth > _MAX_DEPTH:
        return None  # deeper than _objects reads
    if isinstance(node, list):
        return [_without_lone_surrogates(item, depth + 1) for item in node]
    if isinstance(node, dict):
        return {key: _without_lone_surrogates(value, depth + 1) for key, value in node.items()}
    return node


def _objects(node: Any, depth: int) -> Iterator[dict[str, Any]]:
    """Every typed object, outer before inner, document order (the main article comes first)."""
    if depth > _MAX_DEPTH:
        return
    if isinstance(node, list):
        for item in node:
            yield from _objects(item, depth + 1)
    elif isinstance(node, dict):
        if "@type" in node:
            yield node
        for key in ("@graph", "mainEntity", "itemListElement", "item"):
            if key in node:
                yield from _objects(node[key], depth + 1)


def _types(obj: dict[str, Any]) -> set[str]:
    raw = obj.get("@type")
    values = raw if isinstance(raw, list) else [raw]
    return {v.rsplit("/", 1)[-1] for v in values if isinstance(v, str)}


def _read_article(obj: dict[str, Any], meta: PageMeta) -> None:
    for key in ("headline", "name"):
        if _text(obj.get(key)):
            meta.titles.append((_text(obj.get(key)), STRUCTURED))
            break
    _add(meta.published, _text(obj.get("datePublished")), STRUCTURED)
    _add(meta.modified, _text(obj.get("dateModified")), STRUCTURED)
    _add(meta.language, _text(obj.get("inLanguage")), STRUCTURED)
    _add(meta.canonical, _url(obj.get("url")) or _url(obj.get("mainEntityOfPage")), STRUCTURED)
    _add(meta.image, _url(obj.get("image")), STRUCTURED)
    authors = _people(obj.get("author"))
    if authors:
        meta.authors.append((authors, STRUCTURED))
    publisher = obj.get("publisher")
    if isinstance(publisher, dict) and _text(publisher.get("name")):
        meta.site_names.append(_text(publisher.get("name")))
    body = _text(obj.get("articleBody"))
    meta.body = body or None


def _text(value: Any) -> str:
    if isinstance(value, list) and value:
        value = value[0]
    if isinstance(value, dict):
        value = value.get("name") or value.get("@value")
    return value.strip() if isinstance(value, str) else ""


def _url(value: Any) -> str:
    if isinstance(value, list) and value:
        value = value[0]
    if isinstance(value, dict):
        value = value.get("url") or value.get("@id") or value.get("contentUrl")
    return value.strip() if isinstance(value, str) else ""


def _people(value: Any) -> tuple[str, ...]:
    """Raw author names; organizations are not bylines (issue 17: persons only)."""
    items = value if isinstance(value, list) else [value]
    persons = (i for i in items[:20] if not (isinstance(i, dict) and _types(i) & _ORG_TYPES))
    names = (clean_name(_text(item)) for item in persons)
    return tuple(dict.fromkeys(n for n in names if n and not _looks_like_url(n)))


def clean_name(name: str) -> str:
    """"By Jane Doe" → "Jane Doe": bylines often keep their preposition."""
    return _BYLINE.sub("", " ".join(name.split())).strip()


def _looks_like_url(text: str) -> bool:
    return text.startswith(("http://", "https://", "/")) or len(text) > 120


def _add(found: list[Found], value: str, source: str) -> None:
    if value:
        found.append((value, source))


# ---------------------------------------------------------------- microdata
def _read_microdata(root: HtmlElement, meta: PageMeta) -> None:
    """Cheap microdata: the first itemprop of each kind, wherever it sits (one tree walk)."""
    props: dict[str, list[HtmlElement]] = {}
    for node in root.xpath("//*[@itemprop]"):
        props.setdefault(str(node.get("itemprop")), []).append(node)
    props["author"] = [n for n in props.get("author", []) if not _in_comment(n)]
    for prop, target in (("datePublished", meta.published), ("dateModified", meta.modified)):
        if prop in props:
            _add(target, _node_value(props[prop][0]), STRUCTURED)
    if not meta.titles and "headline" in props:
        _add(meta.titles, _node_value(props["headline"][0]), STRUCTURED)
    if not meta.authors and props["author"]:
        names = [clean_name(_node_value(n)) for n in props["author"][:10]]
        people = tuple(dict.fromkeys(n for n in names if n and not _looks_like_url(n)))
        if people:
            meta.authors.append((people, STRUCTURED))


def _in_comment(node: HtmlElement) -> bool:
    """Comments carry itemprop=author too: their writers are not the article's."""
    for up in node.iterancestors():
        marks = f"{up.get('class') or ''} {up.get('id') or ''} {up.get('itemtype') or ''}"
        if "comment" in marks.lower():
            return True
    return False


def _node_value(node: HtmlElement) -> str:
    for attr in ("content", "datetime"):
        if node.get(attr):
            return str(node.get(attr)).strip()
    name = node.find(".//*[@itemprop='name']")
    target = name if name is not None else node
    return " ".join(target.text_content().split())[:300]


# ---------------------------------------------------------------- meta and link tags
_TITLE_KEYS = ("og:title", "twitter:title", "citation_title", "dc.title")
_PUBLISHED_KEYS = (
    "article:published_time", "og:published_time", "citation_publication_date",
    "citation_date", "citation_online_date", "dc.date.issued", "dcterms.issued", "dc.date",
    "dcterms.created", "parsely-pub-date", "sailthru.date", "pubdate", "publishdate",
    "publish_date", "date", "article.published", "datepublished",
)
_MODIFIED_KEYS = ("article:modified_time", "og:updated_time", "dcterms.modified", "lastmod")
_AUTHOR_KEYS = ("citation_author", "author", "article:author", "dc.creator", "parsely-author",
                "sailthru.author", "byl")
_SITE_KEYS = ("og:site_name", "application-name", "apple-mobile-web-app-title")


def _read_tags(root: HtmlElement, meta: PageMeta) -> None:
    tags = _meta_tags(root)
    for key in _TITLE_KEYS:
        _add(meta.titles, tags.get(key, [""])[0], META)
    title = root.find(".//title")
    if title is not None:
        _add(meta.titles, " ".join(title.text_content().split())[:2000], META)
    for key in _PUBLISHED_KEYS:
        _add(meta.published, tags.get(key, [""])[0], META)
    for key in _MODIFIED_KEYS:
        _add(meta.modified, tags.get(key, [""])[0], META)
    for key in _AUTHOR_KEYS:
        people = _split_people(tags.get(key, []))
        if people:
            meta.authors.append((people, META))
            break
    meta.site_names.extend(v[0] for k in _SITE_KEYS if (v := tags.get(k)) and v[0])
    _add(meta.image, tags.get("og:image", tags.get("twitter:image", [""]))[0], META)
    meta.times.extend(str(t.get("datetime")) for t in root.xpath("//time[@datetime]")[:20])
    _add(meta.canonical, _link(root, "canonical"), META)
    _add(meta.canonical, tags.get("og:url", [""])[0], META)
    _add(meta.language, (root.get("lang") or root.get("xml:lang") or "").strip(), META)
    _add(meta.language, tags.get("content-language", [""])[0], META)
    _add(meta.language, tags.get("og:locale", [""])[0].replace("_", "-"), META)


_KEY_ATTRS = ("property", "name", "http-equiv", "itemprop")


def _meta_tags(root: HtmlElement) -> dict[str, list[str]]:
    tags: dict[str, list[str]] = {}
    for node in root.iterfind(".//meta"):
        key = next((node.get(a) for a in _KEY_ATTRS if node.get(a)), None)
        content = node.get("content")
        if key and content and content.strip():
            tags.setdefault(key.strip().lower(), []).append(" ".join(content.split()))
    return tags


def _split_people(values: list[str]) -> tuple[str, ...]:
    """One tag per author, or one listing several ("A, B": bylines.people splits it)."""
    names = [clean_name(n) for n in values[:20]]
    return tuple(dict.fromkeys(n for n in names if n and not _looks_like_url(n)))


def _link(root: HtmlElement, rel: str) -> str:
    for node in root.iterfind(".//link[@rel]"):
        if rel in (node.get("rel") or "").lower().split() and node.get("href"):
            return str(node.get("href")).strip()
    return ""


def is_amp(root: HtmlElement) -> bool:
    """<html amp> or <html ⚡>: the page is an AMP page."""
    return "amp" in root.attrib or "⚡" in root.attrib
