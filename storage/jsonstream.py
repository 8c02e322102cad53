"""Read one big JSON object incrementally: top-level members, and one array's elements one by one.

The standard library parses whole documents only; an export of a million items must be read in
constant memory, so this walks the outer object by hand and lets ``json`` decode each member
(and each element of the streamed array). Errors carry the line where the value started.

Memory is bounded by the largest value, not by the file (issue 10): more text is read only when
the decoder stopped for want of it (at the end of what is buffered, or inside a string still
open there), never after an error it met in the middle, and one value may take at most
``limit`` characters. Nesting deeper than the interpreter's recursion limit is an error too.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import IO, Any

CHUNK = 1 << 16
_WS = " \t\r\n"
_AT_END = 8  # an error this close to the buffer's end may be a value cut short (``\uXXXX``)


class JsonStreamError(ValueError):
    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line = line
        self.reason = reason


class _Reader:
    """A window on the text: what is consumed is dropped, lines are counted as it goes."""

    def __init__(self, src: IO[str], limit: int) -> None:
        self.src = src
        self.limit = limit
        self.size = 0  # characters of the last value
        self.buf = ""
        self.pos = 0
        self.line = 1
        self.eof = False
        self.decoder = json.JSONDecoder()

    def _fill(self, size: int = CHUNK) -> None:
        chunk = self.src.read(size)
        self.eof = not chunk
        self.buf = self.buf[self.pos :] + chunk
        self.pos = 0

    def peek(self) -> str:
        """The next non-blank character ('' at the end), not consumed."""
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in _WS:
                self.line += self.buf[self.pos] == "\n"
                self.pos += 1
            if self.pos < len(self.buf) or self.eof:
                return self.buf[self.pos : self.pos + 1]
            self._fill()

    def take(self, allowed: str, what: str) -> str:
        char = self.peek()
        if not char or char not in allowed:
            found = repr(char) if char else "the end of the file (truncated?)"
            raise JsonStreamError(self.line, f"expected {what}, found {found}")
        self.pos += 1
        return char

    def value(self) -> Any:
        self.peek()
        while True:
            try:
                value, end = self.decoder.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                if self.eof or not _wants_more(exc, len(self.buf)):
                    line = self.line + self.buf.count("\n", self.pos, exc.pos)
                    raise JsonStreamError(line, f"invalid or truncated JSON ({exc.msg})") from exc
                self._more()
                continue
            except RecursionError:
                raise JsonStreamError(self.line, "nested too deep") from None
            except ValueError as exc:  # e.g. an integer of more than 4,300 digits
                raise JsonStreamError(self.line, f"invalid JSON ({exc})") from exc
            if end == len(self.buf) and not self.eof:  # a number may go on in the next chunk
                self._more()
                continue
            self.line += self.buf.count("\n", self.pos, end)
            self.size = end - self.pos
            self.pos = end
            return value

    def _more(self) -> None:
        """Read on, doubling what is pending (a big value costs O(n log n)), not the buffer
        with the part already read; never more than ``limit`` for one value."""
        pending = len(self.buf) - self.pos
        if pending > self.limit:
            raise JsonStreamError(self.line, f"a value longer than {self.limit:,} characters")
        self._fill(max(CHUNK, pending))


def _wants_more(exc: json.JSONDecodeError, buffered: int) -> bool:
    """Did the decoder stop because the text ran out, rather than at an error in it?"""
    return exc.pos >= buffered - _AT_END or exc.msg.startswith("Unterminated string")


def stream_document(
    src: IO[str], array_key: str, limit: int = 1 << 30
) -> Iterator[tuple[int, str, Any, int]]:
    """Yield (line, key, value, size) per top-level member; ``array_key``'s elements one at a
    time. ``size`` is the value's length in characters; no value may exceed ``limit``."""
    reader = _Reader(src, limit)
    reader.take("{", "'{' to open the document")
    if reader.peek() == "}":
        reader.pos += 1
    else:
        yield from _members(reader, array_key)
    if reader.peek():
        raise JsonStreamError(reader.line, "unexpected data after the document")


def _members(reader: _Reader, array_key: str) -> Iterator[tuple[int, str, Any, int]]:
    while True:
        reader.peek()
        line = reader.line
        key = reader.value()
        if not isinstance(key, str):
            raise JsonStreamError(line, "expected a member name")
        reader.take(":", "':'")
        if key == array_key:
            yield from _elements(reader, key)
        else:
            reader.peek()
            line = reader.line
            yield line, key, reader.value(), reader.size
        if reader.take(",}", "',' or '}'") == "}":
            return


def _elements(reader: _Reader, key: str) -> Iterator[tuple[int, str, Any, int]]:
    reader.take("[", f"'[' to open {key!r}")
    if reader.peek() == "]":
        reader.pos += 1
        return
    while True:
        reader.peek()
        line = reader.line
        value = reader.value()
        yield line, key, value, reader.size
        if reader.take(",]", "',' or ']'") == "]":
            return
