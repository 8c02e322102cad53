"""Turns hostile feed bytes into clean UTF-8 XML for feedparser; reads no entries itself.

feedparser must never see a DTD: when expat refuses an entity bomb, feedparser falls back to a
loose parser that expands entities without limit (DESIGN.md, decision 5). So the whole prolog
(everything before the root element) is replaced by a plain XML declaration, whatever the
document's real encoding, and a C-speed expat pre-scan bounds nesting depth and entry count
before feedparser's slow Python handlers run.
"""

from __future__ import annotations

import codecs
import re
import xml.parsers.expat
from collections.abc import Mapping
from dataclasses import dataclass

from lxml import etree

from aggregator.feeds.xmltext import (
    MAX_PERSON,
    bound_people,
    repair_char_refs,
    squeeze_namespaces,
    without_illegal_chars,
)

MAX_DEPTH = 512  # real feeds nest a dozen elements deep; XHTML content a few dozen more
_ITEM_NAMES = frozenset({"item", "entry"})
_XML_DECL = b'<?xml version="1.0" encoding="utf-8"?>\n'
_DECL_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._:-]+)["']""")
_CHARSET = re.compile(r"""charset\s*=\s*["']?([A-Za-z0-9._:-]+)""", re.IGNORECASE)
_HTML_START = re.compile(r"<(!doctype\s+html|html[\s>])", re.IGNORECASE)
_LOOSE_ITEM = re.compile(rb"<(?:[\w.-]+:)?(?:item|entry)[\s>/]")
_ENTRY_END = re.compile(rb"</(?:[\w.-]+:)?(?:item|entry)\s*>|<(?:[\w.-]+:)?(?:item|entry)[^<>]*/>")
_NAME_START = re.compile(r"[A-Za-z_:\u00c0-\uffff]")
# Inside a markup declaration: quoted strings, comments and brackets must be skipped as units.
_DECL_TOKEN = re.compile(r""""[^"]*"|'[^']*'|<!--.*?-->|[\[\]>]|[^"'\[\]<>]+|.""", re.DOTALL)
# Past the last "-->", an opened comment cannot close: trying would rescan to the end each time.
_DECL_TOKEN_NO_COMMENT = re.compile(r""""[^"]*"|'[^']*'|[\[\]>]|[^"'\[\]<>]+|.""", re.DOTALL)
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


class UnsafeXml(ValueError):
    """The document cannot be made safe (no root element, nesting too deep)."""


@dataclass(frozen=True, slots=True)
class PreparedXml:
    data: bytes  # UTF-8, prolog replaced, illegal characters gone, entries capped
    well_formed: bool  # expat read it whole (feedparser will not need its loose parser)
    warnings: tuple[str, ...]
    last_entry_cut: bool = False  # malformed, and the last entry never closed: it is partial


def hardened_parser(*, recover: bool = False) -> etree.XMLParser:
    """An lxml parser that expands no entity, loads no DTD and touches no network, and keeps no
    comments or processing instructions. One per call: lxml parsers must not be shared between
    threads."""
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                           huge_tree=False, recover=recover, remove_comments=True,
                           remove_pis=True)  # fmt: skip


def looks_like_html(body: bytes) -> bool:
    """An HTML page served where a feed was expected (checked on the first KiB only)."""
    head = body[:1024].decode("latin-1").lstrip("\ufeff\xef\xbb\xbf").lstrip()
    while head.startswith("<!--"):  # a loop, not a regex: (<!--.*?-->\s*)* was exponential
        end = head.find("-->", 4)
        if end < 0:
            return False
        head = head[end + 3 :].lstrip()
    return _HTML_START.match(head) is not None


def prepare_xml(body: bytes, headers: Mapping[str, str], max_entries: int) -> PreparedXml:
    """Decode, drop the prolog (and any DTD with it), strip illegal characters, cap entries."""
    text, warnings = decode_xml(body, headers)
    root, prolog_warning = find_root(text)
    if prolog_warning:
        warnings.append(prolog_warning)
    text, notes = repair_text(without_illegal_chars(text[root:]))
    warnings += notes
    data = _XML_DECL + text.encode("utf-8")
    del text  # a 50 MB text node must not be held three times over
    data, well_formed, cap_warning = cap_entries(data, max_entries)
    if cap_warning:
        warnings.append(cap_warning)
    cut = not well_formed and last_entry_unclosed(data)
    return PreparedXml(data, well_formed, tuple(warnings), cut)


