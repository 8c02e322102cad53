"""One import record, made ready for the database or refused: pure, no queries, no files.

``prepare`` keeps the members the format declares, strips NUL as the columns would (so that
two keys which differ only by a NUL are seen as the one key they become), refuses a record whose
own sightings or revisions repeat, and checks every value it would write against what both
databases store (``storage.bounds``), using the very rows the importer writes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import Table

from storage import bounds
from storage.tables import strip_nul

# item columns whose export member has another name
_ITEM_PATHS = {
    "uid": "id", "feed_id": "feed_url", "published_offset": "published",
    "updated_offset": "updated", "fetched_at": "provenance/fetched_at",
    "final_url": "provenance/final_url", "extractor": "provenance/extractor",
}  # fmt: skip


RowsOf = Callable[[dict[str, Any]], list[tuple[str, Table, dict[str, Any]]]]


class BadRecord(ValueError):
    """A record that cannot be imported; the message names the member (``revisions/0/seq: ...``)."""


@dataclass(frozen=True, slots=True)
class Record:
    """One item of a file and where it was: its line, its index and its size in characters."""

    line: int
    index: int
    item: dict[str, Any]
    size: int = 0

    def where(self) -> str:
        return f"line {self.line} (item {self.index})"


@cache
def declared() -> frozenset[str]:
    """The members an item may carry (the schema's); the others are ignored, not stored."""
    from storage.exportschema import item_schema  # jsonschema loads on the first import only

    return frozenset(item_schema()["properties"])


def prepare(item: dict[str, Any], rows: RowsOf) -> dict[str, Any]:
    """The record as the database will hold it, or ``BadRecord``. ``rows`` builds the rows the
    importer would write for it, each with the member path it comes from and its table."""
    kept = {k: v for k, v in item.items() if k in declared()}
    problem = bounds.json_problem(kept.get("article"))  # before strip_nul recurses into it
    if problem:
        raise BadRecord(f"article: {problem}")
    clean: dict[str, Any] = strip_nul(kept)
    _no_repeats(clean)
    try:
        built = rows(clean)
    except ValueError as exc:  # a time the schema's pattern let by (the Python API skips it)
        raise BadRecord(f"a bad value: {exc}") from exc
    for path, table, row in built:
        found = bounds.row_problem(table, row)
        if found:
            column, what = found
            raise BadRecord(f"{_path(path, column)}: {what}")
    return clean


def _path(prefix: str, column: str) -> str:
    if prefix.endswith("feed_url"):  # a feed row: its one value is that member
        return prefix
    if not prefix:
        return _ITEM_PATHS.get(column, column)
    return f"{prefix}/{'feed_url' if column == 'feed_id' else column}"


def _no_repeats(item: dict[str, Any]) -> None:
    """A record's sightings are one per (feed, key), its revisions one per seq."""
    seen: dict[Any, int] = {}
    for i, s in enumerate(item["sightings"]):
        first = seen.setdefault((s["feed_url"], s["key"]), i)
        if first != i:
            raise BadRecord(f"sightings/{i}: feed and key repeat sightings/{first}")
    seen = {}
    for i, v in enumerate(item["revisions"]):
        first = seen.setdefault(v["seq"], i)
        if first != i:
            raise BadRecord(f"revisions/{i}: seq {v['seq']} repeats revisions/{first}")
