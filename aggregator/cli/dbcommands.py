"""``aggregator db check|backup|vacuum|upgrade``: looking after the database (issue 15).

None of them migrates on open (``storage.care``): ``check`` reports the schema as it is, and
only ``upgrade`` changes it. Exit status: 0 healthy or done, 1 ``check`` found problems, 2 a
usage error (``backup`` of PostgreSQL), 3 the database could not be used.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import click

from aggregator.cli.app import EXIT_PARTIAL, EXIT_USAGE, App, command_options, fail
from aggregator.errors import ArchiverError

if TYPE_CHECKING:
    from storage.engine import Database

T = TypeVar("T")
pass_app = click.make_pass_decorator(App)


@click.group()
def db() -> None:
    """Look after the database: check, backup, vacuum, upgrade."""


def _with_database(app: App, work: Callable[[Database], T], *, create: bool = False) -> T:
    """``work`` on the configured database, opened without migrating; errors as one line."""
    from storage.care import open_existing
    from storage.engine import Database

    try:
        settings = app.settings
        database = (Database(settings.database, settings.timeouts()) if create
                    else open_existing(settings.database, settings.timeouts()))  # fmt: skip
        try:
            return work(database)
        finally:
            database.dispose()
    except ArchiverError as exc:
        fail(exc)


@db.command("check")
@command_options
@pass_app
def db_check(app: App) -> None:
    """Integrity (SQLite's integrity_check and foreign_key_check, the archive's invariants),
    the schema revision against this program's, pending migrations. Exit 1 on any problem."""
    from storage.care import check

    report = _with_database(app, check)
    for fact in report.facts:
        click.echo(f"db: {fact}")
    for problem in report.problems:
        click.echo(f"db: problem: {problem}", err=True)
    if report.problems:
        count = len(report.problems)
        click.echo(f"db: {count} problem{'' if count == 1 else 's'}", err=True)
        sys.exit(EXIT_PARTIAL)
    click.echo("db: ok")


@db.command("backup")
@command_options
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@pass_app
def db_backup(app: App, file: Path) -> None:
    """Copy a SQLite archive to FILE (a new file) with SQLite's online backup API, safe while
    the service runs and writes; the copy is checked before it takes FILE's name."""
    from storage.care import backup, is_sqlite

    def copy(database: Database) -> int | None:
        return backup(database, file) if is_sqlite(database) else None

    size = _with_database(app, copy)
    if size is None:
        click.echo(f"db backup: the database is PostgreSQL, which backs up with its own tool: "
                   f"pg_dump --format=custom --file={file} '{_libpq_url(app.settings.database)}'"
                   " (restore with pg_restore)", err=True)
        sys.exit(EXIT_USAGE)
    click.echo(f"db: backed up to {file} ({size / 2**20:.1f} MiB, integrity ok)")


def _libpq_url(url: str) -> str:
    """The URL as pg_dump takes it: no SQLAlchemy driver name, no password."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url).set(drivername="postgresql")
    return parsed.render_as_string(hide_password=True)


@db.command("vacuum")
@command_options
@pass_app
def db_vacuum(app: App) -> None:
    """Reclaim free space and refresh the planner's statistics (SQLite: VACUUM and ANALYZE,
    which make the service's writes wait until done; PostgreSQL: VACUUM ANALYZE)."""
    from storage.care import vacuum

    before, after = _with_database(app, vacuum)
    click.echo(f"db: vacuumed: {before / 2**20:.1f} MiB before, {after / 2**20:.1f} MiB after")


@db.command("upgrade")
@command_options
@pass_app
def db_upgrade(app: App) -> None:
    """Run the pending migrations (or create the schema) without starting the service."""
    from storage.care import upgrade

    before, after = _with_database(app, upgrade, create=True)
    if before == after:
        click.echo(f"db: already at revision {', '.join(after)}; nothing to do")
    else:
        click.echo(f"db: upgraded from revision {', '.join(before) or 'none (empty database)'} "
                   f"to {', '.join(after)}")