def repair_text(text: str) -> tuple[str, list[str]]:
    """What breaks feedparser whatever its parser: bad references, odd namespaces, long people."""
    notes = []
    text, refs = repair_char_refs(text)
    if refs:
        notes.append(f"references to characters XML forbids: {refs} replaced")
    text = squeeze_namespaces(text)
    text, people = bound_people(text)
    if people:
        notes.append(f"author fields longer than {MAX_PERSON} characters: {people} cut")
    return text, notes


def decode_xml(body: bytes, headers: Mapping[str, str]) -> tuple[str, list[str]]:
    """Decode by BOM, UTF-16/32 sniffing, HTTP charset, XML declaration, then UTF-8 and cp1252.

    A declared encoding that does not fit the bytes is a lie: the next candidate is tried and a
    warning says so. Valid non-ASCII UTF-8 wins over a declared single-byte charset.
    """
    for bom, encoding in _BOMS:
        if body.startswith(bom):
            try:
                return body[len(bom) :].decode(encoding), []
            except UnicodeDecodeError:
                break
    sniffed = _sniff_wide(body)
    if sniffed:
        try:
            return body.decode(sniffed), []
        except UnicodeDecodeError:
            pass
    return _decode_declared(body, _declared(body, headers))


def _sniff_wide(body: bytes) -> str | None:
    """UTF-16/32 without a BOM shows as zero bytes around the first '<' (XML 1.0 appendix F)."""
    b = body[:4]
    if len(b) < 4:
        return None
    if b[1:4] == b"\0\0\0" and b[0]:
        return "utf-32-le"
    if b[0:3] == b"\0\0\0" and b[3]:
        return "utf-32-be"
    if b[0] and not b[1] and b[2] and not b[3]:
        return "utf-16-le"
    if not b[0] and b[1] and not b[2] and b[3]:
        return "utf-16-be"
    return None


def _declared(body: bytes, headers: Mapping[str, str]) -> list[str]:
    names = []
    match = _CHARSET.search(_header(headers, "content-type"))
    if match:
        names.append(match.group(1))
    decl = _DECL_ENCODING.match(body[:512])
    if decl:
        names.append(decl.group(1).decode("ascii"))
    return [n for n in names if _ascii_compatible(n)]


def _ascii_compatible(name: str) -> bool:
    """A readable ASCII prolog cannot be UTF-16: such a declaration is ignored."""
    try:
        return "<?xml".encode(name) == b"<?xml"
    except (LookupError, UnicodeError):
        return False


def _decode_declared(body: bytes, declared: list[str]) -> tuple[str, list[str]]:
    first = declared[0] if declared else None
    order = [*declared, "utf-8", "cp1252"]
    if first and codecs.lookup(first).name != "utf-8" and not body.isascii():
        order.insert(0, "utf-8")  # valid multi-byte UTF-8 almost never occurs by chance
    for encoding in order:
        try:
            text = body.decode(encoding)
        except UnicodeDecodeError:
            continue
        if first is None or body.isascii() or codecs.lookup(encoding) == codecs.lookup(first):
            return text, []
        return text, [f"declared encoding {first} does not fit the bytes; decoded as {encoding}"]
    return body.decode("latin-1"), ["undecodable bytes; decoded as latin-1"]


