"""Export files: streamed writing (atomic) and streamed, validated reading. No SQL here.

Formats (docs/export-format.md): JSON Lines, one item per line, each with ``"format_version": 2``;
or one JSON document ``{"format": "feed-archiver-export", "version": 2, "exported_at": ...,
"items": [...]}`` written and read incrementally. Items are checked against the JSON Schema in
``storage/schema/export-v2.json``. Version 1 files (``canonical_url`` held the key of
deduplication, now ``canonical_key``) are read too.

Reading validates the *whole file first* (the schema, then every value against what both
databases store: ``storage.importer.prepare_record``), then reads it again to hand out items:
a bad file is refused before anything is written. Lines and values are read in memory bounded
by ``MAX_ITEM_CHARS``, whatever the file's size.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import stat
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from storage.engine import sqlite_file
from storage.errors import ExportError, ExportFormatError
from storage.exportschema import item_validator
from storage.files import atomic_text, file_kind
from storage.importcheck import BadRecord, Record
from storage.importer import prepare_record
from storage.jsonstream import JsonStreamError, stream_document
from storage.records import ExportFilter
from storage.redact import strip_credentials
from storage.safehtml import sanitize_record

if TYPE_CHECKING:
    from storage.store import Store

FORMAT = "feed-archiver-export"
VERSION = 2
READABLE = (1, 2)  # version 1: no canonical_key; its canonical_url was the key (issue 13)
MAX_ITEM_CHARS = 64 << 20  # one item's JSON: bounds the memory a line (or a bad value) takes
PROBE_CHARS = 1 << 20  # of the first line, read to tell JSON Lines from one document


def write_export(
    store: Store, path: Path | None, fmt: str, flt: ExportFilter, now: datetime | None = None,
    *, parents: bool = False,
) -> int:  # fmt: skip
    """Write the items ``flt`` selects; returns how many. ``path`` None means standard output.

    A file is written atomically and only onto a regular file or a new path (``storage.files``);
    its folder must exist unless ``parents``."""
    if fmt not in ("json", "jsonl"):
        raise ExportError(f"export: unknown format {fmt!r} (json or jsonl)")
    exported_at = (now or datetime.now(UTC)).isoformat()
    if path is None:
        count = _write(store, sys.stdout, fmt, flt, exported_at)
        sys.stdout.flush()
        return count
    database = sqlite_file(store.url)
    with atomic_text(path, parents=parents, avoid=Path(database) if database else None) as out:
        count = _write(store, out, fmt, flt, exported_at)
    return count


def _items(store: Store, flt: ExportFilter) -> Iterator[dict[str, Any]]:
    """The items to write. A feed is known by its URL without ``user:password@`` (issue 11):
    an archive from before may still hold them, an export never does, so that it re-imports
    onto the feed the configuration names. Secret query parameters stay: they are part of the
    feed's URL, and an export is a backup that must find its feeds again."""
    for item in store.iter_items(flt):
        if "@" in item["feed_url"]:
            item["feed_url"] = strip_credentials(item["feed_url"])
        for sighting in item.get("sightings") or ():
            if "@" in sighting["feed_url"]:
                sighting["feed_url"] = strip_credentials(sighting["feed_url"])
        yield item


def _write(store: Store, out: IO[str], fmt: str, flt: ExportFilter, exported_at: str) -> int:
    count = 0
    if fmt == "jsonl":
        for item in _items(store, flt):
            out.write(_dumps({"format_version": VERSION} | item) + "\n")
            count += 1
        return count
    header = {"format": FORMAT, "version": VERSION, "exported_at": exported_at}
    out.write(_dumps(header)[:-1] + ',"items":[\n')
    for item in _items(store, flt):
        out.write(("," if count else "") + _dumps(item) + "\n")
        count += 1
    out.write("]}\n")
    return count


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# -- reading ---------------------------------------------------------------------------------


def read_export(path: Path) -> Iterator[dict[str, Any]]:
    """The file's items, validated, their HTML sanitized. The whole file is checked before the
    first item is given."""
    for record in read_records(path):
        yield record.item


def read_records(path: Path) -> Iterator[Record]:
    """The file's items with their lines, their HTML sanitized (stored HTML is safe, whoever
    wrote the file: issue 11). The whole file is checked before the first one (so it is read
    twice: a FIFO or a device is refused, not waited on)."""
    with contextlib.suppress(OSError):  # a missing file is reported by the open below
        mode = path.stat().st_mode
        if not stat.S_ISREG(mode):
            raise ExportFormatError(f"{path} is {file_kind(mode)}; import reads a regular file")
    for _ in _records(path, validate=True):
        pass
    for record in _records(path, validate=False):  # parse errors would still raise
        yield dataclasses.replace(record, item=sanitize_record(record.item))


