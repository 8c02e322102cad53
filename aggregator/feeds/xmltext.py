"""Text-level repairs of a decoded feed before any parser sees it; reads no entries itself.

Two classes of input break feedparser 6 whatever its parser (issue 10, item 3):
a character reference to a character XML forbids (``&#xD800;``, ``&#x110000;``) crashes it while
encoding, and a long person field (``<author>``, ``<managingEditor>``, …) feeds its quadratic
e-mail regex (40 KB cost 6–12 s of CPU with the GIL held). Both are fixed here, in the text, so
the fast path and feedparser read the same repaired document. Every scan is linear: unterminated
sections run to the end of the text instead of being retried at each later position.
"""

from __future__ import annotations

import re
from xml.sax.saxutils import escape

# feedparser's e-mail regex is quadratic in the length of a person field's text: 500 characters
# cost it under a millisecond; real author fields ("Jane Roe (jane@example.org)") are far shorter.
MAX_PERSON = 500
# References are literal text inside CDATA sections and comments, so those are skipped as units.
_REF_SCAN = re.compile(
    r"<!\[CDATA\[(?:.*?\]\]>|.*)|<!--(?:.*?-->|.*)|&#([xX][0-9A-Fa-f]+|[0-9]+);", re.DOTALL
)
_CHAR_REF = re.compile(r"&#([xX][0-9A-Fa-f]+|[0-9]+);")
_REPLACEMENT = "&#xFFFD;"
# The person fields feedparser runs its e-mail regex on (any namespace: dc, itunes, …), and an
# Atom person's parts: in a malformed document its loose parser joins them into one such field.
# CDATA sections and comments are skipped whole: an <author> in a CDATA-wrapped HTML body is text.
_PERSON_START = re.compile(
    r"<!\[CDATA\[.*?(?:\]\]>|\Z)|<!--.*?(?:-->|\Z)"
    r"|<((?:[\w.-]+:)?(?:author|creator|publisher|contributor|managingeditor|webmaster|name|email"
    r"|uri))"
    r"""((?:\s+[^\s=/>]+\s*=\s*(?:"[^"]*"|'[^']*'))*)\s*>""",
    re.IGNORECASE | re.DOTALL,
)
_ATOM_PERSON_CHILD = re.compile(r"<(?:[\w.-]+:)?(?:name|email)[\s/>]", re.IGNORECASE)
_MARKUP = re.compile(
    r"<!\[CDATA\[(.*?)(?:\]\]>|\Z)|<!--.*?(?:-->|\Z)|<\?.*?(?:\?>|\Z)|<[^<>]*>?", re.DOTALL
)


def code_point(number: str) -> int | None:
    """The value of a reference's number ("x41" or "65"); None when absurdly long."""
    digits = number[1:] if number[0] in "xX" else number
    digits = digits.lstrip("0") or "0"
    if len(digits) > 8:  # also keeps int() clear of Python's 4,300-digit limit
        return None
    return int(digits, 16 if number[0] in "xX" else 10)


def is_xml_char(code: int) -> bool:
    """XML 1.0 ``Char``: tab, newline, return, and the rest but surrogates and U+FFFE/U+FFFF."""
    return (
        code in (0x9, 0xA, 0xD)
        or 0x20 <= code <= 0xD7FF
        or 0xE000 <= code <= 0xFFFD
        or 0x10000 <= code <= 0x10FFFF
    )


def repair_char_refs(text: str) -> tuple[str, int]:
    """Rewrite references to characters XML forbids; returns (text, how many were rewritten).

    A UTF-16 surrogate pair written as two references becomes the one character it encodes.
    Other surrogates and numbers beyond U+10FFFF become U+FFFD, as an HTML5 parser reads them;
    controls and U+FFFE/U+FFFF are removed, as their literal forms are.
    """
    if "&#" not in text:
        return text, 0
    paired: set[int] = set()  # offsets of low surrogates already joined to their high half
    repaired = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal repaired
        number = match.group(1)
        if number is None:
            return match.group(0)  # a CDATA section or a comment
        if match.start() in paired:
            return ""
        code = code_point(number)
        if code is not None and is_xml_char(code):
            return match.group(0)
        joined = _join_pair(code, match)
        if joined:
            paired.add(match.end())
            return joined
        repaired += 1
        if code is None or 0xD800 <= code <= 0xDFFF or code > 0x10FFFF:
            return _REPLACEMENT
        return ""

    return _REF_SCAN.sub(replace, text), repaired


def _join_pair(code: int | None, match: re.Match[str]) -> str | None:
    """``&#xD83D;&#xDE00;`` (a high then a low surrogate) → ``&#x1F600;``."""
    if code is None or not 0xD800 <= code <= 0xDBFF:
        return None
    low = _CHAR_REF.match(match.string, match.end())
    low_code = code_point(low.group(1)) if low else None
    if low_code is None or not 0xDC00 <= low_code <= 0xDFFF:
        return None
    return f"&#x{0x10000 + ((code - 0xD800) << 10) + (low_code - 0xDC00):X};"


def bound_people(text: str, limit: int = MAX_PERSON) -> tuple[str, int]:
    """Cut person fields whose text exceeds ``limit``; returns (text, how many were cut).

    A cut field keeps its first ``limit`` characters as plain text (child markup, CDATA and
    comments flattened: feedparser joins them all into the string its regex reads). An Atom
    person (``<name>``/``<email>`` children) keeps its structure: its parts are cut one by one.
    """
    if len(text) <= limit:
        return text, 0
    out: list[str] = []
    copied = scan = cut = 0
    closers: dict[str, int] = {}  # per name: the end tag found last (len(text) if none is left)
    while (start := _PERSON_START.search(text, scan)) is not None:
        scan, name = start.end(), start.group(1)
        if name is None:
            continue  # a CDATA section or a comment
        if start.start() < closers.get(name, -1):
            continue  # nested in, or unclosed like, the previous one: its end tag is taken
        end = closers[name] = _end_tag(text, name, start.end())
        if end - start.end() <= limit or end == len(text):
            continue
        bounded = _bounded(text[start.end() : end], limit)
        if bounded is None:
            continue
        out += [text[copied : start.end()], bounded]
        copied = scan = end
        cut += 1
    if not cut:
        return text, 0
    out.append(text[copied:])
    return "".join(out), cut


def _end_tag(text: str, name: str, pos: int) -> int:
    """Offset of ``</name>`` (XML names are case-sensitive), or ``len(text)`` if there is none.

    Each search starts past the previous one's result for that name, so all of them together
    read the text once.
    """
    closing = "</" + name
    while (found := text.find(closing, pos)) >= 0:
        after = found + len(closing)
        if after < len(text) and (text[after] == ">" or text[after].isspace()):
            return found
        pos = after
    return len(text)


def _bounded(content: str, limit: int) -> str | None:
    """The field's text cut to ``limit`` (escaped, no reference split), or None to keep it."""
    if _ATOM_PERSON_CHILD.search(content):
        return None
    plain = _MARKUP.sub(lambda m: escape(m.group(1)) if m.group(1) is not None else "", content)
    if len(plain) <= limit:
        return None
    kept = plain[:limit]
    amp = kept.rfind("&")
    if amp >= 0 and ";" not in kept[amp:]:
        kept = kept[:amp]
    return kept
