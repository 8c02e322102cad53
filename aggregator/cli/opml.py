"""``aggregator opml import|export``: subscription lists into and out of the configuration file.

Import edits the YAML file (``aggregator.config.feedlist``), never the archive: the service
picks the new feeds up at its next start or reload. listparser, lxml and ruamel's round trip
load only when these commands run.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from aggregator.cli.app import App, command_options, fail
from aggregator.errors import ArchiverError

pass_app = click.make_pass_decorator(App)


@click.group()
def opml() -> None:
    """Bring an OPML subscription list into the configuration, or write one out."""


@opml.command("import")
@command_options
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--tag", "tags", multiple=True, metavar="T",
              help="Also tag every imported feed T (repeatable).")
@pass_app
def opml_import(app: App, file: Path, tags: tuple[str, ...]) -> None:
    """Add FILE's feeds to the configuration file (comments and order kept); feeds already
    configured, listed twice or not HTTP(S) are reported and left out."""
    from aggregator.config.feedlist import add_feeds
    from aggregator.config.opml import BAD_URL, DUPLICATE, NO_FEED, plan_import, read_opml

    app.subject = str(file)
    try:
        settings = app.require_config()
        found = read_opml(_read(file), str(file))
        plan = plan_import(found, [feed.url for feed in settings.feeds], tags)
        if plan.added:
            add_feeds(Path(str(app.config_path)), plan.added)
    except ArchiverError as exc:
        fail(exc)
    from storage.redact import redact_url

    for url, kind, why in plan.left_out:
        click.echo(f"opml: left out {redact_url(url)}: {kind}: {why}", err=True)
    click.echo(f"opml: added {len(plan.added)} of {len(found.outlines)} feeds in {file} to "
               f"{app.config_path}; left out {plan.count(DUPLICATE)} duplicates, "
               f"{plan.count(BAD_URL)} bad URLs, {plan.count(NO_FEED)} outlines without a feed")


def _read(file: Path) -> bytes:
    from aggregator.config.opml import MAX_OPML_BYTES, OpmlError

    try:
        with file.open("rb") as stream:
            data = stream.read(MAX_OPML_BYTES + 1)
    except OSError as exc:
        raise OpmlError(f"{file}: cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_OPML_BYTES:
        raise OpmlError(f"{file}: larger than {MAX_OPML_BYTES // 2**20} MiB, the limit for a "
                        "subscription list")
    return data


@opml.command("export")
@command_options
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="Write here (atomically) instead of standard output.")
@pass_app
def opml_export(app: App, output: Path | None) -> None:
    """Write the configured feeds as OPML 2.0: title, tags as category (a folder per first
    tag). User names and passwords in feed URLs are left out of the file."""
    from aggregator.config.feedlist import replace_file
    from aggregator.config.opml import Outline, write_opml
    from storage.redact import split_credentials

    try:
        settings = app.require_config()
        feeds = [(split_credentials(feed.url), feed) for feed in settings.feeds]
        outlines = [Outline(url, feed.title, feed.tags) for (url, _auth), feed in feeds]
        data = write_opml(outlines, f"feed-archiver: {Path(str(app.config_path)).name}",
                          datetime.now(UTC))
        if output is not None:
            replace_file(output, data)
    except ArchiverError as exc:
        fail(exc)
    hidden = sum(auth is not None for (_url, auth), _feed in feeds)
    if hidden:
        click.echo(f"opml: {hidden} feed URLs carried a user name or password; written "
                   "without them", err=True)
    if output is None:
        click.echo(data, nl=False)  # bytes go to the binary stream as they are
    else:
        click.echo(f"opml: wrote {len(outlines)} feeds to {output}", err=True)
