"""Bylines to person names: split, cleaned, and rid of outlets, agencies, roles and dates; pure.

A byline is cited as who wrote the story. "By TOM KRISHER, AP Auto Writer", "Reuters",
"Staff Reports", "Analysis by Chris Cillizza, CNN Editor-at-large" or "Photo: Jane Doe" name no
author, or name one among furniture: only the persons are kept (issue 17).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence

from lxml import etree  # type: ignore[import-untyped,unused-ignore]
from lxml.html import HtmlElement  # type: ignore[import-untyped,unused-ignore]

MAX_NAMES = 10
_MAX_BYLINE = 300  # characters of one byline looked at
_LEAD = re.compile(
    r"^(?:(?:written|posted|reported|analysis|text|story|words|compiled|edited)\s+)?"
    r"(?:by|von|par|por|di|door|av|af|от)\s+|^(?:text|texte|texto|autor|author|auteur|"
    r"текст|автор|reporter|report|written)\s*[:：]\s*",
    re.I,
)
_CREDIT = re.compile(r"^(?:photo|foto|фото|image|picture|credit|illustration|video)s?\b", re.I)
_SPLIT = re.compile(
    r"\s*(?:;|\||•|·|\s[–—-]\s|\n|,\s*(?:and|&)\s+|\s(?:and|&|und|et|e|y|и|та)\s)\s*"
)
_COMMA = re.compile(r"\s*,\s*")
_TRAILING = re.compile(r"(?:\s+(?:on|at|am|le|el|em|il|в|de|du|the))+\s*$", re.I)
_GLUED = re.compile(
    r"(?<=[a-z])(?=(?:Mon|Tues|Wednes|Thurs|Fri|Satur|Sun)day|(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|"
    r"Sep|Oct|Nov|Dec)[a-z]*\.?\s*\d|Updated|Published|Posted|Associated Press|View |Follow )"
)
_DATEISH = re.compile(
    r"\d|\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+\d|"
    r"\b(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*day\b|\b(?:updated|published|posted|ago)\b",
    re.I,
)
# Words that make a "name" an outlet, a desk, a role or a credential, never a person.
_NOT_PERSON = frozenset({
    "staff", "team", "desk", "editor", "editors", "editorial", "redaktion", "redacción",
    "redação", "rédaction", "redazione", "bureau", "newsroom", "news", "press", "media",
    "agency", "agencies", "wire", "wires", "service", "services", "reports", "report",
    "reporter", "reporters", "writer", "writers", "correspondent", "correspondents",
    "columnist", "contributor", "contributors", "contributing", "senior", "chief",
    "political", "national", "international", "sports", "sport", "business", "insider",
    "magazine", "times", "post", "journal", "daily", "weekly", "tribune", "herald", "gazette",
    "network", "channel", "radio", "tv", "television", "online", "digital", "group", "inc",
    "ltd", "llc", "co", "corp", "company", "foundation", "institute", "university",
    "department", "ministry", "office", "council", "association", "society", "admin",
    "administrator", "webmaster", "guest", "anonymous", "unknown", "user", "users", "gast",
    "гость", "редакция", "корреспондент", "пресс-служба", "служба", "агентство",
    "correspondente", "desk-editor", "opinion", "analysis", "multiple",
    "sources", "source", "about", "more", "recent", "stories", "posts", "articles", "view",
    "all", "follow", "contact", "email", "subscribe", "by", "von", "par", "por", "author",
    "authors", "autor", "autores", "auteur", "newsdesk", "producer", "produced",
})
_AGENCIES = frozenset({
    "reuters", "ap", "associated press", "the associated press", "afp", "agence france-presse",
    "agence france presse", "pti", "ians", "ani", "upi", "dpa", "xinhua", "tass", "ria novosti",
    "efe", "ansa", "kyodo", "yonhap", "bloomberg", "anadolu", "bernama", "interfax", "sputnik",
    "kazinform", "kyodo news", "aap", "cna", "apa", "bna", "wam", "sana", "irna", "mena",
})
_NUMERALS = frozenset({"II", "III", "IV", "Jr", "Sr"})
_PARTICLES = frozenset({
    "de", "da", "do", "dos", "das", "del", "della", "di", "du", "van", "von", "der", "den", "ter",
    "la", "le", "bin", "binti", "al", "el", "ibn", "y", "e", "st.",
})


def people(
    raw: Iterable[str], outlet_names: Sequence[str] = (), host: str = ""
) -> tuple[str, ...]:
    """The persons named by these byline strings, in order, each once."""
    outlets = {_key(n) for n in outlet_names if n} | _host_keys(host)
    found: list[str] = []
    for text in raw:
        found.extend(names_in(text, outlets))
        if len(found) >= MAX_NAMES:
            break
    return tuple(dict.fromkeys(found))[:MAX_NAMES]


def names_in(byline: str, outlets: set[str] | frozenset[str] = frozenset()) -> list[str]:
    """"By Jane Doe and John Roe, Reuters" → ["Jane Doe", "John Roe"]."""
    text = " ".join(unicodedata.normalize("NFKC", byline).split())[:_MAX_BYLINE]
    if not text or _CREDIT.match(text):
        return []
    text = _GLUED.sub(" ", text)  # "Jeff FoustMonday, November 18"
    text = _cut_at_date(_strip_lead(text))
    parts = [p for chunk in _SPLIT.split(text) for p in _comma_parts(chunk)]
    alone = len(parts) == 1
    names = (_person(_strip_lead(p), outlets, alone) for p in parts)
    return [n for n in names if n]


def _strip_lead(text: str) -> str:
    for _ in range(2):  # "Analysis by", "Text: By …"
        text = _LEAD.sub("", text.strip(" :,-–—|")).strip()
    return text


def _cut_at_date(text: str) -> str:
    """A byline often runs on into its date or its role line: keep what comes before."""
    m = _DATEISH.search(text)
    return _TRAILING.sub("", text[: m.start()]) if m else text


def _comma_parts(chunk: str) -> list[str]:
    """"Jane Doe, Staff Writer": the part after the comma is a role unless it is another name."""
    parts = [p for p in _COMMA.split(chunk) if p]
    if len(parts) < 2:
        return parts
    if all(len(p.split()) >= 2 for p in parts):
        return parts  # "Stefan Becket, Kathryn Watson, Grace Segers"
    return [parts[0]]  # "Victor Tangermann, FUTURISM", "Ilana Muhlstein, MS, RDN"


def _person(name: str, outlets: set[str] | frozenset[str], alone: bool) -> str:
    """The name as a person's name, or "" when it is not one."""
    name = re.split(r"(?<=\w{2})\.\s+(?=[A-ZА-Я])", name)[0]  # "Finian Cunningham. Sputnik Intl"
    name = name.strip(" .,:;-–—|@()[]\"'“”‘’")
    words = name.split()
    if not 1 <= len(words) <= 5 or (len(words) == 1 and (not alone or name.isupper())):
        return ""
    if name.isupper():
        name = _title_case(name)  # "TOM KRISHER" is printed so, and is Tom Krisher
        words = name.split()
    if any(not _name_word(w) for w in words) or _key(name) in outlets:
        return ""
    if "'s " in name.replace("’", "'") + " ":
        return ""  # "Ryan Reed's Most Recent Stories"
    lowered = {w.casefold().strip(".,") for w in words}
    if lowered & _NOT_PERSON or _key(name) in _AGENCIES or words[0].casefold() == "the":
        return ""
    if len(words) == 1 and _in_host(name, outlets):
        return ""
    return name


