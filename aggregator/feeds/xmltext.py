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
# Characters XML 1.0 forbids (expat would reject the document and hand it to the loose parser).
# Lone surrogates come from decoders such as UTF-7's and cannot even be encoded as UTF-8.
_ILLEGAL_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# Each of them, or (beyond ASCII, in UTF-8 with "surrogatepass") what it starts with: a lead
# byte 0xED is also that of U+D000-U+D7FF. ``in`` finds one character with memchr.
_ILLEGAL_C0 = tuple(chr(c) for c in range(0x20) if chr(c) not in "\t\n\r")
_ILLEGAL_WIDE = (b"\xed", b"\xef\xbf\xbe", b"\xef\xbf\xbf")
# xml.sax joins namespace and local name with a space and splits with str.split(), so
# whitespace inside a namespace URI (written as such or as a reference, ``&#x85;`` included)
# crashes feedparser's strict parser or makes it read ``<a:title>`` as the title. Declarations
# are found by name (a regex led by ``\s`` tries every space of the text); the whitespace that
# must come before one is checked by hand.
_XMLNS_VALUE = re.compile(r"""xmlns(?::[\w.-]+)?\s*=\s*(["'])(.*?)\1""", re.DOTALL)
# The person fields feedparser runs its e-mail regex on (any namespace: dc, itunes, …), and an
# Atom person's parts: in a malformed document its loose parser joins them into one such field.
# CDATA sections and comments are skipped whole: an <author> in a CDATA-wrapped HTML body is text.
_PERSON_NAMES = ("author", "creator", "publisher", "contributor", "managingeditor", "webmaster",
                 "name", "email", "uri")  # fmt: skip
_PERSON_START = re.compile(
    r"<!\[CDATA\[.*?(?:\]\]>|\Z)|<!--.*?(?:-->|\Z)"
    rf"|<((?:[\w.-]+:)?(?:{'|'.join(_PERSON_NAMES)}))"
    r"""((?:\s+[^\s=/>]+\s*=\s*(?:"[^"]*"|'[^']*'))*)\s*>""",
    re.IGNORECASE | re.DOTALL,
)
# Besides ASCII case, IGNORECASE matches these letters to these names' letters.
_FOLDS = {"i": "\u0130\u0131", "s": "\u017f"}
_ATOM_PERSON_CHILD = re.compile(r"<(?:[\w.-]+:)?(?:name|email)[\s/>]", re.IGNORECASE)


def _any_case(word: str) -> str:
    return "".join(f"[{c}{c.upper()}{_FOLDS.get(c, '')}]" for c in word)


# Where a person field starts, if anywhere (CDATA and comments not skipped). Case spelled out
# as IGNORECASE reads it: twice as fast as the scan it spares, in the usual feed with no long
# person field (issue 14).
_ANY_PERSON = re.compile(rf"<(?:[\w.-]+:)?(?:{'|'.join(map(_any_case, _PERSON_NAMES))})")
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
    if "#" not in text or "&#" not in text:  # memchr first: 50x cheaper than the pair search
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


def without_illegal_chars(text: str) -> str:
    """The text without the characters XML 1.0 forbids.

    Almost no feed holds one, and memchr proves it in a tenth of the time of the regex scan
    (issue 14), which then runs only when it may find something.
    """
    if any(c in text for c in _ILLEGAL_C0):
        return _ILLEGAL_XML.sub("", text)
    if not text.isascii():
        data = text.encode("utf-8", "surrogatepass")
        if any(seq in data for seq in _ILLEGAL_WIDE):
            return _ILLEGAL_XML.sub("", text)
    return text


def squeeze_namespaces(text: str) -> str:
    """Whitespace out of the URI of each namespace declaration that follows whitespace,
    references to whitespace included."""
    out: list[str] = []
    copied, pos = 0, 1
    while (match := _XMLNS_VALUE.search(text, pos)) is not None:
        if not text[match.start() - 1].isspace():
            pos = match.start() + 1
            continue
        pos = match.end() + 1
        value = _squeezed(match.group(2))
        if value is not None:
            out += [text[copied : match.start(2)], value]
            copied = match.end(2)
    if not out:
        return text
    out.append(text[copied:])
    return "".join(out)


def _squeezed(uri: str) -> str | None:
    """The URI without whitespace, or None when it has none."""
    value = _CHAR_REF.sub(_unless_space, uri) if "&#" in uri else uri
    if value == uri and not any(c.isspace() for c in value):
        return None
    return "".join(value.split())


def _unless_space(match: re.Match[str]) -> str:
    code = code_point(match.group(1))
    return "" if code is not None and is_xml_char(code) and chr(code).isspace() else match.group(0)


def bound_people(text: str, limit: int = MAX_PERSON) -> tuple[str, int]:
    """Cut person fields whose text exceeds ``limit``; returns (text, how many were cut).

    A cut field keeps its first ``limit`` characters as plain text (child markup, CDATA and
    comments flattened: feedparser joins them all into the string its regex reads). An Atom
    person (``<name>``/``<email>`` children) keeps its structure: its parts are cut one by one.
    """
    if len(text) <= limit or _ANY_PERSON.search(text) is None:
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
