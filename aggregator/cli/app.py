"""What every command shares: the options' state (``App``), exit statuses and error lines.

Imports nothing heavy: settings (pydantic) and the store (SQLAlchemy) load on first use, so that
``--help`` and ``--version`` answer at once (issue 13).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from aggregator.errors import ArchiverError, ConfigError, StorageError
from storage.redact import redact_text

if TYPE_CHECKING:
    from aggregator.config import Settings
    from storage.store import Store

EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, EXIT_STORAGE = 0, 1, 2, 3
F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("aggregator")


def fail(exc: ArchiverError) -> NoReturn:
    click.echo(redact_text(str(exc)), err=True)
    if isinstance(exc, StorageError):
        sys.exit(EXIT_STORAGE)
    sys.exit(EXIT_USAGE if isinstance(exc, ConfigError) else EXIT_PARTIAL)


class App:
    """What the options of the command group say; settings are loaded on first use."""

    def __init__(self, config: str | None, database: str | None, verbose: int = 0) -> None:
        self.config_path = config
        self.database = database
        self.verbose = verbose
        self.subject: str | None = None  # the URL or file a command works on, for error lines
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from aggregator.config import Settings, load_settings

            settings = Settings() if self.config_path is None else load_settings(self.config_path)
            database = _checked_database(self.database or settings.database)
            self._settings = settings.model_copy(update={"database": database})
        return self._settings

    def require_config(self) -> Settings:
        if self.config_path is None:
            raise ConfigError("no configuration: pass --config FILE or set AGGREGATOR_CONFIG")
        return self.settings

    def require_feeds(self) -> Settings:
        """``poll`` and ``run`` with a config that lists no feed would mark every archived
        feed as removed and poll nothing: refused, naming the file."""
        settings = self.require_config()
        if not settings.feeds:
            raise ConfigError(f"no feeds in {self.config_path}: add a `feeds:` list of URLs")
        return settings

    @contextmanager
    def store(self, *, create: bool = True) -> Iterator[Store]:
        """The archive; ``create=False`` for commands that only read it (never create one)."""
        from storage.store import Store

        try:
            store = Store.open(self.settings.database, self.settings.timeouts(), create=create)
        except StorageError as exc:
            if create or self.config_path or self.database or "no archive" not in str(exc):
                raise
            raise StorageError(f"{exc} (no --config given: pass --config FILE or --database "
                               "URL)") from None
        try:
            yield store
        finally:
            store.close()


def _checked_database(url: str) -> str:
    """The database URL (from the file, --database or $AGGREGATOR_DATABASE) or a usage error."""
    from storage.dburl import DatabaseURLError, check_database_url

    try:
        return check_database_url(url)
    except DatabaseURLError as exc:
        raise ConfigError(f"database: {exc}") from None


class ListedAfterwards(logging.Filter):
    """``poll --once`` names each failed feed after its summary; at the default verbosity the
    pipeline's log line for the same failure would say it twice, with a timestamp."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno == logging.WARNING and record.msg == "%s")


@contextmanager
def failures_listed_afterwards(enabled: bool) -> Iterator[None]:
    """The filter above on the pipeline's logger for one command (removed after it, for callers
    that run several commands in one process, as tests do)."""
    logger, quiet = logging.getLogger("aggregator.runtime.pipeline"), ListedAfterwards()
    if enabled:
        logger.addFilter(quiet)
    try:
        yield
    finally:
        logger.removeFilter(quiet)


def _set_config(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    app = ctx.find_object(App)
    if value is not None and app is not None:
        app.config_path = value


def _set_database(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    app = ctx.find_object(App)
    if value is not None and app is not None:
        app.database = value


def command_options(func: F) -> F:
    """``--config`` and ``--database`` after the command name too (``aggregator poll -c f.yaml``),
    as people type them; given there, they win over the ones before it."""
    func = click.option("--database", metavar="URL", expose_value=False, callback=_set_database,
                        help="Overrides the configuration's database.")(func)
    return click.option("--config", "-c", type=click.Path(dir_okay=False), expose_value=False,
                        callback=_set_config, is_eager=True,
                        help="The YAML configuration file.")(func)


def unexpected_line(exc: BaseException, command: str | None, subject: str | None = None) -> str:
    """One line for an error nobody foresaw: the stage (the command), the URL or file it worked
    on, and what was said, with secrets redacted; where to see more."""
    stage = (command or "aggregator") + (f" {subject}" if subject else "")
    detail = str(exc).splitlines()[0] if str(exc) else ""
    text = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    return redact_text(f"{stage}: unexpected error: {text} (run with -vv for the traceback)")


def nearest(word: str, choices: list[str]) -> str | None:
    """The known spelling closest to ``word`` (difflib's ratio, at least 0.6), for "did you
    mean" hints."""
    import difflib

    found = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return found[0] if found else None


def require_feed(store: Store, url: str, stage: str) -> None:
    """A feed URL a command was given must be in the archive: otherwise a usage error (exit 2)
    naming the nearest archived URL, rather than an empty result that looks like success."""
    from storage.redact import redact_url, strip_credentials

    if store.get_feed(strip_credentials(url)) is not None:
        return
    urls = [feed.url for feed in store.list_feeds()]
    hint = nearest(strip_credentials(url), urls)
    more = (f"; did you mean {redact_url(hint)}?" if hint
            else "; `aggregator feeds` lists them" if urls else "; the archive has no feeds yet")
    click.echo(f"{stage}: no feed {redact_url(url)} in the archive{more}", err=True)
    sys.exit(EXIT_USAGE)


def parse_time(value: str | None) -> datetime | None:
    """ISO 8601 (a date, or a time with or without offset: UTC if none) or an age like 7d."""
    if value is None:
        return None
    from aggregator.config import parse_duration

    try:
        return datetime.now(UTC) - timedelta(seconds=parse_duration(value))
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r}: use ISO 8601 (2024-05-01T12:00+02:00) or an age (7d)"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)
