"""What BOTH databases store, derived from the declared column types; pure, no queries.

An import must refuse a value before its first write, not half-way (issue 10): SQLite takes any
64-bit integer and strings of any length, PostgreSQL's ``integer`` is 32 bits and its btree
indexes refuse a row over 2,704 bytes; neither stores a lone surrogate, and a time that leaves
the calendar once moved to UTC (``0001-01-01T00:00:00+05:00``) is refused by Python itself.
Each check takes the stricter database, so whatever one accepts the other does too.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import BigInteger, Column, Integer, SmallInteger, String, Table, UniqueConstraint

from storage.errors import StorageError
from storage.tables import CleanJSON, UTCDateTime, utc_naive

# PostgreSQL: a btree row holds at most 2,704 bytes; keep room for the row header and an
# integer key column beside the text (sightings: feed_id, key). Measured, not guessed:
# tests/test_import_bounds.py stores values of this size in every indexed text column.
INDEXED_TEXT_BYTES = 2600
JSON_DEPTH = 64  # the stored JSON (an article) is 3 levels deep; NUL-stripping recurses


def _int_bits(column: Column[Any]) -> int | None:
    kind = column.type
    for cls, bits in ((BigInteger, 64), (SmallInteger, 16), (Integer, 32)):
        if isinstance(kind, cls):
            return bits
    return None


@cache
def indexed(table: Table) -> frozenset[str]:
    """Columns of ``table`` that some index or unique constraint covers."""
    names = {c.name for index in table.indexes for c in index.columns}
    for constraint in table.constraints:
        if isinstance(constraint, UniqueConstraint):
            names |= {c.name for c in constraint.columns}
    return frozenset(names)


def row_problem(table: Table, row: dict[str, Any]) -> tuple[str, str] | None:
    """(column, what is wrong) for the first value of ``row`` neither database would store."""
    checks = _checks(table)
    for name, value in row.items():
        check = checks.get(name)
        problem = None if check is None or value is None else check(value)
        if problem:
            return name, problem
    return None


Check = Callable[[Any], "str | None"]


@cache
def _checks(table: Table) -> dict[str, Check]:
    """Per column of ``table``, the check its type calls for (none for booleans, floats...)."""
    return {c.name: check for c in table.columns if (check := _check(table, c)) is not None}


def _check(table: Table, column: Column[Any]) -> Check | None:
    bits = _int_bits(column)
    if bits is not None:
        return lambda v: _int_problem(v, bits) if isinstance(v, int) else None
    if isinstance(column.type, UTCDateTime):
        return lambda v: _time_problem(v) if isinstance(v, datetime) else None
    if isinstance(column.type, CleanJSON):
        return json_problem
    if isinstance(getattr(column.type, "impl_instance", column.type), String):  # CleanText too
        limit = INDEXED_TEXT_BYTES if column.name in indexed(table) else None
        return lambda v: text_problem(v, limit) if isinstance(v, str) else None
    return None


def _int_problem(value: int, bits: int) -> str | None:
    low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if low <= value <= high:
        return None
    return f"{value} does not fit the database's {bits}-bit integer ({low}..{high})"


def _time_problem(value: datetime) -> str | None:
    try:
        utc_naive(value)
    except OverflowError:
        return f"{value.isoformat()} is outside the calendar once moved to UTC"
    except StorageError as exc:
        return str(exc)
    return None


def text_problem(value: str, max_bytes: int | None) -> str | None:
    """A lone surrogate (no UTF-8 for it), or more bytes than an index holds."""
    if value.isascii():
        size = len(value)
    else:
        try:
            size = len(value.encode("utf-8"))
        except UnicodeEncodeError as exc:
            return f"a lone surrogate (U+{ord(value[exc.start]):04X}) at character {exc.start}"
    if max_bytes is not None and size > max_bytes:
        return f"{size} bytes, more than the {max_bytes} an indexed value may hold"
    return None


def json_problem(value: Any) -> str | None:
    """What PostgreSQL's json refuses (NaN, Infinity, surrogates), or nesting too deep."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        problem = None
        if depth > JSON_DEPTH:
            problem = f"nested more than {JSON_DEPTH} levels deep"
        elif isinstance(node, str):
            problem = text_problem(node, None)
        elif isinstance(node, float) and not math.isfinite(node):
            problem = f"{node} is not a JSON number"
        elif isinstance(node, dict):
            stack.extend((part, depth + 1) for pair in node.items() for part in pair)
        elif isinstance(node, list):
            stack.extend((part, depth + 1) for part in node)
        if problem:
            return problem
    return None
