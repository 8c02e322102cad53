"""Bytes of a page to text: BOM, HTTP charset, <meta>, then detection; does not parse HTML."""

from __future__ import annotations

import codecs
import re

from charset_normalizer import from_bytes

_HEADER_CHARSET = re.compile(r"charset\s*=\s*[\"']?([\w.:-]+)", re.I)
_META_CHARSET = re.compile(rb"<meta[^>]+charset\s*=\s*[\"']?\s*([\w.:-]+)", re.I)
_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16 LE: its BOM starts the same way
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_PRESCAN = 4096  # the HTML standard looks for <meta charset> in the first 1024 bytes; be lenient
_DETECT = 256 * 1024  # detection on a prefix keeps huge pages cheap


def decode_html(body: bytes, content_type: str | None) -> str:
    """Decode a page the way browsers do (WHATWG order), never raising on bad bytes.

    A declared charset that the bytes contradict (strict decoding fails) gives way to the next
    candidate: a lying header should not turn a whole article into replacement characters.
    """
    candidates = _candidates(body, content_type)
    for encoding, start in candidates:
        try:
            return body[start:].decode(encoding).replace("\x00", "")
        except (UnicodeDecodeError, LookupError):
            continue
    encoding, start = candidates[0]
    return body[start:].decode(encoding, errors="replace").replace("\x00", "")


def _candidates(body: bytes, content_type: str | None) -> list[tuple[str, int]]:
    found: list[tuple[str, int]] = []
    bom = _bom(body)
    # A BOM beats a header in browsers; a header beats everything else.
    if bom:
        found.append(bom)
    header = _label(_HEADER_CHARSET.search(content_type or ""))
    if header:
        found.append((header, 0))
    meta = _META_CHARSET.search(body[:_PRESCAN])
    if meta:
        label = _normalize(meta.group(1).decode("ascii", "replace"))
        if label and label.startswith(("utf-16", "utf-32")):
            label = "utf-8"  # an ASCII-readable <meta> cannot be in UTF-16 (WHATWG)
        if label:
            found.append((label, 0))
    found.append((_detect(body), 0))
    return found


def _bom(body: bytes) -> tuple[str, int] | None:
    for mark, encoding in _BOMS:
        if body.startswith(mark):
            return encoding, len(mark)
    return None


def _label(match: re.Match[str] | None) -> str | None:
    return _normalize(match.group(1)) if match else None


def _normalize(label: str) -> str | None:
    """Map a declared label to a Python codec, as WHATWG maps latin-1 to windows-1252."""
    try:
        name = codecs.lookup(label.strip().lower()).name
    except LookupError:
        return None
    aliases = {"latin-1": "cp1252", "iso8859-1": "cp1252", "ascii": "cp1252"}  # WHATWG mapping
    return aliases.get(name, name)


def _detect(body: bytes) -> str:
    """UTF-16 without a BOM shows as NULs in every other byte; else ask charset-normalizer."""
    sniffed = _sniff_utf16(body[:2048])
    if sniffed:
        return sniffed
    best = from_bytes(body[:_DETECT]).best()
    guess = best.encoding if best and best.encoding else "utf-8"
    # A stray NUL makes detectors say UTF-16/32; the sniff above already ruled those out.
    return "utf-8" if guess.replace("_", "-").startswith(("utf-16", "utf-32")) else guess


def _sniff_utf16(head: bytes) -> str | None:
    if len(head) < 8:
        return None
    even, odd = head[0::2], head[1::2]
    if odd.count(0) > 0.2 * len(odd) and even.count(0) < 0.02 * len(even):
        return "utf-16-le"
    if even.count(0) > 0.2 * len(even) and odd.count(0) < 0.02 * len(odd):
        return "utf-16-be"
    return None
