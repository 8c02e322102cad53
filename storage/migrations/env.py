"""Alembic environment: runs on the connection storage.engine.migrate gives it; no ini file.

Column types are rendered as plain SQLAlchemy types so that a revision never imports live code
(a migration must keep meaning what it meant when it was written).
"""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from sqlalchemy import JSON, DateTime, Text

from storage.tables import CleanJSON, CleanText, UTCDateTime, compared, metadata

PLAIN_TYPES: dict[type, str] = {
    CleanText: "sa.Text()",
    UTCDateTime: "sa.DateTime()",
    CleanJSON: "sa.JSON()",
}


def render_item(kind: str, obj: Any, autogen_context: Any) -> str | Literal[False]:
    if kind == "type" and type(obj) in PLAIN_TYPES:
        return PLAIN_TYPES[type(obj)]
    return False


def compare_type(_ctx: Any, _col: Any, inspected: Any, metadata_type: Any, *_: Any) -> bool | None:
    """Compare our decorated types by what they store (Text, DateTime, JSON)."""
    plain = {CleanText: Text, UTCDateTime: DateTime, CleanJSON: JSON}.get(type(metadata_type))
    if plain is None:
        return None
    return not isinstance(inspected, plain) and not (
        plain is JSON and inspected.__class__.__name__ in {"JSON", "NullType"}
    )


def run() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("storage migrations run only through storage.engine.migrate")
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER most things
        render_item=render_item,
        compare_type=compare_type,
        include_name=compared,
    )
    with context.begin_transaction():
        context.run_migrations()


run()
