"""Adds feeds to the configuration file in place, for ``opml import`` (issue 15).

ruamel.yaml's round trip keeps the operator's comments, key order, quoting and flow lists; the
sequence indentation is read from the file so that the lines nobody changed stay as they were.
The new text is validated as a configuration before it replaces the file, atomically (a
temporary file in the same folder, fsync, ``os.replace``) and with the file's mode, so a
running service that re-reads the file sees the old one or the new one, never half of either.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aggregator.config.opml import Outline
from aggregator.config.yamlread import read_config
from aggregator.errors import ConfigError

# The first item of the top-level feeds list: its dash's column and where its content starts.
_FEEDS_ITEM = re.compile(r"^feeds:[ \t]*(?:#.*)?\n(?:[ \t]*(?:#.*)?\n)*( *)-( +)", re.MULTILINE)
_NESTED_KEY = re.compile(r"^[A-Za-z_][\w-]*:[ \t]*(?:#.*)?\n( +)[A-Za-z_]", re.MULTILINE)


def add_feeds(path: Path, additions: Sequence[Outline]) -> None:
    """Append ``additions`` to the file's ``feeds`` list (created if absent) and replace the
    file; a ``ConfigError`` leaves it untouched."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    text = read_config(path)
    yaml = _round_trip(text)
    try:
        doc = yaml.load(text)
    except Exception as exc:  # load_settings read it first: this is ruamel disagreeing
        raise ConfigError(f"{path}: cannot edit: {str(exc).splitlines()[0]}") from None
    if doc is None:
        doc = CommentedMap()
    feeds = doc.get("feeds")
    if feeds is None:
        feeds = doc["feeds"] = CommentedSeq()
    for outline in additions:
        feeds.append(_entry(outline))
    out = io.StringIO()
    yaml.dump(doc, out)
    replace_file(path, out.getvalue().encode("utf-8"), check=_validated)


def _round_trip(text: str) -> Any:
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never fold a long line the operator wrote on one
    item = _FEEDS_ITEM.search(text)
    nested = _NESTED_KEY.search(text)
    offset = len(item[1]) if item else 2
    yaml.indent(mapping=len(nested[1]) if nested else 2,
                sequence=offset + 1 + (len(item[2]) if item else 1), offset=offset)
    return yaml


def _entry(outline: Outline) -> Any:
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    entry = CommentedMap(url=outline.url)
    if outline.title:
        entry["title"] = outline.title
    if outline.tags:
        tags = CommentedSeq(outline.tags)
        tags.fa.set_flow_style()
        entry["tags"] = tags
    return entry


def _validated(temp: Path, target: Path) -> None:
    """The edited file must still load; its errors name the real file, not the temporary one."""
    from aggregator.config.settings import load_settings

    try:
        load_settings(temp, env={})
    except ConfigError as exc:
        message = str(exc).replace(str(temp), str(target)).splitlines()[0]
        raise ConfigError(f"{message} (after the edit; {target} is unchanged)") from None


def replace_file(path: Path, data: bytes, check: Any = None) -> None:
    """Write ``data`` over ``path`` atomically, keeping its mode (0666 less the umask for a new
    file); ``check(temp, path)`` may refuse the temporary file before it replaces anything."""
    target = path.resolve()  # through a symlink: edit the file it names, keep the link
    try:
        mode = target.stat().st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from None
    temp = Path(name)
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        temp.chmod(mode)
        if check is not None:
            check(temp, path)
        temp.replace(target)
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
    _fsync_dir(target.parent)


def _fsync_dir(folder: Path) -> None:
    """The rename itself survives a power cut once the folder is synced (POSIX)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