def _name_word(word: str) -> bool:
    """Capitalized words, initials and particles: "Sarah", "E.", "van", "O'Neil", "정덕현"."""
    if any(c.isdigit() or c in "@/#:=+_" for c in word) or "http" in word.casefold():
        return False
    if word.casefold() in _PARTICLES:
        return True
    first = next((c for c in word if c.isalpha()), "")
    if not first:
        return False
    if not first.isupper() and first.lower() != first.upper():
        return False  # a cased script that starts lower case: "admin", "kevin-r"
    bare = word.strip(".")
    if bare in _NUMERALS:
        return True  # "Martin Luther King III"
    return not (word.isupper() and 3 <= len(bare) <= 4 and not word.endswith("."))  # CNN, AFP


def _title_case(name: str) -> str:
    return " ".join(w if w.casefold() in _PARTICLES else w.capitalize() for w in name.split())


def _key(text: str) -> str:
    return re.sub(r"[\W_]+", "", unicodedata.normalize("NFKC", text).casefold())


def _host_keys(host: str) -> set[str]:
    labels = [label for label in host.casefold().split(".")[:-1] if len(label) > 3]
    return {_key(label) for label in labels if label not in ("www", "amp")}


def _in_host(name: str, outlets: set[str] | frozenset[str]) -> bool:
    """"Beachbody" on beachbodyondemand.com names the site."""
    key = _key(name)
    return len(key) > 3 and any(key in o for o in outlets)


