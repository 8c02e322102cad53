"""The CLI meeting a database it cannot use, and an export target it must not write: one line
on stderr and the documented exit status (2 usage or configuration, 3 storage), no traceback."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from aggregator.cli.commands import cli
from storage.store import Store
from tests.test_storage_database import silent_server

__all__ = ["silent_server"]  # the fixture, re-used
ROOT = Path(__file__).resolve().parent.parent
ACCEPTED = "use sqlite:///path/to/archive.db or postgresql+psycopg://user@host:5432/dbname"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def write_config(tmp_path: Path, body: str) -> str:
    path = tmp_path / "feeds.yaml"
    path.write_text(body + "feeds:\n  - url: https://example.com/feed\n", encoding="utf-8")
    return str(path)


COMMANDS = [
    ["check-config"], ["poll", "--once"], ["run"], ["feeds"], ["feeds", "show", "x"], ["stats"],
    ["export"], ["import", "IMPORT"], ["reextract"],
]  # fmt: skip
BAD = {
    "garbage-url": "config: database: 'garbage-url' is not a database URL; " + ACCEPTED,
    "mysql://u:pw@db.example/a": "config: database: unsupported database 'mysql'; " + ACCEPTED,
    "sqlite:///": "config: database: sqlite:/// is an in-memory database (nothing would be "
                  "archived); give a file: sqlite:///path/to/archive.db",
}  # fmt: skip


@pytest.mark.parametrize("url", sorted(BAD))
@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_a_bad_database_url_is_a_usage_error_in_every_command(
    tmp_path: Path, url: str, command: list[str]
) -> None:
    cfg = write_config(tmp_path, 'database: "sqlite:///ok.db"\n')
    (tmp_path / "in.jsonl").write_text("", encoding="utf-8")
    args = [a.replace("IMPORT", str(tmp_path / "in.jsonl")) for a in command]
    code, out, err = run("--config", cfg, "--database", url, *args)
    assert (code, err) == (2, BAD[url] + "\n"), out
    assert not (tmp_path / "ok.db").exists()


def test_a_bad_database_url_in_the_file_names_its_line(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, "# the archive\ndatabase: mysql://u@h/db\n")
    code, _, err = run("--config", cfg, "check-config")
    assert code == 2
    assert err == f"config: {cfg}:2: database: unsupported database 'mysql'; {ACCEPTED}\n"


def test_postgresql_means_psycopg_and_the_password_is_not_shown(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, "database: postgresql://archiver:s3cret@db.example/archive\n")
    code, out, _ = run("--config", cfg, "check-config")
    assert code == 0
    assert out == (f"{cfg}: ok, 1 feeds, database "
                   "postgresql+psycopg://archiver:***@db.example/archive\n")  # fmt: skip


@pytest.mark.parametrize(("body", "message"), [
    ("database_timeouts:\n  conect: 5s\n", ":2: database_timeouts.conect: unknown key"),
    ("database_timeouts:\n  connect: 0\n", ":2: database_timeouts.connect: duration must be"),
    ("database_timeouts:\n  statement: soon\n", ":2: database_timeouts.statement: invalid dur"),
])  # fmt: skip
def test_database_timeouts_are_validated(tmp_path: Path, body: str, message: str) -> None:
    cfg = write_config(tmp_path, body)
    code, _, err = run("--config", cfg, "check-config")
    assert code == 2 and err.startswith(f"config: {cfg}{message}")


def test_a_database_that_never_answers_fails_in_one_line(
    tmp_path: Path, silent_server: tuple[int, list[socket.socket]]
) -> None:
    """As a user runs it: a whole process, the configured connect timeout, exit 3."""
    port, _ = silent_server
    cfg = write_config(tmp_path, f"database: postgresql://u:pw@127.0.0.1:{port}/archive\n"
                                 "database_timeouts:\n  connect: 1s\n")  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("AGGREGATOR_DATABASE", None)
    for command in (["stats"], ["export", "-o", str(tmp_path / "out.jsonl")]):
        argv = [sys.executable, "-m", "aggregator", "--config", cfg, *command]
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60,
                              check=False)  # fmt: skip
        assert proc.returncode == 3, proc.stderr
        assert proc.stderr.startswith(f"storage: open postgresql+psycopg://u:***@127.0.0.1:{port}")
        assert "timeout expired" in proc.stderr and proc.stderr.count("\n") == 1
    assert not (tmp_path / "out.jsonl").exists()


def test_export_targets_from_the_command_line(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'a.db'}"
    Store.open(database).close()  # export reads an archive; it never creates one
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    code, _, err = run("--database", database, "export", "-o", str(fifo))
    assert code == 3
    assert err == (f"export: {fifo} is a FIFO (named pipe); export writes only a regular file "
                   "or a new path (write to standard output instead: omit --output)\n")
    deep = tmp_path / "new" / "dir" / "out.json"
    code, _, err = run("--database", database, "export", "-o", str(deep))
    assert code == 3
    assert err == f"export: directory {deep.parent} does not exist (create it, or pass --parents)\n"
    code, _, err = run("--database", database, "export", "--format", "json", "-o", str(deep),
                       "--parents")  # fmt: skip
    assert code == 0 and err == f"exported 0 items to {deep}\n"
    assert json.loads(deep.read_text(encoding="utf-8"))["items"] == []
