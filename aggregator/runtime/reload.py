"""Configuration reload without a restart: notice a changed file, read it, say what changes.

Every tick the daemon asks ``ConfigWatch.changed`` (one ``stat``; the file is read and hashed
only when its size or mtime moved, so touching it without an edit reloads nothing); SIGHUP
forces a reload. ``reload_settings`` validates the new file exactly as start-up does: an
invalid file raises ``ConfigError`` with every error, and the caller keeps the old settings.
What the running process cannot change in place (``RESTART_ONLY``: the database, the listener,
the process layout, the HTTP client's settings) keeps its running value, with a warning.
Applying the result is the daemon's part (``daemon``): the feed table is synced (added feeds
due at once, removed ones inactive, their archive kept) and new polls use the new options.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aggregator.config import Settings, load_settings
from aggregator.errors import ConfigError

# Dotted keys whose new value waits for a restart.
RESTART_ONLY = ("database", "database_timeouts", "http", "service.processes",
                "service.parse_workers", "service.event_loop", "service.listen",
                "service.listen_token", "service.listen_public")  # fmt: skip


@dataclass(frozen=True, slots=True)
class Fingerprint:
    size: int
    mtime_ns: int
    digest: str


def fingerprint(path: Path) -> Fingerprint | None:
    """The file's identity now; None if it cannot be read (being replaced, or gone)."""
    try:
        st = path.stat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None
    return Fingerprint(st.st_size, st.st_mtime_ns, digest)


class ConfigWatch:
    """Tells when the configuration file's content changed since it was last looked at."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seen = fingerprint(path)
        self._moving: tuple[int, int] | None = None  # size and mtime seen changed, last look

    def changed(self) -> bool:
        """True once per new content (a refused file is not retried until it changes again).
        A file is read once its size and mtime held still from one look to the next, so a file
        being written in place (truncated, then filled) is not read half-way."""
        try:
            st = self.path.stat()
        except OSError:
            return False  # an editor replacing the file; looked at again next tick
        seen, stamp = self.seen, (st.st_size, st.st_mtime_ns)
        if seen is not None and stamp == (seen.size, seen.mtime_ns):
            return False
        moving, self._moving = self._moving, stamp
        if moving != stamp:
            return False
        now = fingerprint(self.path)
        if now is None:
            return False
        self.seen = now
        return seen is None or now.digest != seen.digest


@dataclass(frozen=True, slots=True)
class Reloaded:
    settings: Settings
    summary: str  # "2 feeds added, 1 removed, 1 changed"
    kept: tuple[str, ...]  # RESTART_ONLY keys whose new value was not applied


def reload_settings(path: Path, current: Settings, previous: Settings | None = None,
                    env: Mapping[str, str] | None = None) -> tuple[Reloaded, Settings]:  # fmt: skip
    """The settings to run now, with the running values of what needs a restart, and the
    file's own (the ``previous`` of the next reload: a restart-only key is reported when the
    file changed it, not when ``--database`` overrides it). Raises ConfigError."""
    new = load_settings(path, env)
    if not new.feeds:  # as `run` refuses to start: an emptied file is a mistake, not a plan
        raise ConfigError(f"{path}: lists no feeds; the running ones stay")
    before = previous or current
    kept: list[str] = []
    keep: dict[str, Any] = {}
    service: dict[str, Any] = {}
    for key in RESTART_ONLY:
        section, _, name = key.partition(".")
        old_value = _get(current, key)
        if _get(new, key) != _get(before, key):
            kept.append(key)
        if name:
            service[name] = old_value
        else:
            keep[section] = old_value
    keep["service"] = new.service.model_copy(update=service)
    merged = new.model_copy(update=keep)
    return Reloaded(merged, describe_change(current, merged), tuple(kept)), new


def _get(settings: Settings, key: str) -> Any:
    value: Any = settings
    for part in key.split("."):
        value = getattr(value, part)
    return value


def describe_change(old: Settings, new: Settings) -> str:
    """What a reload changes in the feed list, in one line."""
    before = {c.url: c for c in old.feed_configs()}
    after = {c.url: c for c in new.feed_configs()}
    added = len(after.keys() - before.keys())
    removed = len(before.keys() - after.keys())
    changed = sum(1 for url in after.keys() & before.keys() if after[url] != before[url])
    other = old.model_copy(update={"feeds": ()}) != new.model_copy(update={"feeds": ()})
    return (f"{added} feeds added, {removed} removed, {changed} changed"
            + ("; other settings changed" if other else ""))  # fmt: skip


class Reloader:
    """One service instance's reloads: asked by SIGHUP (``request``) or a changed file."""

    def __init__(self, path: Path, running: Settings) -> None:
        self.path = path
        self.watch = ConfigWatch(path)
        self.running = running
        self._file: Settings | None = None  # the file as last read, for the next comparison
        self.rules: Any = None  # the last reload's compiled site rules (extract.SiteRules)
        self._requested = False

    def request(self) -> None:
        """SIGHUP: reload at the next tick even if the file looks unchanged."""
        self._requested = True

    def due(self) -> bool:
        changed = self.watch.changed()  # always: it keeps the file's fingerprint current
        requested, self._requested = self._requested, False
        return changed or requested

    def load(self) -> Reloaded:
        """Read and validate the file (blocking: call it in a thread); raises ConfigError and
        then nothing changes. Site rules are compiled here too, so bad ones refuse the file."""
        from aggregator.extract import SiteRules

        reloaded, from_file = reload_settings(self.path, self.running, self._file)
        self.rules = SiteRules.load(reloaded.settings.sites)
        self._file = from_file
        self.running = reloaded.settings
        return reloaded