# ---------------------------------------------------------------- bylines shown on the page
_BYLINE_CLASS = re.compile(r"byline|author|writer|reporter|contributor", re.I)
_NOT_BYLINE = re.compile(r"comment|bio|avatar|desc|about|follow|social|share|image|photo", re.I)
_ELSEWHERE = re.compile(r"comment|related|sidebar", re.I)
_SKIP_TAGS = frozenset({"script", "style", "nav", "footer", "aside", "form", "img", "meta", "link"})


def shown_bylines(root: HtmlElement, limit: int = 12) -> list[str]:
    """Texts of the page's byline elements (class "byline"/"author…", rel=author), first first.

    The innermost element wins over a container holding it, so "By Jane Doe | May 5" reads as its
    name element when there is one. Comment sections and author-bio boxes are skipped.
    """
    hits: list[HtmlElement] = []
    for node in root.iter(etree.Element):
        if node.tag in _SKIP_TAGS or not _is_byline(node) or _in_comments(node):
            continue
        hits.append(node)
        if len(hits) >= limit * 3:
            break
    inner = [n for n in hits if not any(h is not n and _contains(n, h) for h in hits)]
    groups: list[tuple[HtmlElement | None, list[str]]] = []  # co-authors sit side by side
    for node in inner:
        text = " ".join(node.text_content().split())
        if not text or len(text) > _MAX_BYLINE:
            continue
        parent = _outermost(node, hits)
        if groups and groups[-1][0] is parent:
            groups[-1][1].append(text)
        else:
            groups.append((parent, [text]))
    return ["; ".join(texts) for _, texts in groups][:limit]


def _is_byline(node: HtmlElement) -> bool:
    attrib = node.attrib
    if not attrib:
        return False
    if "author" in (attrib.get("rel") or "").split():
        return True
    marks = f"{attrib.get('class') or ''} {attrib.get('id') or ''}"
    return bool(_BYLINE_CLASS.search(marks)) and not _NOT_BYLINE.search(marks)


def _in_comments(node: HtmlElement) -> bool:
    for up in node.iterancestors():
        marks = f"{up.get('class') or ''} {up.get('id') or ''}"
        if up.tag in ("footer", "aside", "nav") or _ELSEWHERE.search(marks):
            return True
    return False


def _outermost(node: HtmlElement, hits: list[HtmlElement]) -> HtmlElement:
    """The widest byline element around ``node``: its names form one byline."""
    top = node
    for up in node.iterancestors():
        if any(up is h for h in hits):
            top = up
    return top


def _contains(outer: HtmlElement, inner: HtmlElement) -> bool:
    return any(up is outer for up in inner.iterancestors())
