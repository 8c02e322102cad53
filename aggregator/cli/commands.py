"""The ``aggregator`` command: parses arguments, calls the service or the store, prints results.

Errors of the project's tree become one line on stderr and an exit status, never a traceback:
0 success, 1 some feeds or pages failed (the rest was done), 2 usage or configuration error,
3 storage error (database or export file).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from aggregator.cli import views
from aggregator.cli.app import (
    EXIT_OK,
    EXIT_PARTIAL,
    App,
    collector_paused,
    command_options,
    fail,
    failures_listed_afterwards,
    log,
    parse_time,
    removal_option,
    require_feed,
    unexpected_line,
    young_collections_spaced,
)
from aggregator.cli.dbcommands import db
from aggregator.cli.opml import opml
from aggregator.cli.search import search
from aggregator.cli.serving import serve, web_view_for_run
from aggregator.errors import ArchiverError
from aggregator.runtime.logs import VERBOSE, configure_logging
from storage.redact import redact_text, redact_url

# Heavy libraries (pydantic, SQLAlchemy, httpx, rich, trafilatura) load inside the commands
# that use them: `--help` and `--version` answer at once (issue 13).

FAILURES_LISTED = 10_000  # failed feeds and pages that poll --once names, of each kind


pass_app = click.make_pass_decorator(App)


class Guarded(click.Group):
    """A command group whose unforeseen errors become one line (the traceback at -vv)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except BrokenPipeError:  # `aggregator export | head`: the reader has all it wanted
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no flush error
            ctx.exit(128 + signal.SIGPIPE)
        except Exception as exc:
            app = ctx.find_object(App)
            if app is not None and app.verbose >= 2:
                trace = "".join(traceback.format_exception(exc))
                click.echo(redact_text(trace.rstrip()), err=True)
            subject = app.subject if app is not None else None
            click.echo(unexpected_line(exc, ctx.invoked_subcommand, subject), err=True)
            ctx.exit(EXIT_PARTIAL)


@click.group(cls=Guarded,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--config", "-c", envvar="AGGREGATOR_CONFIG", type=click.Path(dir_okay=False),
              help="The YAML configuration file (or $AGGREGATOR_CONFIG).")
@click.option("--database", envvar="AGGREGATOR_DATABASE", metavar="URL",
              help="Overrides the configuration's database (or $AGGREGATOR_DATABASE).")
@click.option("-v", "--verbose", count=True, help="More logging (-vv for debug).")
@click.version_option(package_name="feed-archiver")
@click.pass_context
def cli(ctx: click.Context, config: str | None, database: str | None, verbose: int) -> None:
    """Archive what news feeds publish: poll, fetch articles, deduplicate, export."""
    level = (logging.WARNING, VERBOSE, logging.DEBUG)[min(verbose, 2)]
    if ctx.invoked_subcommand == "run":
        level = min(level, logging.INFO)
    configure_logging(level)
    ctx.obj = App(config, database, verbose)


@cli.command("check-config")
@command_options
@pass_app
def check_config(app: App) -> None:
    """Validate the configuration and say what it contains."""
    try:
        settings = app.require_config()
        if settings.sites:  # the shipped presets are checked by the tests, not on every run
            from aggregator.extract import SiteRules

            SiteRules.load(settings.sites, presets=False)
    except ArchiverError as exc:
        fail(exc)
    from aggregator.cli.checks import warnings

    database = redact_url(settings.database)
    click.echo(f"{app.config_path}: ok, {len(settings.feeds)} feeds, database {database}")
    for line in warnings(settings, str(app.config_path)):
        click.echo(line, err=True)


@cli.command()
@command_options
@click.option("--once", is_flag=True, default=True, help="Poll every feed once and exit (default).")
@removal_option
@pass_app
def poll(app: App, once: bool, allow_removal: bool) -> None:
    """Poll every configured feed once, fetch the new articles, print a summary.

    Exit status: 0 when every feed was polled (new or not modified) and every page fetched,
    1 when some failed (each is named, one line each, after the summary).
    """
    from aggregator.runtime import eventloop

    try:
        with collector_paused():  # what start-up loads lives as long as the process
            from aggregator.runtime import OneShot
            from storage.store import Store  # noqa: F401  (app.store's, loaded in the pause)

            settings = app.require_feeds()
        with (app.store() as store, failures_listed_afterwards(app.verbose == 0),
              young_collections_spaced()):
            started = datetime.now(UTC)
            app.sync_feeds(store, settings, allow_removal)
            oneshot = OneShot(settings, store)
            oneshot.totals.keep(FAILURES_LISTED)
            try:
                with views.progress(sys.stderr.isatty()) as report:
                    totals = eventloop.run(oneshot.poll_once(report),
                                           settings.service.event_loop)
            finally:
                oneshot.close()
            unpolled = views.unpolled(store.unpolled_since(started))
    except ArchiverError as exc:
        fail(exc)
    click.echo(views.summary(totals, len(settings.feeds), unpolled))
    for line in views.failures(totals):
        click.echo(line)
    for line in oneshot.skipped_lines():  # feeds a live process holds: not ours to poll now
        click.echo(line)
    sys.exit(EXIT_PARTIAL if totals.failed or totals.articles_failed else EXIT_OK)


