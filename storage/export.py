"""Export files: streamed writing (atomic) and streamed, validated reading. No SQL here.

Formats (docs/export-format.md): JSON Lines, one item per line, each with ``"format_version": 1``;
or one JSON document ``{"format": "feed-archiver-export", "version": 1, "exported_at": ...,
"items": [...]}`` written and read incrementally. Items are checked against the JSON Schema in
``storage/schema/export-v1.json``.

Reading validates the *whole file first*, then reads it again to hand out items: a bad file
is refused before anything is imported, so the archive is never left half-loaded by it.
"""

from __future__ import annotations

import contextlib
import json
import stat
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from jsonschema import Draft202012Validator

from storage.engine import sqlite_file
from storage.errors import ExportError, ExportFormatError
from storage.files import atomic_text, file_kind
from storage.jsonstream import JsonStreamError, stream_document
from storage.records import ExportFilter
from storage.redact import strip_credentials
from storage.safehtml import sanitize_record

if TYPE_CHECKING:
    from storage.store import Store

FORMAT = "feed-archiver-export"
VERSION = 1


@cache
def item_validator() -> Draft202012Validator:
    schema = json.loads(files("storage").joinpath("schema/export-v1.json").read_text("utf-8"))
    return Draft202012Validator({"$ref": "#/$defs/item", "$defs": schema["$defs"]})


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
    first item is given (so it is read twice: a FIFO or a device is refused, not waited on)."""
    with contextlib.suppress(OSError):  # a missing file is reported by the open below
        mode = path.stat().st_mode
        if not stat.S_ISREG(mode):
            raise ExportFormatError(f"{path} is {file_kind(mode)}; import reads a regular file")
    for _ in _records(path, validate=True):
        pass
    for _line, item in _records(path, validate=False):  # parse errors would still raise
        yield sanitize_record(item)  # stored HTML is safe, whoever wrote the file (issue 11)


def _records(path: Path, validate: bool) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        with path.open("r", encoding="utf-8") as src:
            first = _first_line(src)
            src.seek(0)
            reader = _jsonl if _is_jsonl(first) else _document
            for index, (line, item) in enumerate(reader(path, src)):
                if validate:
                    _validate(path, line, index, item)
                yield line, item
    except UnicodeDecodeError as exc:
        raise ExportFormatError(f"{path}: not UTF-8 text ({exc.reason})") from exc
    except OSError as exc:
        raise ExportFormatError(f"{path}: cannot read: {exc.strerror or exc}") from exc


def _first_line(src: IO[str]) -> str:
    for line in src:
        if line.strip():
            return line.strip()
    return ""


def _is_jsonl(first: str) -> bool:
    with contextlib.suppress(ValueError):
        value = json.loads(first)
        return isinstance(value, dict) and "format_version" in value
    return False


def _jsonl(path: Path, src: IO[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, line in enumerate(src, start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError as exc:
            raise ExportFormatError(f"{path}: line {number}: not valid JSON ({exc})") from exc
        if not isinstance(value, dict):
            raise ExportFormatError(f"{path}: line {number}: an item must be a JSON object")
        version = value.pop("format_version", None)
        if version != VERSION:
            raise ExportFormatError(
                f"{path}: line {number}: format_version {version!r} is not supported "
                f"(this program reads version {VERSION})"
            )
        yield number, value


def _document(path: Path, src: IO[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    header: dict[str, Any] = {}
    try:
        for line, key, value in stream_document(src, "items"):
            if key != "items":
                header[key] = value
                _check_header(path, line, header)
                continue
            if "version" not in header:
                raise ExportFormatError(f"{path}: line {line}: items come before the version")
            if not isinstance(value, dict):
                raise ExportFormatError(f"{path}: line {line}: an item must be a JSON object")
            yield line, value
    except JsonStreamError as exc:
        raise ExportFormatError(f"{path}: line {exc.line}: {exc.reason}") from exc
    if header.get("format") != FORMAT or "version" not in header:
        raise ExportFormatError(f"{path}: not a {FORMAT} file (no format and version header)")


def _check_header(path: Path, line: int, header: dict[str, Any]) -> None:
    if "format" in header and header["format"] != FORMAT:
        raise ExportFormatError(f"{path}: line {line}: format {header['format']!r} is not {FORMAT}")
    if "version" in header and header["version"] != VERSION:
        raise ExportFormatError(
            f"{path}: line {line}: version {header['version']!r} is not supported "
            f"(this program reads version {VERSION})"
        )


def _validate(path: Path, line: int, index: int, item: dict[str, Any]) -> None:
    error = next(iter(item_validator().iter_errors(item)), None)
    if error is None:
        _check_times(path, line, index, item)
        return
    where = "/".join(str(p) for p in error.absolute_path) or "(item)"
    raise ExportFormatError(f"{path}: line {line} (item {index}): {where}: {error.message}")


def _check_times(path: Path, line: int, index: int, item: dict[str, Any]) -> None:
    """The schema's pattern admits what Python parses, but a date like 2024-02-31 slips by."""
    stamps = [item.get(k) for k in ("published", "updated", "first_seen", "last_seen")]
    stamps += [s.get(k) for s in item["sightings"] for k in ("first_seen", "last_seen")]
    stamps += [r["recorded_at"] for r in item["revisions"]]
    for stamp in stamps:
        try:
            if stamp is not None:
                datetime.fromisoformat(stamp)
        except ValueError as exc:
            raise ExportFormatError(
                f"{path}: line {line} (item {index}): bad time {stamp!r}"
            ) from exc
