"""Where an export writes: only a regular file or a new path, with the umask's mode, never the
database itself; no temporary file outlives an export (killed ones are cleaned next time)."""

from __future__ import annotations

import os
import re
import signal
import socket
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage.errors import ExportFormatError, StorageError
from storage.export import read_export, write_export
from storage.files import _host, atomic_text, remove_stale_temps
from storage.records import ExportFilter, FeedConfig
from storage.store import Store
from tests.dbfixtures import T0, entry, poll

ROOT = Path(__file__).resolve().parent.parent


def temps(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def export_to(store: Store, path: Path, **kw: bool) -> int:
    return write_export(store, path, "jsonl", ExportFilter(), **kw)


@pytest.fixture
def archive(store: Store) -> Store:
    store.sync_feeds([FeedConfig("https://a.example/feed")], T0)
    poll(store, "https://a.example/feed", T0, [entry(1), entry(2)])
    return store


@pytest.fixture
def umask() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_a_new_file_and_a_regular_file_are_written(archive: Store, tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    assert export_to(archive, target) == 2
    target.write_text("old", encoding="utf-8")
    assert export_to(archive, target) == 2
    assert len(target.read_text(encoding="utf-8").splitlines()) == 2
    assert temps(tmp_path) == []


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_files_get_the_umasks_mode(archive: Store, tmp_path: Path, mask: int, umask: None) -> None:
    os.umask(mask)
    target = tmp_path / "out.jsonl"
    export_to(archive, target)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~mask
    target.chmod(0o600)  # a replaced file too: the export is a new file
    export_to(archive, target)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~mask


def test_a_symlink_is_refused_whatever_it_points_at(archive: Store, tmp_path: Path) -> None:
    real = tmp_path / "real.jsonl"
    real.write_text("keep", encoding="utf-8")
    for name, points_at in [("to-file", real), ("dangling", tmp_path / "nowhere")]:
        link = tmp_path / name
        link.symlink_to(points_at)
        with pytest.raises(StorageError, match=f"^export: {link} is a symbolic link; export "
                                               "writes only a regular file or a new path$"):
            export_to(archive, link)
        assert link.is_symlink() and link.readlink() == points_at
    assert real.read_text(encoding="utf-8") == "keep"
    assert not (tmp_path / "nowhere").exists() and temps(tmp_path) == []


def test_a_fifo_is_refused_without_blocking(archive: Store, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(StorageError, match=r"is a FIFO \(named pipe\); .*omit --output"):
        export_to(archive, fifo)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and temps(tmp_path) == []


def test_a_socket_and_a_directory_are_refused(archive: Store, tmp_path: Path) -> None:
    sock_path = tmp_path / "s"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(sock_path))
        with pytest.raises(StorageError, match="is a socket"):
            export_to(archive, sock_path)
    (tmp_path / "d").mkdir()
    with pytest.raises(StorageError, match="is a directory"):
        export_to(archive, tmp_path / "d")


def test_a_device_node_is_refused_and_left_alone(archive: Store, tmp_path: Path) -> None:
    """What ``--output /dev/null`` did as root, on a device node of our own (1, 3 is null)."""
    node = tmp_path / "null"
    try:
        os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("creating a device node needs CAP_MKNOD (run as root to include this case)")
    with pytest.raises(StorageError, match="is a character device"):
        export_to(archive, node)
    assert stat.S_ISCHR(os.lstat(node).st_mode) and temps(tmp_path) == []


def test_the_database_file_itself_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "archive.db"
    with Store.open(f"sqlite:///{db}") as store:
        before = db.read_bytes()
        with pytest.raises(StorageError, match="is the archive's own database file"):
            export_to(store, db)
        assert db.read_bytes() == before


def test_a_missing_folder_needs_parents(archive: Store, tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "out.jsonl"
    with pytest.raises(StorageError, match=f"^export: directory {target.parent} does not exist "
                                           r"\(create it, or pass --parents\)$"):
        export_to(archive, target)
    assert not (tmp_path / "a").exists()
    assert export_to(archive, target, parents=True) == 2
    (tmp_path / "file").write_text("", encoding="utf-8")
    with pytest.raises(StorageError, match="is not a directory"):
        export_to(archive, tmp_path / "file" / "out.jsonl", parents=True)


def test_an_error_while_writing_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    target.write_text("old", encoding="utf-8")
    with pytest.raises(RuntimeError), atomic_text(target) as out:
        out.write("half")
        assert len(temps(tmp_path)) == 1
        raise RuntimeError("the database went away")
    assert target.read_text(encoding="utf-8") == "old" and temps(tmp_path) == []


def test_a_temporary_name_is_recognisable(tmp_path: Path) -> None:
    with atomic_text(tmp_path / "out.jsonl") as out:
        [name] = temps(tmp_path)
        out.write("x")
    assert name.startswith(f".out.jsonl.export-{_host()}-{os.getpid()}-")


def dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return int(proc.stdout)


def test_stale_temporaries_of_dead_processes_are_removed(tmp_path: Path) -> None:
    dead = tmp_path / f".x.jsonl.export-{_host()}-{dead_pid()}-0123abcd.tmp"
    live = tmp_path / f".x.jsonl.export-{_host()}-{os.getppid()}-0123abcd.tmp"
    elsewhere = tmp_path / f".x.jsonl.export-otherhost-{dead_pid()}-0123abcd.tmp"
    mine = tmp_path / ".x.jsonl.abcdef.tmp"  # not ours: a name we never make
    for path in (dead, live, elsewhere, mine):
        path.write_text("partial", encoding="utf-8")
    assert remove_stale_temps(tmp_path) == [dead]
    assert temps(tmp_path) == sorted(p.name for p in (live, elsewhere, mine))


SCRIPT = """
import os, signal, sys
from pathlib import Path
from aggregator.cli.commands import _terminate_cleanly
from storage.files import atomic_text
with _terminate_cleanly(), atomic_text(Path(sys.argv[1])) as out:
    out.write("half an export")
    out.flush()
    os.kill(os.getpid(), getattr(signal, sys.argv[2]))
    signal.pause()
"""


def killed_export(target: Path, sig: str) -> int:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    code = textwrap.dedent(SCRIPT)
    return subprocess.run([sys.executable, "-c", code, str(target), sig], env=env,
                          timeout=60, check=False).returncode  # fmt: skip


@pytest.mark.parametrize(("sig", "status"), [("SIGTERM", 143), ("SIGHUP", 129), ("SIGINT", -2)])
def test_an_export_stopped_by_a_signal_removes_its_temporary(
    tmp_path: Path, sig: str, status: int
) -> None:
    target = tmp_path / "out.jsonl"
    assert killed_export(target, sig) == status
    assert not target.exists() and temps(tmp_path) == []


def test_a_killed_exports_temporary_is_removed_by_the_next_export(
    archive: Store, tmp_path: Path
) -> None:
    target = tmp_path / "out.jsonl"
    assert killed_export(target, "SIGKILL") == -signal.SIGKILL
    [left] = temps(tmp_path)
    assert left.startswith(".out.jsonl.export-")
    export_to(archive, tmp_path / "other.jsonl")  # any export to that folder
    assert temps(tmp_path) == [] and not target.exists()


def test_import_refuses_a_fifo_rather_than_wait_on_it(tmp_path: Path) -> None:
    fifo = tmp_path / "in.jsonl"
    os.mkfifo(fifo)
    with pytest.raises(ExportFormatError, match=re.escape(
            f"import: {fifo} is a FIFO (named pipe); import reads a regular file")):  # fmt: skip
        list(read_export(fifo))