@cli.command()
@command_options
@click.option("--no-migrate", is_flag=True,
              help="Refuse a schema not at head instead of migrating it (`aggregator db upgrade`).")
@removal_option
@pass_app
def run(app: App, no_migrate: bool, allow_removal: bool) -> None:
    """Run the service until SIGTERM or Ctrl-C; in-flight polls finish or are abandoned whole."""
    app.no_migrate = no_migrate
    # A stop during start-up (migrations, feed sync) is a clean stop too; the event loop takes over
    # the signals once it runs.
    signal.signal(signal.SIGTERM, _stop_during_startup)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # a reload asked before the loop runs: no-op
    from aggregator.runtime import Daemon, eventloop

    try:
        settings = app.require_feeds()
        with app.store() as store:
            app.sync_feeds(store, settings, allow_removal)
            path = Path(app.config_path) if app.config_path else None
            with web_view_for_run(settings, app.verbose) as web:
                daemon = Daemon(settings, store, config_path=path)
                eventloop.run(daemon.run_until_signalled(web and web.serve_until),
                              settings.service.event_loop)
    except ArchiverError as exc:
        fail(exc)
    log.info("stopped")


def _stop_during_startup(signum: int, frame: object) -> None:
    raise SystemExit(EXIT_OK)


@cli.group(invoke_without_command=True)
@command_options
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
@click.option("--wide", is_flag=True, help="Also why the next poll is then, and the last error.")
@click.pass_context
def feeds(ctx: click.Context, as_json: bool, wide: bool) -> None:
    """List feeds, one line each: URL, title, last poll and result, next poll, items."""
    if ctx.invoked_subcommand is not None:
        return
    app = ctx.find_object(App)
    assert app is not None
    try:
        with app.store(create=False) as store:
            rows = store.list_feeds()
    except ArchiverError as exc:
        fail(exc)
    views.print_feeds(rows, as_json, datetime.now(UTC), wide)


@feeds.command("show")
@command_options
@click.argument("url")
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
@pass_app
def feeds_show(app: App, url: str, as_json: bool) -> None:
    """Explain one feed's state: last results, next poll time and the reason."""
    try:
        with app.store(create=False) as store:
            feed = store.get_feed(require_feed(store, url, "feeds"))
            assert feed is not None
            history = store.poll_history(feed.id)
    except ArchiverError as exc:
        fail(exc)
    views.print_feed(feed, history, as_json, datetime.now(UTC))


@cli.command()
@command_options
@click.option("--format", "fmt", type=click.Choice(["json", "jsonl", "atom", "jsonfeed", "warc"]),
              default="jsonl", show_default=True,
              help="json/jsonl: the archive (docs/export-format.md); atom/jsonfeed: a feed of the "
                   "items with their article text; warc: the raw captures as WARC 1.1.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="A new file or a regular one to replace, written atomically; "
                   "standard output when absent.")
@click.option("--parents", is_flag=True, help="Create the output's missing folders.")
@click.option("--feed", "feed_url", metavar="URL", help="Only items this feed carried.")
@click.option("--since", metavar="T", help="Items added or changed at or after T (ISO 8601 or 7d).")
@click.option("--until", metavar="T", help="... and before T.")
@click.option("--tag", metavar="TAG", help="Only items the feeds with this tag carried.")
@pass_app
def export(app: App, fmt: str, output: Path | None, parents: bool, feed_url: str | None,
           since: str | None, until: str | None, tag: str | None) -> None:  # fmt: skip
    """Export the archive as JSON or JSON Lines (see docs/export-format.md), as an Atom or
    JSON Feed document, or its raw captures as WARC (with --since/--until: by fetch time)."""
    from aggregator.cli.exports import write_format
    from storage.records import ExportFilter

    since_t, until_t = parse_time(since), parse_time(until)
    try:
        with app.store(create=False) as store, _terminate_cleanly():
            feed = None if feed_url is None else require_feed(store, feed_url, "export")
            flt = ExportFilter(feed_url=feed, since=since_t, until=until_t)
            count, noun = write_format(store, output, fmt, flt, tag, parents)
    except ArchiverError as exc:
        fail(exc)
    if output is not None:
        click.echo(f"exported {count} {noun} to {output}", err=True)


