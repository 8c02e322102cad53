"""Writing a file where, and only where, the user asked: the export's atomic writer.

An export replaces its target by renaming a finished temporary file onto it. A rename replaces
whatever directory entry has that name, so the target is checked first (and again just before
the rename): only a regular file or a new name may be replaced. A symbolic link is refused too,
even one to a regular file: renaming onto it would replace the link, following it would write
where the link points; neither is what ``--output`` says, so the user gives the real path.
A FIFO, a device or a socket is refused (writing to standard output serves those).

Temporary files are named ``.<target>.export-<host>-<pid>-<random>.tmp`` in the target's folder.
They are removed on any error or interrupt (SIGTERM included, see the CLI); one left by a killed
process (SIGKILL, power loss) is removed by the next export to that folder once its process is
gone. Files are created with mode 0666 less the umask, as any program's output would be.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import socket
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from storage.errors import ExportError

_KINDS = (
    (stat.S_ISDIR, "a directory"), (stat.S_ISLNK, "a symbolic link"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
)  # fmt: skip
_TEMP = re.compile(r"^\..+\.export-(?P<host>[A-Za-z0-9_.]+)-(?P<pid>\d+)-[0-9a-f]{8}\.tmp$")


def file_kind(mode: int) -> str:
    """'a FIFO (named pipe)', 'a directory', ... for messages; 'a regular file' otherwise."""
    return next((name for test, name in _KINDS if test(mode)), "a regular file")


def check_target(path: Path, *, parents: bool = False, avoid: Path | None = None) -> None:
    """Refuse a target that is not a regular file or a new name, or whose folder is missing
    (unless ``parents``), or that is ``avoid`` (the database file itself)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        _check_folder(path.parent, parents)
        return
    except NotADirectoryError:
        raise ExportError(f"export: {path.parent} is not a directory") from None
    except OSError as exc:
        raise ExportError(f"export: cannot write {path}: {exc.strerror or exc}") from exc
    if not stat.S_ISREG(mode):
        hint = " (write to standard output instead: omit --output)" if not (
            stat.S_ISDIR(mode) or stat.S_ISLNK(mode)) else ""  # fmt: skip
        raise ExportError(
            f"export: {path} is {file_kind(mode)}; export writes only a regular file or a new "
            f"path{hint}"
        )
    if avoid is not None and _same_file(path, avoid):
        raise ExportError(f"export: {path} is the archive's own database file")


def _check_folder(folder: Path, parents: bool) -> None:
    if folder.is_dir():
        return
    if folder.exists() or folder.is_symlink():
        raise ExportError(f"export: {folder} is not a directory")
    if not parents:
        raise ExportError(
            f"export: directory {folder} does not exist (create it, or pass --parents)"
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"export: cannot create {folder}: {exc.strerror or exc}") from exc


def _same_file(a: Path, b: Path) -> bool:
    with contextlib.suppress(OSError):
        return a.samefile(b)
    return False


@contextlib.contextmanager
def atomic_text(
    path: Path, *, parents: bool = False, avoid: Path | None = None
) -> Iterator[IO[str]]:
    """A text stream whose content replaces ``path`` when the block ends without error:
    checked target, temporary file beside it, fsync, re-check, rename, fsync of the folder."""
    with _atomic(path, parents, avoid, binary=False) as out:
        yield out


@contextlib.contextmanager
def atomic_bytes(
    path: Path, *, parents: bool = False, avoid: Path | None = None
) -> Iterator[IO[bytes]]:
    """``atomic_text`` for a binary file (a WARC export)."""
    with _atomic(path, parents, avoid, binary=True) as out:
        yield out


@contextlib.contextmanager
def _atomic(path: Path, parents: bool, avoid: Path | None, binary: bool) -> Iterator[IO[Any]]:
    path = path.parent.resolve() / path.name  # the folder's links followed, not the file's
    check_target(path, parents=parents, avoid=avoid)
    remove_stale_temps(path.parent)
    fd, tmp = _create_temp(path)
    text: dict[str, Any] = {} if binary else {"encoding": "utf-8", "errors": "replace",
                                              "newline": "\n"}  # fmt: skip
    try:
        with os.fdopen(fd, "wb" if binary else "w", **text) as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        check_target(path, avoid=avoid)  # it may have changed meanwhile
        tmp.replace(path)
        _fsync_dir(path.parent)
    except OSError as exc:
        _unlink(tmp)
        raise ExportError(f"export: cannot write {path}: {exc.strerror or exc}") from exc
    except BaseException:
        _unlink(tmp)
        raise


def _create_temp(path: Path) -> tuple[int, Path]:
    """A new file of ours beside ``path``: O_EXCL (never an existing name), no symlink
    followed, mode 0666 so that the umask alone decides (mkstemp's 0600 would not)."""
    prefix = f".{path.name}.export-{_host()}-{os.getpid()}-"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    for _ in range(100):
        tmp = path.parent / f"{prefix}{secrets.token_hex(4)}.tmp"
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
        except OSError as exc:
            raise ExportError(f"export: cannot write {path}: {exc.strerror or exc}") from exc
    raise ExportError(f"export: cannot write {path}: no free temporary name")


def remove_stale_temps(folder: Path) -> list[Path]:
    """Remove export temporaries in ``folder`` left by dead processes of this host; returns
    them. Another host's (a shared folder) and live processes' are left alone."""
    removed: list[Path] = []
    with contextlib.suppress(OSError), os.scandir(folder) as entries:
        for entry in entries:
            match = _TEMP.match(entry.name)
            if match is None or match["host"] != _host() or _alive(int(match["pid"])):
                continue
            if entry.is_file(follow_symlinks=False):
                _unlink(Path(entry.path))
                removed.append(Path(entry.path))
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. EPERM: it exists, owned by someone else
        return True
    return True


def _host() -> str:
    """This host's name, made safe for a file name."""
    return re.sub(r"[^A-Za-z0-9_.]", "_", socket.gethostname())[:64] or "host"


def _unlink(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
