"""Choose the headline among a page's title candidates and strip outlet names; pure string work."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

GENERIC = "generic"
MAX_TITLE = 1000  # a 64 KB <title> is an attack or an accident, never a headline
_SEPARATORS = re.compile(r"\s+(?:[|•·»«/:]|::|-{1,2}|[–—])\s+|(?<=\w):\s+")
_SPACE = re.compile(r"\s+")
_SIMILAR = 0.6  # word-set Jaccard above which an <h1> and a stated title are one headline


def normalize(text: str) -> str:
    """Case- and punctuation-blind form for comparing candidates."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(re.findall(r"\w+", text))


def clean(text: str) -> str:
    return _SPACE.sub(" ", text).strip()[:MAX_TITLE]


def strip_site_name(title: str, site_names: Sequence[str], host: str) -> str:
    """Drop a leading or trailing segment that names the outlet ("Headline | Outlet")."""
    parts = _SEPARATORS.split(title)
    if len(parts) < 2:
        return title
    names = {normalize(n) for n in site_names if n} | _host_names(host)
    names.discard("")
    for index in (-1, 0):
        part = normalize(parts[index])
        if part and (part in names or any(_names_match(part, n) for n in names)):
            rest = parts[:-1] if index == -1 else parts[1:]
            return _rejoin(title, rest)
    return title


def _names_match(part: str, name: str) -> bool:
    """"The Outlet" / "outlet com" / "Outlet.com" all name the outlet "Outlet"."""
    squashed, bare = part.replace(" ", ""), name.replace(" ", "")
    if squashed.startswith("the"):
        squashed = squashed[3:]
    if squashed == bare:
        return True
    return len(bare) > 3 and squashed.startswith(bare) and len(squashed) - len(bare) <= 4


_NOT_NAMES = frozenset({"www", "amp", "m", "mobile", "co", "com", "net", "org", "gov", "edu", "ac"})


def _host_names(host: str) -> set[str]:
    """"entermedia.co.kr" names the outlet "entermedia" (no public-suffix list needed here)."""
    labels = host.lower().split(".")[:-1]  # the last label is a TLD
    names = {normalize(x) for x in labels if x not in _NOT_NAMES and len(x) > 2}
    return names | {normalize(host)} if names else set()


def _rejoin(title: str, parts: list[str]) -> str:
    """Put the remaining segments back with the separators the page used."""
    first, last = parts[0], parts[-1]
    start = title.find(first)
    end = title.rfind(last) + len(last)
    return title[start:end].strip() if start >= 0 and end > start else " - ".join(parts)


def choose(
    candidates: Sequence[tuple[str, str]],
    headings: Sequence[str],
    site_names: Sequence[str],
    host: str,
) -> tuple[str, str] | None:
    """(title, source): the <h1> that matches a stated title, else the best stated title."""
    site_names = [*site_names, *_logo_headings(candidates, headings)]
    stated = [(strip_site_name(clean(t), site_names, host), s) for t, s in candidates if clean(t)]
    stated = [(t, s) for t, s in stated if t]
    for heading in (clean(h) for h in headings):
        match = _matching(heading, stated)
        if match is not None:
            return heading, match
    shown = _shown_headline(headings, stated, site_names, host)
    if shown:
        return shown, GENERIC
    if stated:
        return _agreed(stated)
    if len(headings) == 1 and clean(headings[0]):
        return clean(headings[0]), GENERIC
    return None


def _agreed(stated: Sequence[tuple[str, str]]) -> tuple[str, str]:
    """The stated title most of the others repeat (the first on a tie), untruncated."""
    keys = [normalize(t) for t, _ in stated]
    votes = [sum(1 for j, other in enumerate(keys) if j != i and other == k) for i, k in
             enumerate(keys)]
    best = stated[votes.index(max(votes))]
    if best[0].rstrip().endswith(("…", "...")):
        stem = normalize(best[0])
        longer = (c for c in stated if len(stem) >= 20 and normalize(c[0]).startswith(stem)
                  and len(c[0]) > len(best[0]))
        best = next(longer, best)
    return best


def _logo_headings(
    candidates: Sequence[tuple[str, str]], headings: Sequence[str]
) -> list[str]:
    """An <h1> that repeats the last, shorter segment of a title is the outlet's logo: its name."""
    found = []
    for title, _ in candidates:
        parts = _SEPARATORS.split(clean(title))
        if len(parts) >= 2 and len(parts[-1]) < max(len(p) for p in parts[:-1]):
            last = normalize(parts[-1])
            found += [h for h in headings if normalize(h) == last]
    return found


def _shown_headline(
    headings: Sequence[str], stated: Sequence[tuple[str, str]], site_names: Sequence[str], host: str
) -> str | None:
    """The one <h1> that tells the same story in other words than the SEO title: the reader's.

    "Two federal prison officers charged …" shown, "Prison guards charged …" in <title> and
    og:title: the page's headline is what a citation quotes (issue 17).
    """
    outlets = {normalize(n) for n in site_names} | _host_names(host)
    outlets |= {normalize(p) for t, _ in stated for p in _SEPARATORS.split(t)[1:]}
    eligible = [
        h for h in (clean(x) for x in headings)
        if len(h.split()) >= 3 and normalize(h) not in outlets
    ]
    if len(eligible) != 1:
        return None
    words = _content_words(eligible[0])
    if any(len(words & _content_words(title)) >= 2 for title, _ in stated):
        return eligible[0]
    return None


def _content_words(text: str) -> set[str]:
    return {w for w in normalize(text).split() if len(w) >= 4}


def _matching(heading: str, stated: Sequence[tuple[str, str]]) -> str | None:
    """The source of a stated title this heading confirms (equal, or a truncated prefix)."""
    key = normalize(heading)
    if len(key) < 3:
        return None
    for title, source in stated:
        other = normalize(title)
        if other == key or (len(other) >= 20 and key.startswith(other)):
            return source
        if _is_segment(key, _SEPARATORS.split(title)):
            return source  # "Headline | Section | Outlet" with an unknown outlet name
        if other.startswith(key + " ") and len(key.split()) >= 3:
            return source  # "Headline – Unknown Outlet": the page's <h1> is the headline itself
        if _similar(key, other):
            return source  # "HS Roundup: …" stated, "High School Roundup: …" shown: show wins
    return None


def _is_segment(key: str, parts: list[str]) -> bool:
    """The heading is one segment of the title, and not the outlet's name at its end: a logo
    <h1> "Outlet" against "Headline | Outlet" is no headline."""
    for index, part in enumerate(parts):
        if normalize(part) != key:
            continue
        last = index == len(parts) - 1 and len(parts) > 1
        if not last or len(part) >= max(len(p) for p in parts[:-1]):
            return True
    return False


def _similar(a: str, b: str) -> bool:
    """Most words shared: the same headline, edited for a different place."""
    left, right = set(a.split()), set(b.split())
    if len(left) < 4 or len(right) < 4:
        return False
    return len(left & right) / len(left | right) >= _SIMILAR
