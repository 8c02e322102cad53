"""Whose turn it is to write a SQLite archive: writers queue here, not in SQLite's busy handler.

SQLite allows one writer at a time. A writer that finds the lock taken sleeps in SQLite's busy
handler in steps of up to 100 ms, so with several processes writing (``service.processes``) the
lock sits idle while they sleep. Here writers wait on an ``flock`` of a file beside the database
instead: the kernel wakes the next one the moment the lock is free. A thread-level lock comes
first (``flock`` locks belong to open files, not threads). The service's event loop never
blocks on it: it takes the turn only when it is free (``try_acquire``), and otherwise waits in a
worker thread until it is (``wait_free``), so that the lock is never held by a process whose
loop is busy with something else, and no thread of its own competes for the GIL while it writes.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from storage.errors import StorageError


class WriteTurn:
    """An exclusive turn across threads and processes; re-entered freely by its holder."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._holder: int | None = None

    def acquire(self) -> None:
        """Block until it is our turn."""
        self._take(blocking=True)

    def try_acquire(self) -> bool:
        """Take the turn now if nobody holds it, without waiting (for an event loop)."""
        return self._take(blocking=False)

    def _take(self, *, blocking: bool) -> bool:
        if not self._lock.acquire(blocking=blocking):
            return False
        fd = None
        try:
            fd = self._open()
            fcntl.flock(fd, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BaseException as exc:
            if fd is not None:
                os.close(fd)
            self._lock.release()
            if isinstance(exc, BlockingIOError):
                return False
            raise
        self._fd = fd
        self._holder = threading.get_ident()
        return True

    def wait_free(self) -> None:
        """Block until nobody holds the turn (then ``try_acquire`` may well succeed)."""
        with self._lock:
            fd = self._open()
            try:
                fcntl.flock(fd, fcntl.LOCK_SH)  # granted once the exclusive holder is gone
            finally:
                os.close(fd)

    def _open(self) -> int:
        """The lock file; never through a symbolic link, never anything but a regular file
        (a link planted there would have us open whatever it points at)."""
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        try:
            fd = os.open(self.path, flags, 0o644)
        except OSError as exc:
            if exc.errno != errno.ELOOP:
                raise
            fd = -1
        if fd < 0 or not stat.S_ISREG(os.fstat(fd).st_mode):
            if fd >= 0:
                os.close(fd)
            raise StorageError(
                f"storage: the writer lock {self.path} is a symbolic link or no regular file; "
                "remove it"
            )
        return fd

    def release(self) -> None:
        fd, self._fd, self._holder = self._fd, None, None
        if fd is not None:
            os.close(fd)  # closing the file releases the flock
        self._lock.release()

    @property
    def held_here(self) -> bool:
        return self._holder == threading.get_ident()

    @contextmanager
    def held(self) -> Iterator[None]:
        """The turn for one transaction; a no-op for the thread that holds it already."""
        if self.held_here:
            yield
            return
        self.acquire()
        try:
            yield
        finally:
            self.release()