def _records(path: Path, validate: bool) -> Iterator[Record]:
    try:
        with path.open("r", encoding="utf-8") as src:
            first = _first_line(src)
            src.seek(0)
            reader = _jsonl if _is_jsonl(first) else _document
            for index, (line, size, item) in enumerate(reader(path, src)):
                record = Record(line, index, item, size)
                if validate:
                    _validate(path, record)
                yield record
    except UnicodeDecodeError as exc:
        raise ExportFormatError(f"{path}: not UTF-8 text ({exc.reason})") from exc
    except OSError as exc:
        raise ExportFormatError(f"{path}: cannot read: {exc.strerror or exc}") from exc


def _first_line(src: IO[str]) -> str:
    """The first line that is not blank, or its first ``PROBE_CHARS`` (enough to tell the form)."""
    while line := src.readline(PROBE_CHARS):
        if line.strip():
            return line.strip()
    return ""


def _is_jsonl(first: str) -> bool:
    with contextlib.suppress(ValueError, RecursionError):
        value = json.loads(first)
        return isinstance(value, dict) and "format_version" in value
    return first.startswith('{"format_version"')  # a first line too long to read whole


def _jsonl(path: Path, src: IO[str]) -> Iterator[tuple[int, int, dict[str, Any]]]:
    number = 0
    while line := src.readline(MAX_ITEM_CHARS + 1):  # bounded: one line never fills memory
        number += 1
        if len(line) > MAX_ITEM_CHARS:
            raise ExportFormatError(
                f"{path}: line {number}: longer than {MAX_ITEM_CHARS:,} characters "
                "(an item may hold no more)"
            )
        if not line.strip():
            continue
        yield number, len(line), _jsonl_item(path, number, line)


def _jsonl_item(path: Path, number: int, line: str) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except RecursionError:
        raise ExportFormatError(f"{path}: line {number}: nested too deep") from None
    except ValueError as exc:
        raise ExportFormatError(f"{path}: line {number}: not valid JSON ({exc})") from exc
    if not isinstance(value, dict):
        raise ExportFormatError(f"{path}: line {number}: an item must be a JSON object")
    version = value.pop("format_version", None)
    if version not in READABLE:
        raise ExportFormatError(
            f"{path}: line {number}: format_version {version!r} is not supported "
            f"(this program reads versions 1 and {VERSION})"
        )
    return value


def _document(path: Path, src: IO[str]) -> Iterator[tuple[int, int, dict[str, Any]]]:
    header: dict[str, Any] = {}
    try:
        for line, key, value, size in stream_document(src, "items", MAX_ITEM_CHARS):
            if key != "items":
                header[key] = value
                _check_header(path, line, header)
                continue
            if "version" not in header:
                raise ExportFormatError(f"{path}: line {line}: items come before the version")
            if not isinstance(value, dict):
                raise ExportFormatError(f"{path}: line {line}: an item must be a JSON object")
            yield line, size, value
    except JsonStreamError as exc:
        raise ExportFormatError(f"{path}: line {exc.line}: {exc.reason}") from exc
    if header.get("format") != FORMAT or "version" not in header:
        raise ExportFormatError(f"{path}: not a {FORMAT} file (no format and version header)")


def _check_header(path: Path, line: int, header: dict[str, Any]) -> None:
    if "format" in header and header["format"] != FORMAT:
        raise ExportFormatError(f"{path}: line {line}: format {header['format']!r} is not {FORMAT}")
    if "version" in header and header["version"] not in READABLE:
        raise ExportFormatError(
            f"{path}: line {line}: version {header['version']!r} is not supported "
            f"(this program reads versions 1 and {VERSION})"
        )


def _validate(path: Path, record: Record) -> None:
    """The schema, every time, then every value against what both databases store."""
    item = record.item
    error = next(iter(item_validator().iter_errors(item)), None)
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(item)"
        raise ExportFormatError(f"{path}: {record.where()}: {where}: {error.message}")
    _check_times(path, record)
    try:
        prepare_record(item)
    except BadRecord as exc:
        raise ExportFormatError(f"{path}: {record.where()}, id {item['id']!r}: {exc}") from None


def _check_times(path: Path, record: Record) -> None:
    """The schema's pattern admits what Python parses, but a date like 2024-02-31 slips by."""
    item = record.item
    stamps = [item.get(k) for k in ("published", "updated", "first_seen", "last_seen")]
    stamps += [s.get(k) for s in item["sightings"] for k in ("first_seen", "last_seen")]
    stamps += [r["recorded_at"] for r in item["revisions"]]
    for stamp in stamps:
        try:
            if stamp is not None:
                datetime.fromisoformat(stamp)
        except ValueError as exc:
            raise ExportFormatError(f"{path}: {record.where()}: bad time {stamp!r}") from exc
