"""Which database URLs the archive accepts, and how long it waits for its database. Stdlib only.

Checked before any engine is made (the configuration loader calls ``check_database_url`` too,
so a bad URL is a configuration error, not a traceback from deep inside SQLAlchemy):

- ``sqlite:///relative/path.db`` and ``sqlite:////absolute/path.db``: a file. In-memory forms
  (``sqlite://``, ``sqlite:///``, ``sqlite:///:memory:``, ``mode=memory``) are refused: a
  service that archives into memory archives nothing.
- ``postgresql+psycopg://user:password@host:port/db``; ``postgresql://`` and ``postgres://``
  are taken as ``postgresql+psycopg://`` (psycopg 3 is the driver installed).
- Anything else (``mysql://``, another PostgreSQL driver, text that is no URL) is refused with a
  message that says what is accepted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from storage.redact import redact_text

ACCEPTED = "sqlite:///path/to/archive.db or postgresql+psycopg://user@host:5432/dbname"
_URL = re.compile(r"^(?P<backend>[A-Za-z][A-Za-z0-9_]*)(?:\+(?P<driver>[A-Za-z0-9_]+))?://(?P<rest>.*)$",
                  re.DOTALL)  # fmt: skip
_POSTGRES = ("postgresql", "postgres")
_PG_DRIVERS = (None, "psycopg")
_SQLITE_DRIVERS = (None, "pysqlite")


@dataclass(frozen=True, slots=True)
class Timeouts:
    """How long to wait for PostgreSQL (SQLite is a local file: its busy timeout is fixed).

    ``connect``: seconds to establish a connection (a server that accepts TCP and never answers
    is given up after this). ``statement``: seconds the server lets one statement run, lock
    waits included (None: no limit); migrations are exempt, they may run long on a big archive.
    """

    connect: float = 10.0
    statement: float | None = 600.0


class DatabaseURLError(ValueError):
    """A URL the archive cannot use; the message says why and what is accepted."""


def check_database_url(url: str) -> str:
    """The URL as the engine should get it (PostgreSQL mapped to psycopg), or DatabaseURLError."""
    text = url.strip()
    match = _URL.match(text)
    if not match or any(c.isspace() for c in text):
        raise DatabaseURLError(f"{_shown(text)!r} is not a database URL; use {ACCEPTED}")
    backend, driver, rest = match["backend"].lower(), match["driver"], match["rest"]
    if backend == "sqlite":
        return _check_sqlite(text, driver, rest)
    if backend in _POSTGRES:
        if driver not in _PG_DRIVERS:
            raise DatabaseURLError(
                f"{backend}+{driver}: that driver is not installed; use postgresql+psycopg://"
            )
        _check_netloc(rest.split("/", 1)[0].split("?", 1)[0])
        return f"postgresql+psycopg://{rest}"
    raise DatabaseURLError(f"unsupported database {backend!r}; use {ACCEPTED}")


def _check_sqlite(url: str, driver: str | None, rest: str) -> str:
    if driver not in _SQLITE_DRIVERS:
        raise DatabaseURLError(f"sqlite+{driver}: unsupported driver; use sqlite:///path.db")
    path, _, query = rest.partition("?")
    if path and not path.startswith("/"):
        raise DatabaseURLError(
            f"{url}: a SQLite URL has no host: sqlite:///relative.db or sqlite:////abs/path.db"
        )
    file = unquote(path[1:])
    if file in ("", ":memory:") or "mode=memory" in query or file.startswith("file::memory:"):
        raise DatabaseURLError(
            f"{url} is an in-memory database (nothing would be archived); "
            "give a file: sqlite:///path/to/archive.db"
        )
    return url


def _check_netloc(netloc: str) -> None:
    """The port must be a number (SQLAlchemy raises a bare ValueError otherwise)."""
    hostport = netloc.rpartition("@")[2]
    if hostport.startswith("["):
        port = hostport.partition("]")[2].removeprefix(":")
    else:
        port = hostport.partition(":")[2]
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        raise DatabaseURLError(f"bad port {port!r} in the database URL; use {ACCEPTED}")


def _shown(text: str) -> str:
    """At most a line of the offending text, with anything like a password hidden."""
    first = text.splitlines()[0] if text else text
    return redact_text(first)[:200]
