"""What PostgreSQL's planner must know of a young archive: statistics (issue 14).

A table that was never analyzed has none, and the planner then guesses that ``column =
ANY(array)`` of a few dozen values matches a fifth of the table: a poll's lookup of fold
candidates by canonical URL or fingerprint read the whole ``items`` table (6 ms at 20,000
items, where the index takes 0.4). Autovacuum analyzes a table a minute or more after 50 + 10 %
of its rows changed; a first poll of a thousand feeds is over by then. So the first batch of
polls that creates items analyzes the tables the poll looks up by list, if they have no
statistics yet: once per process, in its own short transaction, after the batch committed.
Statistics taken on a small table stay good as it grows (the planner keeps the distinct values
of a column like ``canonical_url`` as a fraction of the rows). SQLite needs none of this.
"""

from __future__ import annotations

from sqlalchemy import Connection, bindparam, text

from storage.dialect import TextArray, is_postgres

POLL_LOOKUPS = ("items", "sightings")  # tables read by lists of keys, URLs, fingerprints

_UNKNOWN = text(
    "SELECT c.relname FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace "
    "WHERE c.oid IN (SELECT to_regclass(t) FROM unnest(:tables) AS t) AND NOT EXISTS "
    "(SELECT 1 FROM pg_stats AS s WHERE s.schemaname = n.nspname AND s.tablename = c.relname) "
    "ORDER BY c.relname"
).bindparams(bindparam("tables", type_=TextArray()))


def unanalyzed(conn: Connection, tables: tuple[str, ...] = POLL_LOOKUPS) -> list[str]:
    """Which of ``tables`` (as the search path finds them) have no planner statistics."""
    return [str(name) for name in conn.execute(_UNKNOWN, {"tables": list(tables)}).scalars()]


def analyze_unknown(conn: Connection, tables: tuple[str, ...] = POLL_LOOKUPS) -> list[str]:
    """ANALYZE those of ``tables`` that have no statistics (PostgreSQL; SQLite: nothing); the
    ones analyzed. A table someone else owns is skipped by the server with a warning."""
    if not is_postgres(conn):
        return []
    names = unanalyzed(conn, tables)
    if names:
        quote = conn.dialect.identifier_preparer.quote
        conn.exec_driver_sql(f"ANALYZE {', '.join(quote(name) for name in names)}")
    return names
