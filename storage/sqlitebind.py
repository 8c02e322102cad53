"""How the poll's hot statements hand SQLite their values; ``storage.dialect`` chooses these.

A list is one JSON array read by ``json_each``: one query text and one parameter whatever its
length, where an expanding ``IN (?, ?, ...)`` had SQLAlchemy rewrite the text and bind each
value through its column type at every execution, and sqlite3 prepare a new text for every
length.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import ColumnElement, bindparam, func, select
from sqlalchemy.engine import Dialect
from sqlalchemy.types import UserDefinedType

from storage.tables import strip_nul


def json_each_in(column: ColumnElement[Any], name: str) -> ColumnElement[bool]:
    """``column IN (SELECT value FROM json_each(:name))``: SQLite searches the column's index
    once per value (EXPLAIN QUERY PLAN), as it does for ``IN (?, ?, ...)``."""
    values = func.json_each(bindparam(name, type_=JSONList())).table_valued("value")
    return column.in_(select(values.c.value))


class JSONList(UserDefinedType[list[Any]]):
    """A list of strings or integers sent as one JSON array, NUL stripped as ``CleanText``
    strips it."""

    cache_ok = True

    def get_col_spec(self, **_kw: Any) -> str:
        return "TEXT"

    def bind_processor(self, dialect: Dialect) -> Callable[[list[Any] | None], str | None]:
        return json_list


def json_list(value: list[Any] | None) -> str | None:
    if value is None:
        return None
    dumped = json.dumps(value, ensure_ascii=False)
    if "\\u0000" in dumped:  # a NUL in some string (or a false alarm: a backslash, then u0000)
        dumped = json.dumps(strip_nul(value), ensure_ascii=False)
    return dumped
