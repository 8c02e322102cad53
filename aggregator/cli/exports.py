"""``aggregator export``'s formats: which writer each one takes (the writers live in ``storage``:
``export`` for JSON and JSON Lines, ``feedsout`` for Atom and JSON Feed, ``warc`` for WARC)."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from aggregator.cli.app import EXIT_USAGE

if TYPE_CHECKING:
    from storage.records import ExportFilter
    from storage.store import Store


def write_format(store: Store, output: Path | None, fmt: str, flt: ExportFilter,
                 tag: str | None, parents: bool) -> tuple[int, str]:  # fmt: skip
    """Write the selection in ``fmt``; returns how many were written, and of what."""
    if tag is not None:
        feed_ids = store.browse.tagged_feeds(tag)
        if not feed_ids:
            known = ", ".join(store.browse.tags()) or "none yet"
            click.echo(f"export: no feed has the tag {tag!r} (tags: {known})", err=True)
            sys.exit(EXIT_USAGE)
        flt = dataclasses.replace(flt, feed_ids=tuple(feed_ids))
    if fmt in ("atom", "jsonfeed"):
        from storage.feedsout import write_feed_file

        return write_feed_file(store, output, fmt, flt, tag, parents=parents), "items"
    if fmt == "warc":
        from storage.warc import write_warc

        return write_warc(store, output, flt, parents=parents), "captures"
    from storage.export import write_export

    return write_export(store, output, fmt, flt, parents=parents), "items"
