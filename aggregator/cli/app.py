"""What every command shares: the options' state (``App``), exit statuses and error lines.

Imports nothing heavy: settings (pydantic) and the store (SQLAlchemy) load on first use, so that
``--help`` and ``--version`` answer at once (issue 13).
"""

from __future__ import annotations

import gc
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from aggregator.errors import ArchiverError, ConfigError, StorageError
from storage.redact import redact_text, redact_url

if TYPE_CHECKING:
    from aggregator.config import Settings
    from storage.store import Store

EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, EXIT_STORAGE = 0, 1, 2, 3
REMOVALS_SHOWN = 5  # feeds a refused removal names before "and N more"
MATCHES_SHOWN = 20  # feeds an ambiguous short URL lists
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
        self.no_migrate = False  # `run --no-migrate`; the file's database_auto_migrate too
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

    def sync_feeds(self, store: Store, settings: Settings, allow_removal: bool) -> None:
        """The configured feeds into the archive; a file that would deactivate most of its feeds
        (cut short, or the wrong one) is a usage error naming them, unless ``allow_removal``."""
        from datetime import UTC, datetime

        from storage.errors import RemovalRefused

        try:
            store.sync_feeds(settings.feed_configs(), datetime.now(UTC), allow_removal)
        except RemovalRefused as exc:
            shown = ", ".join(redact_url(url) for url in exc.retiring[:REMOVALS_SHOWN])
            more = len(exc.retiring) - REMOVALS_SHOWN
            shown += f" and {more} more" if more > 0 else ""
            raise ConfigError(
                f"{self.config_path} would deactivate {len(exc.retiring)} of the {exc.active} "
                f"active feeds in the archive ({shown}); if that is meant, pass --allow-removal "
                "(their items stay archived)") from None

    @contextmanager
    def store(self, *, create: bool = True) -> Iterator[Store]:
        """The archive; ``create=False`` for commands that only read it (never create one)."""
        from storage.store import Store

        try:
            upgrade = self.settings.database_auto_migrate and not self.no_migrate
            store = Store.open(self.settings.database, self.settings.timeouts(), create=create,
                               upgrade=upgrade)
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


@contextmanager
def collector_paused() -> Iterator[None]:
    """Start-up (imports, settings) makes some 150,000 objects that live as long as the process:
    the cyclic collector walked them again and again as they were made, 10-15 % of start-up CPU,
    for no garbage. Paused for the block; then they are frozen out of later collections, which
    the poll's many objects trigger, and the collector resumes, also on an error (issue 14)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


# Allocations between two young collections while a poll runs (CPython's default: 700).
POLL_YOUNG_COLLECTION = 10_000


@contextmanager
def young_collections_spaced() -> Iterator[None]:
    """A poll makes a few hundred objects per feed and drops nearly all of them by their counts,
    yet at CPython's 700 allocations the cyclic collector ran some 150 times in an unchanged
    pass of 1,000 feeds, walking the live polls' objects each time: 2.8 % of its instructions,
    more of its time (the walk misses the caches). Spaced to 10,000, it runs 6 times; cyclic
    garbage waits at most that many allocations longer (issue 14). Restored afterwards."""
    before = gc.get_threshold()
    gc.set_threshold(POLL_YOUNG_COLLECTION, *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


class ListedAfterwards(logging.Filter):
    """``poll --once`` names each failed feed after its summary; at the default verbosity the
    operator's log line for the same failure would say it twice, with a timestamp."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno != logging.WARNING


@contextmanager
def failures_listed_afterwards(enabled: bool) -> Iterator[None]:
    """The filter above on the pipeline's logger for one command (removed after it, for callers
    that run several commands in one process, as tests do)."""
    logger, quiet = logging.getLogger("aggregator.polls"), ListedAfterwards()
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


def removal_option(func: F) -> F:
    return click.option("--allow-removal", is_flag=True,
                        help="Go on when the configuration would deactivate more than half of "
                             "the archive's feeds.")(func)  # fmt: skip


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


def require_feed(store: Store, url: str, stage: str) -> str:
    """The archived feed a command was given (its URL, its short form as ``feeds`` shows it, or
    an unambiguous beginning: ``feedurls``). Otherwise a usage error (exit 2) naming the
    candidates or the nearest archived URL, rather than an empty result that looks like success."""
    from aggregator.cli.feedurls import matching
    from storage.redact import strip_credentials

    if store.get_feed(strip_credentials(url)) is not None:
        return strip_credentials(url)
    urls = [feed.url for feed in store.list_feeds()]
    found = matching(strip_credentials(url), urls)
    if len(found) == 1:
        return found[0]
    if found:
        listed = "\n".join(f"  {redact_url(u)}" for u in found[:MATCHES_SHOWN])
        listed += f"\n  and {len(found) - MATCHES_SHOWN} more" if len(found) > MATCHES_SHOWN else ""
        click.echo(f"{stage}: {redact_url(url)} matches {len(found)} feeds; give more of the "
                   f"URL:\n{listed}", err=True)
        sys.exit(EXIT_USAGE)
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
