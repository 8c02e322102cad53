"""``aggregator serve``: the read-only web view of the archive (issue 16), and the feeds out.

The web package (starlette, jinja2, uvicorn) loads inside the command, so other commands never
pay for it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

import click

from aggregator.cli.app import App, command_options, fail, log
from aggregator.errors import ArchiverError, ConfigError

if TYPE_CHECKING:
    from aggregator.config import Settings
    from aggregator.web import WebView

DEFAULT_LISTEN = "127.0.0.1:8322"


@click.command()
@command_options
@click.option("--listen", metavar="HOST:PORT",
              help=f"Where to serve (default: the configuration's service.web_listen, "
                   f"{DEFAULT_LISTEN}). An address beyond loopback needs --token or --public.")
@click.option("--token", envvar="AGGREGATOR_WEB_TOKEN", metavar="TOKEN",
              help="Require 'Authorization: Bearer TOKEN' on every request (or "
                   "$AGGREGATOR_WEB_TOKEN; default: service.listen_token).")
@click.option("--public", is_flag=True,
              help="Serve beyond loopback without a token (service.listen_public).")
@click.pass_context
def serve(ctx: click.Context, listen: str | None, token: str | None, public: bool) -> None:
    """Serve a read-only web view of the archive: feeds and their health, items, revisions as
    diffs, raw captures, search, and Atom / JSON Feed feeds out. Stops on Ctrl-C or SIGTERM."""
    from aggregator.config.listen import parse_listen

    app = ctx.find_object(App)
    assert app is not None
    try:
        settings = app.settings
        service = settings.service
        try:
            where = parse_listen(listen or service.web_listen)
        except ValueError as exc:
            raise ConfigError(f"serve: --listen: {exc}") from None
        from aggregator.web import serve as run_server

        run_server(settings, where, token or service.listen_token,
                   public or service.listen_public, _announce, app.verbose)  # fmt: skip
    except ArchiverError as exc:
        fail(exc)


def _announce(url: str) -> None:
    click.echo(f"serving the archive read-only at {url} (Ctrl-C stops)", err=True)


@contextlib.contextmanager
def web_view_for_run(settings: Settings, verbose: int) -> Iterator[WebView | None]:
    """``run`` with ``service.web: true``: the view opened and bound before the service starts
    (a refused address or a taken port stops ``run`` at once), closed after it; else None."""
    if not settings.service.web:
        yield None
        return
    from aggregator.web import WebView

    with WebView.from_settings(settings, verbose) as view:
        log.info("web view at %s (read-only)", view.url)
        yield view
