"""Read one big JSON object incrementally: top-level members, and one array's elements one by one.

The standard library parses whole documents only; an export of a million items must be read in
constant memory, so this walks the outer object by hand and lets ``json`` decode each member
(and each element of the streamed array). Errors carry the line where the value started.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import IO, Any

CHUNK = 1 << 16
_WS = " \t\r\n"


class JsonStreamError(ValueError):
    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line = line
        self.reason = reason


class _Reader:
    """A window on the text: what is consumed is dropped, lines are counted as it goes."""

    def __init__(self, src: IO[str]) -> None:
        self.src = src
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
                if self.eof:
                    line = self.line + self.buf.count("\n", self.pos, exc.pos)
                    raise JsonStreamError(line, f"invalid or truncated JSON ({exc.msg})") from exc
                self._fill(max(CHUNK, len(self.buf)))  # doubling: big values cost O(n log n)
                continue
            if end == len(self.buf) and not self.eof:  # a number may go on in the next chunk
                self._fill(max(CHUNK, len(self.buf)))
                continue
            self.line += self.buf.count("\n", self.pos, end)
            self.pos = end
            return value


def stream_document(src: IO[str], array_key: str) -> Iterator[tuple[int, str, Any]]:
    """Yield (line, key, value) per top-level member; ``array_key``'s elements one at a time."""
    reader = _Reader(src)
    reader.take("{", "'{' to open the document")
    if reader.peek() == "}":
        reader.pos += 1
    else:
        yield from _members(reader, array_key)
    if reader.peek():
        raise JsonStreamError(reader.line, "unexpected data after the document")


def _members(reader: _Reader, array_key: str) -> Iterator[tuple[int, str, Any]]:
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
            yield reader.line, key, reader.value()
        if reader.take(",}", "',' or '}'") == "}":
            return


def _elements(reader: _Reader, key: str) -> Iterator[tuple[int, str, Any]]:
    reader.take("[", f"'[' to open {key!r}")
    if reader.peek() == "]":
        reader.pos += 1
        return
    while True:
        reader.peek()
        line = reader.line
        yield line, key, reader.value()
        if reader.take(",]", "',' or ']'") == "]":
            return