@contextmanager
def _terminate_cleanly() -> Iterator[None]:
    """SIGTERM and SIGHUP unwind like Ctrl-C (so an export removes its temporary file) and
    exit 128 + the signal's number, as a killed program's status reads."""

    def stop(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    if threading.current_thread() is not threading.main_thread():  # signals go to the main one
        yield
        return
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@cli.command("import")
@command_options
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_app
def import_(app: App, file: Path) -> None:
    """Load an export back, all or nothing; importing the same file twice changes nothing."""
    try:
        with app.store() as store:
            summary = store.import_file(file)
    except ArchiverError as exc:
        fail(exc)
    click.echo(views.import_summary(summary))


@cli.command()
@command_options
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
@pass_app
def stats(app: App, as_json: bool) -> None:
    """Items, sightings, duplicates folded, revisions, captures and their compression."""
    try:
        with app.store(create=False) as store:
            figures = store.stats()
    except ArchiverError as exc:
        fail(exc)
    views.print_stats(figures, as_json)


@cli.command()
@command_options
@click.argument("source")
@click.option("--url", help="The page's URL, when SOURCE is a saved file.")
@click.option("--json", "as_json", is_flag=True, help="Print the article as the export has it.")
@pass_app
def extract(app: App, source: str, url: str | None, as_json: bool) -> None:
    """Show what the extractor makes of one page (URL or saved FILE), and each field's source."""
    import json

    from aggregator.cli.tools import load_page
    from aggregator.extract import SiteRules, article_to_dict
    from aggregator.runtime import eventloop

    app.subject = source

    try:
        settings = app.settings
        html, page_url = eventloop.run(load_page(source, url, settings.http),
                                       settings.service.event_loop)
        from aggregator.extract import extract as run_extract

        article = run_extract(html, page_url, SiteRules.load(settings.sites))
    except ArchiverError as exc:
        fail(exc)
    if as_json:
        click.echo(json.dumps(article_to_dict(article), ensure_ascii=False, indent=2))
    else:
        views.print_article(article)


@cli.command()
@command_options
@click.argument("url")
@pass_app
def discover(app: App, url: str) -> None:
    """List the feeds a web page advertises (<link rel="alternate">), to put in the config."""
    from aggregator.cli.tools import discover as find_feeds
    from aggregator.runtime import eventloop

    app.subject = url

    try:
        settings = app.settings
        final_url, found, is_feed = eventloop.run(find_feeds(url, settings.http),
                                                  settings.service.event_loop)
    except ArchiverError as exc:
        fail(exc)
    if is_feed:
        click.echo(f"{redact_url(final_url)} is a feed itself: configure it as it is")
        return
    if not found:
        click.echo(f"discover: {redact_url(final_url)} advertises no feed (no <link "
                   'rel="alternate"> of an RSS, Atom or JSON Feed type)', err=True)
        sys.exit(EXIT_PARTIAL)
    rows = [[redact_url(feed.url), feed.kind, feed.title] for feed in found]
    for line in views.aligned(rows):
        click.echo(line)


@cli.command()
@command_options
@click.option("--feed", "feed_url", metavar="URL", help="Only this feed's items.")
@click.option("--since", metavar="T", help="Only pages fetched at or after T.")
@pass_app
def reextract(app: App, feed_url: str | None, since: str | None) -> None:
    """Re-run extraction over archived pages; a new revision only where the result changed."""
    from aggregator.cli.tools import reextract_all

    try:
        settings = app.settings
        with app.store(create=False) as store:
            if feed_url is not None:
                feed_url = require_feed(store, feed_url, "reextract")
            done = reextract_all(store, settings, feed_url, parse_time(since))
    except ArchiverError as exc:
        fail(exc)
    click.echo(done.line())


cli.add_command(db)
cli.add_command(opml)


cli.add_command(search)
cli.add_command(serve)


def main() -> None:
    cli(prog_name="aggregator")
