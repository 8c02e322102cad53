"""Noticing that a SQLite archive's file was deleted or replaced under a running process.

SQLite keeps writing through the file descriptors it opened: after ``rm archive.db`` every
commit lands in an unlinked file that vanishes with the process, and after a restore that
moved another file into place, new connections read one file while old ones write the other.
The path's (device, inode) is taken when the archive is opened and compared before every write
transaction and at every service tick: one ``stat``, about a microsecond.
"""

from __future__ import annotations

from pathlib import Path

from storage.errors import StorageError


class DatabaseGone(StorageError):
    """The archive's file is no longer the one this process opened: stop, do not write."""


class FileWatch:
    """The identity of one database file, taken at open."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.identity: tuple[int, int] | None = None

    def remember(self) -> None:
        """Take the file's identity now (after the archive was opened, so the file exists)."""
        self.identity = _identity(self.path)

    def check(self) -> None:
        """Raise ``DatabaseGone`` if the path no longer names the file that was opened."""
        if self.identity is None:
            return
        now = _identity(self.path)
        if now == self.identity:
            return
        what = "was deleted" if now is None else "was replaced by another file"
        raise DatabaseGone(
            f"storage: database file {self.path} {what} while this process had it open "
            f"(inode {self.identity[1]}{'' if now is None else f' -> {now[1]}'}); stopping, "
            "as anything written now would be lost"
        )


def _identity(path: str) -> tuple[int, int] | None:
    try:
        st = Path(path).stat()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return st.st_dev, st.st_ino