def _header(headers: Mapping[str, str], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return ""


def find_root(text: str) -> tuple[int, str | None]:
    """Offset of the root element, skipping the XML declaration, comments, PIs, DOCTYPE and junk.

    Everything before it is dropped by the caller, so no entity or DTD can reach a parser.
    """
    pos, dropped_dtd, length = 0, False, len(text)
    last_close: int | None = None
    while pos < length:
        lt = text.find("<", pos)
        if lt < 0 or lt + 1 >= length:
            break
        nxt = text[lt + 1]
        if nxt == "?":
            end = text.find("?>", lt + 2)
            pos = length if end < 0 else end + 2
        elif text.startswith("<!--", lt):
            end = text.find("-->", lt + 4)
            pos = length if end < 0 else end + 3
        elif nxt == "!":
            if last_close is None:
                last_close = text.rfind("-->")
            pos, subset = _skip_declaration(text, lt + 2, last_close)
            dropped_dtd = dropped_dtd or subset
        elif _NAME_START.match(nxt):
            return lt, "DTD internal subset removed" if dropped_dtd else None
        else:
            pos = lt + 1
    raise UnsafeXml("not a feed (no root element)")


def _skip_declaration(text: str, pos: int, last_close: int) -> tuple[int, bool]:
    """End of a ``<!DOCTYPE …>`` (or other ``<!…>``) and whether it had an internal subset.

    ``last_close`` is the offset of the text's last "-->" (found once by the caller).
    """
    depth, had_subset = 0, False
    while pos < len(text):
        tokens = _DECL_TOKEN if pos + 4 <= last_close else _DECL_TOKEN_NO_COMMENT
        token = tokens.match(text, pos)
        if token is None:  # pragma: no cover (the last alternative matches any character)
            break
        pos, value = token.end(), token.group()
        if value == "[":
            depth, had_subset = depth + 1, True
        elif value == "]":
            depth = max(depth - 1, 0)
        elif value == ">" and depth == 0:
            return token.end(), had_subset
    return len(text), had_subset


class _Stop(Exception):
    def __init__(self, offset: int, open_tags: list[str]) -> None:
        super().__init__(offset)
        self.offset, self.open_tags = offset, open_tags


def cap_entries(data: bytes, max_entries: int) -> tuple[bytes, bool, str | None]:
    """Keep the first ``max_entries`` entries; refuse absurd nesting. Returns (data, ok, note)."""
    if data.count(b"<") <= min(MAX_DEPTH, max_entries):
        return _check_only(data, max_entries)
    return _cap_scan(data, max_entries)


def _cap_scan(data: bytes, max_entries: int) -> tuple[bytes, bool, str | None]:
    """``cap_entries`` element by element: depth and entries counted by expat handlers."""
    stack: list[str] = []
    parser = xml.parsers.expat.ParserCreate()
    count = 0

    def start(name: str, _attrs: object) -> None:
        nonlocal count
        stack.append(name)
        if len(stack) > MAX_DEPTH:
            raise UnsafeXml(f"elements nested deeper than {MAX_DEPTH}")
        if len(stack) <= 3 and name.rpartition(":")[2] in _ITEM_NAMES:
            count += 1
            if count > max_entries:
                raise _Stop(parser.CurrentByteIndex, stack[:-1])

    parser.StartElementHandler = start
    parser.EndElementHandler = lambda _name: stack.pop()
    try:
        parser.Parse(data, True)
    except _Stop as stop:
        closing = "".join(f"</{tag}>" for tag in reversed(stop.open_tags)).encode("utf-8")
        return data[: stop.offset] + closing, True, _cap_note(max_entries)
    except xml.parsers.expat.ExpatError:
        return _cap_loose(data, max_entries)
    return data, True, None


def _check_only(data: bytes, max_entries: int) -> tuple[bytes, bool, str | None]:
    """``cap_entries`` for a document with fewer start tags (each opens with "<") than either
    limit: none can be passed, so expat only checks that the XML is well formed, with no Python
    handler called per element (a third of the cost, issue 14)."""
    try:
        xml.parsers.expat.ParserCreate().Parse(data, True)
    except xml.parsers.expat.ExpatError:
        return _cap_loose(data, max_entries)
    return data, True, None


def _cap_loose(data: bytes, max_entries: int) -> tuple[bytes, bool, str | None]:
    """Malformed XML goes to feedparser's loose parser, which needs no closing tags."""
    for index, match in enumerate(_LOOSE_ITEM.finditer(data)):
        if index == max_entries:
            return data[: match.start()], False, _cap_note(max_entries)
    return data, False, None


def last_entry_unclosed(data: bytes) -> bool:
    """A truncated document's last entry is partial (a title cut mid-word): not worth keeping."""
    last = None
    for last in _LOOSE_ITEM.finditer(data):  # noqa: B007 (only the last match matters)
        pass
    return last is not None and _ENTRY_END.search(data, last.end()) is None


def _cap_note(max_entries: int) -> str:
    return f"more than {max_entries} entries; kept the first {max_entries}"
