"""``aggregator export --format warc`` (issue 16): the raw captures as WARC 1.1, a request and a
response record per capture, gzipped per record, written with ``warcio`` (what ``warcio index``,
pywb and the Internet Archive's tools read; writing WARC by hand is how files go subtly bad).

A capture keeps the response's body decoded and the headers that matter, so the response record
says what its block holds: no ``Content-Encoding`` or ``Transfer-Encoding``, and the
``Content-Length`` of the body as stored. The request record is what was asked of the final
URL (the archive keeps no request headers beyond that).
"""

from __future__ import annotations

import http
import io
import sys
from collections.abc import Iterable
from datetime import UTC
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import urlsplit

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from storage.engine import sqlite_file
from storage.files import atomic_bytes
from storage.records import Capture, ExportFilter

if TYPE_CHECKING:
    from storage.store import Store

WARC_VERSION = "1.1"
_DROPPED = {"content-encoding", "transfer-encoding", "content-length"}


def write_warc(
    store: Store, path: Path | None, flt: ExportFilter, *, parents: bool = False
) -> int:
    """Every capture ``flt`` selects to ``path`` (atomically) or standard output; returns
    how many captures were written."""
    captures = (cap for _id, cap in store.browse.iter_captures(flt))
    if path is None:
        count = write_records(captures, sys.stdout.buffer, "stdout.warc.gz")
        sys.stdout.flush()
        return count
    database = sqlite_file(store.url)
    with atomic_bytes(path, parents=parents, avoid=Path(database) if database else None) as out:
        return write_records(captures, out, path.name)


def write_records(captures: Iterable[Capture], out: IO[bytes], filename: str) -> int:
    """A warcinfo record, then a request and a response record per capture."""
    writer = WARCWriter(out, gzip=True, warc_version=WARC_VERSION)
    info = {"software": "feed-archiver", "format": f"WARC File Format {WARC_VERSION}",
            "description": "raw feed documents and article pages as the archive captured them"}
    writer.write_record(writer.create_warcinfo_record(filename, info))
    count = 0
    for cap in captures:
        response = _response(writer, cap)
        writer.write_request_response_pair(_request(writer, cap), response)
        count += 1
    return count


def _warc_date(cap: Capture) -> str:
    when = cap.fetched_at.astimezone(UTC).replace(tzinfo=None)
    return when.isoformat(timespec="microseconds") + "Z"


def _response(writer: WARCWriter, cap: Capture) -> Any:
    headers = [(k, v) for k, v in cap.headers
               if k.lower() not in _DROPPED and not _breaks_line(k, v)]  # fmt: skip
    headers.append(("Content-Length", str(len(cap.body))))
    status = f"{cap.status} {_phrase(cap.status)}".strip()
    http_headers = StatusAndHeaders(status, headers, protocol="HTTP/1.1")
    return writer.create_warc_record(
        cap.final_url, "response", payload=io.BytesIO(cap.body), length=len(cap.body),
        http_headers=http_headers, warc_headers_dict={"WARC-Date": _warc_date(cap)},
    )  # fmt: skip


def _request(writer: WARCWriter, cap: Capture) -> Any:
    parts = urlsplit(cap.final_url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    http_headers = StatusAndHeaders(f"GET {target} HTTP/1.1", [("Host", parts.netloc)],
                                    is_http_request=True)  # fmt: skip
    return writer.create_warc_record(
        cap.final_url, "request", http_headers=http_headers,
        warc_headers_dict={"WARC-Date": _warc_date(cap)},
    )


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


def _breaks_line(*values: str) -> bool:
    return any("\r" in v or "\n" in v for v in values)
